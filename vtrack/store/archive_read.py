"""Reading archive batches: which archived run is at which commit, cheaply.

:class:`ArchiveView` answers "which commit holds archived run X" and "every archived
run" for :class:`~vtrack.store.refs.RefStore` (which shadows them with loose and trash
refs). Reads are cached at three levels, so ``vtrack ls`` never pays per-batch git reads:

- the batch refs themselves are listed in-process (the ``refs/vtrack/archive/`` folder
  and ``packed-refs``, which :class:`RefStore` already parses), and only when the
  folder's or ``packed-refs``' stat changed;
- a batch's table is immutable (its ref name never moves), so it is cached in memory and
  on disk under ``.git/vtrack/archive-cache/<batch commit>`` — read from git objects once
  per clone;
- the merged view (superseded batches and tombstones applied) is recomputed only when
  the set of batches changed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.errors import StoreError
from vtrack.store.archive_table import (
    RUNS_FILE,
    SUPERSEDES_FILE,
    TOMBSTONES_FILE,
    BatchTable,
    cache_of,
    decode_runs,
    decode_supersedes,
    decode_tombstones,
    load_cache,
    valid_batch_id,
)

if TYPE_CHECKING:
    from vtrack.store.refs import RefStore

from vtrack.store.refs import ARCHIVE

CACHE_DIR = "vtrack/archive-cache"
_FILES = (RUNS_FILE, TOMBSTONES_FILE, SUPERSEDES_FILE)


class ArchiveView:
    """The archive batches of one repository, merged (see the module docstring)."""

    def __init__(self, refs: RefStore) -> None:
        self.refs = refs
        self.git_dir: Path = refs.git_dir
        self._key: Any = None
        self._batches: dict[str, str] = {}
        self._tables: dict[str, BatchTable] = {}
        self._entries: dict[str, tuple[str, str]] | None = None

    # -- the batch refs ------------------------------------------------------------
    def _stat_key(self) -> Any:
        out: list[Any] = []
        for rel in (ARCHIVE, "packed-refs"):
            try:
                st = os.stat(self.git_dir / rel)
                out.append((st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def batches(self) -> dict[str, str]:
        """``{batch id: batch commit}`` of every archive ref (loose and packed)."""
        key = self._stat_key()
        if key == self._key:
            return self._batches
        found: dict[str, str] = {}
        refs = self.refs
        for name, sha in refs.packed_under(ARCHIVE).items():
            batch = name[len(ARCHIVE) :]
            if valid_batch_id(batch):
                found[batch] = sha
        folder = self.git_dir / ARCHIVE
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for name in os.listdir(folder):
                if valid_batch_id(name):
                    loose = refs.read(ARCHIVE + name)
                    if loose is not None:
                        found[name] = loose
                    else:
                        found.pop(name, None)
        if found != self._batches:
            self._entries = None
        self._batches = found
        # a stat of a folder changed within the clock's tick may not show a second change
        recent = time.time() - 2.0
        self._key = None if any(k and k[0] / 1e9 > recent for k in key) else key
        return found

    # -- one batch's table ---------------------------------------------------------
    def table(self, batch_id: str, sha: str) -> BatchTable:
        """The table of batch ``batch_id`` at commit ``sha`` (cached; StoreError if damaged)."""
        cached = self._tables.get(sha)
        if cached is None:
            self.load({batch_id: sha})
            cached = self._tables[sha]
        return cached

    def load(self, batches: dict[str, str]) -> None:
        """Have the tables of ``batches`` in memory: from the disk cache, else from git
        (the missing ones through one ``git cat-file``), writing the cache."""
        todo: dict[str, str] = {}
        for batch_id, sha in batches.items():
            if sha in self._tables:
                continue
            path = self.git_dir / CACHE_DIR / sha
            try:
                self._tables[sha] = load_cache(path.read_bytes(), str(path))
            except (OSError, StoreError):
                todo[batch_id] = sha
        if not todo:
            return
        names = [f"{sha}:{name}" for sha in todo.values() for name in _FILES]
        found = gitcmd.batch_blobs(self.git_dir, names, "reading archive batches")
        for batch_id, sha in todo.items():
            runs, tombstones, supersedes = (next(found) for _ in _FILES)
            if runs is None:
                raise StoreError(
                    f"cannot read archive batch {batch_id} (commit {sha}): no {RUNS_FILE}",
                    hint="fetch it again ('vtrack pull') or run 'git fsck' to find what is damaged",
                )
            table = BatchTable(
                decode_runs(runs, batch_id),
                decode_tombstones(tombstones or b""),
                decode_supersedes(supersedes or b""),
            )
            # the files as read (they decoded): the cache is what dump_cache would write
            self._write_cache(self.git_dir / CACHE_DIR / sha,
                              cache_of(runs, tombstones or b"", supersedes or b""))  # fmt: skip
            self._tables[sha] = table

    def _write_cache(self, path: Path, data: bytes) -> None:
        """Best effort: a read-only store simply reads from git next time."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- the merged view -------------------------------------------------------------
    def entries(self) -> dict[str, tuple[str, str]]:
        """``{run id: (commit, batch id)}`` of every archived run (before shadowing).

        Batches named in another batch's ``supersedes`` are ignored; ``(run, commit)``
        pairs named in any batch's tombstones are left out; when two batches hold one run
        (archived on two clones), the first batch by id wins (pulls pin conflicting
        versions with a loose ref, so this order only decides between equal copies).
        """
        batches = self.batches()
        if self._entries is not None:
            return self._entries
        self._entries = self.entries_of(batches)
        return self._entries

    def entries_of(self, batches: dict[str, str]) -> dict[str, tuple[str, str]]:
        """:meth:`entries` of the given ``{batch id: batch commit}`` (e.g. a remote's, as
        its tracking refs hold them; their objects must be here)."""
        self.load(batches)
        return merge_tables({b: self.table(b, sha) for b, sha in batches.items()})

    def parents(self) -> dict[str, str]:
        """``{run id: parent code commit}`` of the archived runs (:meth:`entries`' commits)."""
        entries = self.entries()
        out: dict[str, str] = {}
        for b, sha in self.batches().items():
            for r in self.table(b, sha).runs:
                if entries.get(r.run_id) == (r.commit, b):
                    out[r.run_id] = r.parent
        return out

    def superseded(self) -> set[str]:
        """Ids of the present batches that another present batch replaced."""
        return self.superseded_ids() & set(self.batches())

    def superseded_ids(self) -> set[str]:
        """Ids of every batch that a present batch replaced (present here or not)."""
        out: set[str] = set()
        for b, sha in self.batches().items():
            out |= self.table(b, sha).supersedes
        return out

    def tip(self, run_id: str) -> str | None:
        """The commit the archive holds for ``run_id`` (before shadowing), or None."""
        if not self.batches():
            return None
        found = self.entries().get(run_id)
        return found[0] if found else None


def merge_tables(tables: dict[str, BatchTable]) -> dict[str, tuple[str, str]]:
    """``{run id: (commit, batch id)}`` of batches (rules in :meth:`ArchiveView.entries`)."""
    superseded: set[str] = set()
    tombstones: set[tuple[str, str]] = set()
    for t in tables.values():
        superseded |= t.supersedes
        tombstones |= t.tombstones
    out: dict[str, tuple[str, str]] = {}
    for b in sorted(tables, reverse=True):  # the first batch by id wins: it is written last
        if b in superseded:
            continue
        runs = tables[b].runs
        if tombstones:
            out.update({r[0]: (r[1], b) for r in runs if (r[0], r[1]) not in tombstones})
        else:
            out.update({r[0]: (r[1], b) for r in runs})
    return out
