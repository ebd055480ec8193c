"""Plain data: runs, experiments, metrics. Frozen where possible; no storage logic."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

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


#: Where an artifact's bytes are kept: a git blob in the run's tree, or the large-object store.
STORAGE_GIT = "git"
STORAGE_LARGE = "large"


@dataclass(frozen=True)
class Digest:
    """A content digest: ``algorithm`` (``xxh3-128``) and its hex value.

    ``str(digest)`` is the record form, ``xxh3-128:<hex>``. Parsing is lenient (a record
    written by another version must stay readable); :func:`vtrack.hashing.parse_digest`
    is the strict check of vtrack's own digests.
    """

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str | Digest) -> Digest:
        """The digest written as ``text`` (``algorithm:hex``; no colon: an unnamed algorithm)."""
        if isinstance(text, Digest):
            return text
        if not isinstance(text, str) or not text:
            from vtrack.errors import ValidationError

            raise ValidationError(f"digest {text!r} must be a non-empty string like 'xxh3-128:…'")
        algorithm, sep, hexpart = text.partition(":")
        return cls(algorithm, hexpart) if sep else cls("", text)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}" if self.algorithm else self.hex

    def short(self, length: int = 12) -> str:
        """The first ``length`` hex characters (what tables show)."""
        return self.hex[:length]


def _record_value(value: Any) -> Any:
    if isinstance(value, Digest):
        return str(value)
    if isinstance(value, tuple):
        return [_record_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _record_value(v) for k, v in value.items()}
    return value


class _RecordEntry(Mapping[str, Any]):
    """A typed record entry that also reads as its record form (``entry["digest"]``).

    The field names *are* the record's keys (``inputs.yaml``, ``artifacts.yaml``): they
    are named once, here; :mod:`vtrack.store.record` converts with :meth:`to_record` and
    :meth:`from_record` and names none of them. Keys in :attr:`ALWAYS` are written even
    when None; other fields only when set. Keys this version does not know are kept in
    ``extra`` as they were read, so a newer record passes through unchanged.
    """

    ALWAYS: ClassVar[frozenset[str]] = frozenset()
    DIGESTS: ClassVar[frozenset[str]] = frozenset()
    NOT_RECORDED: ClassVar[frozenset[str]] = frozenset({"extra"})
    extra: Mapping[str, Any]

    def to_record(self) -> dict[str, Any]:
        """The entry as the record stores it (YAML/JSON-ready; digests as strings)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in self.NOT_RECORDED:
                continue
            value = getattr(self, f.name)
            if value is not None or f.name in self.ALWAYS:
                out[f.name] = _record_value(value)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    @classmethod
    def _fields_from(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        known = {f.name for f in fields(cls)} - cls.NOT_RECORDED  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in record.items():
            if k in known:
                if k in cls.DIGESTS and v is not None:
                    v = Digest.parse(v) if isinstance(v, str) and v else None
                elif isinstance(v, list):
                    v = tuple(v)
                kw[k] = v
            else:
                extra[str(k)] = v
        kw["extra"] = extra
        return kw

    def _record(self) -> dict[str, Any]:
        cached: dict[str, Any] | None = self.__dict__.get("_record_cache")
        if cached is None:
            cached = self.to_record()
            object.__setattr__(self, "_record_cache", cached)
        return cached

    def __getitem__(self, key: str) -> Any:
        return self._record()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._record())

    def __len__(self) -> int:
        return len(self._record())


@dataclass(frozen=True, eq=False)
class DatasetInput(_RecordEntry):
    """One input of a run (``inputs.yaml``): what data it was, where from, its digest.

    ``kind`` is ``file``, ``folder``, ``dataframe``, ``array`` or ``uri``; which optional
    fields a kind sets is documented in docs/concepts/provenance.md. ``files`` (a folder's
    ``(path, size, digest)`` list) exists only between describing and recording: the
    record keeps it as the manifest TSV named by ``manifest``.
    """

    ALWAYS: ClassVar[frozenset[str]] = frozenset(
        {"name", "context", "source", "kind", "digest", "size", "format", "verifiable", "tags"}
    )
    DIGESTS: ClassVar[frozenset[str]] = frozenset({"digest", "source_digest"})

    name: str
    context: str | None = None
    source: str | None = None
    kind: str = "file"
    digest: Digest | None = None
    size: int | None = None
    format: str | None = None
    verifiable: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    file_count: int | None = None
    schema: Mapping[str, Any] | None = None
    rows: int | None = None
    source_digest: Digest | None = None
    source_size: int | None = None
    exclude: tuple[str, ...] | None = None
    manifest: str | None = None
    repo_path: str | None = None
    files: tuple[tuple[str, int, str], ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DatasetInput:
        """The entry stored as ``record`` (an element of ``inputs.yaml``)."""
        kw = cls._fields_from(record)
        kw.setdefault("name", "")
        kw["tags"] = dict(kw.get("tags") or {})
        if kw.get("files") is not None:
            kw["files"] = tuple(tuple(f) for f in kw["files"])
        return cls(**kw)

    @property
    def key(self) -> tuple[str, str | None]:
        """The input's identity in a run: ``(name, context)``."""
        return (self.name, self.context)

    @property
    def dataset(self) -> DatasetInput:
        """MLflow's shape (``run.inputs.dataset_inputs[i].dataset.digest``): the entry itself."""
        return self


@dataclass(frozen=True, eq=False)
class ArtifactEntry(_RecordEntry):
    """One artifact of a run (``artifacts.yaml``): its digest, size and where it is kept.

    ``storage`` is ``git`` (a blob in the run's tree, ``blob`` its sha) or ``large`` (the
    content-addressed object store, found by ``digest``). ``path`` is the manifest's key,
    not part of the stored value.
    """

    ALWAYS: ClassVar[frozenset[str]] = frozenset({"digest", "size", "storage"})
    DIGESTS: ClassVar[frozenset[str]] = frozenset({"digest"})
    NOT_RECORDED: ClassVar[frozenset[str]] = frozenset({"extra", "path"})

    path: str
    digest: Digest | None = None
    size: int = 0
    storage: str = STORAGE_GIT
    blob: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, path: str, record: Mapping[str, Any]) -> ArtifactEntry:
        """The entry stored under ``path`` in ``artifacts.yaml``."""
        kw = cls._fields_from(record)
        kw["size"] = int(kw.get("size") or 0)
        return cls(path=path, **kw)

    @property
    def is_large(self) -> bool:
        """True when the content lives in the large-object store, not in git."""
        return self.storage == STORAGE_LARGE


@dataclass(frozen=True)
class RunInputs:
    """Dataset provenance entries and artifact manifest of a run, typed."""

    datasets: list[DatasetInput] = field(default_factory=list)
    artifacts: dict[str, ArtifactEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # entries given in their record form (mappings) become typed entries
        typed = RunInputs.from_record(self.datasets, self.artifacts)
        object.__setattr__(self, "datasets", typed.datasets)
        object.__setattr__(self, "artifacts", typed.artifacts)

    @staticmethod
    def from_record(inputs: Iterable[Any], artifacts: Mapping[str, Any]) -> RunInputs:
        """Typed entries from the record form (``inputs.yaml`` list, ``artifacts.yaml`` map).

        An element that is not a mapping (a damaged or hand-edited record) is left out
        rather than making the run unreadable.
        """
        datasets = [
            e if isinstance(e, DatasetInput) else DatasetInput.from_record(e)
            for e in inputs or ()
            if isinstance(e, Mapping)
        ]
        entries = {
            str(p): e if isinstance(e, ArtifactEntry) else ArtifactEntry.from_record(str(p), e)
            for p, e in (artifacts or {}).items()
            if isinstance(e, Mapping)
        }
        out = object.__new__(RunInputs)
        object.__setattr__(out, "datasets", datasets)
        object.__setattr__(out, "artifacts", entries)
        return out


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


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)


# --- MLflow-named entities (``import vtrack as mlflow`` scripts use these names) ------------


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
