"""Building a :class:`~vtrack.diff.model.RunDiff` from two runs (pure; the code section comes from the caller)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.entities import ArtifactEntry, DatasetInput, Run

from vtrack.diff.model import (
    ArtifactChange,
    Change,
    CodeDiff,
    DatasetChange,
    FileStat,
    FolderFiles,
    MetricChange,
    RunDiff,
    RunRef,
)
from vtrack.diff.values import (
    DatasetKey,
    change_kind,
    dataset_key,
    digest_text,
    metric_direction,
    same_value,
)


def _keyed_changes(
    a: Mapping[str, Any], b: Mapping[str, Any], include_unchanged: bool
) -> tuple[Change, ...]:
    out = []
    for key in sorted(set(a) | set(b)):
        in_a, in_b = key in a, key in b
        kind = change_kind(in_a, in_b, in_a and in_b and same_value(a[key], b[key]))
        if kind != "unchanged" or include_unchanged:
            out.append(Change(key, a.get(key), b.get(key), kind))
    return tuple(out)


def _metric_changes(
    a: Mapping[str, float], b: Mapping[str, float], include_unchanged: bool
) -> tuple[MetricChange, ...]:
    out = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key), b.get(key)
        kind = change_kind(key in a, key in b, key in a and key in b and same_value(old, new))
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
        kind = change_kind(ea is not None, eb is not None, equal)
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
        da, db = digest_text(ea), digest_text(eb)
        kind = change_kind(ea is not None, eb is not None, da == db)
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
