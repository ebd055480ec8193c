"""MLflow's fluent calls that vtrack's own fluent API does not spell: the rest of
``import vtrack as mlflow``.

Experiment tags of the active experiment, the artifact URI, parent runs, tables, image
series, MLflow 3's logged models (``get_logged_model``, ``last_logged_model``,
``search_logged_models``). Each is a thin adapter over the client and the services;
pandas is imported only by the table functions.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from vtrack import fluent
from vtrack.entities import LoggedModel, Run
from vtrack.errors import RunStateError, ValidationError
from vtrack.fluent_registry import register_model

__all__ = [
    "delete_experiment_tag",
    "link_metric",
    "get_artifact_uri",
    "get_logged_model",
    "get_parent_run",
    "image_series_path",
    "is_tracking_uri_set",
    "last_logged_model",
    "load_table",
    "log_table",
    "register_model",
    "search_logged_models",
    "set_experiment_tag",
    "set_experiment_tags",
]


def _active_experiment_id() -> str:
    run = fluent.active_run()
    return run.info.experiment_id if run is not None else fluent.current_experiment_id()


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the active experiment (that of the active run, else the selected one)."""
    fluent.tracking_client().set_experiment_tag(_active_experiment_id(), key, value)


def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active experiment."""
    client, exp_id = fluent.tracking_client(), _active_experiment_id()
    for key, value in tags.items():
        client.set_experiment_tag(exp_id, key, value)


def delete_experiment_tag(key: str) -> None:
    """Remove a tag from the active experiment."""
    fluent.tracking_client().delete_experiment_tag(_active_experiment_id(), key)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """``runs:/<active run>[/<artifact_path>]``: what ``download_artifacts`` and loaders take.

    With no active run one is started, as in MLflow.
    """
    run_id = fluent.active_run_id()
    return f"runs:/{run_id}" + (f"/{artifact_path.strip('/')}" if artifact_path else "")


def get_parent_run(run_id: str) -> Run | None:
    """The parent of run ``run_id``, or None for a top-level run."""
    return fluent.tracking_client().get_parent_run(run_id)


def is_tracking_uri_set() -> bool:
    """True when ``set_tracking_uri`` or ``VTRACK_TRACKING_URI`` chose the store."""
    from vtrack import config

    return fluent.tracking_uri_set() or bool(config.env_tracking_uri())


# -- tables --------------------------------------------------------------------------
def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a DataFrame or a dict of columns as a JSON table artifact (MLflow's layout).

    The file holds ``{"columns": [...], "data": [[...], ...]}``; :func:`load_table`
    reads it back. ``artifact_file`` must end in ``.json``.
    """
    import pandas as pd

    if not str(artifact_file).endswith(".json"):
        raise ValidationError(f"log_table writes JSON: {artifact_file!r} must end in .json")
    if isinstance(data, Mapping):
        data = pd.DataFrame(dict(data))
    if not isinstance(data, pd.DataFrame):
        raise ValidationError(
            f"log_table needs a DataFrame or a dict of columns, got {type(data).__name__}"
        )
    doc = json.loads(data.to_json(orient="split", index=False))
    text = json.dumps({"columns": doc["columns"], "data": doc["data"]})
    rid = run_id if run_id is not None else fluent.active_run_id()
    fluent.tracking_client().log_text(rid, text, artifact_file)


def load_table(
    artifact_file: str,
    run_ids: Sequence[str] | None = None,
    extra_columns: Sequence[str] | None = None,
) -> Any:
    """The tables ``artifact_file`` of ``run_ids`` (default: every run of the active
    experiment that has one), concatenated into one DataFrame. ``extra_columns`` may
    name ``run_id``, added as a column."""
    import pandas as pd

    client = fluent.tracking_client()
    if run_ids is None:
        runs = fluent.search_runs(output_format="list")
        run_ids = [r.info.run_id for r in runs]
        strict = False
    else:
        strict = True
    frames = []
    for rid in run_ids:
        try:
            doc = json.loads(client.load_text(rid, artifact_file))
        except LookupError:
            if strict:
                raise
            continue
        frame = pd.DataFrame(doc["data"], columns=doc["columns"])
        for col in extra_columns or []:
            if col != "run_id":
                raise ValidationError(f"load_table: unknown extra column {col!r} (only run_id)")
            frame["run_id"] = rid
        frames.append(frame)
    if not frames:
        raise RunStateError(f"no run has the table {artifact_file!r}")
    return pd.concat(frames, ignore_index=True)


# -- image series ----------------------------------------------------------------------
def image_series_path(key: str, step: int | None, timestamp: int | None) -> str:
    """The artifact path of one image of MLflow's series ``key`` at ``step``."""
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("an image series key must be a non-empty string")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValidationError(f"step must be an integer, got {step!r}")
    safe = re.sub(r"[^\w\-.]", "#", key)  # '/' and other characters would nest folders
    ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
    return f"images/{safe}+step+{step or 0}+timestamp+{ts}+{uuid.uuid4()}.png"


# -- logged models (MLflow 3) ------------------------------------------------------------
#: (run, model id, metric key) links already recorded by this process
_linked: set[tuple[str, str, str]] = set()


def link_metric(run_id: str, key: str, model_id: str | None, dataset: Any) -> None:
    """Record that metric ``key`` of run ``run_id`` measures ``model_id`` (and ``dataset``).

    The link is the run tag ``vtrack.model_metrics.<model_id>`` (the metric keys, comma
    separated); :class:`~vtrack.entities.LoggedModel` ``metrics`` read it back. A
    ``vtrack.data`` dataset is logged as an input (context ``eval``) if it is not yet one.
    """
    from vtrack.models import logged

    if dataset is not None:
        if not hasattr(dataset, "input_specs"):
            raise ValidationError("dataset= takes a vtrack.data Dataset (from_pandas, from_numpy)")
        name = dataset.name
        known = {e.get("name") for e in fluent.tracking_client().get_run(run_id).inputs.datasets}
        if name not in known:
            fluent.tracking_client().log_inputs(run_id, dataset.input_specs("eval", None))
    if model_id is None or (run_id, model_id, key) in _linked:
        return
    logged.check_model_id(model_id)
    tag = logged.METRICS_TAG_PREFIX + model_id
    run = fluent.tracking_client().get_run(run_id)
    keys = [k for k in str(dict(run.data.tags).get(tag, "")).split(",") if k]
    if key not in keys:
        fluent.tracking_client().set_tag(run_id, tag, ",".join([*keys, key]))
    _linked.add((run_id, model_id, key))


def get_logged_model(model_id: str) -> LoggedModel:
    """The logged model ``model_id`` (``m-<32 hex>``); ArtifactNotFoundError if unknown."""
    from vtrack.models import logged

    return logged.find_logged_model(fluent.tracking_client().repo, model_id)


def last_logged_model() -> LoggedModel | None:
    """The model this process logged last (in the active or last ended run), or None."""
    from vtrack.models import logged

    run = fluent.last_active_run()
    if run is None:
        return None
    models = logged.logged_models_of(run, fluent.tracking_client().repo)
    return models[-1] if models else None


def search_logged_models(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[Any] | None = None,
    output_format: str = "list",
) -> Any:
    """Logged models matching the filter grammar (see :func:`vtrack.models.logged.search_logged_models`).

    ``experiment_ids`` None searches the active experiment. ``order_by`` items are
    strings (``"metrics.acc DESC"``) or MLflow's ``{"field_name": ..., "ascending": ...}``.
    ``output_format`` is ``"list"`` or ``"pandas"``.
    """
    from vtrack.models import logged

    orders = []
    for o in order_by or []:
        if isinstance(o, Mapping):
            orders.append(f"{o['field_name']} {'ASC' if o.get('ascending', True) else 'DESC'}")
        else:
            orders.append(str(o))
    exps = [str(e) for e in experiment_ids] if experiment_ids else [_active_experiment_id()]
    models = logged.search_logged_models(
        fluent.tracking_client().repo, exps, filter_string or "", orders, max_results
    )
    if output_format == "list":
        return models
    if output_format != "pandas":
        raise ValidationError(f"output_format must be 'list' or 'pandas', not {output_format!r}")
    import pandas as pd

    return pd.DataFrame([{"model_id": m.model_id, "name": m.name, "source_run_id": m.source_run_id,
                          "experiment_id": m.experiment_id, "artifact_location": m.artifact_location,
                          "step": m.step, "creation_timestamp": m.creation_timestamp,
                          "params": m.params, "tags": m.tags} for m in models])  # fmt: skip
