"""What the faces render: run rows and columns, metric summaries, JSON-ready data, value text.

The command line and the web UI show runs the same way because both build what they
show here. Pure: every function reads :mod:`vtrack.entities` objects and plain data,
never the store (where data is needed, such as a metric's history, the caller passes
it in). Styling — colours, widths, sparklines, HTML — belongs to each face.

Promises:

- :func:`cell` is the raw value of one column of a run (``id``, ``status``,
  ``params.lr``, … see :data:`ATTRIBUTE_COLUMNS`); :func:`default_columns` picks the
  columns a listing shows when none are asked for; :func:`column_headers` their titles.
- :func:`run_to_dict`, :func:`run_brief` and :func:`experiment_to_dict` are the JSON
  documents of a run and an experiment; :func:`jsonable` makes any of them encodable as
  strict JSON (NaN and infinities become ``"NaN"``, ``"Infinity"``, ``"-Infinity"``).
- The ``fmt_*`` functions turn values into text for people: floats to 6 significant
  digits, params as YAML would show them, timestamps in local time, sizes in KiB/MiB.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vtrack.errors import ValidationError

if TYPE_CHECKING:
    from vtrack.entities import Digest, Experiment, Metric, Run

#: Metric and param columns :func:`default_columns` adds on its own (each).
AUTO_COLUMNS = 4
#: Key metrics :func:`key_metrics` picks by default.
LOG_METRICS = 3
#: Columns that are run attributes; the others are ``params.<key>``, ``metrics.<key>``,
#: ``tags.<key>``.
ATTRIBUTE_COLUMNS = (
    "id",
    "run_id",
    "name",
    "status",
    "start",
    "end",
    "duration",
    "experiment",
    "user",
    "commit",
    "branch",
    "dirty",
    "lifecycle",
)
#: Prefixes of the keyed columns.
KEYED_PREFIXES = ("params.", "metrics.", "tags.")


# -- columns ---------------------------------------------------------------------------


def check_column(key: str) -> None:
    """Raise ValidationError (exit 2) naming the known columns when ``key`` is not one."""
    if key in ATTRIBUTE_COLUMNS or key.startswith(KEYED_PREFIXES):
        return
    raise ValidationError(
        f"unknown column {key!r}; use {', '.join(ATTRIBUTE_COLUMNS)} or "
        "params.<key>, metrics.<key>, tags.<key>"
    )


def cell(run: Run, key: str, exp_names: Mapping[str, str] | None = None) -> Any:
    """The raw value of column ``key`` for ``run`` (None when absent).

    ``exp_names`` maps experiment ids to names for the ``experiment`` column (the id is
    shown without it). Raises ValidationError for an unknown column.
    """
    info = run.info
    src = info.source or {}
    if key.startswith("params."):
        return run.data.params.get(key[7:])
    if key.startswith("metrics."):
        return run.data.metrics.get(key[8:])
    if key.startswith("tags."):
        return run.data.tags.get(key[5:])
    if key == "id":
        return short_id(info.run_id)
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
        return duration_seconds(run)
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


def duration_seconds(run: Run) -> float | None:
    """Seconds from start to end; None while the run has no end time."""
    info = run.info
    if info.end_time is None or not info.start_time:
        return None
    return (int(info.end_time) - int(info.start_time)) / 1000


def default_columns(runs: Sequence[Run], with_experiment: bool) -> list[str]:
    """id, name, status, start, duration, the commonest metrics and the params that vary.

    Metrics are ranked by how many runs have them, then test/val/eval metrics and those
    with a known direction first; at most :data:`AUTO_COLUMNS` of each kind, params
    before metrics. ``with_experiment`` adds an ``experiment`` column after the name.
    """
    from vtrack.diff import metric_direction  # listings as --json need no diff model

    cols = ["id", "name", "status", "start", "duration"]
    if with_experiment:
        cols.insert(2, "experiment")
    counts = Counter(k for run in runs for k in run.data.metrics if not k.startswith("system/"))
    ranked = sorted(
        counts,
        key=lambda k: (
            -counts[k],
            metric_direction(k) is None,
            not k.startswith(("test", "val", "eval")),
            k,
        ),
    )
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


def column_headers(cols: Sequence[str]) -> list[str]:
    """Short headers (``lr`` for ``params.lr``) unless two columns would share one."""
    short = [k.split(".", 1)[1] if "." in k else k for k in cols]
    counts = Counter(short)
    return [s if counts[s] == 1 else k for s, k in zip(short, cols, strict=True)]


def order_by_from_sort(sort: Iterable[str]) -> list[str]:
    """``-metrics.acc`` → ``metrics.acc DESC``; ``metrics.acc`` → ``metrics.acc ASC``.

    Keys that already end in ``ASC``/``DESC`` are kept; empty ones are dropped.
    """
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


def key_metrics(run: Run, n: int = LOG_METRICS) -> list[tuple[str, float]]:
    """Up to ``n`` metrics worth a glance: those with a known direction first, by name."""
    from vtrack.diff import metric_direction

    keys = sorted(k for k in run.data.metrics if not k.startswith("system/"))
    ranked = sorted(keys, key=lambda k: (metric_direction(k) is None, k))
    return [(k, run.data.metrics[k]) for k in ranked[:n]]


# -- metric histories ----------------------------------------------------------------------


def ordered_history(points: Iterable[Metric]) -> list[Metric]:
    """A metric history in the order it is drawn: by step, then timestamp."""
    return sorted(points, key=lambda m: (m.step, m.timestamp))


def metric_summaries(
    run: Run, history: Callable[[str], Sequence[Metric]]
) -> dict[str, dict[str, Any]]:
    """Per metric of ``run`` (by key): last, min, max, number of points, last step, values.

    ``history(key)`` returns the metric's points (e.g. ``client.get_metric_history``);
    ``min``/``max`` skip NaN and infinities (None when no value is finite); ``values``
    is the history in step order.
    """
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(run.data.metrics):
        hist = history(key)
        values = [m.value for m in ordered_history(hist)]
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


def history_to_dicts(points: Iterable[Metric]) -> list[dict[str, Any]]:
    """A metric history as JSON-ready ``{"step", "timestamp", "value"}`` objects."""
    return [{"step": m.step, "timestamp": m.timestamp, "value": m.value} for m in points]


# -- JSON documents ----------------------------------------------------------------------


def run_to_dict(
    run: Run, summaries: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything about a run as JSON-ready data (``--json`` of ls and show).

    With ``summaries`` (from :func:`metric_summaries`) a ``metric_summaries`` object is
    added, without the history values.
    """
    info = run.info
    out = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "duration_s": duration_seconds(run),
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
    if summaries is not None:
        out["metric_summaries"] = {
            k: {kk: vv for kk, vv in s.items() if kk != "values"} for k, s in summaries.items()
        }
    return out


def run_brief(run: Run) -> dict[str, Any]:
    """A run in one line's worth of JSON (``log --json``): id, name, status, key metrics."""
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "duration_s": duration_seconds(run),
        "metrics": dict(key_metrics(run)),
    }


def experiment_to_dict(exp: Experiment) -> dict[str, Any]:
    """An experiment as JSON-ready data."""
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "lifecycle_stage": exp.lifecycle_stage,
        "creation_time": exp.creation_time,
        "tags": exp.tags,
    }


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by strings and unknown objects by ``str``."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


# -- values for people ---------------------------------------------------------------------


def short_id(run_id: str) -> str:
    """The first 8 characters of a run id (what tables show)."""
    return run_id[:8]


def short_digest(digest: str | Digest | None) -> str:
    """``xxh3-128:0123456789ab`` (12 hex digits); empty for None."""
    if not digest:
        return ""
    text = str(digest)
    algo, _, hexd = text.partition(":")
    return f"{algo}:{hexd[:12]}" if hexd else text[:16]


def fmt_value(value: Any, missing: str = "—") -> str:
    """A param, metric or tag value for people: floats to 6 significant digits."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def fmt_param(value: Any) -> str:
    """A param value as YAML would show it (strings that look like numbers are quoted)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value if value not in ("", "true", "false", "null") else repr(value)
        return repr(value)
    if isinstance(value, float) and math.isfinite(value) and len(repr(value)) <= 12:
        return repr(value)  # 0.0 stays distinguishable from the int 0
    return fmt_value(value, missing="null")


def fmt_csv(value: Any) -> str:
    """A cell for CSV: full precision floats, YAML-style booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def fmt_delta(delta: float | None, relative: float | None) -> str:
    """``+0.1 (+12.5%)`` style change."""
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    if relative is not None:
        text += f" ({relative * 100:+.1f}%)"
    return text


def fmt_time(ms: int | None) -> str:
    """A timestamp in ms as local ``YYYY-MM-DD HH:MM:SS``."""
    if not ms:
        return "—"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_seconds(seconds: float) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def fmt_duration(start_ms: int | None, end_ms: int | None) -> str:
    """Duration of a run; empty while it has no end time."""
    if not start_ms or not end_ms:
        return ""
    return fmt_seconds(max(0, int(end_ms) - int(start_ms)) / 1000)


def fmt_bytes(n: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB`` (empty for None)."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)
