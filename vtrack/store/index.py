"""The derived run index: a SQLite copy of every run's searchable fields.

Refs are the truth; ``<git dir>/vtrack/index.sqlite`` only makes reading fast. Promises:

* **Derived.** Deleting the file (or finding it corrupt, or written by another schema
  version) changes nothing but speed: the next :meth:`RunIndex.sync` rebuilds it.
* **Incremental.** :meth:`RunIndex.sync` lists ``refs/vtrack/runs/`` and ``trash/`` with
  one ``git for-each-ref``, compares each tip with the commit the index last read for
  that run, re-reads only new or moved runs and drops vanished ones, all in one
  transaction. Runs with a live journal are re-read (journal included) on every sync.
  When the ref storage has not changed (by ``stat``) since a sync that saw it settled,
  the listing itself is skipped; when a listing equals the last one applied, the
  comparison with every row is skipped.
* **Concurrent.** WAL mode, a busy timeout and compare-and-swap row updates: any
  number of processes may sync and search at once; rows never duplicate, and a slow
  syncer never overwrites a row that a faster one refreshed.
* **Same answers as the reference evaluator.** :func:`compile_search` turns
  :mod:`vtrack.query` clauses into parametrized SQL with exactly the semantics of
  :func:`vtrack.query.evaluate` and :func:`vtrack.query.sort_runs` (missing values are
  false for every operator but ``IS NULL`` and sort last; params compare numerically
  when stored as numbers). Known limit: ints beyond 64 bits compare exactly but sort
  as their nearest float.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.entities import Run, RunData, RunInfo
from vtrack.entities.run import fresh_copy
from vtrack.logs import log
from vtrack.query import Comparison, OrderKey
from vtrack.store import index_bulk, index_inputs, index_keys
from vtrack.store.archive_summaries import TableBatch, TableReads, iter_derived
from vtrack.store.index_records import IndexedRecord, run_view, to_json
from vtrack.store.index_rows import DerivedRun
from vtrack.store.index_sql import (
    ROW_LIVE,
    compile_count,
    compile_search,
    like_to_glob,
    marks,
    sql_lower,
    sql_numcmp,
    walkable,
)
from vtrack.store.record import run_inputs
from vtrack.store.refs import ACTIVE, DELETED

if TYPE_CHECKING:
    from vtrack.store import Store

__all__ = [
    "ACTIVE", "DELETED", "RunIndex", "RunSummary", "SyncStats", "compile_search",
    "like_to_glob", "rebuild", "run_view", "sync",
]  # fmt: skip


SCHEMA_VERSION = 9
INDEX_FILE = "index.sqlite"
#: Milliseconds a writer waits for another process's index transaction.
BUSY_TIMEOUT_MS = 60_000
#: Seconds the ref storage must have been still before a sync may skip listing refs.
SETTLED_SECONDS = 2.0
#: Page cache of each connection (KiB) and how much of the file it maps: at 100,000 runs
#: the ``runs`` table alone is ~12 MB, well past SQLite's 2 MB default cache.
CACHE_KIB = 32 * 1024
MMAP_BYTES = 256 * 2**20
#: Page size of a new index file: each run's ~2.3 KB body is one row of ``records``, and
#: 16 KB pages write them 2x faster than SQLite's default 4 KB (a 100,000-run build).
PAGE_BYTES = 16384
#: Runs whose child rows a sync gathers before inserting them (memory stays flat).
INSERT_CHUNK = 2000
#: What a search that walks its order's index (``compile_search(walk=True)``) may spend
#: before the clauses' own indexes are asked instead: SQLite instructions, a fixed part
#: and a part per row of the page (at 100,000 runs, the benchmark's 1,000-run page takes
#: ~110,000; a walk past every run ~1,600,000), counted every WALK_TICK instructions.
WALK_STEPS = 50_000
WALK_STEPS_PER_ROW = 150
WALK_TICK = 5_000
#: Run objects an index keeps built for the next search that returns them (~15 KB each).
BUILT_RUNS_KEPT = 2048

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    lifecycle TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 0,
    name TEXT,
    experiment_id TEXT,
    status TEXT,
    start_time INTEGER,
    end_time INTEGER,
    user TEXT,
    parent_run_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_run_id ON runs(run_id);
CREATE INDEX IF NOT EXISTS runs_exp_start ON runs(experiment_id, start_time DESC, run_id);
CREATE INDEX IF NOT EXISTS runs_start ON runs(start_time DESC, run_id);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_live ON runs(live) WHERE live = 1;
CREATE INDEX IF NOT EXISTS runs_life ON runs(lifecycle, experiment_id);
CREATE TABLE IF NOT EXISTS params(
    run INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, num, text TEXT,
    PRIMARY KEY(run, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_key_num ON params(key, num);
CREATE INDEX IF NOT EXISTS params_key_text ON params(key, text);
CREATE TABLE IF NOT EXISTS metrics(
    run INTEGER NOT NULL, key TEXT NOT NULL, num,  -- no affinity: REAL would turn -0.0 into 0.0
    PRIMARY KEY(run, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metrics_key_num ON metrics(key, num);
CREATE TABLE IF NOT EXISTS tags(
    run INTEGER NOT NULL, key TEXT NOT NULL, text TEXT,
    PRIMARY KEY(run, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key_text ON tags(key, text);
CREATE TABLE IF NOT EXISTS datasets(
    run INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT, digest TEXT, context TEXT,
    PRIMARY KEY(run, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS datasets_digest ON datasets(digest);
CREATE INDEX IF NOT EXISTS datasets_name ON datasets(name);
CREATE TABLE IF NOT EXISTS records(run INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""
    + index_inputs.SCHEMA
    + index_keys.SCHEMA
)
#: What a full rebuild clears (``materialized`` stays: its keys' rows are rewritten).
_TABLES = ("runs", "params", "metrics", "tags", "datasets", "records", index_inputs.TABLE,
           "key_counts")  # fmt: skip
_CHILD_TABLES = ("params", "metrics", "tags", "datasets", "records", index_inputs.TABLE)
#: What a build into an empty index creates after its rows (index_bulk.deferred_indexes).
_BULK_INDEXES = index_bulk.secondary_indexes(_SCHEMA, ("runs", "datasets", index_inputs.TABLE))


# --- the index ------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class RunSummary:
    """One index row without params, metrics or tags (for run-spec resolution)."""

    run_id: str
    name: str | None
    experiment_id: str | None
    status: str | None
    start_time: int | None
    lifecycle: str


_instances: weakref.WeakKeyDictionary[Any, RunIndex] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


class RunIndex:
    """The derived SQLite index of one store. Thread-safe (one connection per thread)."""

    def __init__(self, store: Store, path: Path | None = None) -> None:
        self.store = store
        self.path = path or store.location.vtrack_dir / INDEX_FILE
        self._local = threading.local()
        self._built: dict[tuple[Any, ...], Run] = {}
        self._built_lock = threading.Lock()

    @classmethod
    def for_store(cls, store: Store) -> RunIndex:
        """The shared index object of ``store`` (one per Store instance)."""
        with _instances_lock:
            idx = _instances.get(store)
            if idx is None:
                idx = _instances[store] = cls(store)
            return idx

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; reopened after a fork or when the file was replaced."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            if self._local.file_id is None or self._local.file_id == self._file_id():
                return conn
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        conn = self._open()
        in_memory = conn.execute("PRAGMA database_list").fetchone()[2] == ""
        self._local.conn, self._local.pid = conn, os.getpid()
        self._local.file_id = None if in_memory else self._file_id()
        return conn

    def _file_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect(str(self.path))
            self._ensure_schema(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                log.warning("vtrack: index %s is unreadable (%s); rebuilding it", self.path, exc)
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"{self.path}{suffix}")
                conn = self._connect(str(self.path))
                self._ensure_schema(conn)
                return conn
            if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
                conn = self._connect(":memory:")  # read-only store: index in memory only
                self._ensure_schema(conn)
                return conn
            raise
        except OSError:
            conn = self._connect(":memory:")
            self._ensure_schema(conn)
            return conn

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA page_size = {PAGE_BYTES}")  # a new file's only: before WAL
        if target != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.create_function("vt_lower", 1, sql_lower, deterministic=True)
        conn.create_function("vt_numcmp", 3, sql_numcmp, deterministic=True)
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_version(conn) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._schema_version(conn)
            if version != SCHEMA_VERSION:
                if version is not None or self._has_tables(conn):
                    log.info(
                        "vtrack: index schema %s is not %s; rebuilding", version, SCHEMA_VERSION
                    )
                    self._drop_all(conn)
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        try:
            return int(row[0]) if row else None
        except ValueError:
            return -1

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone())

    @staticmethod
    def _drop_all(conn: sqlite3.Connection) -> None:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
        for name in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')

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
                for table in _TABLES:
                    conn.execute(f"DELETE FROM {table}")
            mat = index_keys.materialized(conn)
            mat_any = any(mat.values())
            counts = index_keys.KeyCounts()
            rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in ("runs", *_CHILD_TABLES)}
            dataset_rows, record_rows = rows["datasets"], rows["records"]
            input_rows = rows[index_inputs.TABLE]  # (cleared in place by each insert)
            next_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0])
            pending = 0
            # tables written by SQLite itself when every run is new and no key has rows
            in_sql = bulk and clean and not mat_any
            deferred = contextlib.ExitStack()
            if in_sql and next_id == 1:  # an empty index: its indexes are built once, after
                deferred.enter_context(index_bulk.deferred_indexes(conn, _BULK_INDEXES))

            def flat() -> Iterator[DerivedRun]:
                nonlocal next_id, count, pending
                for rec in records:
                    if not isinstance(rec, TableBatch):
                        yield rec
                    elif not in_sql:
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
        for table in _CHILD_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE run = ?", (rid,))

    @staticmethod
    def _update_run(conn: sqlite3.Connection, rid: int, rec: DerivedRun) -> None:
        conn.execute(
            "UPDATE runs SET commit_sha=?, lifecycle=?, live=?, name=?, experiment_id=?, "
            "status=?, start_time=?, end_time=?, user=?, parent_run_id=? WHERE id=?",
            (*rec.run_values(), rid),
        )

    # -- searching ------------------------------------------------------------------------
    def search(
        self,
        clauses: Sequence[Comparison] = (),
        order: Sequence[OrderKey] = (),
        *,
        experiment_ids: Iterable[str] | None = None,
        lifecycles: Iterable[str] = (ACTIVE,),
        max_results: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        """Runs matching every clause, ordered as :func:`vtrack.query.sort_runs` orders them.

        ``experiment_ids`` None means every experiment; ``offset`` skips that many
        matching runs first (pages of a listing). Call :meth:`sync` first for fresh
        results; the answer reflects the index as of one consistent snapshot.
        """
        exps = None if experiment_ids is None else tuple(experiment_ids)
        life = tuple(lifecycles)
        conn = self._conn()
        self.ensure_keys(
            [*((c.entity, c.key) for c in clauses), *((o.entity, o.key) for o in order)]
        )
        conn.execute("BEGIN")
        try:
            if max_results is not None and max_results > 0 and walkable(clauses, order):
                # walk the order's index, checking clauses run by run, within a budget:
                # a full page is the answer; a walk that finds matches rare is cut off
                # and the clauses' own indexes answer (compile_search's two plans)
                sql, args = compile_search(
                    clauses, order, experiment_ids=exps, lifecycles=life,
                    max_results=max_results, offset=offset, walk=True,
                )  # fmt: skip
                rows = within_budget(conn, sql, args, offset + max_results)
                if rows is not None and len(rows) == max_results:
                    return self._runs_from_rows(conn, rows)
            sql, args = compile_search(
                clauses, order, experiment_ids=exps, lifecycles=life,
                max_results=max_results, offset=offset,
            )  # fmt: skip
            rows = conn.execute(sql, args).fetchall()
            return self._runs_from_rows(conn, rows)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def count_matching(
        self,
        clauses: Sequence[Comparison] = (),
        *,
        experiment_ids: Iterable[str] | None = None,
        lifecycles: Iterable[str] = (ACTIVE,),
    ) -> int:
        """How many runs :meth:`search` would return without a limit."""
        sql, args = compile_count(clauses, experiment_ids=experiment_ids, lifecycles=lifecycles)
        self.ensure_keys([(c.entity, c.key) for c in clauses])
        return int(self._conn().execute(sql, args).fetchone()[0])

    def ensure_keys(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Make sure the value rows of each ``(entity, key)`` are in the index
        (:func:`index_keys.ensure`); a query over those tables calls this first."""
        index_keys.ensure(self._conn(), wanted)

    def keys(
        self, experiment_ids: Iterable[str] | None = None, lifecycles: Iterable[str] = (ACTIVE,)
    ) -> dict[str, list[str]]:
        """The param, metric and tag keys the runs in scope have (sorted, per entity).

        Answered from per-scope key counts kept by every sync (no value rows needed).
        """
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        return index_keys.keys_in_scope(self._conn(), exps, tuple(lifecycles))

    def list_runs(
        self, experiment_ids: Iterable[str] | None = None, lifecycles: Iterable[str] = (ACTIVE,)
    ) -> list[Run]:
        """Every run in scope, newest first (ties: higher run id first)."""
        sql, args = compile_search(
            (), (), experiment_ids=experiment_ids, lifecycles=lifecycles, max_results=None,
            tie_break="r.start_time DESC, r.run_id DESC",
        )  # fmt: skip
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return self._runs_from_rows(conn, conn.execute(sql, args).fetchall())
        finally:
            conn.execute("COMMIT")

    def _runs_from_rows(self, conn: sqlite3.Connection, rows: list[Any]) -> list[Run]:
        """Run objects for ``rows`` of :func:`compile_search`, from their stored bodies.

        Built runs are remembered by everything they are built from, so a run shown
        again — the next page view, the same search — costs a dict lookup and copies of
        its param, metric and tag dicts (callers may change those). A finished run's row
        names its commit, which fixes its body, so the row is the key and its body is not
        read again; a live run (its body follows the journal) is keyed by row and body.
        """
        if not rows:
            return []
        built, lock = self._built, self._built_lock
        with lock:
            found = [None if row[ROW_LIVE] else built.get(tuple(row)) for row in rows]
        missing = [row[0] for row, run in zip(rows, found, strict=True) if run is None]
        bodies = dict(conn.execute(
            "SELECT run, body FROM records WHERE run IN (SELECT value FROM json_each(?))",
            (to_json(missing),),
        ).fetchall()) if missing else {}  # fmt: skip
        out = []
        for row, run in zip(rows, found, strict=True):
            key = tuple(row)
            if row[ROW_LIVE]:
                key = (*key, bodies.get(row[0]))
            if run is None:
                with lock:
                    run = built.get(key)
                if run is None:
                    run = _run_of(row, bodies.get(row[0]))
            with lock:
                built.pop(key, None)
                built[key] = run  # most recent last
            out.append(fresh_copy(run))
        with lock:
            while len(built) > BUILT_RUNS_KEPT:
                del built[next(iter(built))]
        return out

    # -- for derived tables kept beside the index (index_metricstats, index_outputs) ------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the index file (derived tables beside the index use it)."""
        return self._conn()

    def runs_from_rows(self, conn: sqlite3.Connection, rows: list[Any]) -> list[Run]:
        """Run objects for rows shaped like :func:`compile_search`'s (see ``_runs_from_rows``)."""
        return self._runs_from_rows(conn, rows)

    # -- lookups for the run-spec resolver ----------------------------------------------------
    def _summaries(self, where: str, args: Sequence[Any], tail: str = "") -> list[RunSummary]:
        sql = (
            "SELECT run_id, name, experiment_id, status, start_time, lifecycle FROM runs r "
            f"WHERE {where} {tail}"
        )
        return [RunSummary(*row) for row in self._conn().execute(sql, args)]

    def by_id(self, run_id: str) -> RunSummary | None:
        """The row of exactly ``run_id`` (any lifecycle), or None."""
        found = self._summaries("run_id = ?", (run_id,))
        return found[0] if found else None

    def by_prefix(
        self, prefix: str, lifecycles: Iterable[str], limit: int = 50
    ) -> list[RunSummary]:
        """Runs whose id starts with ``prefix`` (lowercase hex), at most ``limit``."""
        life = tuple(lifecycles)
        return self._summaries(
            f"run_id >= ? AND run_id < ? AND lifecycle IN ({marks(life)})",
            (prefix, prefix + "\x7f", *life), f"ORDER BY run_id LIMIT {int(limit)}",
        )  # fmt: skip

    def by_name(
        self, name: str, lifecycles: Iterable[str], experiment_ids: Iterable[str] | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:  # fmt: skip
        """Runs called exactly ``name``, newest first, at most ``limit``."""
        life = tuple(lifecycles)
        where, args = f"name = ? AND lifecycle IN ({marks(life)})", [name, *life]
        if experiment_ids is not None:
            exps = tuple(experiment_ids)
            where += f" AND experiment_id IN ({marks(exps)})"
            args += exps
        return self._summaries(where, args, f"ORDER BY start_time DESC, run_id LIMIT {int(limit)}")

    def children_of(
        self, run_id: str, lifecycles: Iterable[str] = (ACTIVE,), limit: int = 1000
    ) -> list[RunSummary]:
        """Runs whose parent is ``run_id``, oldest first, at most ``limit``."""
        life = tuple(lifecycles)
        return self._summaries(
            f"parent_run_id = ? AND lifecycle IN ({marks(life)})", (run_id, *life),
            f"ORDER BY start_time, run_id LIMIT {int(limit)}",
        )  # fmt: skip

    def children(self, run_id: str, lifecycles: Iterable[str]) -> list[RunSummary]:
        """The runs whose parent is ``run_id``, oldest first (creation order; ties by id)."""
        life = tuple(lifecycles)
        return self._summaries(
            f"parent_run_id = ? AND lifecycle IN ({marks(life)})", (run_id, *life),
            "ORDER BY start_time, run_id",
        )  # fmt: skip

    def parent_of(self, run_id: str) -> str | None:
        """The parent run id of ``run_id`` (None for a top-level or unknown run)."""
        row = (
            self._conn()
            .execute("SELECT parent_run_id FROM runs WHERE run_id = ?", (run_id,))
            .fetchone()
        )
        return row[0] if row and row[0] else None

    def newest(
        self, offset: int, lifecycles: Iterable[str], experiment_ids: Iterable[str] | None = None,
        *, top_level: bool = False,
    ) -> tuple[RunSummary | None, int]:  # fmt: skip
        """The ``offset``-th newest run in scope (0 = newest) and how many runs the scope has.

        ``top_level`` counts only runs without a parent (the roots of run trees).
        """
        life = tuple(lifecycles)
        where, args = f"lifecycle IN ({marks(life)})", list(life)
        if top_level:
            where += " AND parent_run_id IS NULL"
        if experiment_ids is not None:
            exps = tuple(experiment_ids)
            where += f" AND experiment_id IN ({marks(exps)})"
            args += exps
        found = self._summaries(
            where,
            [*args, int(offset)],
            "ORDER BY start_time DESC, run_id LIMIT 1 OFFSET ?",
        )
        if found:
            return found[0], -1
        count = self._conn().execute(f"SELECT count(*) FROM runs WHERE {where}", args).fetchone()
        return None, int(count[0])

    def count(self) -> int:
        """Number of runs in the index (any lifecycle)."""
        return int(self._conn().execute("SELECT count(*) FROM runs").fetchone()[0])

    def input_uses(self, **query: Any) -> list[tuple[Any, ...]]:
        """Inputs of indexed runs matching a path or digest (:func:`index_inputs.find_uses`)."""
        return index_inputs.find_uses(self._conn(), store=self.store, **query)


def _run_of(row: Sequence[Any], body: str | bytes | None) -> Run:
    rid, run_id, commit, lifecycle, name, exp_id, status, start, _end, user, _parent = row[:11]
    rec = (
        IndexedRecord.from_body(run_id, commit, lifecycle, body)
        if body is not None
        else IndexedRecord.unreadable(run_id, commit, lifecycle)
    )
    info = rec.info
    return Run(
        info=RunInfo(
            run_id=run_id,
            run_name=str(name),
            experiment_id=str(exp_id),
            status=str(status),
            start_time=int(start or 0),
            end_time=info.get("end_time"),
            user_id=user or "",
            parent_run_id=info.get("parent_run_id"),
            description=info.get("description"),
            lifecycle_stage=lifecycle,
            commit=commit,
            source=info.get("source") or {},
            environment=info.get("environment") or {},
        ),
        data=RunData(params=rec.params, metrics=rec.metrics, tags=rec.tags),
        inputs=run_inputs(rec.inputs, rec.artifacts),
    )


# --- module-level conveniences ---------------------------------------------------------------


def within_budget(
    conn: sqlite3.Connection, sql: str, args: Sequence[Any], page_rows: int
) -> list[Any] | None:
    """The rows of a walk ``sql`` that ends at ``page_rows`` rows, or None when SQLite
    needs more than its budget of virtual machine instructions for it
    (:data:`WALK_STEPS` + :data:`WALK_STEPS_PER_ROW` per row; counted, so the cut is the
    same on every machine)."""
    steps = WALK_STEPS + WALK_STEPS_PER_ROW * page_rows
    used = 0

    def tick() -> int:
        nonlocal used
        used += WALK_TICK
        return int(used > steps)

    conn.set_progress_handler(tick, WALK_TICK)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        return None
    finally:
        conn.set_progress_handler(None, 0)


def _insert_rows(conn: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Insert and clear the child rows gathered so far."""
    for table, values in rows.items():
        if values:
            marks_sql = ",".join("?" * len(values[0]))
            conn.executemany(f"INSERT INTO {table} VALUES({marks_sql})", values)
            values.clear()


def sync(store: Store) -> SyncStats:
    """Bring ``store``'s index up to date (see :meth:`RunIndex.sync`)."""
    return RunIndex.for_store(store).sync()


def rebuild(store: Store) -> SyncStats:
    """Re-read every run of ``store`` into a fresh index (see :meth:`RunIndex.rebuild`)."""
    return RunIndex.for_store(store).rebuild()
