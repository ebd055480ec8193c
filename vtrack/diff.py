"""The run diff and compare model shared by the command line and the web UI.

Pure: it reads :class:`~vtrack.entities.Run` objects and plain data, never the
store. The code section of a diff comes from the caller (who runs git), parsed
here with :func:`parse_numstat`.

Promises:

- ``diff_runs(a, b)`` lists every difference between two runs, section by section
  (params, metrics, datasets, artifacts, code, environment); values keep their types,
  and ``1``, ``1.0`` and ``True`` are three different param values. A changed folder
  input names the files added, removed and modified when the caller supplies the two
  folder manifests' comparison (:func:`compare_manifests`).
- ``compare_runs(runs)`` builds one row per key with one value per run, keeps only
  the rows whose values differ unless asked for all, and marks the best metric values.
- Every object converts to JSON-ready data with ``to_dict()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from vtrack.entities import ArtifactEntry, DatasetInput, Run

#: Section names, in the order they are shown.
SECTIONS = ("params", "metrics", "datasets", "artifacts", "code", "environment")
#: Sections of a compare table (``info`` first: name, status, duration).
COMPARE_SECTIONS = ("info", "params", "metrics", "datasets", "artifacts", "environment", "tags")

Kind = Literal["added", "removed", "changed", "unchanged"]
#: A dataset input across runs: (name, context), see :func:`dataset_key`.
DatasetKey = tuple[str, str | None]
#: Keys of the file lists of a changed folder input in ``to_dict()`` (None without detail).
_FILE_KEYS = ("added", "removed", "modified")
Direction = Literal["max", "min"]

# Words are matched with non-letters (or the ends) on both sides, so ``val_acc``,
# ``top1acc`` and ``f1_macro`` match while ``layer2`` (r2) and ``accel`` do not.
_MAX_WORDS = r"acc|accuracy|f1|auc|precision|recall|scores?|r2"
_MIN_WORDS = r"loss(?:es)?|errors?|err|mse|mae|rmse"
_WORD_RE = re.compile(rf"(?<![a-z])(?:(?P<max>{_MAX_WORDS})|(?P<min>{_MIN_WORDS}))(?![a-z])")


def metric_direction(key: str) -> Direction | None:
    """Whether a bigger (``"max"``) or smaller (``"min"``) value of metric ``key`` is better.

    Decided by name: accuracy, f1, auc, precision, recall, score and r2 are maximised;
    loss, error, mse, mae and rmse minimised. When several words appear the last one
    wins (``precision_loss`` is a loss). System metrics (``system/...``) and other
    names have no direction (None).
    """
    low = key.lower()
    if low.startswith("system/"):
        return None
    found: Direction | None = None
    for m in _WORD_RE.finditer(low):
        found = "max" if m.group("max") else "min"
    return found


def same_value(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same value of the same type (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _kind(in_a: bool, in_b: bool, equal: bool) -> Kind:
    if not in_a:
        return "added"
    if not in_b:
        return "removed"
    return "unchanged" if equal else "changed"


def _json_number(x: Any) -> Any:
    """Floats that JSON cannot hold (NaN, ±inf) become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


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
            "old": _json_number(self.old),
            "new": _json_number(self.new),
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
            "old": _json_number(self.old),
            "new": _json_number(self.new),
            "delta": _json_number(self.delta),
            "relative": _json_number(self.relative),
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
        return _digest_text(self.old)

    @property
    def new_digest(self) -> str | None:
        """The digest run B saw."""
        return _digest_text(self.new)

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


def _keyed_changes(
    a: Mapping[str, Any], b: Mapping[str, Any], include_unchanged: bool
) -> tuple[Change, ...]:
    out = []
    for key in sorted(set(a) | set(b)):
        in_a, in_b = key in a, key in b
        kind = _kind(in_a, in_b, in_a and in_b and same_value(a[key], b[key]))
        if kind != "unchanged" or include_unchanged:
            out.append(Change(key, a.get(key), b.get(key), kind))
    return tuple(out)


def _metric_changes(
    a: Mapping[str, float], b: Mapping[str, float], include_unchanged: bool
) -> tuple[MetricChange, ...]:
    out = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key), b.get(key)
        kind = _kind(key in a, key in b, key in a and key in b and same_value(old, new))
        if kind == "unchanged" and not include_unchanged:
            continue
        delta = relative = None
        direction = metric_direction(key)
        improved = None
        if old is not None and new is not None and math.isfinite(old) and math.isfinite(new):
            delta = new - old
            relative = delta / abs(old) if old != 0 else None
            if direction is not None and delta != 0:
                improved = (delta > 0) == (direction == "max")
        out.append(MetricChange(key, old, new, kind, delta, relative, direction, improved))
    return tuple(out)


def dataset_key(entry: DatasetInput) -> DatasetKey:
    """What identifies a dataset input across runs: its name (else source) and context."""
    return str(entry.name or entry.source or "?"), entry.context


def _digest_text(entry: DatasetInput | ArtifactEntry | None) -> str | None:
    """An entry's digest in its record form (None when there is no entry or digest)."""
    return None if entry is None or entry.digest is None else str(entry.digest)


def _dataset_changes(
    a: Sequence[DatasetInput],
    b: Sequence[DatasetInput],
    include_unchanged: bool,
    folders: Mapping[DatasetKey, FolderFiles],
) -> tuple[DatasetChange, ...]:
    ma = {dataset_key(e): e for e in a}
    mb = {dataset_key(e): e for e in b}
    out = []
    for key in sorted(set(ma) | set(mb), key=lambda k: (k[0], k[1] or "")):
        ea, eb = ma.get(key), mb.get(key)
        equal = ea is not None and eb is not None and ea.digest == eb.digest
        kind = _kind(ea is not None, eb is not None, equal)
        if kind != "unchanged" or include_unchanged:
            files = folders.get(key) if kind == "changed" else None
            out.append(DatasetChange(key[0], key[1], ea, eb, kind, files))
    return tuple(out)


def _artifact_changes(
    a: Mapping[str, ArtifactEntry], b: Mapping[str, ArtifactEntry], include_unchanged: bool
) -> tuple[ArtifactChange, ...]:
    out = []
    for path in sorted(set(a) | set(b)):
        ea, eb = a.get(path), b.get(path)
        da, db = _digest_text(ea), _digest_text(eb)
        kind = _kind(ea is not None, eb is not None, da == db)
        if kind != "unchanged" or include_unchanged:
            out.append(
                ArtifactChange(
                    path,
                    da,
                    db,
                    None if ea is None else ea.size,
                    None if eb is None else eb.size,
                    kind,
                )
            )
    return tuple(out)


def environment_facts(run: Run) -> dict[str, Any]:
    """The flat environment of a run: python, platform, ``packages.<name>``, ``env.<VAR>``."""
    env = run.info.environment or {}
    out: dict[str, Any] = {}
    for key in ("python", "implementation", "platform"):
        if env.get(key) is not None:
            out[key] = env[key]
    for name, version in (env.get("packages") or {}).items():
        out[f"packages.{name}"] = version
    for name, value in ((run.info.source or {}).get("env") or {}).items():
        out[f"env.{name}"] = value
    return out


def source_facts(run: Run) -> dict[str, Any]:
    """What the code section compares besides files: commit, branch, dirty, entry point, argv."""
    src = run.info.source or {}
    out: dict[str, Any] = {}
    for key in ("commit", "branch", "dirty", "entry_point"):
        if key in src:
            out[key] = src[key]
    if "argv" in src:
        out["argv"] = " ".join(str(x) for x in src.get("argv") or [])
    return out


def code_captured(run: Run) -> bool:
    """True when the run's commit holds a code snapshot."""
    return bool((run.info.source or {}).get("code_captured")) and run.info.commit is not None


def build_code_diff(
    a: Run,
    b: Run,
    files: Sequence[FileStat] = (),
    patch: str | None = None,
    include_unchanged: bool = False,
) -> CodeDiff:
    """The code section from the caller's file stats and the runs' source facts."""
    return CodeDiff(
        source=_keyed_changes(source_facts(a), source_facts(b), include_unchanged),
        files=tuple(files),
        captured=code_captured(a) and code_captured(b),
        patch=patch,
    )


def diff_runs(
    a: Run,
    b: Run,
    *,
    code: CodeDiff | None = None,
    include_unchanged: bool = False,
    folders: Mapping[DatasetKey, FolderFiles] | None = None,
) -> RunDiff:
    """Compare run A (the base) with run B; see :class:`RunDiff`.

    ``folders`` holds, by :func:`dataset_key`, the file changes of folder inputs in both
    runs (from :func:`compare_manifests`); a changed input found there gets them.
    """
    return RunDiff(
        a=RunRef.of(a),
        b=RunRef.of(b),
        params=_keyed_changes(a.data.params, b.data.params, include_unchanged),
        metrics=_metric_changes(a.data.metrics, b.data.metrics, include_unchanged),
        datasets=_dataset_changes(
            a.inputs.datasets, b.inputs.datasets, include_unchanged, folders or {}
        ),
        artifacts=_artifact_changes(a.inputs.artifacts, b.inputs.artifacts, include_unchanged),
        environment=_keyed_changes(environment_facts(a), environment_facts(b), include_unchanged),
        code=code,
    )


# -- compare: several runs side by side ------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    """One key across runs: ``values[i]`` belongs to run ``i`` (None when absent).

    ``best`` holds the indices of the best values (metrics with a known direction,
    only when the values differ).
    """

    section: str
    key: str
    values: tuple[Any, ...]
    differs: bool
    best: frozenset[int] = field(default_factory=frozenset)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "section": self.section,
            "key": self.key,
            "values": [_json_number(v) for v in self.values],
            "differs": self.differs,
            "best": sorted(self.best),
        }


@dataclass(frozen=True)
class CompareTable:
    """Runs side by side: one column per run, one row per (section, key)."""

    runs: tuple[RunRef, ...]
    rows: tuple[CompareRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"runs": [r.to_dict() for r in self.runs], "rows": [r.to_dict() for r in self.rows]}


def _info_facts(run: Run) -> dict[str, Any]:
    info = run.info
    out: dict[str, Any] = {
        "name": info.run_name,
        "status": info.status,
        "experiment_id": info.experiment_id,
    }
    if info.end_time is not None and info.start_time:
        out["duration_s"] = round((int(info.end_time) - int(info.start_time)) / 1000.0, 3)
    src = info.source or {}
    if src.get("commit"):
        out["code_commit"] = str(src["commit"])[:12]
    if "dirty" in src:
        out["dirty"] = src["dirty"]
    return out


def _section_facts(run: Run, section: str) -> Mapping[str, Any]:
    if section == "info":
        return _info_facts(run)
    if section == "params":
        return run.data.params
    if section == "metrics":
        return run.data.metrics
    if section == "tags":
        return run.data.tags
    if section == "datasets":
        return {
            f"{name}[{ctx}]" if ctx else name: _digest_text(e)
            for e in run.inputs.datasets
            for name, ctx in [dataset_key(e)]
        }
    if section == "artifacts":
        return {p: _digest_text(e) for p, e in run.inputs.artifacts.items()}
    if section == "environment":
        return environment_facts(run)
    raise ValueError(f"unknown compare section {section!r}")


def _best(key: str, values: Sequence[Any]) -> frozenset[int]:
    direction = metric_direction(key)
    nums = [
        (i, float(v))
        for i, v in enumerate(values)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if direction is None or len(nums) < 2:
        return frozenset()
    target = max(v for _, v in nums) if direction == "max" else min(v for _, v in nums)
    if all(v == target for _, v in nums):
        return frozenset()
    return frozenset(i for i, v in nums if v == target)


def compare_runs(
    runs: Sequence[Run],
    *,
    sections: Sequence[str] = COMPARE_SECTIONS,
    all_rows: bool = False,
) -> CompareTable:
    """Put ``runs`` side by side; keep differing rows only unless ``all_rows``.

    In the ``info`` section the run name is always kept, so columns stay labelled.
    Raises ValueError for an unknown section name.
    """
    rows: list[CompareRow] = []
    for section in sections:
        facts = [_section_facts(r, section) for r in runs]
        keys = sorted(set().union(*(f.keys() for f in facts))) if facts else []
        if section == "info":
            keys = [
                k
                for k in ("name", "status", "experiment_id", "duration_s", "code_commit", "dirty")
                if k in keys
            ]
        for key in keys:
            values = tuple(f.get(key) for f in facts)
            present = [key in f for f in facts]
            differs = not all(present) or any(not same_value(values[0], v) for v in values[1:])
            if not differs and not all_rows and not (section == "info" and key == "name"):
                continue
            best = _best(key, values) if section == "metrics" and differs else frozenset()
            rows.append(CompareRow(section, key, values, differs, best))
    return CompareTable(runs=tuple(RunRef.of(r) for r in runs), rows=tuple(rows))
