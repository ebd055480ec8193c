"""What ``vtrack rerun`` shows and asks: the plan before anything runs, the verdict after.

The plan (:class:`vtrack.repro.Plan`) is printed in full — command, directory, the
environment variables set and removed, and the code diff between the working tree and
the run's snapshot (``+`` lines are the run's), cut to
:data:`~vtrack.limits.RERUN_DIFF_MAX_LINES` lines with the git command that shows all of
it — then the command asks on a terminal, and never runs code for a script that did not
pass ``--yes``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from vtrack.cli import _term as term
from vtrack.errors import ValidationError
from vtrack.repro import masked_refusal
from vtrack.repro.plan import quote
from vtrack.views import fmt_delta, fmt_param, fmt_seconds, fmt_value

if TYPE_CHECKING:
    from vtrack.repro import Plan, RerunReport


def echo_plan(plan: Plan, err: bool) -> None:
    """Print the plan for a person (to stderr with ``err``)."""
    out = [
        f"rerun of {plan.run_id} ({plan.run_name}) will execute the code of run commit "
        f"{plan.commit[:12]} in a temporary git worktree:",
        f"  command:     {plan.shell()}",
        f"  directory:   {quote(str(plan.cwd))}",
        "  environment: sets "
        + ", ".join(f"{k}={quote(v)}" for k, v in sorted(plan.sets.items()))
        + (f"; removes {', '.join(plan.unsets)}" if plan.unsets else ""),
    ]
    d = plan.diff
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


def confirm(plan: Plan, *, yes: bool, as_json: bool) -> None:
    """Show the plan and ask on a terminal; raise ValidationError when it must not run.

    ``yes`` skips the question. Without it, a stdin that is not a terminal is refused
    (exit 2) — a script never gets asked, and never runs code by default. Declining
    runs nothing (exit 2 too).
    """
    if not as_json or not yes:
        echo_plan(plan, err=True)
    if not plan.runnable:
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


def print_rerun(report: RerunReport) -> None:
    """Print a rerun's metric and param comparison and its verdict line."""
    if report.metrics or report.params:
        t = term.table("", "key", "original", "rerun", "change")
        for m in report.metrics:
            mark = term.styled("=", "green") if m.within_tolerance else term.styled("≠", "red")
            t.add_row(
                mark,
                f"metrics.{m.key}",
                fmt_value(m.original),
                fmt_value(m.rerun),
                fmt_delta(m.delta, None),
            )
        for p in report.params:
            t.add_row(
                term.styled("≠", "red"),
                f"params.{p.key}",
                fmt_param(p.original),
                fmt_param(p.rerun),
                "",
            )
        t.print()
    if report.returncode != 0:
        term.emit(f"the command exited with code {report.returncode}")
    if report.worktree:
        term.emit(f"worktree kept at {report.worktree}")
    style = "bold green" if report.reproduced else "bold red"
    new = f"{report.rerun_id} ({report.rerun_name})" if report.rerun_id else "no run"
    term.emit(
        term.styled(report.verdict, style),
        f": rerun {new} of {report.run_id} "
        f"(tolerance {report.tolerance:g}, {fmt_seconds(report.seconds)})",
    )
