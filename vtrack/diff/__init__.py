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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from vtrack.diff.build import (
        build_code_diff,
        code_captured,
        diff_runs,
        environment_facts,
        source_facts,
    )
    from vtrack.diff.compare import CompareRow, CompareTable, compare_runs
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
        compare_manifests,
        parse_numstat,
    )
    from vtrack.diff.values import (
        COMPARE_SECTIONS,
        SECTIONS,
        DatasetKey,
        Direction,
        Kind,
        dataset_key,
        metric_direction,
        same_value,
    )

#: public name -> the submodule that defines it (imported on first use: ``vtrack ls``
#: needs only :func:`metric_direction`, not the diff builders)
_WHERE = {
    "build_code_diff": "vtrack.diff.build",
    "code_captured": "vtrack.diff.build",
    "diff_runs": "vtrack.diff.build",
    "environment_facts": "vtrack.diff.build",
    "source_facts": "vtrack.diff.build",
    "CompareRow": "vtrack.diff.compare",
    "CompareTable": "vtrack.diff.compare",
    "compare_runs": "vtrack.diff.compare",
    "ArtifactChange": "vtrack.diff.model",
    "Change": "vtrack.diff.model",
    "CodeDiff": "vtrack.diff.model",
    "DatasetChange": "vtrack.diff.model",
    "FileStat": "vtrack.diff.model",
    "FolderFiles": "vtrack.diff.model",
    "MetricChange": "vtrack.diff.model",
    "RunDiff": "vtrack.diff.model",
    "RunRef": "vtrack.diff.model",
    "compare_manifests": "vtrack.diff.model",
    "parse_numstat": "vtrack.diff.model",
    "COMPARE_SECTIONS": "vtrack.diff.values",
    "SECTIONS": "vtrack.diff.values",
    "DatasetKey": "vtrack.diff.values",
    "Direction": "vtrack.diff.values",
    "Kind": "vtrack.diff.values",
    "dataset_key": "vtrack.diff.values",
    "metric_direction": "vtrack.diff.values",
    "same_value": "vtrack.diff.values",
}

__all__ = [
    "COMPARE_SECTIONS",
    "SECTIONS",
    "ArtifactChange",
    "Change",
    "CodeDiff",
    "CompareRow",
    "CompareTable",
    "DatasetChange",
    "DatasetKey",
    "Direction",
    "FileStat",
    "FolderFiles",
    "Kind",
    "MetricChange",
    "RunDiff",
    "RunRef",
    "build_code_diff",
    "code_captured",
    "compare_manifests",
    "compare_runs",
    "dataset_key",
    "diff_runs",
    "environment_facts",
    "metric_direction",
    "parse_numstat",
    "same_value",
    "source_facts",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vtrack.diff' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
