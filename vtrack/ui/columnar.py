"""The UI's view of the columnar history cache (:mod:`vtrack.store.history_cache`).

The API's ``get_metric_history`` and the charts read the same files: one per sealed
history chunk, ``<git dir>/vtrack/cache/series/<sha[:2]>/<sha>.cols`` (int64 steps,
int64 timestamps, float64 values). Here they are viewed as the ``(n, 3)`` float64 rows
the chart code works with. Written only from the exact parse of a chunk (never from
float rows, which would round steps beyond 2**53), so both readers stay exact.

numpy is imported inside the methods (the ``[ui]`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.store.history_cache import HistoryCache

#: Bytes of one point in a cache file (int64 step, int64 timestamp, float64 value).
POINT_BYTES = 24


class ColumnarCache:
    """Parsed chunks on disk, by blob sha, as chart rows (see the module doc)."""

    def __init__(self, columns: HistoryCache) -> None:
        self.columns = columns  # the store's cache: TrackingClient.history_cache()

    def load(self, sha: str) -> Any:
        """The ``(n, 3)`` float64 rows of chunk ``sha``, or None when not cached."""
        data = self.columns.read_bytes(sha)
        return None if data is None else _rows(data)

    def load_or_parse(self, sha: str, text: Callable[[], str]) -> Any:
        """The rows of chunk ``sha``: cached, or parsed exactly (``text`` reads it) and cached."""
        import numpy as np

        found = self.load(sha)
        if found is not None:
            return found
        steps, times, values = self.columns.chunk(sha, text)
        return np.column_stack([
            np.asarray(steps, dtype=np.float64), np.asarray(times, dtype=np.float64),
            np.asarray(values, dtype=np.float64),
        ]) if len(steps) else np.empty((0, 3), dtype=np.float64)  # fmt: skip


def _rows(data: bytes) -> Any:
    import numpy as np

    n = len(data) // POINT_BYTES
    steps = np.frombuffer(data, dtype="<i8", count=n, offset=0)
    times = np.frombuffer(data, dtype="<i8", count=n, offset=8 * n)
    values = np.frombuffer(data, dtype="<f8", count=n, offset=16 * n)
    return np.column_stack([steps.astype(np.float64), times.astype(np.float64), values])
