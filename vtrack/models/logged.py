"""MLflow 3's logged models: a stable ``model_id`` per ``log_model`` call, ``models:/<id>``.

Each model logged with a ``model_id`` is recorded on its run as the tag
``vtrack.model.<model_id>`` whose value is a small JSON document (name, artifact path,
flavor, step, creation time, params, tags). The model folder itself is an ordinary
artifact of the run, so checkpoints logged by step cost only the bytes that changed (the
weights are content-addressed). ``models:/<model_id>`` resolves through the derived run
index (one tag lookup), at any store size.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from vtrack.entities import LoggedModel, Metric, Run
from vtrack.errors import ArtifactNotFoundError, ValidationError
from vtrack.store.runs import RunRepository

__all__ = [
    "MODEL_TAG_PREFIX",
    "find_logged_model",
    "logged_models_of",
    "model_record",
    "new_model_id",
    "search_logged_models",
]

#: Prefix of the run tags that record logged models.
MODEL_TAG_PREFIX = "vtrack.model."
#: Prefix of the run tags that link metric keys to a logged model (``log_metric(model_id=)``).
METRICS_TAG_PREFIX = "vtrack.model_metrics."
_ID_CHARS = frozenset("0123456789abcdef")


def new_model_id() -> str:
    """A fresh model id: ``m-`` and 32 lowercase hex characters (MLflow's shape)."""
    return "m-" + secrets.token_hex(16)


def check_model_id(model_id: str) -> str:
    """Return ``model_id`` if it has the shape ``m-<32 hex>``; raise ValidationError otherwise."""
    if not (
        isinstance(model_id, str)
        and model_id.startswith("m-")
        and len(model_id) == 34
        and set(model_id[2:]) <= _ID_CHARS
    ):
        raise ValidationError(f"model id {model_id!r} must look like m-<32 hex characters>")
    return model_id


def model_record(
    *, name: str, artifact_path: str, flavor: str, step: int, created: int,
    params: Mapping[str, Any] | None, tags: Mapping[str, Any] | None,
) -> str:  # fmt: skip
    """The tag value that records one logged model."""
    doc = {"name": name, "path": artifact_path, "flavor": flavor, "step": step,
           "created": created, "params": {str(k): str(v) for k, v in (params or {}).items()},
           "tags": {str(k): str(v) for k, v in (tags or {}).items()}}  # fmt: skip
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _from_tag(run: Run, model_id: str, value: str, history: Sequence[Metric] = ()) -> LoggedModel:
    doc = json.loads(value)
    return LoggedModel(
        model_id=model_id,
        name=str(doc["name"]),
        experiment_id=run.info.experiment_id,
        source_run_id=run.info.run_id,
        artifact_path=str(doc["path"]),
        flavor=str(doc.get("flavor", "")),
        creation_timestamp=int(doc.get("created", 0)),
        step=int(doc.get("step", 0)),
        params=dict(doc.get("params") or {}),
        tags=dict(doc.get("tags") or {}),
        metrics=list(history),
    )


def logged_models_of(run: Run, repo: RunRepository | None = None) -> list[LoggedModel]:
    """The models ``run`` logged with a model id, in the order logged.

    With ``repo``, each model's ``metrics`` hold the points of the metrics linked to it.
    """
    out = []
    tags = dict(run.data.tags)
    for key, value in tags.items():
        if key.startswith(MODEL_TAG_PREFIX):
            model_id = key[len(MODEL_TAG_PREFIX) :]
            history: list[Metric] = []
            linked = tags.get(METRICS_TAG_PREFIX + model_id)
            if linked and repo is not None:
                record = repo.state(run.info.run_id, deleted_ok=True).record
                for mkey in linked.split(","):
                    history += [Metric(mkey, v, ts, st) for st, ts, v in record.iter_history(mkey)]
            try:
                out.append(_from_tag(run, model_id, value, history))
            except (ValueError, KeyError, TypeError):
                continue  # a hand-set tag of that shape: not a model record
    return sorted(out, key=lambda m: (m.creation_timestamp, m.step, m.model_id))


def find_logged_model(repo: RunRepository, model_id: str) -> LoggedModel:
    """The logged model ``model_id``; raise ArtifactNotFoundError if no run logged it."""
    from vtrack.query import Comparison

    check_model_id(model_id)
    clause = Comparison("tags", MODEL_TAG_PREFIX + model_id, "IS NOT NULL", None)
    runs = repo.index().search([clause], (), lifecycles=("active", "deleted"), max_results=1)
    for run in runs:
        for model in logged_models_of(run, repo):
            if model.model_id == model_id:
                return model
    raise ArtifactNotFoundError(f"no logged model {model_id}", hint="vtrack ls shows runs")


_MODEL_FIELDS = {"name": "run_name", "model_id": "run_id", "creation_timestamp": "start_time",
                 "creation_time": "start_time", "source_run_id": "user_id"}  # fmt: skip


def search_logged_models(
    repo: RunRepository,
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
) -> list[LoggedModel]:
    """Logged models matching the run filter grammar, newest first unless ordered.

    Fields: ``name``, ``model_id``, ``creation_timestamp``, ``source_run_id``,
    ``params.<key>`` (the model's params), ``tags.<key>`` (the model's tags) and
    ``metrics.<key>`` (the source run's latest value).
    """
    from vtrack.query import evaluate, parse_filter, parse_order_by, sort_runs
    from vtrack.query.aliases import rename_fields

    clauses = parse_filter(rename_fields(filter_string or "", _MODEL_FIELDS))
    order = parse_order_by([rename_fields(o, _MODEL_FIELDS) for o in order_by or []])
    exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
    views: list[tuple[dict[str, Any], LoggedModel]] = []
    for run in repo.index().list_runs(exps):
        for m in logged_models_of(run):
            view = {
                "metrics": dict(run.data.metrics), "params": dict(m.params), "tags": dict(m.tags),
                "attributes": {"run_name": m.name, "run_id": m.model_id,
                               "start_time": m.creation_timestamp, "user_id": m.source_run_id,
                               "experiment_id": m.experiment_id},
            }  # fmt: skip
            if evaluate(clauses, view):
                views.append((view, m))
    by_id = {m.model_id: m for _, m in views}
    if order:
        ordered = [
            by_id[v["attributes"]["run_id"]] for v in sort_runs([v for v, _ in views], order)
        ]
    else:
        ordered = sorted(by_id.values(), key=lambda m: (-m.creation_timestamp, m.model_id))
    return ordered[:max_results] if max_results else ordered
