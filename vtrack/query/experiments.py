"""MLflow's experiment filter (``name LIKE 'x%' AND tags.team = 'nlp'``) over Experiment values.

The filter is rewritten into the run grammar (:mod:`vtrack.query.aliases`): ``name`` is
the run grammar's ``attributes.run_name``, ``creation_time`` its ``start_time`` and
``last_update_time`` its ``end_time``; ``tags.<key>`` are the experiment's tags. The
reference evaluator then decides, so experiments and runs share one meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vtrack.query.aliases import rename_fields
from vtrack.query.evaluate import evaluate, sort_runs
from vtrack.query.parse import parse_filter, parse_order_by

__all__ = ["filter_experiments"]

_FIELDS = {"name": "run_name", "creation_time": "start_time", "last_update_time": "end_time",
           "experiment_id": "experiment_id"}  # fmt: skip


def filter_experiments(
    experiments: Iterable[Any], filter_string: str, order_by: Sequence[str] | None
) -> list[Any]:
    """The experiments matching ``filter_string``, in ``order_by`` order (else as given)."""
    exps = list(experiments)
    if not filter_string.strip() and not order_by:
        return exps
    clauses = parse_filter(rename_fields(filter_string, _FIELDS))
    order = parse_order_by([rename_fields(o, _FIELDS) for o in order_by or []])
    views: list[Any] = []
    for i, e in enumerate(exps):
        view = {"tags": dict(e.tags), "attributes": {
            "run_name": e.name, "start_time": e.creation_time, "end_time": e.last_update_time,
            "experiment_id": e.experiment_id, "run_id": f"{i:032x}"}}  # fmt: skip
        if evaluate(clauses, view):
            views.append(view)
    if order:
        views = sort_runs(views, order)
    return [exps[int(v["attributes"]["run_id"], 16)] for v in views]
