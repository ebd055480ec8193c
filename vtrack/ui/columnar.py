"""A derived columnar cache of metric history chunks: binary arrays keyed by blob id.

A sealed history chunk (a git blob of ``step\\ttimestamp\\tvalue`` lines) never changes,
so what it parses to is stored once as a flat little-endian float64 file,
``<git dir>/vtrack/cache/series/<sha[:2]>/<sha>.f64`` (rows of step, timestamp, value).
Loading one is a read of 240 KB instead of parsing 10,000 lines, so the first view of a
1,000,000-point history after a server restart costs milliseconds, not seconds.

Promises:

- Derived: deleting the folder changes nothing but speed. A file whose size is not a
  whole number of rows is ignored (and replaced); files are written to a temporary
  name and renamed, so a reader never sees half a file.
- Best effort: a store that cannot be written (read-only) simply is not cached.
- Only sealed chunks (with a blob id) are cached; a live run's open tail is parsed.

numpy is imported inside the methods (the ``[ui]`` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

#: Cache folder, under the store's ``<git dir>/vtrack``.
CACHE_DIR = ("cache", "series")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_ROW_BYTES = 3 * 8


class ColumnarCache:
    """Parsed chunks on disk, by blob sha (see the module doc)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, sha: str) -> Path | None:
        if self.root is None or not _SHA.fullmatch(sha):
            return None
        return self.root / sha[:2] / f"{sha}.f64"

    def load(self, sha: str) -> Any:
        """The ``(n, 3)`` float64 array of chunk ``sha``, or None when not cached."""
        import numpy as np

        path = self._path(sha)
        if path is None:
            return None
        try:
            size = path.stat().st_size
            if size % _ROW_BYTES:
                return None
            return np.fromfile(path, dtype="<f8").reshape(-1, 3)
        except (OSError, ValueError):
            return None

    def save(self, sha: str, rows: Any) -> None:
        """Remember the parsed chunk ``sha`` (silently skipped when the store is read-only)."""
        import numpy as np

        path = self._path(sha)
        if path is None:
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".f64")
            with os.fdopen(fd, "wb") as f:
                f.write(np.ascontiguousarray(rows, dtype="<f8").tobytes())
            os.replace(tmp, path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
