"""Plain data: runs, experiments, metrics, record entries. Frozen where possible; no storage logic.

- :mod:`vtrack.entities.run` — runs, experiments, metrics, params, statuses, system tags;
- :mod:`vtrack.entities.record` — typed run-record entries (digests, dataset inputs, artifacts);
- :mod:`vtrack.entities.mlflow` — the MLflow-named entities scripts import from ``mlflow.entities``.
"""

from __future__ import annotations

from vtrack.entities.mlflow import Dataset, ExperimentTag, LoggedModel, RunTag, ViewType
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
