"""Reproduction commands: ``checkout`` (a run's exact files) and ``rerun`` (run it again).

The work is done by the :mod:`vtrack.repro` service (checkout, the rerun plan, its
execution and verdict); these commands parse options, ask before running code and print.
``rerun`` first shows what it will execute and asks (:mod:`vtrack.cli._rerun_prompt`),
then runs it and prints one verdict per run of the tree and the overall one:
"reproduced" (exit 0), "diverged" (exit 1) or "failed to run" (exit 6, with the command,
its exit code and the tail of its stderr).
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
from vtrack.errors import EXIT_DRIFT, EXIT_FAILED_TO_RUN

if TYPE_CHECKING:
    from vtrack.entities import Experiment


@click.command("checkout")
@click.argument("run", type=RunSpec(include_deleted=True, strict_unless="into"))
@click.option(
    "--into",
    is_eager=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Add a new git worktree at DIR instead of switching this one.",
)
@click.option(
    "--requirements",
    is_flag=True,
    help="Also write .vtrack/requirements.txt (the run's distributions, for pip install -r).",
)
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Link data that changed since the run (it is reported) instead of refusing.",
)
@experiment_option()
@json_option
def checkout(
    run: str,
    into: Path | None,
    requirements: bool,
    allow_drift: bool,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Put a run's exact code, params, artifacts and data on disk (a git worktree).

    With --into DIR the data the run read from outside its snapshot (gitignored
    folders) is linked in at the same paths after a digest check: data that changed
    since the run is refused unless --allow-drift, missing data is an error naming it.
    """
    c = client()
    rn = c.get_run(run)
    data = repro.plan_data(c.repo, rn) if into is not None else []
    if any(d.drifted for d in data) and not allow_drift:
        raise repro.drift_refusal(run, data)
    target = repro.checkout_run(c.repo, rn, into)
    data = repro.link_data(data, target, outside_ok=False) if into is not None else []
    again = repro.again_line(c.repo, rn, target)
    masked = repro.masked_arguments(rn)
    req = repro.write_requirements(rn, target) if requirements else None
    if as_json:
        term.echo_json(
            {"run_id": run, "commit": rn.info.commit, "path": str(target), "command": again,
             "data": [d.to_dict() for d in data],
             "requirements": str(req) if req else None}
        )  # fmt: skip
        return
    click.echo(f"checked out run {run} ({rn.info.run_name}) at {target}")
    click.echo(f"params: {target / '.vtrack' / 'params.yaml'}")
    for d in data:
        drift = " (changed since the run)" if d.drifted else ""
        click.echo(f"data: {d.name} at {d.rel} ({d.how}){drift}")
    if req is not None:
        click.echo(f"requirements: {req} (install with: pip install -r {shlex.quote(str(req))})")
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
    multiple=True,
    metavar="[KEY=][abs:]X",
    help="Allowed difference per metric: X relative to max(1, |old|) (default "
    f"{repro.DEFAULT_TOLERANCE:g}), abs:X absolute; KEY=... for metrics matching KEY "
    "(glob). Repeatable.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="PATTERN",
    help="Metric, param or artifact keys to leave out of the verdict (glob, repeatable). "
    "System metrics and durations are always left out (and listed).",
)
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Run on data that changed since the run (the verdict says so) instead of refusing.",
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
    tolerance: tuple[str, ...],
    ignore: tuple[str, ...],
    allow_drift: bool,
    keep: bool,
    timeout: float | None,
    yes: bool,
    dry_run: bool,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Run RUN's process again from its own snapshot and compare every run it makes.

    A nested run (a sweep's child) is rerun by rerunning its tree's root, the process
    that made it; the whole tree is compared run by run (matched by name and params,
    else by creation order) and the verdict reported is RUN's. Exit 0: reproduced;
    1: diverged (the differing params, metrics and artifacts are listed); 6: failed to
    run (the command exited non-zero or recorded no run; its stderr tail is shown).
    Data the run read from outside its snapshot is linked in after a digest check.

    This executes the run's code, which may be code someone else pushed. First it shows
    the command, the directory, the environment variables it sets and the diff between
    your working tree and the run's code, then asks on a terminal. --yes skips the
    question; without a terminal and without --yes it refuses (exit 2). A run recorded
    with masked arguments (secrets) is refused too, with how to rerun it by hand.
    """
    from vtrack.cli._rerun_prompt import confirm, echo_plan, print_rerun

    c = client()
    tolerances = repro.Tolerances.parse(tolerance)
    original = c.get_run(run)
    plan = repro.plan_rerun(c.repo, original, environ=os.environ, reuse=not keep and not dry_run)
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
        confirm(plan, yes=yes, as_json=as_json, allow_drift=allow_drift)
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
        tolerance=tolerances,
        ignore=ignore,
        timeout=timeout,
        keep=keep,
        allow_drift=allow_drift,
        environ=os.environ,
        on_output=relay if as_json else None,
    )
    if as_json:
        term.echo_json(report.to_dict())
    else:
        print_rerun(report)
    if report.failed:
        raise click.exceptions.Exit(EXIT_FAILED_TO_RUN)
    if not report.reproduced:
        raise click.exceptions.Exit(EXIT_DRIFT)
