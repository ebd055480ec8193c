"""The index file (:mod:`vtrack.store.index`): its schema, its version, its connections.

The file is derived (refs are the truth): one of another :data:`SCHEMA_VERSION`, or one
SQLite cannot read, is dropped and built again; a place that cannot be written gives an
index in memory. Every connection waits :data:`BUSY_TIMEOUT_MS` for another process's
transaction, reads through WAL, and has the SQL functions :mod:`vtrack.store.index_sql`
compiles searches to.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from vtrack.logs import log
from vtrack.store import index_bulk, index_inputs, index_keys
from vtrack.store.index_sql import sql_lower, sql_numcmp

SCHEMA_VERSION = 9
INDEX_FILE = "index.sqlite"
#: Milliseconds a writer waits for another process's index transaction.
BUSY_TIMEOUT_MS = 60_000
#: Page cache of each connection (KiB) and how much of the file it maps: at 100,000 runs
#: the ``runs`` table alone is ~12 MB, well past SQLite's 2 MB default cache.
CACHE_KIB = 32 * 1024
MMAP_BYTES = 256 * 2**20
#: Page size of a new index file: each run's ~2.3 KB body is one row of ``records``, and
#: 16 KB pages write them 2x faster than SQLite's default 4 KB (a 100,000-run build).
PAGE_BYTES = 16384

SCHEMA = (
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
TABLES = ("runs", "params", "metrics", "tags", "datasets", "records", index_inputs.TABLE,
           "key_counts")  # fmt: skip
CHILD_TABLES = ("params", "metrics", "tags", "datasets", "records", index_inputs.TABLE)
#: What a build into an empty index creates after its rows (index_bulk.deferred_indexes).
BULK_INDEXES = index_bulk.secondary_indexes(SCHEMA, ("runs", "datasets", index_inputs.TABLE))


def open_index(path: Path) -> sqlite3.Connection:
    """A connection to the index file at ``path`` with the current schema: an unreadable
    file is replaced (the index is derived), a read-only place gives an in-memory index."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(str(path))
        ensure_schema(conn)
        return conn
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            log.warning("vtrack: index %s is unreadable (%s); rebuilding it", path, exc)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
            conn = connect(str(path))
            ensure_schema(conn)
            return conn
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
            conn = connect(":memory:")  # read-only store: index in memory only
            ensure_schema(conn)
            return conn
        raise
    except OSError:
        conn = connect(":memory:")
        ensure_schema(conn)
        return conn


def connect(target: str) -> sqlite3.Connection:
    """A connection to ``target`` (a path or ``:memory:``) as every index connection is set up."""
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


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the schema, or drop and re-create an index of another schema version."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        if version != SCHEMA_VERSION:
            if version is not None or has_tables(conn):
                log.info("vtrack: index schema %s is not %s; rebuilding", version, SCHEMA_VERSION)
                drop_all(conn)
            for stmt in SCHEMA.split(";"):
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


def schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        return None
    try:
        return int(row[0]) if row else None
    except ValueError:
        return -1


def has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone())


def drop_all(conn: sqlite3.Connection) -> None:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )]  # fmt: skip
    for name in names:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
