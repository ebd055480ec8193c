"""The fluent API: module-level functions over the process's active-run stacks.

The stacks, their ending at exit and on signals live in :mod:`vtrack._session`; a
thread that started no run logs into the main thread's active run, so data loaders and
callbacks just work.
"""

from __future__ import annotations

import os
from _thread import get_ident
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vtrack import _session as _sess
from vtrack import config, sysmetrics
from vtrack import validation as v
from vtrack._session import ActiveRun as ActiveRun  # re-exported: vtrack.ActiveRun
from vtrack.client import TrackingClient
from vtrack.entities import RERUN_OF_TAG, DatasetInput, Experiment, Metric, Run, RunStatus
from vtrack.errors import ExperimentExistsError, RunStateError, ValidationError
from vtrack.store.experiments import DEFAULT_EXPERIMENT_ID


def _reset_for_tests() -> None:
    """End and forget every active run and setting (test isolation)."""
    _sess.reset()


def _require_run_id() -> str:
    """The active run's id; with none active a run is started, as MLflow does (ended at exit)."""
    run = _sess.state.current()
    if run is None:
        run = start_run()
    return run.info.run_id


# -- tracking URI and experiments --------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Use the store at ``uri`` (a worktree, a bare repository or a file:// URL)."""
    if uri is not None:
        config.uri_to_path(os.fspath(uri))
    with _sess.state.lock:
        if _sess.state.main_stack:
            raise RunStateError("cannot change the tracking URI while a run is active")
        _sess.state.tracking_uri = os.fspath(uri) if uri is not None else None
        _sess.state.client = None
        _sess.state.experiment_id = None


def tracking_uri_set() -> bool:
    """True when ``set_tracking_uri`` chose the store in this process."""
    return _sess.state.tracking_uri is not None


def get_tracking_uri() -> str:
    """The tracking URI in use, as a ``file://`` URL of the store's git directory."""
    client = _sess.state.get_client()
    return "file://" + str(client.store.location.git_dir)


def _client() -> TrackingClient:
    return _sess.state.get_client()


def tracking_client() -> TrackingClient:
    """The client behind the fluent API: the store of the current tracking URI."""
    return _sess.state.get_client()


def active_run_id() -> str:
    """The active run's id; with none active, one is started (MLflow's rule), ended at exit."""
    return _require_run_id()


def current_experiment_id() -> str:
    """The experiment new runs go to: the active one, else the environment's, else Default."""
    return _current_experiment_id()


def end_active_run(run_id: str, status: str = "FINISHED") -> None:
    """End the active run ``run_id`` (its open children first) with ``status``.

    A no-op when ``run_id`` is not active in this process.
    """
    s = RunStatus.parse(status)
    if not s.is_terminal:
        raise ValidationError(f"end_active_run needs a terminal status, not {s.value}")
    _sess.state.end_run_id(run_id, s.value)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active (creating it by name if missing) and return it."""
    if (experiment_name is None) == (experiment_id is None):
        raise ValidationError(
            "set_experiment needs exactly one of experiment_name or experiment_id"
        )
    client = _client()
    if experiment_name is not None:
        exp = _get_or_create_experiment(client, experiment_name)
    else:
        exp = client.get_experiment(str(experiment_id))
    if exp.lifecycle_stage != "active":
        raise RunStateError(
            f"experiment {exp.name!r} is deleted", hint="restore it with vtrack.restore_experiment"
        )
    _sess.state.experiment_id = exp.experiment_id
    return exp


def _current_experiment_id() -> str:
    if _sess.state.experiment_id is not None:
        return _sess.state.experiment_id
    name, exp_id = config.env_experiment()
    client = _client()
    if exp_id:
        return client.get_experiment(exp_id).experiment_id
    if name:
        return _get_or_create_experiment(client, name).experiment_id
    return DEFAULT_EXPERIMENT_ID


def _get_or_create_experiment(client: TrackingClient, name: str) -> Experiment:
    """The experiment called ``name``, created if missing (another process may win the race)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.get_experiment(client.create_experiment(name))
        except ExperimentExistsError:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    return exp


def create_experiment(name: str, tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment; return its id."""
    return _client().create_experiment(name, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with that id."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with that name, or None."""
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: str | int = "ACTIVE_ONLY",
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Experiments by lifecycle stage (a name or MLflow's ViewType int) and filter."""
    return _client().search_experiments(view_type, max_results, filter_string, order_by)


def delete_experiment(experiment_id: str) -> None:
    """Mark an experiment deleted."""
    _client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    """Restore a deleted experiment."""
    _client().restore_experiment(experiment_id)


# -- runs --------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run, or resume ``run_id`` (also one written by another process).

    Starting a run while one is active needs ``nested=True``; the active run becomes
    the parent. Raises RunStateError otherwise. ``log_system_metrics`` samples CPU,
    memory, disk, network and GPU as ``system/…`` metrics (see :mod:`vtrack.sysmetrics`);
    None follows ``enable_system_metrics_logging`` and the environment.
    """
    want_system_metrics = sysmetrics.wanted(log_system_metrics)
    _sess.install_handlers()
    client = _client()
    with _sess.state.lock:
        current = _sess.state.current()
        own_stack = _sess.state.stack()
        if own_stack and not nested:
            raise RunStateError(
                f"run {own_stack[-1].info.run_id} is already active",
                hint="end it with vtrack.end_run() or pass nested=True",
            )
        if run_id is not None:
            v.validate_run_id(run_id)
            if any(r.info.run_id == run_id for r in own_stack):
                raise RunStateError(f"run {run_id} is already active")
            run = client.resume_run(run_id)
            if tags:
                client.set_tags(run_id, tags)
            if run_name is not None:
                client.update_run(run_id, name=run_name)
            if description is not None:
                client.set_description(run_id, description)
        else:
            if parent_run_id is None and nested and current is not None:
                parent_run_id = current.info.run_id
            exp_id = str(experiment_id) if experiment_id is not None else _current_experiment_id()
            rerun_of = config.env_rerun_of()
            if rerun_of and parent_run_id is None:  # started by 'vtrack rerun'
                tags = {**(tags or {}), RERUN_OF_TAG: rerun_of}
            run = client.create_run(
                experiment_id=exp_id,
                tags=tags,
                run_name=run_name,
                parent_run_id=parent_run_id,
                description=description,
            )
        active = ActiveRun(run)
        own_stack.append(active)
        if want_system_metrics:
            sysmetrics.start(client.repo, run.info.run_id)
        return active


def end_run(status: str = "FINISHED") -> None:
    """End the innermost active run with ``status``; no-op when none is active."""
    s = RunStatus.parse(status)
    if not s.is_terminal:
        raise ValidationError(f"end_run needs a terminal status, not {s.value}")
    st = _sess.state.stack()
    if st:
        _sess.state.end_run_id(st[-1].info.run_id, s.value)


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    return _sess.state.current()


def last_active_run() -> Run | None:
    """The active run, or else the most recently ended one (re-read from the store)."""
    cur = _sess.state.current()
    run_id = cur.info.run_id if cur else _sess.state.last_run_id
    if run_id is None:
        return None
    return _client().get_run(run_id)


def get_run(run_id: str) -> Run:
    """A run by id, with everything logged so far."""
    return _client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of metric ``key`` of a run."""
    return _client().get_metric_history(run_id, key)


def delete_run(run_id: str) -> None:
    """Move a run to the trash."""
    _client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Restore a run from the trash."""
    _client().restore_run(run_id)


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: str | int = "ACTIVE_ONLY",
    max_results: int | None = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Search runs with MLflow's filter grammar; a pandas DataFrame or a list of Runs.

    Scope as in MLflow: ``experiment_ids`` and/or ``experiment_names`` (unknown names are
    ignored); with neither (or empty lists), every experiment if ``search_all_experiments``
    else the active one (``set_experiment``, then ``VTRACK_EXPERIMENT_ID`` / ``_NAME``,
    then Default).
    The DataFrame has ``run_id, experiment_id, status, start_time, end_time, run_name``
    (times as UTC datetimes) then ``metrics.*``, ``params.*`` and ``tags.*`` columns;
    pandas is imported only here. Raises QuerySyntaxError for a bad filter.
    """
    if output_format not in ("pandas", "list"):
        raise ValidationError(f"output_format must be 'pandas' or 'list', not {output_format!r}")
    client = _client()
    exp_ids: list[str] | None = None
    if experiment_ids or experiment_names:  # MLflow: empty lists count as not given
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        exp_ids = [str(e) for e in experiment_ids or []]
        for name in (
            [experiment_names] if isinstance(experiment_names, str) else experiment_names or []
        ):
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                exp_ids.append(exp.experiment_id)
        if not exp_ids:
            runs: list[Run] = []
            return runs if output_format == "list" else _runs_frame(runs)
    elif not search_all_experiments:
        exp_ids = [_active_experiment_id_for_search()]
    runs = client.search_runs(exp_ids, filter_string, run_view_type, max_results, order_by)
    return runs if output_format == "list" else _runs_frame(runs)


def _active_experiment_id_for_search() -> str:
    """The active experiment's id, without creating one that is only named in the environment."""
    if _sess.state.experiment_id is not None:
        return _sess.state.experiment_id
    name, exp_id = config.env_experiment()
    if exp_id:
        return exp_id
    if name:
        exp = _client().get_experiment_by_name(name)
        return exp.experiment_id if exp is not None else name
    return DEFAULT_EXPERIMENT_ID


def _runs_frame(runs: list[Run]) -> Any:
    """MLflow's search_runs DataFrame of ``runs`` (pandas imported here, not at import time)."""
    import pandas as pd

    n = len(runs)
    cols: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [r.info.status for r in runs],
        "start_time": [r.info.start_time for r in runs],
        "end_time": [r.info.end_time for r in runs],
        "run_name": [r.info.run_name for r in runs],
    }
    extra: dict[str, list[Any]] = {}
    tags = [getattr(r.data.tags, "with_system", lambda t=r.data.tags: t)() for r in runs]
    for prefix, maps, missing in (("metrics", [r.data.metrics for r in runs], float("nan")),
                                  ("params", [r.data.params for r in runs], None),
                                  ("tags", tags, None)):  # fmt: skip
        keys = sorted({k for m in maps for k in m})
        for k in keys:
            extra[f"{prefix}.{k}"] = [m.get(k, missing) for m in maps]
    frame = pd.DataFrame({**cols, **extra}, index=range(n))
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    return frame


# -- logging -------------------------------------------------------------------------
def log_param(key: str, value: Any) -> Any:
    """Log a param of the active run; return the stored value."""
    return _client().log_param(_require_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params of the active run (nested mappings flattened with '.')."""
    _client().log_params(_require_run_id(), params)


def log_metric(
    key: str,
    value: Any,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool = False,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Log a metric point of the active run (or ``run_id``); cheap enough for inner loops.

    MLflow 3's ``model_id`` links the metric to a logged model, ``dataset`` (a
    ``vtrack.data`` Dataset) to the data it was computed on (see
    :func:`vtrack.fluent_mlflow.link_metric`).
    """
    if run_id is not None or model_id is not None or dataset is not None:
        from vtrack.fluent_mlflow import link_metric

        rid = run_id if run_id is not None else _require_run_id()
        link_metric(rid, key, model_id, dataset)
        _client().log_metric(rid, key, value, timestamp, step, synchronous)
        return
    s = _sess.state
    own = s.main_stack if get_ident() == _sess.MAIN_IDENT else s.stack()
    run = own[-1] if own else (s.main_stack[-1] if s.main_stack else None)  # s.current()
    if run is None:
        run = start_run()  # MLflow's rule: logging with no active run starts one
    (s.client or s.get_client()).log_metric(run.run_id, key, value, timestamp, step, synchronous)


def log_metrics(
    metrics: Mapping[str, Any],
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool = False,
) -> None:
    """Log several metrics of the active run at one step."""
    _client().log_metrics(_require_run_id(), metrics, step, timestamp, synchronous)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _client().set_tag(_require_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run."""
    _client().set_tags(_require_run_id(), tags)


def delete_tag(key: str) -> None:
    """Delete a tag of the active run."""
    _client().delete_tag(_require_run_id(), key)


# -- artifacts (the rules live in vtrack.artifacts) ----------------------------------
def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Log a local file to the active run as ``<artifact_path>/<file name>``."""
    _client().log_artifact(_require_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Log every file under a local folder to the active run, below ``artifact_path``."""
    _client().log_artifacts(_require_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Log a string as a UTF-8 text artifact of the active run."""
    _client().log_text(_require_run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    """Log a mapping as YAML (``.yaml``/``.yml``) or JSON artifact of the active run."""
    _client().log_dict(_require_run_id(), dictionary, artifact_file)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
) -> None:
    """Log a matplotlib or plotly figure of the active run (format by extension)."""
    _client().log_figure(_require_run_id(), figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    """Log a numpy array or PIL image of the active run as an image file.

    Either ``artifact_file``, or MLflow's image series: ``key`` (and ``step``, default 0)
    stores the image at ``images/<key>+step+<step>+timestamp+<ms>+<uuid>.png``, the layout
    MLflow's UI reads.
    """
    run_id = _require_run_id()
    if (artifact_file is None) == (key is None):
        raise ValidationError("log_image needs artifact_file or key (an image series), not both")
    if key is not None:
        from vtrack.fluent_mlflow import image_series_path

        artifact_file = image_series_path(key, step, timestamp)
    _client().log_image(run_id, image, str(artifact_file))


# -- dataset provenance (the rules live in vtrack.provenance) -------------------------
def log_input(
    data: Any,
    name: str | None = None,
    context: str | None = None,
    source: str | os.PathLike[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    exclude: Sequence[str] | None = None,
) -> DatasetInput:
    """Record a file, folder, DataFrame, array or remote URI as an input of the active run.

    Returns the entry written to ``.vtrack/inputs.yaml``. Logging the same name and
    context again with the same content records nothing; other content raises
    InputConflictError. ``exclude`` takes gitignore-style patterns for folders.
    """
    run_id = _require_run_id()
    if hasattr(data, "input_specs"):  # a vtrack.data Dataset (mlflow.log_input(ds, "train"))
        if context is None and name is not None:
            name, context = None, name  # MLflow's second positional argument is the context
        if name is not None or source is not None:
            raise ValidationError("a vtrack.data Dataset carries its own name and source")
        return _client().log_inputs(run_id, data.input_specs(context, tags))[0]
    return _client().log_input(run_id, data, name, context, source, tags, exclude=exclude)


def log_inputs(inputs: Iterable[Any]) -> list[DatasetInput]:
    """Record several inputs of the active run: data, or mappings of log_input's arguments."""
    return _client().log_inputs(_require_run_id(), inputs)


def audit(run: str | None = None) -> list[dict[str, Any]]:
    """Re-check a run's inputs against the disk (default: the active run); one dict per input.

    ``run`` is a run id or any run spec (prefix, name, ``@``). Each dict has the
    input's ``name``, ``context``, ``kind``, ``path``, ``status`` (unchanged, changed,
    missing, unverifiable) and, for folders, ``added``/``removed``/``modified`` files.
    """
    return _client().audit(run if run is not None else _require_run_id())


def lineage(path_or_digest: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Runs whose inputs include this file, folder or digest, newest first (plain dicts)."""
    return _client().lineage(path_or_digest)


def _artifact_location(
    artifact_uri: str | None, run_id: str | None, artifact_path: str | None
) -> tuple[str, str]:
    from vtrack import artifacts

    current = _sess.state.current()
    default = current.info.run_id if current is not None else None
    return artifacts.locate(_client().repo, artifact_uri, run_id, artifact_path, default)


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
) -> str:
    """Download the artifacts ``runs:/<run>/<path>`` (or run id and path); return the local path.

    ``<run>`` may be an id, a unique id prefix or a run name. Without a URI or run id
    the active run is used.
    """
    rid, path = _artifact_location(artifact_uri, run_id, artifact_path)
    return _client().download_artifacts(rid, path, dst_path)


def list_artifacts(
    artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None
) -> list[Any]:
    """FileInfo entries directly inside an artifact folder (of the active run by default)."""
    rid, path = _artifact_location(artifact_uri, run_id, artifact_path)
    return _client().list_artifacts(rid, path)


def load_text(
    artifact_uri: str | None = None, *, run_id: str | None = None, artifact_path: str | None = None
) -> str:
    """The text of the artifact file ``runs:/<run>/<path>`` (or run id and path)."""
    rid, path = _artifact_location(artifact_uri, run_id, artifact_path)
    return _client().load_text(rid, path)


def load_dict(
    artifact_uri: str | None = None, *, run_id: str | None = None, artifact_path: str | None = None
) -> Any:
    """The artifact file ``runs:/<run>/<path>`` (or run id and path) parsed as YAML or JSON."""
    rid, path = _artifact_location(artifact_uri, run_id, artifact_path)
    return _client().load_dict(rid, path)
