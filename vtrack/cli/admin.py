"""Maintenance commands: ``recover``, ``gc`` and ``index rebuild`` (more join here: hooks, ui)."""

from __future__ import annotations

import json

import click

from vtrack.cli._options import client, json_option
from vtrack.cli._types import RunSpec


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the recovered run ids as JSON.")
def recover(as_json: bool) -> None:
    """Finalize runs whose writing process died, as KILLED with everything journaled.

    Lock files that dead processes left behind (e.g. a ref lock of a writer killed in
    the middle of a ref update) are removed first, and reported on stderr.
    """
    ids = client().recover(clear_locks=True)
    if as_json:
        click.echo(json.dumps({"recovered": ids}))
    elif ids:
        for run_id in ids:
            click.echo(f"recovered {run_id}")
    else:
        click.echo("nothing to recover")


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; change nothing.")
@click.option(
    "--purge-trash",
    is_flag=True,
    help="First delete every run in the trash for good (they cannot be restored after).",
)
@click.option(
    "--grace",
    "grace_seconds",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="Never remove objects (or temp files without a known owner) younger than this.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc(dry_run: bool, purge_trash: bool, grace_seconds: float, as_json: bool) -> None:
    """Remove large artifact objects that no run references and report the bytes freed.

    Runs in the trash keep their objects until they are purged (--purge-trash). Objects
    that a live run (or an unrecovered dead one) has journaled are kept, and so is any
    object younger than the grace period, which covers an upload about to be recorded.

    Temp files of interrupted uploads are removed once their process is gone (at any
    age); those of uploads still running are never removed, whatever --grace says.
    """
    from vtrack.gc import collect_garbage

    c = client()
    # a deleted run that registered model versions load from stays in the trash
    keep = c.model_registry.backing_runs() if purge_trash else None
    report = collect_garbage(
        c.repo, dry_run=dry_run, grace_seconds=grace_seconds, purge_trash_first=purge_trash,
        keep_runs=keep,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    verb = "would remove" if dry_run else "removed"
    if report.trash_purged:
        click.echo(
            f"{'would purge' if dry_run else 'purged'} {len(report.trash_purged)} deleted run(s)"
        )
    for run_id, uses in report.trash_kept.items():
        click.echo(
            f"kept deleted run {run_id}: registered model version(s) {', '.join(uses)} load "
            f"from it (delete them first: vtrack models delete NAME VERSION)",
            err=True,
        )
    click.echo(
        f"{verb} {len(report.objects_removed)} of {report.objects_scanned} large object(s), "
        f"{_human(report.bytes_freed)} freed; {report.objects_referenced} referenced, "
        f"{report.objects_kept_young} younger than the grace period"
    )
    if report.temp_files_removed:
        click.echo(
            f"{verb} {report.temp_files_removed} temp file(s) of interrupted uploads, "
            f"{_human(report.temp_bytes_freed)} freed"
        )
        if dry_run:
            for temp in report.temp_files:
                click.echo(
                    f"  {temp['name']}  {_human(temp['size'])}  {temp['owner']}: {temp['reason']}"
                )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.group("index")
def index() -> None:
    """Maintain the derived run index (.git/vtrack/index.sqlite; refs stay the truth)."""


@index.command("rebuild")
@click.option(
    "--from-commits",
    is_flag=True,
    help="Read archived runs from their own commits too, not from their archive batches' "
    "summary tables (slower; the tables are derived from those commits).",
)
@json_option
def index_rebuild(from_commits: bool, as_json: bool) -> None:
    """Drop the index and read every run again from git."""
    import sys
    import time

    from vtrack.cli._term import echo_json
    from vtrack.views import fmt_seconds

    c = client()
    if sys.stderr.isatty():  # ~1 s per 1,000 runs: say what is going on
        click.echo("rebuilding the run index from git ...", err=True)
    t0 = time.perf_counter()
    stats = c.run_index(sync=False).rebuild(tables=not from_commits)
    seconds = time.perf_counter() - t0
    if as_json:
        echo_json({"read": stats.read, "removed": stats.removed, "seconds": round(seconds, 3),
                   "from_tables": stats.from_tables})  # fmt: skip
    else:
        tables = f" ({stats.from_tables} from archive summary tables)" if stats.from_tables else ""
        click.echo(f"index rebuilt: {stats.read} runs read{tables} in {fmt_seconds(seconds)}")


@click.command("archive")
@click.argument("runs", nargs=-1, type=RunSpec())
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Archive only runs whose last commit is older than DAYS.",
)
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Leave the N newest runs with their own refs.",
)
@click.option(
    "--undo", is_flag=True, help="Give archived runs (RUNS, or every one) their own refs back."
)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@json_option
def archive(runs: tuple[str, ...], older_than: float | None, keep: int, undo: bool,
            dry_run: bool, as_json: bool) -> None:  # fmt: skip
    """Compact finished runs into a few archive refs, so git stays fast at 100,000 runs.

    Runs stay reachable by id, prefix and name; show, diff, checkout, rerun, rm,
    restore, tag, push and pull work as before. Live runs are never archived. Without
    --undo, RUNS cannot be named: choose runs by --older-than and --keep. A run's end
    archives automatically past git config vtrack.archive.auto run refs (see
    docs/scale.md).
    """
    from vtrack.cli._term import echo_json

    c = client()
    if undo:
        report = c.unarchive_runs(list(runs) if runs else None, dry_run=dry_run)
    else:
        if runs:
            raise click.UsageError("name runs only with --undo (choose by --older-than, --keep)")
        report = c.archive_runs(older_than_days=older_than, keep=keep, dry_run=dry_run)
    if as_json:
        echo_json(report)
        return
    would = "would " if dry_run else ""
    if undo:
        click.echo(f"{would}unarchive {len(report['unarchived'])} run(s)"
                   + (f"; {len(report['removed_batches'])} archive batch(es) removed"
                      if report["removed_batches"] else ""))  # fmt: skip
    else:
        click.echo(f"{would}archive {len(report['archived'])} run(s)"
                   + ("" if dry_run else f" into {len(report['batches'])} batch(es)")
                   + (f"; {report['skipped_live']} live or unfinished run(s) left alone"
                      if report["skipped_live"] else ""))  # fmt: skip
    if report["kept"]:
        click.echo(f"{len(report['kept'])} run(s) changed meanwhile and keep their own ref")
