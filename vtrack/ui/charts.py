"""Metric histories for charts: exact points when they fit, a min/max reduction when not.

Promises:

- :func:`series` is a metric history as three parallel lists (x, step, value) ordered by
  the chosen x axis (``step``, ``time`` in ms, ``relative`` seconds since the run began).
- :func:`window` returns the points whose x lies in ``[lo, hi]``: all of them when they
  number at most ``budget``, else a **min/max reduction**: the range is cut into
  ``budget // 2`` buckets of consecutive points and each bucket keeps its lowest and its
  highest point (in x order), so every spike and dip stays visible; the bucket bounds
  are returned as an envelope and the answer says ``reduced`` with the counts. Zooming in
  asks again with a narrower range and gets exact points once they fit.
- Non-finite values (NaN, ±inf) are never drawn; the answer counts them.
- Parsed histories are cached per run and key, keyed by the history's chunk blobs and
  tail length, so a live run re-reads only what it added and a finished one is parsed once.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Points a chart draws at most per metric (the display budget).
DEFAULT_BUDGET = 2000
#: Largest budget a request may ask for.
MAX_BUDGET = 20_000
#: X axes a chart can use.
X_AXES = ("step", "time", "relative")
#: Parsed histories kept in memory (by number of points, over all cached series).
CACHE_POINTS = 6_000_000


@dataclass
class Series:
    """One metric's history as parallel lists, ordered by step then timestamp."""

    steps: list[int]
    times: list[int]
    values: list[float]

    def xs(self, axis: str, start_ms: int) -> list[float]:
        """The x values on ``axis`` (``relative``: seconds since ``start_ms``)."""
        if axis == "step":
            return self.steps  # type: ignore[return-value]
        if axis == "time":
            return self.times  # type: ignore[return-value]
        return [(t - start_ms) / 1000 for t in self.times]


def build_series(points: Iterable[tuple[int, int, float]]) -> Series:
    """A :class:`Series` from ``(step, timestamp, value)`` rows in any order."""
    rows = sorted(points, key=lambda r: (r[0], r[1]))
    return Series([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


class SeriesCache:
    """An LRU of parsed series keyed by ``(run id, key)`` and a signature of the history."""

    def __init__(self, max_points: int = CACHE_POINTS) -> None:
        self.max_points = max_points
        self._items: OrderedDict[tuple[str, str], tuple[Any, Series]] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def get(self, run_id: str, key: str, signature: Any) -> Series | None:
        """The cached series if its signature still matches."""
        with self._lock:
            item = self._items.get((run_id, key))
            if item is None or item[0] != signature:
                return None
            self._items.move_to_end((run_id, key))
            return item[1]

    def put(self, run_id: str, key: str, signature: Any, series: Series) -> None:
        """Remember ``series``; evict the least recently used ones beyond the budget."""
        with self._lock:
            old = self._items.pop((run_id, key), None)
            if old is not None:
                self._points -= len(old[1].values)
            self._items[(run_id, key)] = (signature, series)
            self._points += len(series.values)
            while self._points > self.max_points and len(self._items) > 1:
                _, (_, evicted) = self._items.popitem(last=False)
                self._points -= len(evicted.values)


def _bisect_left(xs: list[float], x: float) -> int:
    import bisect

    return bisect.bisect_left(xs, x)


def _bisect_right(xs: list[float], x: float) -> int:
    import bisect

    return bisect.bisect_right(xs, x)


def window(
    series: Series,
    axis: str = "step",
    start_ms: int = 0,
    lo: float | None = None,
    hi: float | None = None,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """The drawable points of ``series`` on ``axis`` within ``[lo, hi]`` (see the module doc)."""
    xs_all = series.xs(axis, start_ms)
    ordered = axis == "step" or _is_sorted(xs_all)
    if ordered:
        a = 0 if lo is None else _bisect_left(xs_all, lo)
        b = len(xs_all) if hi is None else _bisect_right(xs_all, hi)
        idx: range | list[int] = range(a, b)
    else:  # wall times that went backwards: filter instead of bisecting
        idx = [
            i for i, x in enumerate(xs_all)
            if (lo is None or x >= lo) and (hi is None or x <= hi)
        ]  # fmt: skip
    vals = series.values
    finite = [i for i in idx if math.isfinite(vals[i])]
    skipped = len(idx) - len(finite)
    out: dict[str, Any] = {
        "axis": axis,
        "total": len(vals),
        "in_range": len(idx),
        "non_finite": skipped,
        "budget": budget,
        "range": [xs_all[0], xs_all[-1]] if xs_all else None,
    }
    if len(finite) <= budget:
        out.update(
            reduced=False,
            method=None,
            x=[xs_all[i] for i in finite],
            y=[vals[i] for i in finite],
            step=[series.steps[i] for i in finite],
            envelope=None,
        )
        return out
    keep, env = _minmax(finite, vals, max(1, budget // 2))
    out.update(
        reduced=True,
        method="min/max per bucket",
        x=[xs_all[i] for i in keep],
        y=[vals[i] for i in keep],
        step=[series.steps[i] for i in keep],
        envelope={
            "x": [xs_all[i] for i in env[0]],
            "lo": env[1],
            "hi": env[2],
        },
    )
    return out


def _is_sorted(xs: list[float]) -> bool:
    return all(xs[i] <= xs[i + 1] for i in range(len(xs) - 1))


def _minmax(
    idx: list[int], vals: list[float], buckets: int
) -> tuple[list[int], tuple[list[int], list[float], list[float]]]:
    """Indices kept by the min/max reduction, and each bucket's (first index, low, high)."""
    n = len(idx)
    keep: list[int] = []
    env_x: list[int] = []
    env_lo: list[float] = []
    env_hi: list[float] = []
    get = vals.__getitem__
    for b in range(buckets):
        start = b * n // buckets
        stop = (b + 1) * n // buckets
        if start >= stop:
            continue
        chunk = idx[start:stop]
        i_min = min(chunk, key=get)
        i_max = max(chunk, key=get)
        first, second = (i_min, i_max) if i_min <= i_max else (i_max, i_min)
        keep.append(first)
        if second != first:
            keep.append(second)
        env_x.append(chunk[0])
        env_lo.append(vals[i_min])
        env_hi.append(vals[i_max])
    return keep, (env_x, env_lo, env_hi)
