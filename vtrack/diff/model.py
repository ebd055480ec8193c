"""The run-diff model: what changed between run A and run B, section by section (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.entities import DatasetInput, Run

from vtrack.diff.values import SECTIONS, Direction, Kind, digest_text, json_number

#: Keys of the file lists of a changed folder input in ``to_dict()`` (None without detail).
_FILE_KEYS = ("added", "removed", "modified")


@dataclass(frozen=True)
class Change:
    """One keyed value in two runs: ``old`` in run A, ``new`` in run B (None when absent)."""

    key: str
    old: Any
    new: Any
    kind: Kind

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "kind": self.kind,
            "old": json_number(self.old),
            "new": json_number(self.new),
        }


@dataclass(frozen=True)
class MetricChange:
    """A metric's latest value in two runs with the absolute and relative change.

    ``delta`` is ``new - old``; ``relative`` is ``delta / |old|`` (None when either
    side is missing, not finite, or ``old`` is 0). ``improved`` says whether B is
    better than A for metrics with a known direction (None otherwise or unchanged).
    """

    key: str
    old: float | None
    new: float | None
    kind: Kind
    delta: float | None = None
    relative: float | None = None
    direction: Direction | None = None
    improved: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "kind": self.kind,
            "old": json_number(self.old),
            "new": json_number(self.new),
            "delta": json_number(self.delta),
            "relative": json_number(self.relative),
            "direction": self.direction,
            "improved": self.improved,
        }


@dataclass(frozen=True)
class FolderFiles:
    """The files of a folder input that differ between two runs (relative posix paths).

    A rename shows as one removed and one added path; ``modified`` files are in both
    with other content.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when no file differs."""
        return not (self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "modified": list(self.modified),
        }


def compare_manifests(
    old: Iterable[tuple[str, int, str]], new: Iterable[tuple[str, int, str]]
) -> FolderFiles:
    """The files that differ between two folder manifests of ``(relpath, size, digest)``."""
    a = {rel: (int(size), digest) for rel, size, digest in old}
    b = {rel: (int(size), digest) for rel, size, digest in new}
    return FolderFiles(
        added=tuple(sorted(b.keys() - a.keys())),
        removed=tuple(sorted(a.keys() - b.keys())),
        modified=tuple(sorted(k for k in a.keys() & b.keys() if a[k] != b[k])),
    )


@dataclass(frozen=True)
class DatasetChange:
    """A dataset input (by name and context) in two runs, compared by digest.

    ``files`` names the files that differ when both sides are folders whose manifests
    were compared; None when there is no per-file detail.
    """

    name: str
    context: str | None
    old: DatasetInput | None
    new: DatasetInput | None
    kind: Kind
    files: FolderFiles | None = None

    @property
    def old_digest(self) -> str | None:
        """The digest run A saw."""
        return digest_text(self.old)

    @property
    def new_digest(self) -> str | None:
        """The digest run B saw."""
        return digest_text(self.new)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "context": self.context,
            "kind": self.kind,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "old_source": None if self.old is None else self.old.source,
            "new_source": None if self.new is None else self.new.source,
            **(self.files.to_dict() if self.files is not None else dict.fromkeys(_FILE_KEYS)),
        }


@dataclass(frozen=True)
class ArtifactChange:
    """An artifact path in two runs, compared by digest."""

    path: str
    old_digest: str | None
    new_digest: str | None
    old_size: int | None
    new_size: int | None
    kind: Kind

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "kind": self.kind,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "old_size": self.old_size,
            "new_size": self.new_size,
        }


@dataclass(frozen=True)
class FileStat:
    """One changed file between two code snapshots (``git diff --numstat``).

    ``added``/``deleted`` are line counts, None for binary files. ``old_path`` is
    set for renames.
    """

    path: str
    added: int | None
    deleted: int | None
    old_path: str | None = None

    @property
    def binary(self) -> bool:
        """True when git could not count lines (binary content)."""
        return self.added is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "old_path": self.old_path,
            "added": self.added,
            "deleted": self.deleted,
            "binary": self.binary,
        }


@dataclass(frozen=True)
class CodeDiff:
    """The code section: source facts of both runs and the files that differ.

    ``captured`` is False when either run has no code snapshot (then ``files`` is
    empty and says nothing). ``patch`` holds the full patch when the caller asked
    for it.
    """

    source: tuple[Change, ...] = ()
    files: tuple[FileStat, ...] = ()
    captured: bool = True
    patch: str | None = None

    @property
    def empty(self) -> bool:
        """True when no file and no source fact differs."""
        return not self.files and all(c.kind == "unchanged" for c in self.source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "captured": self.captured,
            "source": [c.to_dict() for c in self.source],
            "files": [f.to_dict() for f in self.files],
            "insertions": sum(f.added or 0 for f in self.files),
            "deletions": sum(f.deleted or 0 for f in self.files),
        }
        if self.patch is not None:
            out["patch"] = self.patch
        return out


def parse_numstat(text: str) -> tuple[FileStat, ...]:
    """Parse ``git diff --numstat -z`` output (renames included) into FileStats."""
    out: list[FileStat] = []
    parts = text.split("\0")
    i = 0
    while i < len(parts):
        head = parts[i]
        i += 1
        if not head.strip():
            continue
        fields = head.split("\t", 2)
        if len(fields) < 3:
            continue
        a, d, path = fields
        old_path = None
        if path == "" and i + 1 < len(parts):  # rename: "a\td\t" NUL old NUL new
            old_path, path = parts[i], parts[i + 1]
            i += 2
        added = None if a == "-" else int(a)
        deleted = None if d == "-" else int(d)
        out.append(FileStat(path=path, added=added, deleted=deleted, old_path=old_path))
    return tuple(out)


@dataclass(frozen=True)
class RunRef:
    """Who is compared: id, name and run commit of one side."""

    run_id: str
    run_name: str
    commit: str | None

    @classmethod
    def of(cls, run: Run) -> RunRef:
        """The reference for ``run``."""
        return cls(run.info.run_id, run.info.run_name, run.info.commit)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"run_id": self.run_id, "run_name": self.run_name, "commit": self.commit}


@dataclass(frozen=True)
class RunDiff:
    """Every difference between run A and run B, by section (see :data:`SECTIONS`).

    Lists hold only differing entries unless built with ``include_unchanged=True``.
    ``code`` is None when the caller did not supply a code section.
    """

    a: RunRef
    b: RunRef
    params: tuple[Change, ...] = ()
    metrics: tuple[MetricChange, ...] = ()
    datasets: tuple[DatasetChange, ...] = ()
    artifacts: tuple[ArtifactChange, ...] = ()
    environment: tuple[Change, ...] = ()
    code: CodeDiff | None = None

    def section_empty(self, name: str) -> bool:
        """True when section ``name`` shows no difference."""
        if name == "code":
            return self.code is None or self.code.empty
        items: Iterable[Any] = getattr(self, name)
        return all(getattr(x, "kind", "changed") == "unchanged" for x in items)

    @property
    def identical(self) -> bool:
        """True when no section shows a difference."""
        return all(self.section_empty(s) for s in SECTIONS)

    def to_dict(self, sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
        """JSON-ready form with the chosen sections."""
        out: dict[str, Any] = {"a": self.a.to_dict(), "b": self.b.to_dict()}
        for s in sections:
            if s == "code":
                out["code"] = None if self.code is None else self.code.to_dict()
            else:
                out[s] = [x.to_dict() for x in getattr(self, s)]
        out["identical"] = all(self.section_empty(s) for s in sections)
        return out
