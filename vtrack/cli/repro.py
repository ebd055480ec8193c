"""Reproduction commands: ``checkout`` (a run's exact files) and ``rerun`` (run it again).

The work is done by the :mod:`vtrack.repro` service (checkout, the rerun plan, its
execution and verdict); these commands parse options, ask before running code and print.
``rerun`` first shows what it will execute and asks (:mod:`vtrack.cli._rerun_prompt`),
then runs it and prints the verdict: "reproduced" (exit 0) when every param is equal and
every metric is within the tolerance, else "diverged" (exit 1).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vtrack import repro
from vtrack.cli import _term as term
from vtrack.cli._options import client, experiment_option, json_option
from vtrack.cli._types import RunSpec
from vtrack.errors import EXIT_DRIFT

if TYPE_CHECKING:
    from vtrack.entities import Experiment


@click.command("checkout")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Add a new git worktree at DIR instead of switching this one.",
)
@experiment_option()
@json_option
def checkout(run: str, into: Path | None, experiment: Experiment | None, as_json: bool) -> None:
    """Put a run's exact code, params and artifacts on disk (a git worktree)."""
    c = client()
    rn = c.get_run(run)
    target = repro.checkout_run(c.repo, rn, into)
    again = repro.again_line(c.repo, rn, target)
    masked = repro.masked_arguments(rn)
    if as_json:
        term.echo_json(
            {"run_id": run, "commit": rn.info.commit, "path": str(target), "command": again}
        )
        return
    click.echo(f"checked out run {run} ({rn.info.run_name}) at {target}")
    click.echo(f"params: {target / '.vtrack' / 'params.yaml'}")
    if again:
        click.echo(f"run it again: {again}")
        if masked:
            shown = ", ".join(f"{i + 1} ({text!r})" for i, text in masked)
            click.echo(f"  (arguments {shown} were masked when recorded: give their real values)")
    if into is None:
        branch = (rn.info.source or {}).get("branch")
        click.echo(
            "HEAD is detached at the run commit"
            + (f"; back with: git checkout {branch}" if branch else "")
        )
    else:
        click.echo(f"remove it with: git worktree remove --force {shlex.quote(str(target))}")


@click.command("rerun")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.option(
    "--tolerance",
    "-t",
    default=repro.DEFAULT_TOLERANCE,
    show_default=True,
    type=click.FloatRange(0),
    help="Allowed |new - old| / max(1, |old|) per metric.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="PATTERN",
    help="Metric or param keys to leave out of the verdict (glob, repeatable).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary worktree (its path is printed).")
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=None,
    help="Seconds the re-executed command may run.",
)
@click.option("--yes", "-y", is_flag=True, help="Run without asking (scripts); the plan is shown.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the command, directory, environment and code diff; run nothing.",
)
@experiment_option()
@json_option
def rerun(
    run: str,
    tolerance: float,
    ignore: tuple[str, ...],
    keep: bool,
    timeout: float | None,
    yes: bool,
    dry_run: bool,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Run RUN again from its own snapshot; exit 0 if it reproduced, 1 if it diverged.

    This executes the run's code, which may be code someone else pushed. First it shows
    the command, the directory, the environment variables it sets and the diff between
    your working tree and the run's code, then asks on a terminal. --yes skips the
    question; without a terminal and without --yes it refuses (exit 2). A run recorded
    with masked arguments (secrets) is refused too, with how to rerun it by hand.
    """
    from vtrack.cli._rerun_prompt import confirm, echo_plan, print_rerun

    c = client()
    original = c.get_run(run)
    plan = repro.plan_rerun(c.repo, original, environ=os.environ)
    go = False
    try:
        if dry_run:
            if as_json:
                term.echo_json(plan.to_dict())
            else:
                echo_plan(plan, err=False)
            if not plan.runnable:
                raise repro.masked_refusal(plan)
            return
        confirm(plan, yes=yes, as_json=as_json)
        go = True
    finally:
        if not go:
            repro.discard(plan)

    def relay(output: str) -> None:  # --json keeps stdout for the report
        click.echo(output, err=True, nl=False)

    report = repro.execute_rerun(
        c.repo,
        original,
        plan,
        tolerance=tolerance,
        ignore=ignore,
        timeout=timeout,
        keep=keep,
        environ=os.environ,
        on_output=relay if as_json else None,
    )
    if as_json:
        term.echo_json(report.to_dict())
    else:
        print_rerun(report)
    if not report.reproduced:
        raise click.exceptions.Exit(EXIT_DRIFT)
