"""The runs table: what the query string asks for, one page of rows, its CSV.

Everything a table shows is in its URL, so a view can be shared by copying it:
``exp`` (experiment ids, comma-separated; none = every experiment), ``q`` (a filter in
the grammar of ``vtrack ls --filter``), ``sort`` (a column key, ``-`` for descending),
``cols`` (column specs, comma-separated), ``page`` and ``per``, ``sel`` (selected run
ids) and ``deleted=1``.

A column spec is a column of :mod:`vtrack.views` (``name``, ``params.lr``, …) or a
metric with an aggregate: ``metrics.loss`` is the last value (what the index holds),
``metrics.loss:min``, ``metrics.loss:max`` and ``metrics.loss:step=100`` (the value at
step 100). The cells of a page are computed from the histories of its runs; sorting by
any column is done server-side across every matching run: by the index for attributes,
params, tags and last values, and by the derived summaries of
:mod:`vtrack.store.index_metricstats` for min, max and value at step N. Either way
numbers come first, then NaN, then runs without a value, ascending or descending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtrack import views
from vtrack.errors import ValidationError

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.ui.charts import Series

#: Rows per page unless ``per`` says otherwise, and the most a page may hold.
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
#: Runs a CSV export holds at most.
MAX_CSV_ROWS = 100_000
#: Aggregates a metric column can show.
AGGREGATES = ("last", "min", "max", "step")
#: Table columns the index can sort by, and the order-by key of each.
SORT_KEYS = {
    "id": "attributes.run_id",
    "run_id": "attributes.run_id",
    "name": "attributes.run_name",
    "status": "attributes.status",
    "start": "attributes.start_time",
    "end": "attributes.end_time",
    "experiment": "attributes.experiment_id",
    "user": "attributes.user_id",
}


@dataclass(frozen=True)
class Column:
    """One column: a views column key and, for metrics, an aggregate (``step`` takes N)."""

    key: str
    agg: str = "last"
    step: int | None = None

    @property
    def spec(self) -> str:
        """The column as written in the query string."""
        if self.agg == "last":
            return self.key
        if self.agg == "step":
            return f"{self.key}:step={self.step}"
        return f"{self.key}:{self.agg}"

    @property
    def sortable(self) -> bool:
        """True when the server can sort by this column (every metric aggregate can)."""
        if self.agg != "last":
            return self.key.startswith("metrics.")
        return self.key in SORT_KEYS or self.key.startswith(views.KEYED_PREFIXES)

    @property
    def order_key(self) -> str:
        """The order-by key of this column (:attr:`sortable` columns only)."""
        return SORT_KEYS.get(self.key, self.key)

    def header(self, short: str) -> str:
        """The column's title: the short key plus the aggregate."""
        if self.agg == "last":
            return short
        if self.agg == "step":
            return f"{short} @ step {self.step}"
        return f"{short} ({self.agg})"


def parse_column(spec: str) -> Column:
    """A :class:`Column` from ``key[:agg]``; ValidationError naming what is wrong."""
    spec = spec.strip()
    key, sep, agg = spec.partition(":")
    if key.startswith("metrics.") and sep:
        # metric keys may hold ':'? they may not (validation forbids it), so split once
        if agg.startswith("step="):
            try:
                step = int(agg[5:])
            except ValueError:
                raise ValidationError(f"column {spec!r}: step= needs an integer") from None
            return Column(key, "step", step)
        if agg not in ("last", "min", "max"):
            raise ValidationError(
                f"column {spec!r}: aggregate must be last, min, max or step=N, not {agg!r}"
            )
        return Column(key, agg)
    if sep:
        raise ValidationError(f"column {spec!r}: only metrics.<key> columns take an aggregate")
    views.check_column(key)
    return Column(key)


@dataclass
class TableQuery:
    """What a runs table shows, as read from (and written back to) its query string."""

    experiments: list[str] = field(default_factory=list)
    filter: str = ""
    sort: str = ""
    columns: list[Column] | None = None  #: None: the default columns of the page
    page: int = 1
    per: int = DEFAULT_PER_PAGE
    selected: list[str] = field(default_factory=list)
    deleted: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> tuple[TableQuery, list[str]]:
        """The query and the problems found in it (bad values fall back to defaults)."""
        errors: list[str] = []
        q = cls()
        q.experiments = split_list(params.get("exp", ""))
        q.filter = params.get("q", "")
        q.sort = params.get("sort", "").strip()
        cols = split_list(params.get("cols", ""))
        if cols:
            q.columns = []
            for spec in cols:
                try:
                    q.columns.append(parse_column(spec))
                except ValidationError as exc:
                    errors.append(exc.message)
        q.page = _int(params.get("page"), 1, 1, 10**9, "page", errors)
        q.per = _int(params.get("per"), DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, "per", errors)
        q.selected = split_list(params.get("sel", ""))
        q.deleted = params.get("deleted", "") in ("1", "true", "yes")
        if q.sort:
            try:
                sort_col = parse_column(q.sort.lstrip("-+"))
            except ValidationError as exc:
                errors.append(f"sort: {exc.message}")
                q.sort = ""
            else:
                if not sort_col.sortable:
                    errors.append(f"sort: column {sort_col.spec!r} cannot be sorted by")
                    q.sort = ""
        return q, errors

    def sort_column(self) -> tuple[Column, bool] | None:
        """The column sorted by and whether ascending (None: the default order)."""
        if not self.sort:
            return None
        return parse_column(self.sort.lstrip("-+")), not self.sort.startswith("-")

    def order_by(self) -> list[str]:
        """The order-by of :meth:`vtrack.client.TrackingClient.search_runs_page`.

        Empty for aggregate columns, which :meth:`sort_column` names instead.
        """
        if not self.sort:
            return []
        col = parse_column(self.sort.lstrip("-+"))
        if col.agg != "last":
            return []
        return [f"{col.order_key} {'DESC' if self.sort.startswith('-') else 'ASC'}"]

    def to_params(self, **changes: Any) -> dict[str, str]:
        """The query string of this view, with ``changes`` applied (empty values dropped)."""
        out = {
            "exp": ",".join(self.experiments),
            "q": self.filter,
            "sort": self.sort,
            "cols": ",".join(c.spec for c in self.columns) if self.columns is not None else "",
            "page": "" if self.page == 1 else str(self.page),
            "per": "" if self.per == DEFAULT_PER_PAGE else str(self.per),
            "sel": ",".join(self.selected),
            "deleted": "1" if self.deleted else "",
        }
        out.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in out.items() if v}


def split_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated query value."""
    return [p.strip() for p in text.split(",") if p.strip()]


def _int(text: str | None, default: int, low: int, high: int, name: str, errors: list[str]) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        errors.append(f"{name} must be an integer, not {text!r}")
        return default
    if not low <= value <= high:
        errors.append(f"{name} must be between {low} and {high}, not {value}")
        return min(max(value, low), high)
    return value


# -- cells ----------------------------------------------------------------------------------


def aggregate(series: Series | None, col: Column) -> float | None:
    """The value of an aggregate column for one run's series.

    None when absent (no history, no point at the step); NaN when every point is NaN
    (min/max) or the point at the step is NaN. Min and max skip NaN; ±inf are numbers.
    The same rule as the sorted summaries (:mod:`vtrack.store.index_metricstats`).
    """
    if series is None or not len(series):
        return None
    if col.agg == "step":
        found = series.values[series.steps == col.step]
        return float(found[-1]) if len(found) else None
    lo, hi = series.extremes()
    return lo if col.agg == "min" else hi


#: ``(run ids, column) -> {run id: value}``: the aggregate cells of a page in one call.
Summaries = Callable[[Sequence[str], "Column"], Mapping[str, Any]]


def raw_cell(run: Run, col: Column, exp_names: Mapping[str, str], agg: Mapping[str, Any]) -> Any:
    """The raw value of ``col`` for ``run``; aggregates come from ``agg`` (run id → value)."""
    if col.agg == "last":
        return views.cell(run, col.key, exp_names)
    if col.key[len("metrics.") :] not in run.data.metrics:
        return None
    return agg.get(run.info.run_id)


def display(key: str, value: Any) -> str:
    """A cell as text for people (the same formatting as ``vtrack ls``)."""
    if key in ("start", "end"):
        return views.fmt_time(value)[:16] if value else "—"
    if key == "duration":
        return "" if value is None else views.fmt_seconds(value)
    if key.startswith("params."):
        return views.fmt_param(value) if value is not None else "—"
    return views.fmt_value(value)


@dataclass
class Page:
    """One page of the runs table, ready to render as HTML or JSON."""

    query: TableQuery
    columns: list[Column]
    headers: list[str]
    rows: list[dict[str, Any]]
    total: int
    #: the filter's error and the 1-based column it points at (None: the filter is fine)
    filter_error: str | None = None
    filter_column: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """How many pages the matching runs fill (at least 1)."""
        return max(1, -(-self.total // self.query.per))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``/api/runs``)."""
        return views.jsonable({
            "total": self.total,
            "page": self.query.page,
            "per": self.query.per,
            "pages": self.pages,
            "columns": [
                {"spec": c.spec, "key": c.key, "agg": c.agg, "header": h, "sortable": c.sortable}
                for c, h in zip(self.columns, self.headers, strict=True)
            ],
            "rows": self.rows,
            "filter_error": self.filter_error,
            "filter_column": self.filter_column,
            "problems": self.problems,
            "query": self.query.to_params(),
        })  # fmt: skip


def build_rows(
    runs: Sequence[Run],
    columns: Sequence[Column],
    exp_names: Mapping[str, str],
    summaries: Summaries,
) -> list[dict[str, Any]]:
    """One row per run: id, parent, status, raw values and display text per column.

    Aggregate columns are read with one ``summaries`` call per column for the whole page.
    """
    ids = [r.info.run_id for r in runs]
    aggs = [summaries(ids, c) if c.agg != "last" and runs else {} for c in columns]
    rows = []
    for run in runs:
        raws = [raw_cell(run, c, exp_names, a) for c, a in zip(columns, aggs, strict=True)]
        rows.append({
            "run_id": run.info.run_id,
            "parent_run_id": run.info.parent_run_id,
            "status": run.info.status,
            "name": run.info.run_name,
            "values": raws,
            "text": [display(c.key, v) for c, v in zip(columns, raws, strict=True)],
        })  # fmt: skip
    return rows


def nest(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """``rows`` as a tree in table order: each child right under its parent, with its depth.

    Runs whose parent is not on the page stay where they are, at depth 0.
    """
    by_id = {r["run_id"]: r for r in rows}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for r in rows:
        parent = r.get("parent_run_id")
        if parent and parent in by_id and parent != r["run_id"]:
            children.setdefault(parent, []).append(r)
        else:
            roots.append(r)
    out: list[tuple[dict[str, Any], int]] = []
    seen: set[str] = set()

    def walk(row: dict[str, Any], depth: int) -> None:
        if row["run_id"] in seen:
            return
        seen.add(row["run_id"])
        row["children"] = len(children.get(row["run_id"], []))
        out.append((row, depth))
        for child in children.get(row["run_id"], []):
            walk(child, depth + 1)

    for r in roots:
        walk(r, 0)
    for r in rows:  # a parent cycle: show what is left flat
        walk(r, 0)
    return out


def csv_lines(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV text: the run id first, full-precision values (as ``vtrack ls --csv``)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run_id", *(c.spec for c in columns)])
    for r in rows:
        w.writerow([r["run_id"], *("" if v is None else views.fmt_csv(v) for v in r["values"])])
    return buf.getvalue()
