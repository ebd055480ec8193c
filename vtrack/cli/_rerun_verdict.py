"""The verdict of a ``vtrack rerun``: compare the new run with the original, and print it."""

from __future__ import annotations

import math
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from vtrack.cli import _render as r
from vtrack.fluent import RERUN_OF_TAG

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import Run

#: Seconds of clock slack when finding the run a rerun recorded.
_CLOCK_SLACK_MS = 2000


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(b - a) <= tolerance * max(1.0, abs(a))


def compare_rerun(
    original: Run, new: Run, tolerance: float, ignore: tuple[str, ...]
) -> dict[str, Any]:
    """Per-metric and per-param comparison of a rerun; ``verdict`` is reproduced/diverged."""
    from vtrack.diff import same_value

    def kept(key: str) -> bool:
        return not key.startswith("system/") and not any(fnmatch(key, p) for p in ignore)

    metrics = []
    a, b = original.data.metrics, new.data.metrics
    for key in sorted(k for k in set(a) | set(b) if kept(k)):
        old, nv = a.get(key), b.get(key)
        within = old is not None and nv is not None and _close(old, nv, tolerance)
        delta = (nv - old) if old is not None and nv is not None else None
        metrics.append(
            {"key": key, "original": old, "rerun": nv, "delta": delta, "within_tolerance": within}
        )
    params = []
    pa, pb = original.data.params, new.data.params
    for key in sorted(k for k in set(pa) | set(pb) if kept(k)):
        if key in pa and key in pb and same_value(pa[key], pb[key]):
            continue
        params.append({"key": key, "original": pa.get(key), "rerun": pb.get(key)})
    ok = all(m["within_tolerance"] for m in metrics) and not params
    return {"verdict": "reproduced" if ok else "diverged", "metrics": metrics, "params": params}


def find_rerun(c: TrackingClient, run_id: str, since_ms: int) -> Run | None:
    found = c.search_runs(
        experiment_ids=None,
        filter_string=f"tags.`{RERUN_OF_TAG}` = '{run_id}'",
        run_view_type="ALL",
        max_results=100,
        order_by=["attributes.start_time DESC"],
    )
    fresh = [x for x in found if x.info.start_time >= since_ms - _CLOCK_SLACK_MS]
    if not fresh:
        return None
    first = min(fresh, key=lambda x: (x.info.start_time, x.info.run_id))
    return c.get_run(first.info.run_id)


def print_rerun(report: dict[str, Any]) -> None:
    if report["metrics"] or report["params"]:
        t = r.table("", "key", "original", "rerun", "change")
        for m in report["metrics"]:
            mark = r.styled("=", "green") if m["within_tolerance"] else r.styled("≠", "red")
            t.add_row(
                mark,
                f"metrics.{m['key']}",
                r.fmt_value(m["original"]),
                r.fmt_value(m["rerun"]),
                r.fmt_delta(m["delta"], None),
            )
        for p in report["params"]:
            t.add_row(
                r.styled("≠", "red"),
                f"params.{p['key']}",
                r.fmt_param(p["original"]),
                r.fmt_param(p["rerun"]),
                "",
            )
        t.print()
    if report["returncode"] != 0:
        r.emit(f"the command exited with code {report['returncode']}")
    if report.get("worktree"):
        r.emit(f"worktree kept at {report['worktree']}")
    style = "bold green" if report["verdict"] == "reproduced" else "bold red"
    new = f"{report['rerun_id']} ({report['rerun_name']})" if report["rerun_id"] else "no run"
    r.emit(
        r.styled(report["verdict"], style),
        f": rerun {new} of {report['run_id']} "
        f"(tolerance {report['tolerance']:g}, {r.fmt_seconds(report['seconds'])})",
    )
