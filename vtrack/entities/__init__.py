"""Plain data: runs, experiments, metrics, record entries. Frozen where possible; no storage logic.

- :mod:`vtrack.entities.run` — runs, experiments, metrics, params, statuses, system tags;
- :mod:`vtrack.entities.record` — typed run-record entries (digests, dataset inputs, artifacts);
- :mod:`vtrack.entities.mlflow` — the MLflow-named entities scripts import from ``mlflow.entities``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vtrack.entities.record import (
    STORAGE_GIT,
    STORAGE_LARGE,
    ArtifactEntry,
    DatasetInput,
    Digest,
    RunInputs,
)
from vtrack.entities.run import (
    RERUN_OF_TAG,
    RERUN_VERDICT_TAG,
    SYSTEM_TAGS,
    Experiment,
    Metric,
    Param,
    ParamValue,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    SystemTags,
    system_tags,
)

__all__ = [
    "RERUN_OF_TAG",
    "RERUN_VERDICT_TAG",
    "STORAGE_GIT",
    "STORAGE_LARGE",
    "SYSTEM_TAGS",
    "ArtifactEntry",
    "Dataset",
    "DatasetInput",
    "Digest",
    "Experiment",
    "ExperimentTag",
    "LoggedModel",
    "Metric",
    "Param",
    "ParamValue",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "SystemTags",
    "ViewType",
    "system_tags",
]

if TYPE_CHECKING:
    from vtrack.entities.mlflow import Dataset, ExperimentTag, LoggedModel, RunTag, ViewType

_MLFLOW_NAMES = frozenset({"Dataset", "ExperimentTag", "LoggedModel", "RunTag", "ViewType"})


def __getattr__(name: str) -> Any:
    """The MLflow-named entities, imported on first use (a command that only reads runs
    does not build their classes)."""
    if name in _MLFLOW_NAMES:
        from vtrack.entities import mlflow

        return getattr(mlflow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
