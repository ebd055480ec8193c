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
from vtrack.repro import FAILED_TO_RUN, UNMATCHED, drift_refusal, masked_refusal
from vtrack.repro.plan import quote
from vtrack.views import fmt_delta, fmt_param, fmt_seconds, fmt_value

if TYPE_CHECKING:
    from vtrack.repro import Plan, RerunReport, Verdict


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
    if plan.whole_tree:
        out.insert(0, f"{plan.target_id} ({plan.target_name}) is a nested run: its whole run "
                   f"tree is rerun from its root {plan.run_id}")  # fmt: skip
    for item in plan.data:
        state = "CHANGED since the run" if item.drifted else "unchanged"
        out.append(f"  data:        {item.name} ({item.kind}, {item.path}) -> {item.rel}: {state}")
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


def confirm(plan: Plan, *, yes: bool, as_json: bool, allow_drift: bool = False) -> None:
    """Show the plan and ask on a terminal; raise ValidationError when it must not run.

    ``yes`` skips the question. Without it, a stdin that is not a terminal is refused
    (exit 2) — a script never gets asked, and never runs code by default. Declining
    runs nothing (exit 2 too).
    """
    if not as_json or not yes:
        echo_plan(plan, err=True)
    if not plan.runnable:
        raise masked_refusal(plan)
    if plan.drifted and not allow_drift:
        raise drift_refusal(plan.run_id, plan.data)
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
    """Print a rerun's comparison, run by run, and its verdict line."""
    if report.failed:
        _print_failure(report)
        return
    target = report.target
    if target is not None and target.comparison is not None:
        _print_comparison(target.comparison)
    if len(report.runs) > 1 or report.whole_tree:
        _print_tree(report)
    if report.environment:
        term.emit("environment differs from the original run (context, not the verdict):")
        for key, a, b in report.environment:
            term.emit(f"  {key}: {fmt_param(a)} -> {fmt_param(b)}")
    if report.data_differed:
        term.emit(f"data differed from the original run: {', '.join(report.data_differed)}")
    if report.data_modified:
        term.emit(
            "warning: the rerun wrote to its input data, which it reads through links to the "
            f"originals: {', '.join(report.data_modified)} changed on disk "
            "(vtrack audit shows how)"
        )
    if report.worktree:
        term.emit(f"worktree kept at {report.worktree}")
    style = "bold green" if report.reproduced else "bold red"
    new = f"{report.rerun_id} ({report.rerun_name})" if report.rerun_id else "no counterpart"
    tree = ""
    if report.whole_tree:
        tree = f"; the whole tree of {report.root_id[:12]} was rerun: {report.tree_verdict}"
    drift = " on drifted data" if report.data_differed else ""
    term.emit(
        term.styled(report.verdict, style),
        f"{drift}: run {report.run_id} against its rerun {new} "
        f"(tolerance {report.tolerance.default}, {fmt_seconds(report.seconds)}){tree}",
    )


def _print_comparison(v: Verdict) -> None:
    if not (v.metrics or v.params or v.artifacts):
        return
    t = term.table("", "key", "original", "rerun", "change")
    for m in v.metrics:
        mark = term.styled("=", "green") if m.within_tolerance else term.styled("≠", "red")
        t.add_row(mark, f"metrics.{m.key}", fmt_value(m.original), fmt_value(m.rerun),
                  fmt_delta(m.delta, None))  # fmt: skip
    for p in v.params:
        t.add_row(term.styled("≠", "red"), f"params.{p.key}", fmt_param(p.original),
                  fmt_param(p.rerun), "")  # fmt: skip
    for a in v.artifacts:
        t.add_row(term.styled("≠", "red"), f"artifacts.{a.path}", _digest(a.original),
                  _digest(a.rerun), "")  # fmt: skip
    t.print()
    if v.ignored:
        term.emit(f"ignored (cannot reproduce by nature, or --ignore): {', '.join(v.ignored)}")


def _digest(d: str | None) -> str:
    return "-" if d is None else d.split(":", 1)[-1][:12]


def _print_tree(report: RerunReport) -> None:
    term.emit("run tree:")
    for r in report.runs:
        pad = "  " * (r.depth + 1)
        left = f"{r.original_id[:12]} ({r.original_name})" if r.original_id else "(none)"
        right = f"{r.rerun_id[:12]} ({r.rerun_name})" if r.rerun_id else "(none)"
        style = {"reproduced": "green", UNMATCHED: "yellow"}.get(r.verdict, "red")
        extra = ""
        if r.comparison is not None and not r.comparison.reproduced:
            bad = [f"metrics.{m.key}" for m in r.comparison.metrics if not m.within_tolerance]
            bad += [f"params.{p.key}" for p in r.comparison.params]
            bad += [f"artifacts.{a.path}" for a in r.comparison.artifacts]
            extra = f" ({', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''})"
        term.emit(f"{pad}{left} -> {right}: ", term.styled(r.verdict, style), extra)


def _print_failure(report: RerunReport) -> None:
    if report.stderr_tail:
        term.emit("last lines of its stderr:")
        for line in report.stderr_tail:
            term.emit(f"  | {line}")
    if report.timed_out:
        why = "it ran out of time (--timeout) and was killed"
    elif report.returncode != 0:
        why = f"it exited with code {report.returncode}"
    else:
        why = "it exited 0 but recorded no run (does the script call vtrack.start_run()?)"
    if report.worktree:
        term.emit(f"worktree kept at {report.worktree}")
    term.emit(
        term.styled(FAILED_TO_RUN, "bold red"),
        f": the rerun of {report.root_id} did not produce a run tree to compare: {why}",
    )
    term.emit(f"  command: {report.command}")
