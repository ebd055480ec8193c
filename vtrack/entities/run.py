"""Runs, experiments, metrics and params as read from the store: plain frozen data."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from vtrack.entities.record import RunInputs

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
            raise ValidationError(
                f"unknown run status {value!r}; expected one of {names}"
            ) from None

    @property
    def is_terminal(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self is not RunStatus.RUNNING


class Metric(NamedTuple):
    """One point of a metric history: immutable, compared and hashed by its four fields.

    A named tuple rather than a frozen dataclass: a history of 100,000 points is built as
    100,000 of these (:meth:`from_columns`), and a frozen dataclass's ``__init__`` (four
    ``object.__setattr__`` calls in Python) made that 3-4x slower than reading the points.
    """

    key: str
    value: float
    timestamp: int
    step: int

    @classmethod
    def from_columns(
        cls, key: str, steps: Iterable[int], timestamps: Iterable[int], values: Iterable[float]
    ) -> list[Metric]:
        """The points of one history from its columns, in order (no Python frame per point).

        The cyclic garbage collector is paused while they are made: the points hold no
        references to anything that could form a cycle, and at 100,000 points its passes
        over the growing list were a third of the time.
        """
        make = partial(tuple.__new__, cls)
        paused = gc.isenabled()
        gc.disable()
        try:
            return list(map(make, zip(repeat(key), values, timestamps, steps)))
        finally:
            if paused:
                gc.enable()


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

    @property
    def artifact_uri(self) -> str:
        """Where the run's artifacts are: ``runs:/<run_id>`` (what download_artifacts takes)."""
        return f"runs:/{self.run_id}"


@dataclass(frozen=True)
class RunData:
    """What was logged: params (typed), latest metric values, tags."""

    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """A run as read from the store."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def __post_init__(self) -> None:
        # MLflow's system tags are readable by key, derived from the run's own fields.
        if not isinstance(self.data.tags, SystemTags):
            object.__setattr__(self.data, "tags", SystemTags(self.data.tags, self.info))


def fresh_copy(run: Run) -> Run:
    """A copy of ``run`` whose params, metrics and tags dicts are new (the caller's own to
    change); info and inputs, which are frozen, are shared.

    Equal to ``Run(run.info, RunData(dict(...), dict(...), dict(...)), run.inputs)`` but
    without the dataclass constructors (a third of the cost): a search hands out 1,000
    of these per page from runs it keeps built.
    """
    data = run.data
    new_data = object.__new__(RunData)
    new_data.__dict__.update(
        params=dict(data.params), metrics=dict(data.metrics), tags=SystemTags(data.tags, run.info)
    )
    new = object.__new__(Run)
    new.__dict__.update(info=run.info, data=new_data, inputs=run.inputs)
    return new


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)


#: MLflow system tag -> how it is derived from a run's own fields.
SYSTEM_TAGS = (
    "mlflow.runName",
    "mlflow.user",
    "mlflow.parentRunId",
    "mlflow.note.content",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlflow.source.git.branch",
    "mlflow.source.git.repoURL",
)


def system_tags(info: RunInfo) -> dict[str, str]:
    """MLflow's ``mlflow.*`` system tags of a run, derived from ``info`` (absent fields omitted)."""
    src = info.source or {}
    pairs = {
        "mlflow.runName": info.run_name,
        "mlflow.user": info.user_id or None,
        "mlflow.parentRunId": info.parent_run_id,
        "mlflow.note.content": info.description,
        "mlflow.source.name": src.get("entry_point"),
        "mlflow.source.type": "LOCAL" if src.get("entry_point") else None,
        "mlflow.source.git.commit": src.get("commit"),
        "mlflow.source.git.branch": src.get("branch"),
        "mlflow.source.git.repoURL": src.get("remote_url"),
    }
    return {k: str(v) for k, v in pairs.items() if v is not None and v != ""}


class SystemTags(dict[str, str]):
    """A run's tags, where MLflow's ``mlflow.*`` system tags can also be read by key.

    Iterating, ``len``, ``items()`` and equality see only the tags the run logged, so
    vtrack's own views and YAML are unchanged; ``tags["mlflow.runName"]``,
    ``tags.get("mlflow.parentRunId")`` and ``"mlflow.user" in tags`` see the derived
    system tags too (a logged tag of the same name wins).
    """

    def __init__(self, tags: dict[str, str], info: RunInfo) -> None:
        super().__init__(tags)
        self._info = info

    def system(self) -> dict[str, str]:
        """The derived ``mlflow.*`` tags alone."""
        return system_tags(self._info)

    def with_system(self) -> dict[str, str]:
        """A plain dict of the system tags overlaid by the logged tags (MLflow's ``data.tags``)."""
        return {**self.system(), **self}

    def __missing__(self, key: str) -> str:
        if isinstance(key, str) and key.startswith("mlflow."):
            derived = self.system()
            if key in derived:
                return derived[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if super().__contains__(key):
            return True
        return isinstance(key, str) and key.startswith("mlflow.") and key in self.system()

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))
