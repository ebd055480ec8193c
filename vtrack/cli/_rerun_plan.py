"""What a ``vtrack rerun`` would execute, shown before anything runs.

A rerun executes a snapshot's code — possibly code a teammate pushed and nobody here has
read. So before it runs, the command prints a :class:`Plan`: the exact command, where it
runs, the environment variables it sets and removes, and the code diff between the
current working tree and the run's snapshot (``+`` lines are the run's), truncated to
:data:`~vtrack.limits.RERUN_DIFF_MAX_LINES` lines with the git command that shows all of
it. Arguments recorded masked (secrets, see :mod:`vtrack.secrets`) make the plan
unrunnable: a rerun with ``***`` in place of a token would not be the same command.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vtrack.codediff import CodeDiff
from vtrack.errors import ValidationError
from vtrack.secrets import MASK, from_raw_b64, needs_escaping

if TYPE_CHECKING:
    from vtrack.entities import Run


def recorded_command(run: Run) -> tuple[str | None, list[str]]:
    """The run's entry point and arguments with their exact bytes (``*_raw`` when recorded)."""
    src = run.info.source or {}
    entry = src.get("entry_point")
    if src.get("entry_point_raw"):
        entry = from_raw_b64(src["entry_point_raw"])
    raw = src.get("argv_raw")
    if raw:
        return entry, [from_raw_b64(a) for a in raw]
    return entry, [str(a) for a in src.get("argv") or []]


def recorded_cwd(run: Run) -> str | None:
    """The run's working directory with its exact bytes (``cwd_raw`` when recorded)."""
    src = run.info.source or {}
    if src.get("cwd_raw"):
        return from_raw_b64(src["cwd_raw"])
    return src.get("cwd")


def masked_arguments(run: Run) -> list[tuple[int, str]]:
    """``(index, recorded text)`` of every argument the record holds masked."""
    src = run.info.source or {}
    argv = [str(a) for a in src.get("argv") or []]
    return [(i, argv[i]) for i in src.get("argv_masked") or [] if 0 <= i < len(argv)]


def quote(arg: str) -> str:
    """Shell quoting that keeps bytes exact: non-UTF-8 arguments as bash ``$'\\xNN'`` strings."""
    if not needs_escaping(arg):
        return shlex.quote(arg)
    out = []
    for b in os.fsencode(arg):
        ch = chr(b)
        out.append(ch if 0x20 <= b < 0x7F and ch not in "\\'" else f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


def shell_line(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """``cd DIR && VAR=x python train.py ...`` for people to read or copy."""
    env_part = " ".join(f"{k}={quote(v)}" for k, v in sorted(env.items()))
    shown = [
        "python" if i == 0 and Path(a) == Path(sys.executable) else a for i, a in enumerate(cmd)
    ]
    prefix = str(cwd)
    shown = [shown[0], *[_rel(a, cwd) if a.startswith(prefix) else a for a in shown[1:]]]
    return (
        f"cd {quote(str(cwd))} && "
        + (env_part + " " if env_part else "")
        + " ".join(quote(a) for a in shown)
    )


def _rel(arg: str, cwd: Path) -> str:
    try:
        return os.path.relpath(arg, cwd) if os.path.isabs(arg) else arg
    except ValueError:
        return arg


@dataclass
class Plan:
    """Everything a rerun will do, decided before it does any of it."""

    run_id: str
    run_name: str
    commit: str
    workdir: Path
    command: list[str]
    cwd: Path
    sets: dict[str, str]
    unsets: list[str]
    recorded_env: dict[str, str]
    masked: list[tuple[int, str]]
    diff: CodeDiff
    argv: list[str] = field(default_factory=list)

    def shell(self) -> str:
        """The command as a shell line with the recorded variables."""
        return shell_line(self.command, self.cwd, self.recorded_env)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arguments escaped where they are not UTF-8)."""
        from vtrack.secrets import escape_text

        return {
            "run_id": self.run_id, "commit": self.commit,
            "command": [escape_text(a) for a in self.command], "shell": self.shell(),
            "cwd": escape_text(str(self.cwd)), "env": self.sets, "unset": self.unsets,
            "masked_arguments": [{"index": i, "recorded": t} for i, t in self.masked],
            "code_diff": self.diff.to_dict(), "runnable": not self.masked,
        }  # fmt: skip

    def echo(self, err: bool) -> None:
        """Print the plan for a person (to stderr with ``err``)."""
        out = [
            f"rerun of {self.run_id} ({self.run_name}) will execute the code of run commit "
            f"{self.commit[:12]} in a temporary git worktree:",
            f"  command:     {self.shell()}",
            f"  directory:   {quote(str(self.cwd))}",
            "  environment: sets "
            + ", ".join(f"{k}={quote(v)}" for k, v in sorted(self.sets.items()))
            + (f"; removes {', '.join(self.unsets)}" if self.unsets else ""),
        ]
        d = self.diff
        if not d.available or not d.lines:
            out.append(f"  code:        {d.note}")
        else:
            out.append("  code: your working tree (---) against the run's snapshot (+++):")
            out += [f"    {line}" for line in d.stat.splitlines()]
            out.append("")
            out += d.lines
            if d.truncated:
                out.append(
                    f"... {d.total_lines - len(d.lines)} more lines of diff not shown; "
                    f"see all of it with: {d.see_all}"
                )
        click.echo("\n".join(out), err=err)


def masked_refusal(plan: Plan) -> ValidationError:
    """The error of a rerun whose record holds masked arguments, with a by-hand recipe."""
    listed = ", ".join(f"argument {i + 1} {text!r}" for i, text in plan.masked)
    here, there = str(plan.workdir), "DIR"
    cmd = [_rel(a, plan.cwd) if a.startswith(here) else a for a in plan.command]
    for i, _ in plan.masked:
        cmd[len(cmd) - len(plan.argv) + i] = plan.argv[i].replace(MASK, "<secret>")
    cwd = Path(str(plan.cwd).replace(here, there, 1))
    by_hand = shell_line(cmd, cwd, plan.recorded_env)
    return ValidationError(
        f"run {plan.run_id} was recorded with masked arguments ({listed}): secrets are never "
        f"recorded, and running with {MASK!r} in their place would not be the same command",
        hint=f"rerun it by hand: vtrack checkout {plan.run_id} --into DIR, then {by_hand}",
        masked=[i for i, _ in plan.masked],
    )


def confirm(plan: Plan, *, yes: bool, as_json: bool) -> None:
    """Show the plan and ask on a terminal; raise ValidationError when it must not run.

    ``yes`` skips the question. Without it, a stdin that is not a terminal is refused
    (exit 2) — a script never gets asked, and never runs code by default. Declining
    runs nothing (exit 2 too).
    """
    if not as_json or not yes:
        plan.echo(err=True)
    if plan.masked:
        raise masked_refusal(plan)
    if yes:
        return
    if not sys.stdin.isatty():
        raise ValidationError(
            f"refusing to run the code of run {plan.run_id} without confirmation: "
            "stdin is not a terminal",
            hint="read the plan above and pass --yes (-y) to run it, or --dry-run to only show it",
        )
    if not click.confirm("Run it?", default=False, err=True):
        raise ValidationError("rerun cancelled; nothing was run")
