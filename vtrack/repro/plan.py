"""What a rerun of a run would execute, decided before anything runs.

A rerun executes a snapshot's code — possibly code a teammate pushed and nobody here has
read. So a face shows the :class:`Plan` first: the exact command, where it runs, the
environment variables it sets and removes, and the code diff between the current working
tree and the run's snapshot (:func:`vtrack.repro.codediff.worktree_diff`). Arguments
recorded masked (secrets, see :mod:`vtrack.secrets`) make the plan unrunnable: a rerun
with ``***`` in place of a token would not be the same command.

The command is the recorded entry point and arguments with their exact bytes, run by
this interpreter; the directory is the recorded one mapped into the checkout when it lies
inside this store's working tree, else the checkout's root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.errors import ValidationError
from vtrack.repro.checkout import require_snapshot, store_git
from vtrack.repro.codediff import WorktreeDiff, worktree_diff
from vtrack.secrets import MASK, from_raw_b64, needs_escaping

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.repro.data import DataInput
    from vtrack.store.runs import RunRepository

#: Environment variables a rerun never inherits from the process that starts it.
RERUN_SCRUB = (
    "VTRACK_TRACKING_URI",
    "VTRACK_EXPERIMENT_NAME",
    "VTRACK_EXPERIMENT_ID",
    "VTRACK_RERUN_OF",
    "VTRACK_RERUN_MIRROR",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
)


# -- what the record says ------------------------------------------------------------------


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


def recorded_env(run: Run) -> dict[str, str]:
    """The environment variables the run recorded (``PYTHONHASHSEED``, thread counts, …)."""
    src = run.info.source or {}
    return {str(k): str(v) for k, v in (src.get("env") or {}).items()}


# -- shell lines for people ------------------------------------------------------------------


def quote(arg: str) -> str:
    """Shell quoting that keeps bytes exact: non-UTF-8 arguments as bash ``$'\\xNN'`` strings."""
    if not needs_escaping(arg):
        return shlex.quote(arg)
    out = []
    for b in os.fsencode(arg):
        ch = chr(b)
        out.append(ch if 0x20 <= b < 0x7F and ch not in "\\'" else f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


def shell_line(cmd: list[str], cwd: Path, env: Mapping[str, str]) -> str:
    """``cd DIR && VAR=x python train.py ...`` for people to read or copy."""
    env_part = " ".join(f"{k}={quote(v)}" for k, v in sorted(env.items()))
    shown = [
        "python" if i == 0 and Path(a) == Path(sys.executable) else a for i, a in enumerate(cmd)
    ]
    prefix = str(cwd)
    shown = [shown[0], *[_relative(a, cwd) if a.startswith(prefix) else a for a in shown[1:]]]
    return (
        f"cd {quote(str(cwd))} && "
        + (env_part + " " if env_part else "")
        + " ".join(quote(a) for a in shown)
    )


def _relative(arg: str, cwd: Path) -> str:
    try:
        return os.path.relpath(arg, cwd) if os.path.isabs(arg) else arg
    except ValueError:
        return arg


# -- the command and its directory -------------------------------------------------------------


def rerun_command(run: Run, workdir: Path, python: str = "python") -> list[str]:
    """The command that re-executes ``run`` from a checkout at ``workdir``.

    Arguments come with their exact bytes (``argv_raw`` when the record has it); masked
    ones hold the mask (:func:`masked_arguments` says which). Raises ValidationError for
    a run started with ``python -c`` or from an unknown entry point.
    """
    entry, argv = recorded_command(run)
    if not entry or entry == "-c":
        raise ValidationError(
            f"run {run.info.run_id} was started from "
            f"{'python -c' if entry else 'an unknown entry point'}; "
            "its command cannot be re-executed",
            hint="start runs from a script file or with python -m",
        )
    if entry.startswith("-m "):
        return [python, "-m", entry[3:], *argv]
    path = Path(entry)
    if not path.is_absolute():
        path = workdir / path
    return [python, str(path), *argv]


def rerun_cwd(repo: RunRepository, run: Run, workdir: Path, *, planned: bool = False) -> Path:
    """Where a rerun starts: the recorded cwd mapped into ``workdir`` (else its root).

    The recorded cwd is absolute; it maps into the checkout when it lies inside this
    store's working tree (the usual case: rerunning in the clone that made the run) and
    is a folder there. ``planned`` asks the run commit's tree instead of the disk, for a
    checkout that is not made yet.
    """
    cwd = recorded_cwd(run)
    wt = repo.store.location.worktree
    if cwd and wt is not None:
        try:
            rel = Path(cwd).resolve().relative_to(wt)
        except ValueError:
            return workdir
        if rel == Path("."):
            return workdir
        cand = workdir / rel
        if planned:
            spec = f"{run.info.commit}:{rel.as_posix()}"
            if store_git(repo, ["cat-file", "-t", spec], check=False) == "tree":
                return cand
        elif cand.is_dir():
            return cand
    return workdir


def again_line(repo: RunRepository, run: Run, checkout: Path) -> str | None:
    """The shell line that runs ``run`` again in its ``checkout``; None when it cannot be."""
    try:
        cmd = rerun_command(run, checkout)
        return shell_line(cmd, rerun_cwd(repo, run, checkout), recorded_env(run))
    except Exception:  # noqa: BLE001 - a checkout is useful even without a command
        return None


# -- the plan ------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything a rerun will do, decided before it does any of it.

    ``scratch`` is the temporary folder that holds ``workdir`` when :func:`plan_rerun`
    made it: :func:`discard` or :func:`vtrack.repro.rerun.execute_rerun` removes it.
    """

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
    diff: WorktreeDiff
    argv: list[str] = field(default_factory=list)
    scratch: Path | None = None
    lock_fd: int | None = None
    target_id: str = ""
    target_name: str = ""
    data: list[DataInput] = field(default_factory=list)

    @property
    def whole_tree(self) -> bool:
        """True when the run asked for is a nested run: its tree's root is rerun."""
        return bool(self.target_id) and self.target_id != self.run_id

    @property
    def drifted(self) -> list[DataInput]:
        """The inputs whose bytes changed since the run."""
        return [d for d in self.data if d.drifted]

    @property
    def runnable(self) -> bool:
        """False when the record holds masked arguments (see :func:`masked_refusal`)."""
        return not self.masked

    def shell(self) -> str:
        """The command as a shell line with the recorded variables."""
        return shell_line(self.command, self.cwd, self.recorded_env)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arguments escaped where they are not UTF-8)."""
        from vtrack.secrets import escape_text

        return {
            "run_id": self.run_id,
            "commit": self.commit,
            "command": [escape_text(a) for a in self.command],
            "shell": self.shell(),
            "cwd": escape_text(str(self.cwd)),
            "env": self.sets,
            "unset": self.unsets,
            "masked_arguments": [{"index": i, "recorded": t} for i, t in self.masked],
            "code_diff": self.diff.to_dict(),
            "runnable": self.runnable,
            "target_id": self.target_id or self.run_id,
            "whole_tree": self.whole_tree,
            "data": [d.to_dict() for d in self.data],
        }


def plan_rerun(
    repo: RunRepository,
    run: Run,
    *,
    python: str = sys.executable,
    environ: Mapping[str, str] | None = None,
    reuse: bool = False,
) -> Plan:
    """What rerunning ``run`` will do, in a checkout not made yet inside a new temp folder.

    A nested run is rerun by rerunning the root of its tree (:func:`vtrack.repro.tree.tree_root`),
    the process that made it: the plan is the root's, with ``target_id`` the run asked for.
    The data the snapshot lacks is audited now (:func:`vtrack.repro.data.plan_data`: a
    missing input raises InputMissingError); the checkout mirrors the repository's absolute
    path inside the temp folder, so that inputs outside the repository keep their
    relative position. ``environ`` is the environment the rerun would inherit (default: this process's);
    the plan lists which of its variables are removed. The temp folder is the plan's
    ``scratch``: execute the plan or :func:`discard` it. Raises ValidationError for a run
    without a code snapshot or a command that cannot be re-executed (nothing is left).

    ``reuse`` plans for the store's kept rerun worktree (:mod:`vtrack.repro.workspace`)
    when no other rerun holds it: then ``scratch`` is None and the plan holds its lock
    until it is executed or discarded.
    """
    from vtrack.repro import workspace
    from vtrack.repro.data import plan_data
    from vtrack.repro.tree import tree_root

    target = run
    run = tree_root(repo, run)
    require_snapshot(run)
    env = os.environ if environ is None else environ
    run_id = run.info.run_id
    data = plan_data(repo, run)
    kept = workspace.acquire(repo) if reuse else None
    scratch: Path | None = None
    if kept is None:
        scratch = Path(tempfile.mkdtemp(prefix=f"vtrack-rerun-{run_id[:8]}-"))
        base, lock_fd = scratch, None
    else:
        base, lock_fd = kept
    wt = repo.store.location.worktree
    mirror = Path(wt).relative_to(Path(wt).anchor) if wt is not None else Path("worktree")
    workdir = base / mirror
    try:
        cmd = rerun_command(run, workdir, python=python)
        cwd = rerun_cwd(repo, run, workdir, planned=True)
        recorded = recorded_env(run)
        sets = dict(recorded)
        sets["VTRACK_TRACKING_URI"] = str(workdir)  # a linked worktree of this store
        sets["VTRACK_RERUN_OF"] = run_id
        sets["VTRACK_RERUN_MIRROR"] = str(base)  # outside data's links: see log_input
        unsets = sorted(k for k in RERUN_SCRUB if k in env and k not in sets)
        return Plan(
            run_id=run_id,
            run_name=run.info.run_name,
            commit=run.info.commit or "",
            workdir=workdir,
            command=cmd,
            cwd=cwd,
            sets=sets,
            unsets=unsets,
            recorded_env=recorded,
            masked=masked_arguments(run),
            diff=worktree_diff(repo, run),
            argv=recorded_command(run)[1],
            scratch=scratch,
            lock_fd=lock_fd,
            target_id=target.info.run_id,
            target_name=target.info.run_name,
            data=data,
        )
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        workspace.release(lock_fd)
        raise


def discard(plan: Plan) -> None:
    """Remove the temp folder of a plan that will not be executed (or release its lock)."""
    from vtrack.repro import workspace

    if plan.scratch is not None:
        shutil.rmtree(plan.scratch, ignore_errors=True)
    workspace.release(plan.lock_fd)
    plan.lock_fd = None


def masked_refusal(plan: Plan) -> ValidationError:
    """The error of a rerun whose record holds masked arguments, with a by-hand recipe."""
    listed = ", ".join(f"argument {i + 1} {text!r}" for i, text in plan.masked)
    here, there = str(plan.workdir), "DIR"
    cmd = [_relative(a, plan.cwd) if a.startswith(here) else a for a in plan.command]
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
