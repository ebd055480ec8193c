"""Plain data: runs, experiments, metrics. Frozen where possible; no storage logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ParamValue = Any  # int | float | bool | str | None

#: Tag of a run started by ``vtrack rerun``: the id of the run it re-executes.
RERUN_OF_TAG = "vtrack.rerun_of"
#: Tag ``vtrack rerun`` sets on that run: ``reproduced`` or ``diverged``.
RERUN_VERDICT_TAG = "vtrack.rerun_verdict"


class RunStatus(str, Enum):
    """Lifecycle of a run. Terminal states never go back to RUNNING on their own."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @classmethod
    def parse(cls, value: str | RunStatus) -> RunStatus:
        """Return the status named by ``value`` (case-insensitive)."""
        from vtrack.errors import ValidationError

        if isinstance(value, RunStatus):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValidationError(f"unknown run status {value!r}; expected one of {names}") from None

    @property
    def is_terminal(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Metric:
    """One point of a metric history."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class Param:
    """One logged parameter with its YAML scalar type kept."""

    key: str
    value: ParamValue


@dataclass(frozen=True)
class RunInfo:
    """Identity and lifecycle of a run."""

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int
    end_time: int | None
    user_id: str
    parent_run_id: str | None = None
    description: str | None = None
    lifecycle_stage: str = "active"
    commit: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def run_uuid(self) -> str:
        """MLflow's old name for ``run_id``."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    """What was logged: params (typed), latest metric values, tags."""

    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInputs:
    """Dataset provenance entries and artifact manifest of a run."""

    datasets: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """A run as read from the store."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)
