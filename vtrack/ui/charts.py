"""Metric histories for charts: exact points when they fit, a min/max reduction when not.

Promises:

- :class:`Series` is a metric history as numpy arrays (step, timestamp, value) ordered
  by step then timestamp; :meth:`Series.xs` gives the x values of an axis (``step``,
  ``time`` in ms, ``relative`` seconds since the run began).
- :func:`window` returns the points whose x lies in ``[lo, hi]``: all of them when they
  number at most ``budget``, else a **min/max reduction**: the range is cut into
  ``budget // 2`` buckets of consecutive points and each bucket keeps its lowest and its
  highest point (in x order), so every spike and dip stays visible; the bucket bounds
  are returned as an envelope and the answer says ``reduced`` with the counts. Zooming in
  asks again with a narrower range and gets exact points once they fit.
- Non-finite values (NaN, ±inf) are never drawn; the answer counts them.
- :class:`SeriesCache` keeps parsed sealed chunks by blob sha (they never change) and
  whole series by their history's signature, so a live run re-parses only its tail and a
  finished one is parsed once; with a :class:`~vtrack.ui.columnar.ColumnarCache`, parsed
  chunks also persist on disk across server restarts.

numpy (part of the ``[ui]`` extra) is imported inside the functions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.ui.columnar import ColumnarCache

#: Points a chart draws at most per metric (the display budget).
DEFAULT_BUDGET = 2000
#: Largest budget a request may ask for.
MAX_BUDGET = 20_000
#: X axes a chart can use.
X_AXES = ("step", "time", "relative")
#: Parsed points kept in memory (series and chunks, each counted).
CACHE_POINTS = 8_000_000


@dataclass
class Series:
    """One metric's history as numpy arrays, ordered by step then timestamp."""

    steps: Any
    times: Any
    values: Any
    _extremes: tuple[float, float] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.values)

    def extremes(self) -> tuple[float, float]:
        """Min and max of the non-NaN values (NaN, NaN when there are none); computed once."""
        import numpy as np

        if self._extremes is None:
            if not len(self.values):
                self._extremes = (float("nan"), float("nan"))
            else:
                self._extremes = (float(np.fmin.reduce(self.values)),
                                  float(np.fmax.reduce(self.values)))  # fmt: skip
        return self._extremes

    def xs(self, axis: str, start_ms: int) -> Any:
        """The x values on ``axis`` as float64 (``relative``: seconds since ``start_ms``)."""
        import numpy as np

        if axis == "step":
            return self.steps.astype(np.float64)
        if axis == "time":
            return self.times.astype(np.float64)
        return (self.times - start_ms) / 1000.0


def parse_chunk(text: str) -> Any:
    """History lines (``step\\ttimestamp\\tvalue``) as an ``(n, 3)`` float64 array."""
    import numpy as np

    if not text.strip():
        return np.empty((0, 3), dtype=np.float64)
    return np.array(text.split(), dtype=np.float64).reshape(-1, 3)


def build_series(chunks: Iterable[Any]) -> Series:
    """A :class:`Series` from parsed chunks (:func:`parse_chunk`), in any order."""
    import numpy as np

    parts = [c for c in chunks if len(c)]
    rows = np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.float64)
    steps = rows[:, 0].astype(np.int64)
    times = rows[:, 1].astype(np.int64)
    values = rows[:, 2].copy()
    if len(steps) > 1:
        ds, dt = np.diff(steps), np.diff(times)
        if not bool(np.all((ds > 0) | ((ds == 0) & (dt >= 0)))):
            order = np.lexsort((times, steps))
            steps, times, values = steps[order], times[order], values[order]
    return Series(steps, times, values)


def series_from_rows(rows: Iterable[tuple[int, int, float]]) -> Series:
    """A :class:`Series` from ``(step, timestamp, value)`` tuples (tests and small data)."""
    import numpy as np

    arr = np.array(list(rows), dtype=np.float64).reshape(-1, 3)
    return build_series([arr])


class SeriesCache:
    """LRU caches of parsed chunks (by blob sha) and of series (by run, key, signature)."""

    def __init__(self, max_points: int = CACHE_POINTS, disk: ColumnarCache | None = None) -> None:
        self.max_points = max_points
        self.disk = disk
        self._items: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def _get(self, key: Any, signature: Any) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != signature:
                return None
            self._items.move_to_end(key)
            return item[1]

    def _put(self, key: Any, signature: Any, value: Any) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._points -= len(old[1])
            self._items[key] = (signature, value)
            self._points += len(value)
            while self._points > self.max_points and len(self._items) > 1:
                _, (_, evicted) = self._items.popitem(last=False)
                self._points -= len(evicted)

    def get(self, run_id: str, key: str, signature: Any) -> Series | None:
        """The cached series if its signature still matches."""
        found = self._get(("series", run_id, key), signature)
        return found if isinstance(found, Series) else None

    def put(self, run_id: str, key: str, signature: Any, series: Series) -> None:
        """Remember ``series``."""
        self._put(("series", run_id, key), signature, series)

    def chunk(self, sha: str | None, text: str | Callable[[], str]) -> Any:
        """The parsed chunk ``sha`` with history ``text`` (or a function reading it).

        Looked up in memory, then in the :class:`~vtrack.ui.columnar.ColumnarCache`
        on disk, and parsed (and stored in both) only when neither has it. The tail
        (sha None) is parsed every time.
        """
        if sha is None:
            return parse_chunk(text if isinstance(text, str) else text())
        found = self._get(("chunk", sha), None)
        if found is None:
            if self.disk is not None:
                found = self.disk.load_or_parse(sha, text if callable(text) else lambda: text)
            else:
                found = parse_chunk(text if isinstance(text, str) else text())
            self._put(("chunk", sha), None, found)
        return found


def window(
    series: Series,
    axis: str = "step",
    start_ms: int = 0,
    lo: float | None = None,
    hi: float | None = None,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """The drawable points of ``series`` on ``axis`` within ``[lo, hi]`` (see the module doc)."""
    import numpy as np

    xs = series.xs(axis, start_ms)
    vals = series.values
    n = len(vals)
    if n and bool(np.all(np.diff(xs) >= 0)):
        a = 0 if lo is None else int(np.searchsorted(xs, lo, side="left"))
        b = n if hi is None else int(np.searchsorted(xs, hi, side="right"))
        in_range = np.arange(a, b)
    else:  # wall times that went backwards: filter instead of bisecting
        mask = np.ones(n, dtype=bool)
        if lo is not None:
            mask &= xs >= lo
        if hi is not None:
            mask &= xs <= hi
        in_range = np.flatnonzero(mask)
    idx = in_range[np.isfinite(vals[in_range])]
    out: dict[str, Any] = {
        "axis": axis,
        "total": n,
        "in_range": len(in_range),
        "non_finite": len(in_range) - len(idx),
        "budget": budget,
        "range": [float(xs.min()), float(xs.max())] if n else None,
    }
    if len(idx) <= budget:
        out.update(reduced=False, method=None, envelope=None, x=_list(xs[idx]),
                   y=vals[idx].tolist(), step=series.steps[idx].tolist())  # fmt: skip
        return out
    keep, first, low, high = _minmax(idx, vals, max(1, budget // 2))
    out.update(
        reduced=True,
        method="min/max per bucket",
        x=_list(xs[keep]),
        y=vals[keep].tolist(),
        step=series.steps[keep].tolist(),
        envelope={"x": _list(xs[first]), "lo": low.tolist(), "hi": high.tolist()},
    )
    return out


def _list(xs: Any) -> list[Any]:
    """x values as JSON numbers (whole numbers as ints, as steps and times are)."""
    import numpy as np

    if len(xs) and bool(np.all(xs == np.floor(xs))) and float(np.abs(xs).max()) < 2**53:
        return xs.astype(np.int64).tolist()
    return xs.tolist()


def _minmax(idx: Any, vals: Any, buckets: int) -> tuple[Any, Any, Any, Any]:
    """Indices kept by the min/max reduction and each bucket's first index, low and high."""
    import numpy as np

    n = len(idx)
    size = -(-n // buckets)  # ceil: at most ``buckets`` buckets of ``size`` points
    full = -(-n // size)
    pad = full * size - n
    v = vals[idx]
    lo_grid = np.concatenate([v, np.full(pad, np.inf)]).reshape(full, size)
    hi_grid = np.concatenate([v, np.full(pad, -np.inf)]).reshape(full, size)
    base = np.arange(full) * size
    i_min = base + lo_grid.argmin(axis=1)
    i_max = base + hi_grid.argmax(axis=1)
    both = np.stack([np.minimum(i_min, i_max), np.maximum(i_min, i_max)], axis=1).ravel()
    keep = np.unique(both)  # sorted, so the line keeps x order; min == max collapses
    return idx[keep], idx[base], v[i_min], v[i_max]
