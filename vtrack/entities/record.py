"""Typed entries of the run record: digests, dataset inputs and artifacts (frozen).

Their field names are the keys of ``inputs.yaml`` and ``artifacts.yaml``; each entry also
reads as its record form (a Mapping), so code written against the dicts keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

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


_KNOWN: dict[type, frozenset[str]] = {}


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
        known = _KNOWN.get(cls)
        if known is None:  # the recorded field names of a class, computed once
            known = _KNOWN[cls] = frozenset(f.name for f in fields(cls)) - cls.NOT_RECORDED  # type: ignore[arg-type]
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

    def as_record(self) -> Mapping[str, Any]:
        """The record form, computed once and shared: read it, never change it (what a
        JSON encoder takes; :meth:`to_record` gives a copy to keep)."""
        return self._record()

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
