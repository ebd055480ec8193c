"""The ``vtrack://`` MLflow tracking store: MLflow's server, UI and clients on a vtrack store.

Registered as MLflow's ``mlflow.tracking_store`` entry point ``vtrack`` (pyproject; its
target is :func:`vtrack.integrations.mlflow_plugin.vtrack_store`), so
``mlflow server --backend-store-uri vtrack:///path/to/repo`` and
``MlflowClient("vtrack:///path/to/repo")`` read the vtrack store at that path
(``vtrack://`` alone: the current folder's). MLflow imports this module itself; vtrack
never does.

What MLflow 3.17's UI and client call for runs is implemented over
:class:`~vtrack.client.TrackingClient`: searching experiments (MLflow's filter) and runs
(vtrack's MLflow filter grammar, offset page tokens), getting an experiment (by id or
name) and a run, metric histories (paged) and the bulk-interval endpoint the UI's
charts call. Writes go through the client's validation where vtrack can do them safely:
creating experiments and runs, ``log_batch``/``log_metric``/``log_param``/``set_tag``,
``update_run_info`` (end a run, rename it, which is what ``set_terminated`` sends),
deleting and restoring runs; params written as text come back typed as
``import-mlflow`` types them. A run created through this store is started by MLflow's
server process: its code snapshot is the repository's working tree at that moment and
its command and environment are the server's, not the training script's. Everything else (traces,
logged-model writes, prompts, datasets, scorers, …) raises ``MlflowException``
"not supported by the vtrack store".
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException  # noqa: TID253 - MLflow loads this module
from mlflow.protos.databricks_pb2 import (  # noqa: TID253
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList  # noqa: TID253
from mlflow.store.tracking.abstract_store import AbstractStore  # noqa: TID253
from mlflow.utils.search_utils import SearchUtils  # noqa: TID253

from vtrack.client import TrackingClient
from vtrack.entities import Metric
from vtrack.errors import ExperimentNotFoundError, RunNotFoundError, VtrackError
from vtrack.integrations import mlflow_entities as conv
from vtrack.integrations.mlflow_entities import not_supported
from vtrack.mlflow_io.convert import typed_param


def store_path(store_uri: str | None) -> str | None:
    """The repository path of ``vtrack:///path`` (None for ``vtrack://``: the current folder)."""
    text = store_uri or ""
    if not text.startswith("vtrack:"):
        raise MlflowException(f"not a vtrack store URI: {text!r} (use vtrack:///path/to/repo)",
                              error_code=INVALID_PARAMETER_VALUE)  # fmt: skip
    path = text[len("vtrack:") :]
    if path.startswith("//"):
        path = path[2:]
    return path or None


def _translate(exc: VtrackError) -> MlflowException:
    code = INVALID_PARAMETER_VALUE
    if isinstance(exc, (RunNotFoundError, ExperimentNotFoundError)):
        code = RESOURCE_DOES_NOT_EXIST
    return MlflowException(str(exc), error_code=code)


class VtrackStore(AbstractStore):
    """An MLflow tracking store reading (and where safe, writing) a vtrack store."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.client = TrackingClient(store_path(store_uri))
        self.artifact_uri = artifact_uri

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except VtrackError as exc:
            raise _translate(exc) from exc

    # -- experiments ------------------------------------------------------------------
    def search_experiments(self, view_type: Any = 1, max_results: int | None = 1000,
                           filter_string: str | None = None, order_by: Any = None,
                           page_token: str | None = None) -> PagedList:  # fmt: skip
        exps = self._call(self.client.search_experiments, view_type=int(view_type or 1),
                          filter_string=filter_string or "", order_by=list(order_by or []))  # fmt: skip
        page, token = _page(exps, max_results, page_token)
        return PagedList([conv.experiment(e) for e in page], token)

    def get_experiment(self, experiment_id: str) -> Any:
        return conv.experiment(self._call(self.client.get_experiment, str(experiment_id)))

    def get_experiment_by_name(self, experiment_name: str) -> Any:
        exp = self._call(self.client.get_experiment_by_name, experiment_name)
        return None if exp is None else conv.experiment(exp)

    def create_experiment(self, name: str, artifact_location: Any = None,
                          tags: Any = None) -> str:  # fmt: skip
        tag_map = {t.key: t.value for t in tags or []}
        return str(self._call(self.client.create_experiment, name, tags=tag_map))

    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        self._call(self.client.set_experiment_tag, str(experiment_id), tag.key, tag.value)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call(self.client.delete_experiment, str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self._call(self.client.restore_experiment, str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call(self.client.rename_experiment, str(experiment_id), new_name)

    # -- runs -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Any:
        return conv.run(self.client, self._call(self.client.get_run, run_id))

    def _search_runs(self, experiment_ids: Any, filter_string: str, run_view_type: Any,
                     max_results: int | None, order_by: Any,
                     page_token: str | None) -> tuple[list[Any], str | None]:  # fmt: skip
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        limit = int(max_results or 1000)
        runs, total = self._call(
            self.client.search_runs_page, [str(e) for e in experiment_ids or []] or None,
            filter_string or "", list(order_by or []), offset=offset, limit=limit,
            run_view_type=int(run_view_type or 1),
        )  # fmt: skip
        token = SearchUtils.create_page_token(offset + limit) if offset + limit < total else None
        return [conv.run(self.client, r) for r in runs], token

    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList:  # fmt: skip
        points = self._call(self.client.get_metric_history, run_id, metric_key)
        ordered = sorted(points, key=lambda m: (m.timestamp, m.step, m.value))
        page, token = _page(ordered, max_results, page_token)
        return PagedList([conv.metric(m) for m in page], token)

    def get_metric_history_bulk_interval(self, run_ids: list[str], metric_key: str,
                                         max_results: int, start_step: int | None,
                                         end_step: int | None) -> Any:  # fmt: skip
        # MLflow's own sampling over get_metric_history (min and max steps kept)
        return super().get_metric_history_bulk_interval(run_ids, metric_key, max_results,
                                                        start_step, end_step)  # fmt: skip

    def create_run(self, experiment_id: str, user_id: str, start_time: int, tags: Any,
                   run_name: str | None) -> Any:  # fmt: skip
        tag_map = {t.key: t.value for t in tags or []}
        parent = tag_map.pop("mlflow.parentRunId", None)
        name = run_name or tag_map.pop("mlflow.runName", None)
        tag_map.pop("mlflow.runName", None)
        tag_map.pop("mlflow.user", None)
        description = tag_map.pop("mlflow.note.content", None)
        created = self._call(self.client.create_run, str(experiment_id), start_time=start_time,
                             tags=tag_map, run_name=name, parent_run_id=parent,
                             description=description)  # fmt: skip
        self.client.detach(created.info.run_id)  # later calls (other requests) join it
        return conv.run(self.client, self.client.get_run(created.info.run_id))

    def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
        self._call(
            self.client.log_batch, run_id,
            metrics=[Metric(m.key, m.value, m.timestamp, m.step) for m in metrics or []],
            params={p.key: typed_param(p.value) for p in params or []},
            tags={t.key: t.value for t in tags or []},
        )  # fmt: skip
        self.client.detach(run_id)

    def log_metric(self, run_id: str, metric: Any) -> None:
        self.log_batch(run_id, [metric], [], [])

    def log_param(self, run_id: str, param: Any) -> None:
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id: str, tag: Any) -> None:
        self.log_batch(run_id, [], [], [tag])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call(self.client.delete_tag, run_id, key)
        self.client.detach(run_id)

    def update_run_info(self, run_id: str, run_status: Any, end_time: int | None,
                        run_name: str | None) -> Any:  # fmt: skip
        from mlflow.entities import RunStatus  # noqa: TID253

        status = run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)
        if run_name:
            self._call(self.client.update_run, run_id, name=run_name)
        if status != "RUNNING":
            self._call(self.client.set_terminated, run_id, status, end_time)
        else:
            self.client.detach(run_id)
        return conv.run(self.client, self.client.get_run(run_id)).info

    def delete_run(self, run_id: str) -> None:
        self._call(self.client.delete_run, run_id)

    def restore_run(self, run_id: str) -> None:
        self._call(self.client.restore_run, run_id)

    # -- what MLflow has and vtrack does not --------------------------------------------------
    def search_logged_models(self, *args: Any, **kw: Any) -> Any:
        return PagedList([], None)  # the UI asks on every experiment page: none to show

    def search_traces(self, *args: Any, **kw: Any) -> Any:
        return [], None  # the UI asks on every experiment page: none to show

    def log_inputs(self, run_id: str, datasets: Any = None, models: Any = None) -> None:
        raise not_supported("log_inputs (record inputs with vtrack's log_input)")

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        raise not_supported("linking traces to a run")


def _refuse(name: str) -> Any:
    def refused(self: VtrackStore, *args: Any, **kw: Any) -> Any:
        raise not_supported(name)

    refused.__name__ = name
    refused.__doc__ = f"Raises MlflowException: {name} is not supported by the vtrack store."
    return refused


def _install_refusals() -> None:
    """Every AbstractStore method this class does not implement and whose MLflow body only
    raises "not implemented" raises the clear "not supported by the vtrack store" error."""
    import inspect

    for name, member in vars(AbstractStore).items():
        if name.startswith("_") or name in vars(VtrackStore) or not inspect.isfunction(member):
            continue
        try:
            body = inspect.getsource(member)
        except (OSError, TypeError):
            continue
        if "NotImplementedError" in body or "MlflowNotImplementedException" in body:
            setattr(VtrackStore, name, _refuse(name))


_install_refusals()


def _page(
    items: list[Any], max_results: int | None, page_token: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``items`` from MLflow's offset page token, and the next token."""
    offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    if not max_results:
        return items[offset:], None
    end = offset + int(max_results)
    token = SearchUtils.create_page_token(end) if end < len(items) else None
    return items[offset:end], token
