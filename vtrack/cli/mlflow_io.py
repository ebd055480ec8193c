"""``vtrack import-mlflow`` and ``vtrack export-mlflow``: runs into and out of MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vtrack.cli._options import client, json_option

if TYPE_CHECKING:
    from vtrack.mlflow_io.importer import ImportReport


@click.command("import-mlflow")
@click.argument("source")
@click.option("--experiment", "experiments", multiple=True, metavar="NAME",
              help="Import only this MLflow experiment (repeatable; default: all active ones).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would be imported; write nothing.")
@json_option
def import_mlflow(source: str, experiments: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Import the runs of an MLflow store (SOURCE: a sqlite file or sqlite:/// URI, an
    mlruns folder or file: URI, or a tracking server's http(s):// URL).

    Every active MLflow run becomes an ended vtrack run: name, user, status, start and
    end times, params (ints, floats and bools typed again when their text is exactly
    one), tags, full metric histories with their steps and timestamps, dataset inputs,
    artifacts, and MLflow 3 logged models (as vtrack logged models with the same ids).
    Nested runs stay nested. The MLflow run id is kept as the tag vtrack.mlflow.run_id:
    importing again skips the runs already imported. A run vtrack refuses (a key or
    value over its rules) is reported as failed on stderr and in --json, nothing of it is
    written, and the exit code stays 0. Needs the mlflow package.
    """
    from vtrack.mlflow_io.importer import import_mlflow as run_import

    report = run_import(client().repo, source, experiments=experiments, dry_run=dry_run)
    if as_json:
        from vtrack.cli._term import echo_json

        echo_json(report.to_json())
        return
    _print_summary(report)


def _print_summary(r: ImportReport) -> None:
    from vtrack.cli._term import table
    from vtrack.views import fmt_seconds

    t = table("experiment", "found", "to import" if r.dry_run else "imported", "skipped",
              "failed", "metric points", "artifacts").right(1, 2, 3, 4, 5, 6)  # fmt: skip
    rows = [*r.experiments, r.totals()]
    for e in rows:
        if e is rows[-1]:
            t.add_section()
        t.add_row(e.experiment, f"{e.found:,}", f"{e.imported:,}", f"{e.skipped:,}",
                  f"{e.failed:,}", f"{e.metric_points:,}", f"{e.artifact_files:,}")  # fmt: skip
    t.print()
    for f in r.failures:
        click.echo(f"failed: MLflow run {f['mlflow_run_id']} ({f['experiment']}): {f['error']}",
                   err=True)  # fmt: skip
    verb = "would import" if r.dry_run else "imported"
    click.echo(f"{verb} {r.totals().imported:,} run(s) from {r.source} in {fmt_seconds(r.seconds)}")


@click.command("export-mlflow")
@click.argument("dest")
@click.option("--experiment", "experiments", multiple=True, metavar="NAME",
              help="Export only this vtrack experiment (repeatable; default: all).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would be exported; write nothing.")
@json_option
def export_mlflow(dest: str, experiments: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Write this store's ended runs into an MLflow store (DEST: a .db file or sqlite:///
    URI, an mlruns folder or file: URI, or a tracking server's http(s):// URL).

    Each run keeps its name, times, status, params, tags, full metric histories, dataset
    inputs and artifacts; logged models become MLflow logged models; nested runs stay
    nested. The vtrack run id is kept as the MLflow tag vtrack.run_id: exporting again
    skips the runs already there. A run that fails is reported on stderr and in --json
    (and removed from DEST, so the next export retries it). Needs the mlflow package.
    """
    from vtrack.mlflow_io.exporter import export_mlflow as run_export

    report = run_export(client().repo, dest, experiments=experiments, dry_run=dry_run)
    if as_json:
        from vtrack.cli._term import echo_json

        echo_json(report.to_json())
        return
    from vtrack.views import fmt_seconds

    for f in report.failures:
        click.echo(f"failed: run {f['run_id']}: {f['error']}", err=True)
    verb = "would export" if dry_run else "exported"
    click.echo(f"{verb} {report.exported:,} of {report.found:,} run(s) to {report.destination} "
               f"({report.skipped:,} there already, {report.metric_points:,} metric points) "
               f"in {fmt_seconds(report.seconds)}")  # fmt: skip
