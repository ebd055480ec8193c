"""A derived columnar cache of metric history chunks, shared by the API and the web UI.

A sealed history chunk (a git blob of ``step\\ttimestamp\\tvalue`` lines) never changes,
so what it parses to is stored once, by blob id, as three little-endian columns:
``<git dir>/vtrack/cache/series/<sha[:2]>/<sha>.cols`` holds ``n`` int64 steps, then
``n`` int64 timestamps, then ``n`` float64 values (24 bytes a point). Reading 100,000
points is a file read and three ``array.frombytes`` instead of parsing 100,000 lines.

Promises:

- **Exact.** Columns are written from the exact parse of the chunk (Python ints and
  floats), so they read back to the same ``(step, timestamp, value)`` as the TSV, NaN
  and ``-0.0`` included; a chunk whose steps or timestamps do not fit in 64 bits is not
  cached (it is parsed every time). The TSV in git stays the record.
- **Derived.** Deleting the folder changes nothing but speed. A file whose size is not a
  whole number of points is ignored and replaced; files are written to a temporary name
  and renamed, so a reader never sees half a file.
- **Best effort.** A store that cannot be written (read-only) simply is not cached.
- Only sealed chunks (with a blob id) are cached; a live run's open tail is parsed.

No optional dependency: the columns are read with the standard library's ``array``; the
UI views the same bytes with numpy (:mod:`vtrack.ui.columnar`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack.store.record import parse_rows

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.record import RecordState

#: Cache folder, under the store's ``<git dir>/vtrack``.
CACHE_DIR = ("cache", "series")
SUFFIX = ".cols"
POINT_BYTES = 24
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")

Columns = tuple[Sequence[int], Sequence[int], Sequence[float]]


class HistoryCache:
    """Parsed history chunks on disk, by blob sha (see the module doc)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def for_store(cls, store: Store) -> HistoryCache:
        """The cache of ``store`` (under its ``<git dir>/vtrack``)."""
        return cls(store.location.vtrack_dir.joinpath(*CACHE_DIR))

    def path(self, sha: str) -> Path | None:
        """Where chunk ``sha``'s columns are kept (None for a name that is not a blob id)."""
        if self.root is None or not _SHA.fullmatch(sha):
            return None
        return self.root / sha[:2] / f"{sha}{SUFFIX}"

    def read_bytes(self, sha: str) -> bytes | None:
        """The cached file of chunk ``sha`` when it holds whole points, else None."""
        path = self.path(sha)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return None if len(data) % POINT_BYTES else data

    def load(self, sha: str) -> Columns | None:
        """The columns of chunk ``sha`` when cached."""
        data = self.read_bytes(sha)
        return None if data is None else from_bytes(data)

    def chunk(self, sha: str | None, text: Callable[[], str]) -> Columns:
        """The columns of chunk ``sha`` (``text`` reads its lines): from the cache, or
        parsed and cached. The open tail (sha None) is parsed every time."""
        if sha is not None:
            found = self.load(sha)
            if found is not None:
                return found
        cols = parse_columns(text())
        if sha is not None and isinstance(cols[0], array):
            self._save(sha, cols)
        return cols

    def _save(self, sha: str, cols: Columns) -> None:
        path = self.path(sha)
        if path is None:
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
            with os.fdopen(fd, "wb") as f:
                f.write(to_bytes(cols))
            os.replace(tmp, path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def history(self, record: RecordState, key: str) -> Columns:
        """Every ``(steps, timestamps, values)`` of metric ``key`` in logged order."""
        hist = record.history(key)
        if hist is None:
            return [], [], []
        parts = []
        for sha in hist.chunks:

            def read(sha: str = sha) -> str:
                return (record.unstored.get(sha) or record.objects.read_blob(sha)).decode()

            parts.append(self.chunk(sha, read))
        parts.append(parse_columns("".join(hist.tail)))
        if len(parts) == 1:
            return parts[0]
        if all(isinstance(c, array) for part in parts for c in part):  # joined in C
            a_steps, a_times, a_values = array("q"), array("q"), array("d")
            for s, t, v in parts:
                a_steps.extend(s)
                a_times.extend(t)
                a_values.extend(v)
            return a_steps, a_times, a_values
        steps: list[int] = []
        times: list[int] = []
        values: list[float] = []
        for s, t, v in parts:
            steps += s
            times += t
            values += v
        return steps, times, values


def parse_columns(text: str) -> Columns:
    """The exact columns of history lines: int64/float64 arrays, or lists when a step or
    timestamp does not fit in 64 bits."""
    rows = parse_rows(text)
    if not rows:
        return array("q"), array("q"), array("d")
    steps, times, values = zip(*rows, strict=True)
    try:
        return array("q", steps), array("q", times), array("d", values)
    except OverflowError:
        return list(steps), list(times), list(values)


def to_bytes(cols: Columns) -> bytes:
    """The file form of int64/float64 array columns (little-endian)."""
    parts = []
    for col in cols:
        a = col if isinstance(col, array) else array("d", col)
        if sys.byteorder == "big":
            a = array(a.typecode, a)
            a.byteswap()
        parts.append(a.tobytes())
    return b"".join(parts)


def from_bytes(data: bytes) -> Columns:
    """The columns of a cache file (see the module doc)."""
    n = len(data) // POINT_BYTES
    view = memoryview(data)
    out = []
    for i, code in enumerate(("q", "q", "d")):
        a = array(code)
        a.frombytes(view[i * 8 * n : (i + 1) * 8 * n])
        if sys.byteorder == "big":
            a.byteswap()
        out.append(a)
    return out[0], out[1], out[2]
