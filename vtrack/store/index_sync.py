"""Keeping the index up with the refs: :class:`IndexSync`, the sync half of
:class:`~vtrack.store.index.RunIndex` (see that module's docstring for its promises).

A sync lists every run tip (one ``git for-each-ref`` and the archive batches), compares
each with the commit the index last read for that run, reads only new or moved runs
(archived ones from their batch's summary table) and drops vanished ones, in one
transaction with compare-and-swap row updates; a build into an empty index writes whole
tables at once (:mod:`vtrack.store.index_bulk`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vtrack.store import index_bulk, index_inputs, index_keys, index_schema
from vtrack.store.archive_summaries import TableBatch, TableReads, iter_derived
from vtrack.store.index_records import IndexedRecord, to_json
from vtrack.store.index_rows import DerivedRun
from vtrack.store.refs import ACTIVE

if TYPE_CHECKING:
    from vtrack.store import Store

#: Seconds the ref storage must have been still before a sync may skip listing refs.
SETTLED_SECONDS = 2.0
#: Runs whose child rows a sync gathers before inserting them (memory stays flat).
INSERT_CHUNK = 2000


@dataclass(frozen=True)
class SyncStats:
    """What one :meth:`RunIndex.sync` did."""

    listed: bool  #: False when the ref listing was skipped (nothing could have changed)
    read: int  #: runs (re-)read from git
    removed: int  #: runs dropped because their refs vanished
    skipped: int  #: runs another process refreshed meanwhile (left to it)
    #: of the runs read, those taken from archive summary tables (not their own commits)
    from_tables: int = 0
    tables: int = 0  #: archive summary tables read


class IndexSync:
    """The sync of a run index: what :class:`~vtrack.store.index.RunIndex` inherits."""

    store: Store

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # RunIndex: this thread's connection

    # -- keeping up with the refs -------------------------------------------------------------
    def _fingerprint(self) -> list[Any]:
        return self.store.refs.fingerprint()

    def _live_ids(self) -> set[str]:
        live = set()
        for run_id in self.store.live_run_ids():
            with contextlib.suppress(OSError):
                if os.listdir(self.store.run_live_dir(run_id)):
                    live.add(run_id)
        return live

    def _list_refs(self) -> bytes:
        return self.store.refs.run_listing()

    def _parse_tips(self, listing: bytes) -> dict[str, tuple[str, str]]:
        return self.store.refs.parse_run_listing(listing)

    def sync(self) -> SyncStats:
        """Bring the index up to date with the refs and live journals; see the module doc."""
        return self._sync(full=False)

    def rebuild(self, *, tables: bool = True) -> SyncStats:
        """Re-read every run and replace the whole index in one transaction; with
        ``tables`` False, every run from its own commit (no archive summary table)."""
        return self._sync(full=True, tables=tables)

    def _sync(self, *, full: bool, tables: bool = True) -> SyncStats:
        # Two marks, stored with the data they describe, let a sync skip work: the stat
        # fingerprint of the ref storage (skip listing refs) and the digest of the last
        # applied listing (skip comparing every row). Neither covers live runs, which are
        # re-read every time.
        conn = self._conn()
        live = self._live_ids()
        fp = self._fingerprint()
        meta = self._meta(conn)
        if not full and meta.get("refs_fingerprint") == json.dumps(fp):
            return self._sync_live(conn, live, listed=False, marks=None)
        started = time.time()
        listing = self._list_refs()
        import hashlib  # lazy: OpenSSL's load is start-up time for commands that hash nothing

        digest = hashlib.blake2b(listing, digest_size=16).hexdigest()
        marks = (fp, started, digest)
        if not full and meta.get("refs_listing") == digest:
            return self._sync_live(conn, live, listed=True, marks=marks)
        tips = self._parse_tips(listing)
        generation, seen = self._read_rows(
            conn, "SELECT run_id, commit_sha, lifecycle, live FROM runs"
        )
        wanted: list[tuple[str, str, str, bool]] = []
        for run_id, (sha, lifecycle) in tips.items():
            is_live = lifecycle == ACTIVE and run_id in live
            if full or is_live or seen.get(run_id) != (sha, lifecycle, False):
                wanted.append((run_id, sha, lifecycle, is_live))
        vanished = [r for r in seen if r not in tips]
        # streamed (memory stays flat); archived runs from their batches' summary tables
        reads = TableReads()
        records = iter_derived(self.store, wanted, tables=tables, reads=reads, batches=True)
        skipped, count = self._apply(
            conn, records, vanished, seen, full=full, generation=generation, marks=marks
        )
        return SyncStats(True, count, len(vanished), skipped, reads.runs, reads.tables)

    def _sync_live(
        self, conn: sqlite3.Connection, live: set[str], *, listed: bool,
        marks: tuple[list[Any], float, str] | None,
    ) -> SyncStats:  # fmt: skip
        """Refs unchanged: re-read live runs, and runs that stopped being live, only."""
        generation, rows = self._read_rows(
            conn,
            # two indexed lookups (an OR would scan every row: 80 ms at 100,000 runs)
            "SELECT run_id, commit_sha, lifecycle, live FROM runs WHERE live = 1 UNION ALL "
            "SELECT run_id, commit_sha, lifecycle, live FROM runs "
            "WHERE run_id IN (SELECT value FROM json_each(?)) AND live = 0",
            (to_json(sorted(live)),),
        )
        wanted = [
            (run_id, sha, lifecycle, lifecycle == ACTIVE and run_id in live)
            for run_id, (sha, lifecycle, was_live) in rows.items()
            if was_live or (lifecycle == ACTIVE and run_id in live)
        ]
        if not wanted and (marks is None or not self._settled(marks)):
            return SyncStats(listed, 0, 0, 0)
        records = iter_derived(self.store, wanted)
        skipped, count = self._apply(
            conn, records, [], rows, full=False, generation=generation, marks=marks
        )
        return SyncStats(listed, count, 0, skipped)

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    @staticmethod
    def _read_rows(
        conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()
    ) -> tuple[int, dict[str, tuple[str, str, bool]]]:
        """``(generation, {run_id: (commit, lifecycle, live)})`` from one read snapshot."""
        conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            rows = {r[0]: (r[1], r[2], bool(r[3])) for r in conn.execute(sql, args)}
        finally:
            conn.execute("COMMIT")
        return int(row[0]) if row else 0, rows

    @staticmethod
    def _settled(marks: tuple[list[Any], float, str]) -> bool:
        """True when no part of the ref storage changed shortly before the listing began."""
        fp, started, _ = marks
        return all(c is None or max(c[0], c[1]) / 1e9 < started - SETTLED_SECONDS for c in fp)

    def _apply(
        self,
        conn: sqlite3.Connection,
        records: Iterable[DerivedRun | TableBatch],
        vanished: list[str],
        seen: dict[str, tuple[str, str, bool]],
        *,
        full: bool,
        generation: int = 0,
        marks: tuple[list[Any], float, str] | None = None,
    ) -> tuple[int, int]:
        """Write ``records`` and drop ``vanished`` in one transaction; return ``(rows
        skipped, records written)``.

        Records are consumed as they are read and inserted :data:`INSERT_CHUNK` at a time,
        so memory does not grow with the store. Each row is replaced only if it still holds
        what this sync read (``seen``); ``marks`` are stored only when no other sync wrote
        in between and nothing was skipped, so they always describe the rows beside them.
        """
        skipped = count = 0
        bulk = full or not seen  # a first build: a crash loses nothing the refs do not hold
        # a build allocates millions of short-lived objects and no cycles: the cyclic
        # collector's passes over them cost ~10% of it
        paused = bulk and gc.isenabled()
        journal = False
        if bulk:
            conn.execute("PRAGMA synchronous = OFF")
            if paused:
                gc.disable()
            if full or conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None:
                journal = index_bulk.rollback_journal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            current_generation = int(row[0]) if row else 0
            clean = full or current_generation == generation
            if full:
                for table in index_schema.TABLES:
                    conn.execute(f"DELETE FROM {table}")
            mat = index_keys.materialized(conn)
            mat_any = any(mat.values())
            counts = index_keys.KeyCounts()
            rows: dict[str, list[tuple[Any, ...]]] = {
                t: [] for t in ("runs", *index_schema.CHILD_TABLES)
            }
            dataset_rows, record_rows = rows["datasets"], rows["records"]
            input_rows = rows[index_inputs.TABLE]  # (cleared in place by each insert)
            next_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0])
            pending = 0
            # summary tables written whole (index_bulk.ingest) when every run is new and
            # no key has value rows to write beside them
            whole = bulk and clean and not mat_any
            deferred = contextlib.ExitStack()
            if whole and next_id == 1:  # an empty index: its indexes are built once, after
                deferred.enter_context(index_bulk.deferred_indexes(conn, index_schema.BULK_INDEXES))

            def flat() -> Iterator[DerivedRun]:
                nonlocal next_id, count, pending
                for rec in records:
                    if not isinstance(rec, TableBatch):
                        yield rec
                    elif not whole:
                        yield from rec.derived()
                    else:
                        _insert_rows(conn, rows)  # run numbers in order
                        pending = 0
                        next_id = index_bulk.ingest(conn, rec, next_id, counts)
                        count += len(rec.taken)

            for rec in flat():
                count += 1
                # a run this sync did not see before is new unless another sync wrote since
                current = (
                    None
                    if full or (clean and rec.run_id not in seen)
                    else conn.execute(
                        "SELECT id, commit_sha, lifecycle, live FROM runs WHERE run_id = ?",
                        (rec.run_id,),
                    ).fetchone()
                )
                if not full and not self._unchanged_since_read(current, seen.get(rec.run_id)):
                    skipped += 1
                    continue
                if current is not None:
                    _insert_rows(conn, rows)  # rows of this run gathered so far go first
                    pending = 0
                    self._forget(conn, current[0], counts)
                if rec.broken:  # left out (iter_records warned); an old row would lie
                    if current is not None:
                        conn.execute("DELETE FROM runs WHERE id = ?", (current[0],))
                    continue
                if current is None:
                    rid, next_id = next_id, next_id + 1
                    rows["runs"].append((rid, rec.run_id, *rec.run_values()))
                else:
                    rid = current[0]
                    self._update_run(conn, rid, rec)
                if mat_any:
                    for table, values in rec.value_rows(rid, mat).items():
                        rows[table].extend(values)
                if rec.datasets:
                    dataset_rows += [(rid, *d) for d in rec.datasets]
                record_rows.append((rid, rec.body))
                counts.add(rec.experiment_id, rec.lifecycle, 1, rec.key_sets())
                if rec.inputs:
                    input_rows += [(rid, *f) for f in rec.inputs]
                pending += 1
                if pending >= INSERT_CHUNK:
                    _insert_rows(conn, rows)
                    pending = 0
            _insert_rows(conn, rows)
            deferred.close()
            for run_id in vanished:
                current = conn.execute(
                    "SELECT id, commit_sha, lifecycle, live FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if current is None:
                    continue
                if not self._unchanged_since_read(current, seen.get(run_id)):
                    skipped += 1
                    continue
                self._forget(conn, current[0], counts)
                conn.execute("DELETE FROM runs WHERE id = ?", (current[0],))
            counts.flush(conn)
            if records or vanished or full:
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES('generation', ?)",
                    (str(current_generation + 1),),
                )
            if marks is not None:
                fp, _, digest = marks
                keep = clean and not skipped
                for key, value, ok in (("refs_listing", digest, keep),
                                       ("refs_fingerprint", json.dumps(fp), keep and self._settled(marks))):  # fmt: skip
                    if ok:
                        conn.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))
                    else:
                        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            if paused:
                gc.enable()
            if bulk:
                conn.execute("PRAGMA synchronous = NORMAL")
            if journal:
                index_bulk.back_to_wal(conn)
        return skipped, count

    @staticmethod
    def _unchanged_since_read(current: Any, before: tuple[str, str, bool] | None) -> bool:
        if current is None:
            return before is None
        return before is not None and (current[1], current[2], bool(current[3])) == before

    @staticmethod
    def _forget(conn: sqlite3.Connection, rid: int, counts: index_keys.KeyCounts) -> None:
        """Drop the child rows of run ``rid`` and uncount its keys (its ``runs`` row stays)."""
        found = conn.execute(
            "SELECT r.experiment_id, r.lifecycle, c.body FROM runs r "
            "LEFT JOIN records c ON c.run = r.id WHERE r.id = ?", (rid,),
        ).fetchone()  # fmt: skip
        if found is not None and found[2] is not None:
            old = IndexedRecord.from_body("", "", found[1], found[2])
            counts.add(found[0], found[1], -1,
                       (("params", old.params), ("metrics", old.metrics), ("tags", old.tags)))  # fmt: skip
        for table in index_schema.CHILD_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE run = ?", (rid,))

    @staticmethod
    def _update_run(conn: sqlite3.Connection, rid: int, rec: DerivedRun) -> None:
        conn.execute(
            "UPDATE runs SET commit_sha=?, lifecycle=?, live=?, name=?, experiment_id=?, "
            "status=?, start_time=?, end_time=?, user=?, parent_run_id=? WHERE id=?",
            (*rec.run_values(), rid),
        )


def _insert_rows(conn: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Insert and clear the child rows gathered so far."""
    for table, values in rows.items():
        if values:
            marks_sql = ",".join("?" * len(values[0]))
            conn.executemany(f"INSERT INTO {table} VALUES({marks_sql})", values)
            values.clear()
