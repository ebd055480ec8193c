"""Run commands: ``ls``, ``log``, ``show``, ``rm``, ``restore``, ``tag``, ``experiments``.

Listings go through ``TrackingClient.search_runs`` (the derived index), so their cost
follows what they show, not how many runs the store holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _render as r
from vtrack.cli._options import (
    client,
    columns_option,
    csv_option,
    experiment_option,
    json_option,
    split_list,
)
from vtrack.cli._types import RunSpec

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import Experiment, Run

#: Runs ``ls`` and ``log`` show unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 50
#: Metric and param columns ``ls`` adds on its own (each).
AUTO_COLUMNS = 4
#: Key metrics ``log`` prints per line.
LOG_METRICS = 3
#: Sparkline width in ``show``.
SPARK_WIDTH = 24
ATTRIBUTE_COLUMNS = ("id", "run_id", "name", "status", "start", "end", "duration", "experiment",
                     "user", "commit", "branch", "dirty", "lifecycle")


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


def order_by_from_sort(sort: Sequence[str]) -> list[str]:
    """``-metrics.acc`` → ``metrics.acc DESC``; ``metrics.acc`` → ``metrics.acc ASC``."""
    out = []
    for s in sort:
        s = s.strip()
        if not s:
            continue
        if s.upper().endswith((" ASC", " DESC")):
            out.append(s)
        elif s.startswith("-"):
            out.append(f"{s[1:]} DESC")
        else:
            out.append(f"{s.lstrip('+')} ASC")
    return out


def search(
    c: TrackingClient,
    experiment_ids: list[str] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = DEFAULT_LIMIT,
    view: str = "ACTIVE_ONLY",
) -> list[Run]:
    """Runs through the index, newest first unless ``order_by`` says otherwise."""
    return c.search_runs(  # type: ignore[no-any-return]
        experiment_ids=experiment_ids,
        filter_string=filter_string or "",
        run_view_type=view,
        max_results=max_results,
        order_by=order_by or None,  # None: newest first, without parsing an order-by
    )


# -- columns ---------------------------------------------------------------------------


def check_column(key: str) -> None:
    """Raise a usage error (exit 2) for a column key ``ls`` does not know."""
    if key in ATTRIBUTE_COLUMNS or key.startswith(("params.", "metrics.", "tags.")):
        return
    raise click.BadParameter(
        f"unknown column {key!r}; use {', '.join(ATTRIBUTE_COLUMNS)} or "
        "params.<key>, metrics.<key>, tags.<key>", param_hint="--columns",
    )


def cell(run: Run, key: str, exp_names: dict[str, str] | None = None) -> Any:
    """The raw value of column ``key`` for ``run`` (None when absent)."""
    info = run.info
    src = info.source or {}
    if key.startswith("params."):
        return run.data.params.get(key[7:])
    if key.startswith("metrics."):
        return run.data.metrics.get(key[8:])
    if key.startswith("tags."):
        return run.data.tags.get(key[5:])
    if key == "id":
        return r.short_id(info.run_id)
    if key == "run_id":
        return info.run_id
    if key == "name":
        return info.run_name
    if key == "status":
        return info.status
    if key == "start":
        return info.start_time
    if key == "end":
        return info.end_time
    if key == "duration":
        if info.end_time is None or not info.start_time:
            return None
        return (int(info.end_time) - int(info.start_time)) / 1000
    if key == "experiment":
        return (exp_names or {}).get(info.experiment_id, info.experiment_id)
    if key == "user":
        return info.user_id
    if key == "commit":
        return (src.get("commit") or "")[:8] or None
    if key == "branch":
        return src.get("branch")
    if key == "dirty":
        return src.get("dirty")
    if key == "lifecycle":
        return info.lifecycle_stage
    check_column(key)
    return None


def default_columns(runs: Sequence[Run], with_experiment: bool) -> list[str]:
    """id, name, status, start, duration, the commonest metrics and the params that vary."""
    cols = ["id", "name", "status", "start", "duration"]
    if with_experiment:
        cols.insert(2, "experiment")
    from vtrack.diff import metric_direction

    counts = Counter(k for run in runs for k in run.data.metrics if not k.startswith("system/"))
    ranked = sorted(counts, key=lambda k: (-counts[k], metric_direction(k) is None,
                                           not k.startswith(("test", "val", "eval")), k))
    metrics = sorted(ranked[:AUTO_COLUMNS])
    varying = []
    keys = sorted({k for run in runs for k in run.data.params})
    for k in keys:
        vals = {repr(run.data.params.get(k)) for run in runs}
        if len(vals) > 1:
            varying.append(k)
    cols += [f"params.{k}" for k in varying[:AUTO_COLUMNS]]
    cols += [f"metrics.{k}" for k in metrics]
    return cols


def display(key: str, value: Any) -> Any:
    """A cell for people."""
    if key in ("start", "end"):
        return r.fmt_time(value)[:16]
    if key == "duration":
        return "" if value is None else r.fmt_seconds(value)
    if key == "status" and value:
        return r.status_text(value)
    if key.startswith("params."):
        return r.fmt_param(value) if value is not None else "—"
    return r.fmt_value(value)


def run_to_dict(run: Run) -> dict[str, Any]:
    """Everything about a run as JSON-ready data (``--json`` of ls, log and show)."""
    info = run.info
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "duration_s": cell(run, "duration"),
        "user_id": info.user_id,
        "lifecycle_stage": info.lifecycle_stage,
        "parent_run_id": info.parent_run_id,
        "description": info.description,
        "commit": info.commit,
        "source": info.source,
        "environment": info.environment,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
        "datasets": run.inputs.datasets,
        "artifacts": run.inputs.artifacts,
    }


def _exp_names(c: TrackingClient) -> dict[str, str]:
    return {e.experiment_id: e.name for e in c.search_experiments("ALL")}


# -- ls and log --------------------------------------------------------------------------


@click.command("ls")
@experiment_option(multiple=True)
@click.option("--all-experiments", "-A", is_flag=True, help="List runs of every experiment.")
@click.option("--filter", "-f", "filter_string", default="", metavar="FILTER",
              help="MLflow filter, e.g. \"metrics.acc > 0.9 and params.model = 'xgb'\".")
@click.option("--sort", "-s", "sort", multiple=True, metavar="KEY",
              help="Sort key, '-' for descending (e.g. -metrics.acc); repeatable.")
@columns_option
@click.option("--limit", "-n", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(0),
              help="Show at most this many runs (0: all).")
@click.option("--deleted", is_flag=True, help="List deleted runs instead.")
@csv_option
@json_option
def ls(
    experiment: tuple[Experiment, ...], all_experiments: bool, filter_string: str,
    sort: tuple[str, ...], columns: str | None, limit: int, deleted: bool, as_csv: bool,
    as_json: bool,
) -> None:
    """List runs (newest first), filtered and sorted through the index."""
    for k in split_list(columns):
        check_column(k)
    c = client()
    exp_ids = experiment_scope(c, experiment, all_experiments)
    runs = search(c, exp_ids, filter_string, order_by_from_sort(sort), limit or None,
                  "DELETED_ONLY" if deleted else "ACTIVE_ONLY")
    if as_json:
        r.echo_json([run_to_dict(run) for run in runs])
        return
    multi = len({run.info.experiment_id for run in runs}) > 1
    names = _exp_names(c) if multi or columns else {}
    cols = split_list(columns) or default_columns(runs, multi)
    if as_csv:
        csv_cols = ["run_id" if k == "id" else k for k in cols]
        r.echo_csv(csv_cols, ([cell(run, k, names) for k in csv_cols] for run in runs))
        return
    if not runs:
        click.echo("no runs", err=True)
        from vtrack.sharing import remote_runs_hint

        hint = remote_runs_hint(c.repo)
        if hint:
            click.echo(hint, err=True)
        return
    rows = [[display(k, cell(run, k, names)) for k in cols] for run in runs]
    if not columns:
        cols, rows = fit_columns(cols, rows, r.output_width())
    headers = column_headers(cols)
    t = r.table(*headers)
    for i, k in enumerate(cols):
        if k.startswith("metrics.") or k == "duration":
            t.right(i)
        if k == "id":
            t.styles[i] = "yellow"
    for row in rows:
        t.add_row(*row)
    t.print()


def column_headers(cols: Sequence[str]) -> list[str]:
    """Short headers (``lr`` for ``params.lr``) unless two columns would share one."""
    short = [k.split(".", 1)[1] if "." in k else k for k in cols]
    counts = Counter(short)
    return [s if counts[s] == 1 else k for s, k in zip(short, cols, strict=True)]


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


def key_metrics(run: Run, n: int = LOG_METRICS) -> list[tuple[str, float]]:
    """Up to ``n`` metrics worth a glance: those with a known direction first, by name."""
    from vtrack.diff import metric_direction

    keys = sorted(k for k in run.data.metrics if not k.startswith("system/"))
    ranked = sorted(keys, key=lambda k: (metric_direction(k) is None, k))
    return [(k, run.data.metrics[k]) for k in ranked[:n]]


@click.command("log")
@experiment_option(multiple=True)
@click.option("--all-experiments", "-A", is_flag=True, help="Include every experiment.")
@click.option("--limit", "-n", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(0),
              help="Show at most this many runs (0: all).")
@json_option
def log(experiment: tuple[Experiment, ...], all_experiments: bool, limit: int, as_json: bool) -> None:
    """One line per run, newest first: id, status, duration, name, key metrics."""
    c = client()
    runs = search(c, experiment_scope(c, experiment, all_experiments), max_results=limit or None)
    if as_json:
        r.echo_json([
            {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
             "start_time": run.info.start_time, "duration_s": cell(run, "duration"),
             "metrics": dict(key_metrics(run))}
            for run in runs
        ])
        return
    for run in runs:
        parts: list[Any] = [
            r.styled(r.short_id(run.info.run_id), "yellow"), " ",
            r.styled(f"{run.info.status:<8}", r.STATUS_STYLES.get(run.info.status, "")),
            f" {r.fmt_duration(run.info.start_time, run.info.end_time):>7} ",
            r.styled(run.info.run_name, "bold"),
        ]
        for k, v in key_metrics(run):
            parts += [r.styled(f" {k}=", "dim"), r.fmt_value(v)]
        r.emit(*parts)


# -- show --------------------------------------------------------------------------------


def metric_summaries(c: TrackingClient, run: Run) -> dict[str, dict[str, Any]]:
    """Per metric: last, min, max, number of points, last step and its history values."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(run.data.metrics):
        hist = c.get_metric_history(run.info.run_id, key)
        values = [m.value for m in sorted(hist, key=lambda m: (m.step, m.timestamp))]
        finite = [v for v in values if v == v and abs(v) != float("inf")]
        out[key] = {
            "last": run.data.metrics[key],
            "min": min(finite) if finite else None,
            "max": max(finite) if finite else None,
            "points": len(values),
            "last_step": max((m.step for m in hist), default=None),
            "values": values,
        }
    return out


@click.command("show")
@click.argument("run", type=RunSpec(include_deleted=True))
@experiment_option()
@json_option
def show(run: str, experiment: Experiment | None, as_json: bool) -> None:
    """Everything in a run's record, with metric summaries and sparklines."""
    c = client()
    rn = c.get_run(run)
    summaries = metric_summaries(c, rn)
    if as_json:
        data = run_to_dict(rn)
        data["metric_summaries"] = {
            k: {kk: vv for kk, vv in s.items() if kk != "values"} for k, s in summaries.items()
        }
        r.echo_json(data)
        return
    info, src = rn.info, rn.info.source or {}
    try:
        exp_name = c.get_experiment(info.experiment_id).name
    except Exception:  # noqa: BLE001 - a missing experiment must not hide the run
        exp_name = info.experiment_id
    entry = src.get("entry_point")
    argv = " ".join(str(a) for a in src.get("argv") or [])
    r.print_kv([
        ("run", info.run_id),
        ("name", info.run_name),
        ("experiment", f"{exp_name} ({info.experiment_id})"),
        ("status", r.status_text(info.status)),
        ("deleted", "yes (restore with 'vtrack restore')" if info.lifecycle_stage == "deleted" else None),
        ("user", info.user_id),
        ("started", r.fmt_time(info.start_time)),
        ("ended", r.fmt_time(info.end_time) if info.end_time else None),
        ("duration", r.fmt_duration(info.start_time, info.end_time)),
        ("run commit", info.commit),
        ("code commit", src.get("commit")),
        ("branch", src.get("branch")),
        ("dirty", "yes (uncommitted edits captured)" if src.get("dirty") else None),
        ("command", f"python {entry} {argv}".rstrip() if entry else None),
        ("parent run", info.parent_run_id),
        ("description", info.description),
    ])
    if rn.data.params:
        t = r.table("param", "value")
        for k, v in sorted(rn.data.params.items()):
            t.add_row(k, r.fmt_param(v))
        r.section_title(f"params ({len(rn.data.params)})")
        t.print()
    if summaries:
        t = r.table("metric", "last", "min", "max", "steps", "history").right(1, 2, 3, 4)
        for k, s in summaries.items():
            t.add_row(k, r.fmt_value(s["last"]), r.fmt_value(s["min"]), r.fmt_value(s["max"]),
                      str(s["points"]), r.sparkline(s["values"], SPARK_WIDTH))
        r.section_title(f"metrics ({len(summaries)})")
        t.print()
    if rn.data.tags:
        t = r.table("tag", "value")
        for k, v in sorted(rn.data.tags.items()):
            t.add_row(k, v)
        r.section_title(f"tags ({len(rn.data.tags)})")
        t.print()
    if rn.inputs.datasets:
        t = r.table("dataset", "context", "digest", "size", "rows", "source")
        for d in rn.inputs.datasets:
            t.add_row(str(d.get("name", "")), str(d.get("context") or ""), str(d.get("digest", "")),
                      r.fmt_bytes(d.get("size")), r.fmt_value(d.get("rows"), ""),
                      str(d.get("source") or ""))
        r.section_title(f"datasets ({len(rn.inputs.datasets)})")
        t.print()
    if rn.inputs.artifacts:
        t = r.table("artifact", "size", "digest")
        for p, a in sorted(rn.inputs.artifacts.items()):
            t.add_row(p, r.fmt_bytes(a.get("size")), str(a.get("digest", "")))
        r.section_title(f"artifacts ({len(rn.inputs.artifacts)})")
        t.print()
    env = info.environment or {}
    if env:
        r.section_title("environment")
        r.print_kv([
            ("python", f"{env.get('python', '')} {env.get('implementation', '')}".strip()),
            ("platform", env.get("platform")),
            ("packages", ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())),
            ("env", " ".join(f"{k}={v}" for k, v in (src.get("env") or {}).items()) or None),
        ])


# -- rm, restore, tag --------------------------------------------------------------------


@click.command("rm")
@click.argument("runs", nargs=-1, required=True, type=RunSpec())
@experiment_option()
@json_option
def rm(runs: tuple[str, ...], experiment: Experiment | None, as_json: bool) -> None:
    """Move runs to the trash ('vtrack restore' brings them back)."""
    c = client()
    for run_id in dict.fromkeys(runs):
        c.delete_run(run_id)
        if not as_json:
            click.echo(f"deleted {run_id} (restore with: vtrack restore {run_id})")
    if as_json:
        r.echo_json({"deleted": list(dict.fromkeys(runs))})


@click.command("restore")
@click.argument("runs", nargs=-1, required=True, type=RunSpec(include_deleted=True))
@experiment_option()
@json_option
def restore(runs: tuple[str, ...], experiment: Experiment | None, as_json: bool) -> None:
    """Bring deleted runs back from the trash."""
    c = client()
    for run_id in dict.fromkeys(runs):
        c.restore_run(run_id)
        if not as_json:
            click.echo(f"restored {run_id}")
    if as_json:
        r.echo_json({"restored": list(dict.fromkeys(runs))})


@click.command("tag")
@click.argument("run", type=RunSpec())
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--delete", "-d", "deletes", multiple=True, metavar="KEY", help="Remove a tag.")
@experiment_option()
@json_option
def tag(
    run: str, pairs: tuple[str, ...], deletes: tuple[str, ...], experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Set (KEY=VALUE) or delete (--delete KEY) tags of a run."""
    if not pairs and not deletes:
        raise click.UsageError("give at least one KEY=VALUE or --delete KEY")
    tags: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        tags[key] = value
    c = client()
    try:
        if tags:
            c.set_tags(run, tags)
        for key in deletes:
            c.delete_tag(run, key)
    finally:
        c.detach(run)
    tags_now = c.get_run(run).data.tags
    if as_json:
        r.echo_json({"run_id": run, "tags": tags_now})
    else:
        for k, v in sorted(tags.items()):
            click.echo(f"{r.short_id(run)} {k}={v}")
        for k in deletes:
            click.echo(f"{r.short_id(run)} {k} deleted")


# -- experiments -------------------------------------------------------------------------


@click.group("experiments")
def experiments() -> None:
    """List, create, rename and delete experiments."""


@experiments.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include deleted experiments.")
@json_option
def experiments_ls(show_all: bool, as_json: bool) -> None:
    """List experiments, oldest first."""
    exps = client().search_experiments("ALL" if show_all else "ACTIVE_ONLY")
    if as_json:
        r.echo_json([
            {"experiment_id": e.experiment_id, "name": e.name, "lifecycle_stage": e.lifecycle_stage,
             "creation_time": e.creation_time, "tags": e.tags}
            for e in exps
        ])
        return
    t = r.table("id", "name", "created", "stage")
    for e in exps:
        t.add_row(e.experiment_id, e.name, r.fmt_time(e.creation_time), e.lifecycle_stage)
    t.print()


@experiments.command("create")
@click.argument("name")
@json_option
def experiments_create(name: str, as_json: bool) -> None:
    """Create an experiment (exit 4 if the name is taken)."""
    exp_id = client().create_experiment(name)
    if as_json:
        r.echo_json({"experiment_id": exp_id, "name": name})
    else:
        click.echo(f"created experiment {name!r} ({exp_id})")


@experiments.command("rename")
@click.argument("experiment")
@click.argument("new_name")
@json_option
def experiments_rename(experiment: str, new_name: str, as_json: bool) -> None:
    """Rename EXPERIMENT (a name or id) to NEW_NAME."""
    from vtrack.cli._options import find_experiment

    ctx = click.get_current_context()
    exp = find_experiment(ctx, experiment)
    client().rename_experiment(exp.experiment_id, new_name)
    if as_json:
        r.echo_json({"experiment_id": exp.experiment_id, "old_name": exp.name, "name": new_name})
    else:
        click.echo(f"renamed experiment {exp.name!r} to {new_name!r}")


@experiments.command("rm")
@click.argument("experiment")
@json_option
def experiments_rm(experiment: str, as_json: bool) -> None:
    """Mark EXPERIMENT deleted (its runs are kept; 'experiments restore' undoes it)."""
    from vtrack.cli._options import find_experiment

    exp = find_experiment(click.get_current_context(), experiment)
    client().delete_experiment(exp.experiment_id)
    if as_json:
        r.echo_json({"deleted": exp.experiment_id, "name": exp.name})
    else:
        click.echo(f"deleted experiment {exp.name!r} ({exp.experiment_id})")


@experiments.command("restore")
@click.argument("experiment")
@json_option
def experiments_restore(experiment: str, as_json: bool) -> None:
    """Restore a deleted EXPERIMENT."""
    from vtrack.cli._options import find_experiment

    exp = find_experiment(click.get_current_context(), experiment)
    client().restore_experiment(exp.experiment_id)
    if as_json:
        r.echo_json({"restored": exp.experiment_id, "name": exp.name})
    else:
        click.echo(f"restored experiment {exp.name!r} ({exp.experiment_id})")


# -- index -------------------------------------------------------------------------------


@click.group("index")
def index() -> None:
    """Maintain the derived run index (.git/vtrack/index.sqlite; refs stay the truth)."""


@index.command("rebuild")
@json_option
def index_rebuild(as_json: bool) -> None:
    """Drop the index and read every run again from git."""
    import sys
    import time

    c = client()
    if sys.stderr.isatty():  # ~1 s per 1,000 runs: say what is going on
        click.echo("rebuilding the run index from git ...", err=True)
    t0 = time.perf_counter()
    stats = c.run_index(sync=False).rebuild()
    seconds = time.perf_counter() - t0
    if as_json:
        r.echo_json({"read": stats.read, "removed": stats.removed, "seconds": round(seconds, 3)})
    else:
        click.echo(f"index rebuilt: {stats.read} runs read in {r.fmt_seconds(seconds)}")
