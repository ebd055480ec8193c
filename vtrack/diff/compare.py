"""Several runs side by side: one row per key, one value per run, best metric values marked (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.entities import Run

from vtrack.diff.build import environment_facts
from vtrack.diff.model import RunRef
from vtrack.diff.values import (
    COMPARE_SECTIONS,
    dataset_key,
    digest_text,
    json_number,
    metric_direction,
    same_value,
)


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
            "values": [json_number(v) for v in self.values],
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
            f"{name}[{ctx}]" if ctx else name: digest_text(e)
            for e in run.inputs.datasets
            for name, ctx in [dataset_key(e)]
        }
    if section == "artifacts":
        return {p: digest_text(e) for p, e in run.inputs.artifacts.items()}
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
