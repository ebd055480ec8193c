"""MLflow-named entities (``import vtrack as mlflow`` scripts use these names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtrack.entities.run import Metric


class ViewType:
    """MLflow's lifecycle filter for searches: ``ACTIVE_ONLY`` (1), ``DELETED_ONLY`` (2), ``ALL`` (3).

    Every search in vtrack takes these ints, their names, or the names in any case.
    """

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    _NAMES = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}

    @classmethod
    def from_string(cls, view_str: str) -> int:
        """The int for ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL`` (case-insensitive)."""
        from vtrack.errors import ValidationError

        for number, name in cls._NAMES.items():
            if str(view_str).upper() == name:
                return number
        raise ValidationError(
            f"unknown view type {view_str!r}; expected ACTIVE_ONLY, DELETED_ONLY or ALL"
        )

    @classmethod
    def to_string(cls, view_type: int) -> str:
        """The name of ``view_type``."""
        from vtrack.errors import ValidationError

        try:
            return cls._NAMES[int(view_type)]
        except (KeyError, ValueError, TypeError):
            raise ValidationError(f"unknown view type {view_type!r}; expected 1, 2 or 3") from None

    @classmethod
    def name_of(cls, view_type: str | int) -> str:
        """The name of ``view_type`` given as an int or a name in any case."""
        if isinstance(view_type, int) and not isinstance(view_type, bool):
            return cls.to_string(view_type)
        return cls.to_string(cls.from_string(str(view_type)))


@dataclass(frozen=True)
class RunTag:
    """One run tag (MLflow's ``RunTag``; a run's ``data.tags`` is a plain dict)."""

    key: str
    value: str


@dataclass(frozen=True)
class ExperimentTag:
    """One experiment tag (MLflow's ``ExperimentTag``)."""

    key: str
    value: str


@dataclass(frozen=True)
class Dataset:
    """MLflow's dataset entity: what ``mlflow.data`` datasets log, as plain strings.

    ``digest`` is vtrack's content digest of the data (``xxh3-128:…``); ``source`` a
    JSON document naming where the data came from; ``schema`` and ``profile`` JSON text.
    """

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class LoggedModel:
    """MLflow 3's ``LoggedModel``: a model logged by a run, with a stable ``model_id``.

    ``artifact_location`` is the ``runs:/<run>/<path>`` URI of the model folder;
    ``model_uri`` is ``models:/<model_id>``. ``step`` is the checkpoint's step (0 when
    none was given); ``metrics`` the run's metric points logged with this ``model_id``.
    """

    model_id: str
    name: str
    experiment_id: str
    source_run_id: str
    artifact_path: str
    flavor: str
    creation_timestamp: int
    step: int = 0
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    status: str = "READY"

    @property
    def artifact_location(self) -> str:
        """``runs:/<run>/<path>`` of the model folder."""
        return f"runs:/{self.source_run_id}/{self.artifact_path}"

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``."""
        return f"models:/{self.model_id}"
