"""MLflow's run-filter and order-by language: grammar, coercions and reference meaning.

- :mod:`vtrack.query.parse`: the grammar and the typed AST (:func:`parse_filter`,
  :func:`parse_order_by`, :class:`Comparison`, :class:`OrderKey`); lark is imported on
  the first parse, never by ``import vtrack.query``.
- :mod:`vtrack.query.semantics`: the coercions (presence, text, numeric params) that
  every evaluator shares; the SQL compiler of the run index takes them from there.
- :mod:`vtrack.query.evaluate`: the pure-Python reference evaluator (:func:`evaluate`,
  :func:`sort_runs`) that the index must agree with; the tests' oracle.

Everything public is re-exported here, so ``from vtrack.query import parse_filter`` works.
"""

from __future__ import annotations

from vtrack.query.evaluate import RunView, evaluate, sort_runs
from vtrack.query.parse import (
    ATTRIBUTES,
    BARE_ATTRIBUTES,
    COMPARISON_OPS,
    DATASET_FIELDS,
    ENTITIES,
    LIST_OPS,
    NULL_OPS,
    NUMERIC_ATTRIBUTES,
    OPERATORS,
    PATTERN_OPS,
    TEXT_ATTRIBUTES,
    Comparison,
    OrderKey,
    allowed_operators,
    parse_filter,
    parse_order_by,
)
from vtrack.query.semantics import Scalar

__all__ = [
    "ATTRIBUTES",
    "BARE_ATTRIBUTES",
    "COMPARISON_OPS",
    "DATASET_FIELDS",
    "ENTITIES",
    "LIST_OPS",
    "NULL_OPS",
    "NUMERIC_ATTRIBUTES",
    "OPERATORS",
    "PATTERN_OPS",
    "TEXT_ATTRIBUTES",
    "Comparison",
    "OrderKey",
    "RunView",
    "Scalar",
    "allowed_operators",
    "evaluate",
    "parse_filter",
    "parse_order_by",
    "sort_runs",
]
