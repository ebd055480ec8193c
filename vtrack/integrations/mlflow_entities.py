"""vtrack entities as MLflow's own entities, for the ``vtrack://`` tracking store."""

from __future__ import annotations

from typing import Any

from mlflow import entities as me  # noqa: TID253 - only MLflow's plugin loader imports this
from mlflow.exceptions import MlflowException  # noqa: TID253
from mlflow.protos.databricks_pb2 import NOT_IMPLEMENTED  # noqa: TID253

from vtrack.client import TrackingClient
from vtrack.entities import Experiment, Metric, Run, system_tags
from vtrack.mlflow_io.convert import mlflow_dataset, param_text

#: The scheme of the artifact URIs of runs served by the vtrack store.
ARTIFACT_SCHEME = "vtrack-artifacts"


def not_supported(what: str) -> MlflowException:
    """The error for an MLflow call the vtrack store does not implement."""
    return MlflowException(
        f"{what} is not supported by the vtrack store", error_code=NOT_IMPLEMENTED
    )


def artifact_uri(run_id: str, repo_path: str) -> str:
    """The artifact URI of run ``run_id`` of the vtrack repository at ``repo_path``."""
    return f"{ARTIFACT_SCHEME}:{run_id}@{repo_path}"


def experiment(exp: Experiment) -> Any:
    """MLflow's ``Experiment`` of a vtrack experiment."""
    return me.Experiment(
        experiment_id=exp.experiment_id, name=exp.name,
        artifact_location=f"vtrack-experiment:{exp.experiment_id}",
        lifecycle_stage=exp.lifecycle_stage,
        tags=[me.ExperimentTag(k, v) for k, v in sorted(exp.tags.items())],
        creation_time=exp.creation_time, last_update_time=exp.last_update_time,
    )  # fmt: skip


def metric(m: Metric) -> Any:
    """MLflow's ``Metric`` of one history point."""
    return me.Metric(m.key, m.value, int(m.timestamp), int(m.step))


def run(client: TrackingClient, r: Run) -> Any:
    """MLflow's ``Run`` of a vtrack run: the system tags derived, each metric's latest
    point with its step and timestamp (MLflow's rule), dataset inputs."""
    info = r.info
    tags = {**system_tags(info), **dict(r.data.tags)}
    metrics = [_latest(client, info.run_id, k, v) for k, v in sorted(r.data.metrics.items())]
    mi = me.RunInfo(
        run_id=info.run_id, experiment_id=info.experiment_id, user_id=info.user_id,
        status=info.status, start_time=info.start_time, end_time=info.end_time,
        lifecycle_stage=info.lifecycle_stage,
        artifact_uri=artifact_uri(info.run_id, _root(client)),
        run_name=info.run_name,
    )  # fmt: skip
    data = me.RunData(
        metrics=metrics,
        params=[me.Param(k, param_text(v)) for k, v in sorted(r.data.params.items())],
        tags=[me.RunTag(k, v) for k, v in sorted(tags.items())],
    )
    inputs = []
    for entry in r.inputs.datasets:
        fields, input_tags = mlflow_dataset(entry.to_record())
        inputs.append(me.DatasetInput(me.Dataset(**fields),
                                      [me.InputTag(k, v) for k, v in input_tags.items()]))  # fmt: skip
    return me.Run(mi, data, me.RunInputs(dataset_inputs=inputs))


def _latest(client: TrackingClient, run_id: str, key: str, value: float) -> Any:
    """The latest point of ``key`` (highest step, then timestamp), with ``value`` as vtrack
    holds it."""
    points = client.get_metric_history(run_id, key)
    if not points:
        return me.Metric(key, value, 0, 0)
    last = max(points, key=lambda m: (m.step, m.timestamp))
    return me.Metric(key, value, int(last.timestamp), int(last.step))


def _root(client: TrackingClient) -> str:
    """The path the store's artifact repository opens (its worktree, or a bare git dir)."""
    loc = client.store.location
    return str(loc.worktree or loc.git_dir)
