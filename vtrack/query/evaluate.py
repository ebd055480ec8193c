"""The reference evaluator of the filter language: what a filter and an order-by *mean*.

:func:`evaluate` and :func:`sort_runs` spell out the semantics in plain Python over a
:data:`RunView`. The SQLite run index compiles the same AST to SQL and must agree with
them on every run; the tests use them as the oracle. The coercions both sides share
(presence, text, numeric params) live in :mod:`vtrack.query.semantics`.

Evaluation
----------
* A value is *missing* when its key is absent, or it is ``None`` or a float NaN. A missing
  value satisfies ``IS NULL`` and nothing else: ``=``, ``!=``, ``<``, ``LIKE``, ``IN``,
  ``NOT IN`` … are all false, as in SQL. ``IS NOT NULL`` is true exactly when the value is
  present.
* Numbers compare numerically (ints and floats exactly, as Python and SQLite do).
* Text compares by code point (SQLite's BINARY collation). The text of a stored value is
  the string itself, ``'True'``/``'False'`` for a bool, and Python's ``str()`` for an int
  or float (``0.01`` → ``'0.01'``); the text of a number literal is ``str()`` of it.
  Bools are text, never numbers, in comparisons, patterns and sorting alike.
* Params keep their YAML types. A param comparison (``= != < <= > >=``) is numeric when
  the stored value is an int or float (not a bool) and the filter value is a number or a
  string that is written exactly like a number literal (``'0.01'``, ``'1e-3'``); it is a
  text comparison otherwise. So ``params.lr = '0.01'`` matches the float param ``0.01``,
  the string param ``'0.01'``, but not the string param ``'0.010'``.
* ``LIKE`` matches the whole text with ``%`` (any run of characters, newlines too) and
  ``_`` (one character) as wildcards; it is case-sensitive and has no escape character
  (SQLite needs ``PRAGMA case_sensitive_like = ON`` or an equivalent function). ``ILIKE``
  is ``LIKE`` after ``str.lower()`` of both the text and the pattern.
* ``x IN (a, b)`` is ``x = a OR x = b``; ``x NOT IN (a, b)`` is ``x != a AND x != b`` (so
  false on a missing value).
* ``datasets.<field> <op> v`` is true when *any* dataset input of the run has a present
  value for ``field`` satisfying the comparison (SQL ``EXISTS``). ``datasets.<field> IS
  NULL`` is true when *no* dataset input has a present value for ``field`` (so a run
  without datasets matches it).

Ordering
--------
``"metrics.acc DESC"``, ``"params.lr"`` (ascending), ``"attributes.start_time ASC"`` or
``"-metrics.acc"`` (descending). Datasets cannot be ordered on. :func:`sort_runs` sorts by
the keys in turn; missing values come last whatever the direction (as MLflow), and a NaN
metric comes after the numbers and before absent values (as MLflow); numbers come
before text (SQLite's order), so mixed-type params sort numbers first; remaining ties go
to ``start_time`` descending (missing last), then ``run_id`` ascending.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vtrack.query.parse import Comparison, OrderKey
from vtrack.query.semantics import as_text, filter_number, is_number, is_present

__all__ = ["RunView", "evaluate", "sort_runs"]

#: A run as the evaluator sees it: ``{"metrics": {...}, "params": {...}, "tags": {...},
#: "attributes": {...}, "datasets": [{"name", "digest", "context"}, ...]}``; absent
#: sections count as empty.
RunView = Mapping[str, Any]


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _compare(stored: Any, op: str, value: Any) -> bool:
    """``stored <op> value`` for a present stored value (see the module docstring)."""
    if op == "IN":
        return any(_compare(stored, "=", v) for v in value)
    if op == "NOT IN":
        return not any(_compare(stored, "=", v) for v in value)
    if op == "LIKE":
        return _like_regex(value).fullmatch(as_text(stored)) is not None
    if op == "ILIKE":
        return _like_regex(value.lower()).fullmatch(as_text(stored).lower()) is not None
    left: Any
    right: Any
    number = filter_number(value) if is_number(stored) else None
    if number is not None:
        left, right = stored, number
    else:
        left, right = as_text(stored), as_text(value)
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right  # ">="


def _lookup(run: RunView, entity: str, key: str) -> Any:
    section = run.get(entity) or {}
    return section.get(key)


def _matches(clause: Comparison, run: RunView) -> bool:
    if clause.entity == "datasets":
        values = [d.get(clause.key) for d in run.get("datasets") or ()]
        present = [v for v in values if is_present(v)]
        if clause.op == "IS NULL":
            return not present
        if clause.op == "IS NOT NULL":
            return bool(present)
        return any(_compare(v, clause.op, clause.value) for v in present)
    stored = _lookup(run, clause.entity, clause.key)
    if clause.op == "IS NULL":
        return not is_present(stored)
    if clause.op == "IS NOT NULL":
        return is_present(stored)
    return is_present(stored) and _compare(stored, clause.op, clause.value)


def evaluate(clauses: Iterable[Comparison], run: RunView) -> bool:
    """True when ``run`` satisfies every clause (so ``()`` matches every run).

    This is the reference semantics of the filter language, spelled out in the module
    docstring; it never raises for a well-formed ``RunView``.
    """
    return all(_matches(clause, run) for clause in clauses)


def _sort_value(value: Any) -> tuple[int, Any]:
    # Numbers before text, as SQLite orders INTEGER/REAL before TEXT.
    if is_number(value):
        return (0, value)
    return (1, as_text(value))


def _stable_sort(runs: list[RunView], entity: str, key: str, ascending: bool) -> list[RunView]:
    present: list[RunView] = []
    nans: list[RunView] = []
    missing: list[RunView] = []
    for run in runs:
        value = _lookup(run, entity, key)
        if is_present(value):
            present.append(run)
        elif entity == "metrics" and isinstance(value, float):  # NaN: after numbers (MLflow)
            nans.append(run)
        else:
            missing.append(run)
    present.sort(key=lambda r: _sort_value(_lookup(r, entity, key)), reverse=not ascending)
    return present + nans + missing


def sort_runs(runs: Iterable[RunView], order: Sequence[OrderKey]) -> list[RunView]:
    """A new list of ``runs`` ordered by ``order`` (see *Ordering* in the module docstring).

    Missing values sort last for ascending and descending keys alike; ties fall back to
    ``start_time`` descending (missing last) and then ``run_id`` ascending. The sort is
    stable for runs that are equal on all of these.
    """
    result = _stable_sort(list(runs), "attributes", "run_id", True)
    result = _stable_sort(result, "attributes", "start_time", False)
    for key in reversed(tuple(order)):
        result = _stable_sort(result, key.entity, key.key, key.ascending)
    return result
