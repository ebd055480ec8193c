"""Filter and order-by ASTs (:mod:`vtrack.query`) compiled to SQL over the run index.

Every value is bound as a parameter; only column names, aliases and operators taken
from the validated AST are written into SQL text. The compiled query answers exactly
as :func:`vtrack.query.evaluate` and :func:`vtrack.query.sort_runs` do:

* a clause on a missing value (absent key, None, NaN) is false, except ``IS NULL``;
* params compare as numbers when stored as int or float and the filter value is a
  number or a numeric literal, as text otherwise; ints beyond 64 bits compare exactly
  through a Python function (they sort as their nearest float);
* ``LIKE`` is a case-sensitive ``GLOB`` (``%`` → ``*``, ``_`` → ``?``, other GLOB
  metacharacters bracketed); ``ILIKE`` applies Python's ``str.lower`` to both sides;
* order keys sort missing values last in both directions (a NaN metric after numbers and
  before absent values, as MLflow), numbers before text, then
  ``start_time`` descending and ``run_id`` ascending.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vtrack.errors import ValidationError
from vtrack.query.parse import Comparison, OrderKey
from vtrack.query.semantics import as_text, filter_number
from vtrack.store.index_records import INT64_RANGE
from vtrack.store.refs import ACTIVE


def sql_lower(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


def sql_numcmp(left: Any, op: str, right: Any) -> int | None:
    """Exact numeric comparison; either side may be the decimal text of an int beyond 64 bits."""
    if left is None or right is None:
        return None
    a = int(left) if isinstance(left, str) else left
    b = int(right) if isinstance(right, str) else right
    return int(_PY_OPS[op](a, b))


_PY_OPS: dict[str, Any] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


# --- compiling ------------------------------------------------------------------------


def marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items)) or "NULL"


def like_to_glob(pattern: str) -> str:
    """The GLOB pattern equal to a LIKE pattern (``%`` ``_``, no escape, case-sensitive)."""
    out = []
    for c in pattern:
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
    return "".join(out)


def _fits_int64(value: Any) -> bool:
    return not isinstance(value, int) or INT64_RANGE[0] <= value <= INT64_RANGE[1]


class _Column:
    """How one stored value is reached in SQL: numeric part, text part, param kind."""

    def __init__(self, num: str | None, text: str | None, kind: str | None = None) -> None:
        self.num, self.text, self.kind = num, text, kind

    def numeric(self, op: str, number: int | float, args: list[Any]) -> str:
        assert self.num is not None
        if _fits_int64(number):
            args.append(number)
            return f"{self.num} {op} ?"
        args.append(str(number))
        return f"vt_numcmp({self.num}, '{op}', ?)"

    def compare(self, op: str, value: Any, args: list[Any]) -> str:
        """SQL for ``stored <op> value`` on a present stored value (``_compare``'s rules)."""
        number = filter_number(value)
        if self.text is None:  # numbers only (metrics, start/end time)
            assert number is not None
            return self.numeric(op, number, args)
        if self.num is None or number is None:  # text only, or a non-numeric filter value
            args.append(as_text(value))
            return f"{self.text} {op} ?"
        # a param: numbers numerically (exactly, even beyond 64 bits), the rest as text
        parts = [f"CASE WHEN {self.kind} = 'bigint' THEN vt_numcmp({self.text}, '{op}', ?)"]
        args.append(number if _fits_int64(number) else str(number))
        parts.append(f"WHEN {self.num} IS NOT NULL THEN {self.numeric(op, number, args)}")
        args.append(as_text(value))
        parts.append(f"ELSE {self.text} {op} ? END")
        return " ".join(parts)

    def predicate(self, op: str, value: Any, args: list[Any]) -> str:
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return self.compare(op, value, args)
        if op == "LIKE":
            args.append(like_to_glob(value))
            return f"{self.text} GLOB ?"
        if op == "ILIKE":
            args.append(like_to_glob(value.lower()))
            return f"vt_lower({self.text}) GLOB ?"
        if op in ("IN", "NOT IN"):
            parts = [f"({self.compare('=', v, args)})" for v in value]
            any_equal = " OR ".join(parts)
            return f"({any_equal})" if op == "IN" else f"NOT ({any_equal})"
        raise ValidationError(f"operator {op} cannot be compiled")  # pragma: no cover

    def present(self) -> str:
        return f"{self.text if self.text is not None else self.num} IS NOT NULL"


_ATTRIBUTE_COLUMNS = {
    "run_id": "r.run_id",
    "run_name": "r.name",
    "status": "r.status",
    "experiment_id": "r.experiment_id",
    "user_id": "r.user",
    "parent_run_id": "r.parent_run_id",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
}


def _entity_column(entity: str, key: str, alias: str) -> _Column:
    if entity == "metrics":
        return _Column(f"{alias}.num", None)
    if entity == "params":
        return _Column(f"{alias}.num", f"{alias}.text", f"{alias}.kind")
    if entity == "tags":
        return _Column(None, f"{alias}.text")
    if entity == "datasets":
        return _Column(None, f"{alias}.{key}")
    col = _ATTRIBUTE_COLUMNS[key]
    if key in ("start_time", "end_time"):
        return _Column(col, None)
    return _Column(None, col)


def _clause_sql(clause: Comparison, n: int, args: list[Any], correlated: bool = False) -> str:
    """SQL for one clause; ``correlated``: value-table clauses as ``EXISTS`` lookups of the
    run at hand (for a query driven by another index) instead of a list of runs."""
    entity, key, op = clause.entity, clause.key, clause.op
    alias = f"c{n}"
    col = _entity_column(entity, key, alias)
    if entity == "attributes":
        if op == "IS NULL":
            return f"NOT ({col.present()})"
        if op == "IS NOT NULL":
            return col.present()
        return f"({col.present()} AND {col.predicate(op, clause.value, args)})"
    if entity == "datasets":
        table, key_filter = "datasets", ""
    else:
        table, key_filter = entity, f"{alias}.key = ? AND "
        args.append(key)
    head = (
        f"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.run = r.id AND "
        if correlated
        else f"r.id IN (SELECT {alias}.run FROM {table} {alias} WHERE "
    ) + f"{key_filter}{col.present()}"
    if op == "IS NULL":
        return "NOT " + head + ")"
    if op == "IS NOT NULL":
        return head + ")"
    return f"{head} AND {col.predicate(op, clause.value, args)})"


def correlated_terms(clauses: Sequence[Comparison], args: list[Any]) -> list[str]:
    """SQL terms of ``clauses`` on the run row ``r`` at hand, value clauses as ``EXISTS``
    lookups (for a query that another index drives), appending their arguments."""
    return [_clause_sql(c, n, args, correlated=True) for n, c in enumerate(clauses)]


def _positive(clause: Comparison) -> bool:
    """A clause that holds only for runs with a row in a value table (or datasets)."""
    return clause.entity != "attributes" and clause.op != "IS NULL"


def _scope_prefix(clauses: Sequence[Comparison]) -> str:
    """``"+"`` (do not drive by the experiment index) when a clause's value index can drive.

    An experiment holding most runs made SQLite walk all of them and test each against
    the clauses (187 ms for a count at 100,000 runs, against 40 ms driven by the clauses);
    the clauses' joined list is bounded by their matches whatever the experiment's size.
    """
    return "+" if any(_positive(c) for c in clauses) else ""


def _clauses_sql(clauses: Sequence[Comparison], args: list[Any]) -> list[str]:
    """SQL terms for ``clauses``, appending their arguments to ``args`` in text order.

    The clauses that need a row of a value table are joined into one subquery on the run
    number (at 100,000 runs, intersecting two 20,000-run lists this way and then reading
    the few runs both name is twice as fast as reading every run of the first list).
    """
    terms: list[str] = []
    parts: list[tuple[str, str, str]] = []  # (table, alias, condition)
    part_args: list[Any] = []
    joined = sum(1 for c in clauses if _positive(c)) >= 2
    for n, clause in enumerate(clauses):
        if not (joined and _positive(clause)):
            terms.append(_clause_sql(clause, n, args))
            continue
        alias = f"c{n}"
        table = "datasets" if clause.entity == "datasets" else clause.entity
        sub = _clause_sql(clause, n, part_args)  # r.id IN (SELECT cN.run FROM t cN WHERE …)
        cond = sub[len(f"r.id IN (SELECT {alias}.run FROM {table} {alias} WHERE ") : -1]
        parts.append((table, alias, cond))
    args += part_args  # the joined subquery comes last in the text too
    if parts:
        (t0, a0, _), rest = parts[0], parts[1:]
        joins = "".join(f" JOIN {t} {a} ON {a}.run = {a0}.run" for t, a, _ in rest)
        conds = " AND ".join(f"({c})" for _, _, c in parts)
        terms.append(f"r.id IN (SELECT {a0}.run FROM {t0} {a0}{joins} WHERE {conds})")
    return terms


#: The columns of a run's row that :func:`compile_search` selects (what ``_run_of`` reads).
ROW_COLUMNS = (
    "r.id, r.run_id, r.commit_sha, r.lifecycle, r.name, r.experiment_id, r.status, "
    "r.start_time, r.end_time, r.user, r.parent_run_id, r.live"
)
#: Where ``live`` is in a row of :data:`ROW_COLUMNS`.
ROW_LIVE = 11


def walkable(clauses: Sequence[Comparison], order: Sequence[OrderKey]) -> bool:
    """True when :func:`compile_search` can answer a page with ``walk``: the order is
    newest first (with clauses to check) or starts with a metric."""
    return (not order and bool(clauses)) or (bool(order) and order[0].entity == "metrics")


_FOLDABLE = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN")


def _folded(clause: Comparison, key: str) -> bool:
    """A clause on the metric ``key`` that the first order key's own row can answer."""
    return clause.entity == "metrics" and clause.key == key and clause.op in (
        *_FOLDABLE, "IS NOT NULL",
    )  # fmt: skip


def compile_search(
    clauses: Sequence[Comparison],
    order: Sequence[OrderKey],
    *,
    experiment_ids: Iterable[str] | None = None,
    lifecycles: Iterable[str] = (ACTIVE,),
    max_results: int | None = None,
    tie_break: str = "r.start_time DESC, r.run_id ASC",
    offset: int = 0,
    walk: bool = False,
) -> tuple[str, list[Any]]:
    """Parametrized SQL selecting the rows of matching runs, in order, at most ``max_results``.

    ``offset`` skips that many matching rows first (a page of a listing).

    ``walk`` (only when :func:`walkable`) writes a query that SQLite answers by walking
    an index in the page's order and checking each run it meets against the clauses
    (``EXISTS`` lookups), stopping at the page — fast when matches are common, slow
    when they are rare (the caller bounds it). Newest first, it walks the start-time
    index. Sorted by a metric, it selects only the runs whose metric holds a number —
    the runs that come first in the full order, in the same order — walking that
    metric's ``(key, num)`` index and answering clauses on the same metric from its
    row: a page it fills completely is the page of the full query; a shorter one says
    nothing about the rest.

    Values are always bound as parameters; only fixed column names, aliases and
    operators from the validated AST are written into the SQL text.
    """
    joins: list[str] = []
    join_args: list[Any] = []
    order_terms: list[str] = []
    base = "FROM runs r"
    where_args: list[Any] = []
    where: list[str] = []
    present_first = walk and bool(order)
    if walk and not order:
        where += correlated_terms(clauses, where_args)
        clauses = []
    if present_first:
        assert walkable(clauses, order)
        first = order[0]
        base = "FROM metrics o0 JOIN runs r ON r.id = o0.run"
        where.append("o0.key = ? AND o0.num IS NOT NULL")
        where_args.append(first.key)
        col = _Column("o0.num", None)
        for clause in clauses:
            if _folded(clause, first.key) and clause.op != "IS NOT NULL":
                where.append(f"({col.predicate(clause.op, clause.value, where_args)})")
        # the rest are checked run by run as the index walk meets them (EXISTS lookups):
        # materializing each clause's list of runs first cost more than the walk
        where += correlated_terms([c for c in clauses if not _folded(c, first.key)], where_args)
        clauses = []
        order_terms.append(f"o0.num {'ASC' if first.ascending else 'DESC'}")
    for i, key in enumerate(order):
        alias = f"o{i}"
        if present_first and i == 0:
            continue
        if key.entity == "attributes":
            expr = _ATTRIBUTE_COLUMNS[key.key]
        else:
            joins.append(
                f"LEFT JOIN {key.entity} {alias} ON {alias}.run = r.id AND {alias}.key = ?"
            )
            join_args.append(key.key)
            if key.entity == "metrics":
                expr = f"{alias}.num"
            elif key.entity == "params":
                expr = f"CASE WHEN {alias}.text IS NULL THEN NULL ELSE coalesce({alias}.num, {alias}.text) END"
            else:
                expr = f"{alias}.text"
        if key.entity == "metrics":  # MLflow: numbers, then NaN (a row, no number), then absent
            rank = f"CASE WHEN {alias}.run IS NULL THEN 2 WHEN {expr} IS NULL THEN 1 ELSE 0 END"
            order_terms.append(f"{rank}, {expr} {'ASC' if key.ascending else 'DESC'}")
        elif key.ascending:
            order_terms.append(f"({expr}) IS NULL, ({expr}) ASC")
        else:  # SQLite sorts NULL lowest: DESC already puts missing values last
            order_terms.append(f"{expr} DESC")
    order_terms.append(tie_break)
    life = tuple(lifecycles)
    # "+": never drive a search by the lifecycle index (nearly every run is active: it
    # would visit them all); clauses' value indexes or the start-time order drive it
    where.append(f"+r.lifecycle IN ({marks(life)})")
    where_args += life
    if experiment_ids is not None:
        exps = tuple(str(e) for e in experiment_ids)
        where.append(f"{_scope_prefix(clauses)}r.experiment_id IN ({marks(exps)})")
        where_args += exps
    where += _clauses_sql(clauses, where_args)
    sql = (
        f"SELECT {ROW_COLUMNS} {base} "
        + " ".join(joins)
        + " WHERE " + " AND ".join(where)
        + " ORDER BY " + ", ".join(order_terms)
    )  # fmt: skip
    args = join_args + where_args
    if max_results is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        args += [-1 if max_results is None else int(max_results), int(offset)]
    return sql, args


def compile_count(
    clauses: Sequence[Comparison],
    *,
    experiment_ids: Iterable[str] | None = None,
    lifecycles: Iterable[str] = (ACTIVE,),
) -> tuple[str, list[Any]]:
    """Parametrized SQL counting the runs that match every clause (no ordering joins)."""
    args: list[Any] = []
    life = tuple(lifecycles)
    # the lifecycle index counts a whole scope fast; with clauses their indexes drive
    where = [f"{'+' if clauses else ''}r.lifecycle IN ({marks(life)})"]
    args += life
    if experiment_ids is not None:
        exps = tuple(str(e) for e in experiment_ids)
        where.append(f"{_scope_prefix(clauses)}r.experiment_id IN ({marks(exps)})")
        args += exps
    where += _clauses_sql(clauses, args)
    return "SELECT count(*) FROM runs r WHERE " + " AND ".join(where), args
