"""Run listings: ``ls``, ``log`` and ``show``.

Listings go through ``TrackingClient.search_runs`` (the derived index), so their cost
follows what they show, not how many runs the store holds. What a row holds comes from
:mod:`vtrack.views` (shared with the web UI); this module lays it out for a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _term as term
from vtrack.cli._charts import sparkline
from vtrack.cli._options import (
    client,
    columns_option,
    csv_option,
    experiment_option,
    json_option,
    split_list,
)
from vtrack.cli._types import RunSpec
from vtrack.errors import ValidationError
from vtrack.views import (
    cell,
    column_headers,
    default_columns,
    fmt_bytes,
    fmt_duration,
    fmt_param,
    fmt_seconds,
    fmt_time,
    fmt_value,
    key_metrics,
    metric_summaries,
    order_by_from_sort,
    run_brief,
    run_to_dict,
    short_id,
)
from vtrack.views import check_column as check_view_column
from vtrack.viewtree import indent, nest

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import Experiment, Run

#: Runs ``ls`` and ``log`` show unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 50
#: Sparkline width in ``show``.
SPARK_WIDTH = 24


# -- selection --------------------------------------------------------------------------


def experiment_scope(
    c: TrackingClient, chosen: Sequence[Experiment] | Experiment | None, all_experiments: bool
) -> list[str] | None:
    """Experiment ids a listing covers (None: all).

    ``--all-experiments`` wins, then ``--experiment``, then the experiment the
    environment selects (``VTRACK_EXPERIMENT_ID``/``_NAME``); with none of them a
    listing covers every experiment, so its first row is what ``@`` names.
    """
    if all_experiments:
        return None
    if chosen:
        items = chosen if isinstance(chosen, (list, tuple)) else [chosen]
        return [e.experiment_id for e in items]  # type: ignore[union-attr]
    from vtrack import config
    from vtrack.resolve import current_experiment_id

    if any(config.env_experiment()):
        return [current_experiment_id(c.repo)]
    return None


def search(
    c: TrackingClient,
    experiment_ids: list[str] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = DEFAULT_LIMIT,
    view: str = "ACTIVE_ONLY",
) -> list[Run]:
    """Runs through the index, newest first unless ``order_by`` says otherwise."""
    return c.search_runs(
        experiment_ids=experiment_ids,
        filter_string=filter_string or "",
        run_view_type=view,
        max_results=max_results,
        order_by=order_by or None,  # None: newest first, without parsing an order-by
    )


# -- columns ---------------------------------------------------------------------------


def check_column(key: str) -> None:
    """Raise a usage error (exit 2) for a column key ``ls`` does not know."""
    try:
        check_view_column(key)
    except ValidationError as exc:
        raise click.BadParameter(exc.message, param_hint="--columns") from None


def display(key: str, value: Any) -> Any:
    """A cell for people."""
    if key in ("start", "end"):
        return fmt_time(value)[:16]
    if key == "duration":
        return "" if value is None else fmt_seconds(value)
    if key == "status" and value:
        return term.status_text(value)
    if key.startswith("params."):
        return fmt_param(value) if value is not None else "—"
    return fmt_value(value)


def fit_columns(
    cols: list[str], rows: list[list[Any]], width: int
) -> tuple[list[str], list[list[Any]]]:
    """Drop automatic param/metric columns from the right until the table fits ``width``."""

    def natural(i: int) -> int:
        header = column_headers(cols)[i]
        cells = [len(str(row[i])) for row in rows]
        return max([len(header), *cells]) + 3

    keep = list(range(len(cols)))
    while sum(natural(i) for i in keep) > width:
        optional = [i for i in keep if cols[i].startswith(("params.", "metrics."))]
        if not optional:
            break
        keep.remove(optional[-1])
    return [cols[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _exp_names(c: TrackingClient) -> dict[str, str]:
    return {e.experiment_id: e.name for e in c.search_experiments("ALL")}


# -- ls and log --------------------------------------------------------------------------

#: ``--limit/-n`` of ``ls`` and ``log``.
limit_option = click.option(
    "--limit",
    "-n",
    default=DEFAULT_LIMIT,
    show_default=True,
    type=click.IntRange(0),
    help="Show at most this many runs (0: all).",
)


@click.command("ls")
@experiment_option(multiple=True)
@click.option("--all-experiments", "-A", is_flag=True, help="List runs of every experiment.")
@click.option(
    "--filter",
    "-f",
    "filter_string",
    default="",
    metavar="FILTER",
    help="MLflow filter, e.g. \"metrics.acc > 0.9 and params.model = 'xgb'\".",
)
@click.option(
    "--sort",
    "-s",
    "sort",
    multiple=True,
    metavar="KEY",
    help="Sort key, '-' for descending (e.g. -metrics.acc); repeatable.",
)
@columns_option
@limit_option
@click.option("--deleted", is_flag=True, help="List deleted runs instead.")
@click.option("--flat", is_flag=True, help="Do not indent nested runs under their parent.")
@csv_option
@json_option
def ls(
    experiment: tuple[Experiment, ...],
    all_experiments: bool,
    filter_string: str,
    sort: tuple[str, ...],
    columns: str | None,
    limit: int,
    deleted: bool,
    flat: bool,
    as_csv: bool,
    as_json: bool,
) -> None:
    """List runs (newest first), filtered and sorted through the index.

    Nested runs (a sweep's children) are listed under their parent, indented, when the
    parent is listed too; --flat lists every run in plain order. Filter on
    attributes.parent_run_id to list one run's children.
    """
    for k in split_list(columns):
        check_column(k)
    c = client()
    exp_ids = experiment_scope(c, experiment, all_experiments)
    runs = search(
        c,
        exp_ids,
        filter_string,
        order_by_from_sort(sort),
        limit or None,
        "DELETED_ONLY" if deleted else "ACTIVE_ONLY",
    )
    if as_json:
        term.echo_json([run_to_dict(run) for run in runs])
        return
    multi = len({run.info.experiment_id for run in runs}) > 1
    names = _exp_names(c) if multi or columns else {}
    cols = split_list(columns) or default_columns(runs, multi)
    if as_csv:
        csv_cols = ["run_id" if k == "id" else k for k in cols]
        term.echo_csv(csv_cols, ([cell(run, k, names) for k in csv_cols] for run in runs))
        return
    if not runs:
        click.echo("no runs", err=True)
        from vtrack.sharing import remote_runs_hint

        hint = remote_runs_hint(c.repo)
        if hint:
            click.echo(hint, err=True)
        return
    placed = [(run, 0) for run in runs] if flat else nest(runs)
    rows = []
    for run, depth in placed:
        row = [display(k, cell(run, k, names)) for k in cols]
        at = cols.index("name") if "name" in cols else 0
        row[at] = indent(str(row[at]), depth)
        rows.append(row)
    if not columns:
        cols, rows = fit_columns(cols, rows, term.output_width())
    headers = column_headers(cols)
    t = term.table(*headers)
    for i, k in enumerate(cols):
        if k.startswith("metrics.") or k == "duration":
            t.right(i)
        if k == "id":
            t.styles[i] = "yellow"
    for row in rows:
        t.add_row(*row)
    t.print()


@click.command("log")
@experiment_option(multiple=True)
@click.option("--all-experiments", "-A", is_flag=True, help="Include every experiment.")
@limit_option
@click.option("--flat", is_flag=True, help="Do not indent nested runs under their parent.")
@json_option
def log(
    experiment: tuple[Experiment, ...],
    all_experiments: bool,
    limit: int,
    flat: bool,
    as_json: bool,
) -> None:
    """One line per run, newest first: id, status, duration, name, key metrics.

    Nested runs are shown under their parent, indented (--flat: plain order).
    """
    c = client()
    runs = search(c, experiment_scope(c, experiment, all_experiments), max_results=limit or None)
    if as_json:
        term.echo_json([run_brief(run) for run in runs])
        return
    for run, depth in [(r, 0) for r in runs] if flat else nest(runs):
        parts: list[Any] = [
            term.styled(short_id(run.info.run_id), "yellow"),
            " ",
            term.styled(f"{run.info.status:<8}", term.STATUS_STYLES.get(run.info.status, "")),
            f" {fmt_duration(run.info.start_time, run.info.end_time):>7} ",
            indent("", depth),
            term.styled(run.info.run_name, "bold"),
        ]
        for k, v in key_metrics(run):
            parts += [term.styled(f" {k}=", "dim"), fmt_value(v)]
        term.emit(*parts)


# -- show --------------------------------------------------------------------------------


@click.command("show")
@click.argument("run", type=RunSpec(include_deleted=True))
@experiment_option()
@json_option
def show(run: str, experiment: Experiment | None, as_json: bool) -> None:
    """Everything in a run's record, with metric summaries and sparklines."""
    c = client()
    rn = c.get_run(run)
    histories = c.get_metric_histories(rn.info.run_id, rn.data.metrics)
    summaries = metric_summaries(rn, histories.__getitem__)
    kids = c.search_runs(
        None, f"attributes.parent_run_id = '{rn.info.run_id}'", max_results=None,
        order_by=["attributes.start_time ASC"],
    )  # fmt: skip
    if as_json:
        doc = run_to_dict(rn, summaries)
        doc["children"] = [kid.info.run_id for kid in kids]
        term.echo_json(doc)
        return
    info, src = rn.info, rn.info.source or {}
    try:
        exp_name = c.get_experiment(info.experiment_id).name
    except Exception:  # noqa: BLE001 - a missing experiment must not hide the run
        exp_name = info.experiment_id
    entry = src.get("entry_point")
    argv = " ".join(str(a) for a in src.get("argv") or [])
    deleted = info.lifecycle_stage == "deleted"
    term.print_kv(
        [
            ("run", info.run_id),
            ("name", info.run_name),
            ("experiment", f"{exp_name} ({info.experiment_id})"),
            ("status", term.status_text(info.status)),
            ("deleted", "yes (restore with 'vtrack restore')" if deleted else None),
            ("user", info.user_id),
            ("started", fmt_time(info.start_time)),
            ("ended", fmt_time(info.end_time) if info.end_time else None),
            ("duration", fmt_duration(info.start_time, info.end_time)),
            ("run commit", info.commit),
            ("code commit", src.get("commit")),
            ("branch", src.get("branch")),
            ("dirty", "yes (uncommitted edits captured)" if src.get("dirty") else None),
            ("command", f"python {entry} {argv}".rstrip() if entry else None),
            ("parent run", info.parent_run_id),
            ("description", info.description),
        ]
    )
    if rn.data.params:
        t = term.table("param", "value")
        for k, v in sorted(rn.data.params.items()):
            t.add_row(k, fmt_param(v))
        term.section_title(f"params ({len(rn.data.params)})")
        t.print()
    if summaries:
        t = term.table("metric", "last", "min", "max", "steps", "history").right(1, 2, 3, 4)
        for k, s in summaries.items():
            t.add_row(
                k,
                fmt_value(s["last"]),
                fmt_value(s["min"]),
                fmt_value(s["max"]),
                str(s["points"]),
                sparkline(s["values"], SPARK_WIDTH),
            )
        term.section_title(f"metrics ({len(summaries)})")
        t.print()
    if rn.data.tags:
        t = term.table("tag", "value")
        for k, v in sorted(rn.data.tags.items()):
            t.add_row(k, v)
        term.section_title(f"tags ({len(rn.data.tags)})")
        t.print()
    if rn.inputs.datasets:
        t = term.table("dataset", "context", "digest", "size", "rows", "source")
        for d in rn.inputs.datasets:
            t.add_row(
                d.name,
                d.context or "",
                str(d.digest),
                fmt_bytes(d.size),
                fmt_value(d.rows, ""),
                d.source or "",
            )
        term.section_title(f"datasets ({len(rn.inputs.datasets)})")
        t.print()
    if rn.inputs.artifacts:
        t = term.table("artifact", "size", "digest")
        for p, a in sorted(rn.inputs.artifacts.items()):
            t.add_row(p, fmt_bytes(a.size), str(a.digest))
        term.section_title(f"artifacts ({len(rn.inputs.artifacts)})")
        t.print()
    if kids:
        t = term.table("child run", "name", "status")
        for kid in kids:
            t.add_row(
                short_id(kid.info.run_id), kid.info.run_name, term.status_text(kid.info.status)
            )
        term.section_title(f"child runs ({len(kids)}; reach them as {short_id(rn.info.run_id)}/N)")
        t.print()
    env = info.environment or {}
    if env:
        term.section_title("environment")
        term.print_kv(
            [
                ("python", f"{env.get('python', '')} {env.get('implementation', '')}".strip()),
                ("platform", env.get("platform")),
                ("packages", ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())),
                ("env", " ".join(f"{k}={v}" for k, v in (src.get("env") or {}).items()) or None),
            ]
        )
