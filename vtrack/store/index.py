"""The derived run index: a SQLite copy of every run's searchable fields.

Refs are the truth; ``<git dir>/vtrack/index.sqlite`` only makes reading fast. Promises:

* **Derived.** Deleting the file (or finding it corrupt, or written by another schema
  version) changes nothing but speed: the next :meth:`RunIndex.sync` rebuilds it.
* **Incremental.** :meth:`RunIndex.sync` lists ``refs/vtrack/runs/`` and ``trash/`` with
  one ``git for-each-ref``, compares each tip with the commit the index last read for
  that run, re-reads only new or moved runs and drops vanished ones, all in one
  transaction. Runs with a live journal are re-read (journal included) on every sync.
  When no run is live and the ref storage has not changed since a sync that saw it
  settled, the listing itself is skipped.
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
import json
import logging
import math
import os
import sqlite3
import subprocess
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.entities import Run, RunData, RunInfo, RunInputs
from vtrack.errors import RunNotFoundError, StoreError, ValidationError
from vtrack.query import Comparison, OrderKey, _filter_number, _present, _text
from vtrack.store import refs as refnames
from vtrack.store.record import RECORD_DIR, load_yaml

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.record import RecordState

log = logging.getLogger("vtrack")

SCHEMA_VERSION = 1
INDEX_FILE = "index.sqlite"
#: Milliseconds a writer waits for another process's index transaction.
BUSY_TIMEOUT_MS = 60_000
#: Seconds the ref storage must have been still before a sync may skip listing refs.
SETTLED_SECONDS = 2.0
#: Changed runs above this count are read through one ``git cat-file --batch`` pipe.
BATCH_READ_THRESHOLD = 16
#: Lifecycle stages as stored in ``runs.lifecycle``.
ACTIVE, DELETED = "active", "deleted"
_RECORD_FILES = ("run.yaml", "params.yaml", "metrics.yaml", "inputs.yaml", "artifacts.yaml")
_INT64 = (-(2**63), 2**63 - 1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
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
CREATE INDEX IF NOT EXISTS runs_exp_start ON runs(experiment_id, start_time);
CREATE INDEX IF NOT EXISTS runs_start ON runs(start_time);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE TABLE IF NOT EXISTS params(
    run INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, num, text TEXT,
    PRIMARY KEY(run, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_key_num ON params(key, num);
CREATE INDEX IF NOT EXISTS params_key_text ON params(key, text);
CREATE TABLE IF NOT EXISTS metrics(
    run INTEGER NOT NULL, key TEXT NOT NULL, num REAL,
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
CREATE TABLE IF NOT EXISTS records(
    run INTEGER PRIMARY KEY, info TEXT NOT NULL, inputs TEXT NOT NULL, artifacts TEXT NOT NULL);
"""
_TABLES = ("runs", "params", "metrics", "tags", "datasets", "records")
_CHILD_TABLES = ("params", "metrics", "tags", "datasets", "records")


# --- records as the index sees them ---------------------------------------------------------


@dataclass
class IndexedRecord:
    """The searchable content of one run commit (plus journals, for live runs)."""

    run_id: str
    commit: str
    lifecycle: str
    live: bool
    info: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: list[dict[str, Any]]
    artifacts: dict[str, Any]

    @classmethod
    def from_blobs(
        cls, run_id: str, commit: str, lifecycle: str, blobs: dict[str, bytes | None]
    ) -> IndexedRecord:
        """Parse the record files the way ``RecordState.from_tree`` does."""

        def load(name: str) -> Any:
            data = blobs.get(name)
            return None if data is None else load_yaml(data)

        info = load("run.yaml") or {}
        if not isinstance(info, dict):
            raise StoreError(f"run {run_id}: run.yaml of commit {commit} is not a mapping")
        tags = {str(k): str(v) for k, v in (info.pop("tags", None) or {}).items()}
        info.pop("format", None)
        metrics = {str(k): float(v) for k, v in (load("metrics.yaml") or {}).items()}
        params = {str(k): v for k, v in (load("params.yaml") or {}).items()}
        return cls(
            run_id, commit, lifecycle, False, info, params, metrics, tags,
            list(load("inputs.yaml") or []), dict(load("artifacts.yaml") or {}),
        )  # fmt: skip

    @classmethod
    def from_state(
        cls, run_id: str, commit: str, lifecycle: str, live: bool, state: RecordState
    ) -> IndexedRecord:
        """Copy a loaded :class:`~vtrack.store.record.RecordState`."""
        return cls(
            run_id, commit, lifecycle, live, dict(state.info), dict(state.params),
            dict(state.metrics), dict(state.tags), [dict(e) for e in state.inputs],
            dict(state.artifacts),
        )  # fmt: skip


def _text_or_none(value: Any) -> str | None:
    return _text(value) if _present(value) else None


def _param_row(value: Any) -> tuple[str, Any, str | None]:
    """``(kind, num, text)`` of a param; ``text`` is None exactly when the value is missing."""
    if value is None:
        return "null", None, None
    if isinstance(value, bool):
        return "bool", None, _text(value)
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return "int", value, str(value)
        return "bigint", float(value), str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float", None, None
        return "float", value, repr(value)
    if isinstance(value, str):
        return "str", None, value
    return "str", None, _text(value)  # dates and other YAML oddities: their text


def _param_value(kind: str, num: Any, text: str | None) -> Any:
    if kind == "null":
        return None
    if kind in ("int", "bigint"):
        return int(text)  # type: ignore[arg-type]
    if kind == "float":
        return math.nan if text is None else float(text)
    if kind == "bool":
        return text == "True"
    return text


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _attr_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _attr_int(value: Any) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def run_view(run: Run) -> dict[str, Any]:
    """The :data:`vtrack.query.RunView` of ``run``, with the index's coercions.

    Text attributes are ``str()`` of the stored value; dataset fields are compared as
    text (``name``, ``digest``, ``context`` of each input). Evaluating a filter on this
    view with :func:`vtrack.query.evaluate` gives the same answer as the index.
    """
    info = run.info
    return {
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "attributes": {
            "run_id": info.run_id,
            "run_name": _attr_text(info.run_name),
            "status": _attr_text(info.status),
            "experiment_id": _attr_text(info.experiment_id),
            "user_id": _attr_text(info.user_id),
            "start_time": _attr_int(info.start_time),
            "end_time": _attr_int(info.end_time),
        },
        "datasets": [
            {f: _text_or_none(d.get(f)) for f in ("name", "digest", "context")}
            for d in run.inputs.datasets
            if isinstance(d, dict)
        ],
    }


# --- reading run commits ----------------------------------------------------------------------


def _read_blobs_inprocess(store: Store, sha: str) -> dict[str, bytes | None]:
    objects = store.objects
    commit = objects.read_commit(sha)
    record = None
    for _mode, name, entry_sha in objects.read_tree(commit["tree"]):
        if name == RECORD_DIR.encode():
            record = entry_sha
            break
    if record is None:
        raise StoreError(f"commit {sha} is not a vtrack run commit (no {RECORD_DIR}/)")
    out: dict[str, bytes | None] = {}
    for _mode, name, entry_sha in objects.read_tree(record):
        text = name.decode("utf-8", "replace")
        if text in _RECORD_FILES:
            out[text] = objects.read_blob(entry_sha)
    return out


def _read_blobs_batch(git_dir: Path, shas: Sequence[str]) -> list[dict[str, bytes | None]]:
    """Record files of many commits through one ``git cat-file --batch`` pipe."""
    names = [f"{sha}:{RECORD_DIR}/{f}" for sha in shas for f in _RECORD_FILES]
    try:
        proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch", "--buffer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=gitcmd.git_env(),
        )  # fmt: skip
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH", hint="install git 2.30+") from None
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.write(("\n".join(names) + "\n").encode("utf-8"))
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, name="vtrack-index-feed", daemon=True)
    feeder.start()
    out: list[dict[str, bytes | None]] = [{} for _ in shas]
    stdout = proc.stdout
    try:
        for i in range(len(names)):
            header = stdout.readline()
            if not header:
                raise StoreError("git cat-file --batch stopped early while indexing runs")
            parts = header.split()
            if len(parts) == 3 and parts[1] in (b"blob", b"tree", b"commit", b"tag"):
                size = int(parts[2])
                data = stdout.read(size + 1)[:size]
                out[i // len(_RECORD_FILES)][_RECORD_FILES[i % len(_RECORD_FILES)]] = (
                    data if parts[1] == b"blob" else None
                )
            # "<name> missing" / "ambiguous": the file is absent
    finally:
        feeder.join()
        stdout.close()
        proc.wait()
    return out


def _read_records(
    store: Store, wanted: Sequence[tuple[str, str, str, bool]]
) -> list[IndexedRecord]:
    """Read ``(run_id, sha, lifecycle, live)`` runs; unreadable ones are logged and skipped."""
    records: list[IndexedRecord] = []
    plain = [w for w in wanted if not w[3]]
    for run_id, sha, lifecycle, _ in (w for w in wanted if w[3]):
        try:
            tip, state = store.read_run_state(run_id)
            records.append(IndexedRecord.from_state(run_id, tip, lifecycle, True, state))
        except RunNotFoundError:
            plain.append((run_id, sha, lifecycle, False))
        except Exception as exc:  # noqa: BLE001 - one bad run must not hide the others
            log.warning("vtrack: cannot index live run %s: %s", run_id, exc)
    if len(plain) > BATCH_READ_THRESHOLD:
        blob_sets = _read_blobs_batch(store.location.git_dir, [w[1] for w in plain])
    else:
        blob_sets = []
        for w in plain:
            try:
                blob_sets.append(_read_blobs_inprocess(store, w[1]))
            except Exception as exc:  # noqa: BLE001
                log.warning("vtrack: cannot index run %s (commit %s): %s", w[0], w[1], exc)
                blob_sets.append({})
    for (run_id, sha, lifecycle, _), blobs in zip(plain, blob_sets, strict=True):
        if blobs.get("run.yaml") is None:
            log.warning("vtrack: run %s points at commit %s without a run record", run_id, sha)
        try:
            records.append(IndexedRecord.from_blobs(run_id, sha, lifecycle, blobs))
        except Exception as exc:  # noqa: BLE001
            log.warning("vtrack: cannot index run %s (commit %s): %s", run_id, sha, exc)
            records.append(IndexedRecord(run_id, sha, lifecycle, False, {}, {}, {}, {}, [], {}))
    return records


# --- the index ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncStats:
    """What one :meth:`RunIndex.sync` did."""

    listed: bool  #: False when the ref listing was skipped (nothing could have changed)
    read: int  #: runs (re-)read from git
    removed: int  #: runs dropped because their refs vanished
    skipped: int  #: runs another process refreshed meanwhile (left to it)


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
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = self._open()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

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
        if target != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.create_function("vt_lower", 1, _lower, deterministic=True)
        conn.create_function("vt_numcmp", 3, _numcmp, deterministic=True)
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_version(conn) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._schema_version(conn)
            if version != SCHEMA_VERSION:
                if version is not None or self._has_tables(conn):
                    log.info("vtrack: index schema %s is not %s; rebuilding", version, SCHEMA_VERSION)
                    self._drop_all(conn)
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),)
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
        git_dir = self.store.location.git_dir
        out: list[Any] = []
        for rel in ("packed-refs", "refs/vtrack", refnames.RUNS, refnames.TRASH):
            try:
                st = os.stat(git_dir / rel)
                out.append([st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size])
            except FileNotFoundError:
                out.append(None)
        return out

    def _live_ids(self) -> set[str]:
        live = set()
        for run_id in self.store.live_run_ids():
            with contextlib.suppress(OSError):
                if os.listdir(self.store.run_live_dir(run_id)):
                    live.add(run_id)
        return live

    def _list_tips(self) -> dict[str, tuple[str, str]]:
        res = gitcmd.run(
            ["for-each-ref", "--format=%(objectname) %(refname)", refnames.RUNS, refnames.TRASH],
            git_dir=self.store.location.git_dir,
        )
        tips: dict[str, tuple[str, str]] = {}
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            sha, _, name = line.partition(" ")
            if name.startswith(refnames.RUNS):
                tips[name[len(refnames.RUNS) :]] = (sha, ACTIVE)
            elif name.startswith(refnames.TRASH):
                tips.setdefault(name[len(refnames.TRASH) :], (sha, DELETED))
        return tips

    def sync(self) -> SyncStats:
        """Bring the index up to date with the refs and live journals; see the module doc."""
        return self._sync(full=False)

    def rebuild(self) -> SyncStats:
        """Re-read every run and replace the whole index in one transaction."""
        return self._sync(full=True)

    def _sync(self, *, full: bool) -> SyncStats:
        conn = self._conn()
        live = self._live_ids()
        fp = self._fingerprint()
        if not full and not live:
            row = conn.execute("SELECT value FROM meta WHERE key = 'refs_fingerprint'").fetchone()
            if row is not None and json.loads(row[0]) == fp:
                return SyncStats(False, 0, 0, 0)
        started = time.time()
        tips = self._list_tips()
        seen = {
            r[0]: (r[1], r[2], bool(r[3]))
            for r in conn.execute("SELECT run_id, commit_sha, lifecycle, live FROM runs")
        }
        wanted: list[tuple[str, str, str, bool]] = []
        for run_id, (sha, lifecycle) in tips.items():
            is_live = lifecycle == ACTIVE and run_id in live
            if full or is_live or seen.get(run_id) != (sha, lifecycle, False):
                wanted.append((run_id, sha, lifecycle, is_live))
        vanished = [r for r in seen if r not in tips]
        if not wanted and not vanished and not full:
            self._store_fingerprint(conn, fp, started, live, skipped=0)
            return SyncStats(True, 0, 0, 0)
        records = _read_records(self.store, wanted)
        skipped = self._apply(conn, records, vanished, seen, full=full)
        self._store_fingerprint(conn, fp, started, live, skipped=skipped, commit=True)
        return SyncStats(True, len(records), len(vanished), skipped)

    def _store_fingerprint(
        self, conn: sqlite3.Connection, fp: list[Any], started: float, live: set[str],
        *, skipped: int, commit: bool = False,
    ) -> None:  # fmt: skip
        settled = all(
            c is None or max(c[0], c[1]) / 1e9 < started - SETTLED_SECONDS for c in fp
        )
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the next sync tries again
            if settled and not live and not skipped:
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES('refs_fingerprint', ?)", (json.dumps(fp),)
                )
            else:
                conn.execute("DELETE FROM meta WHERE key = 'refs_fingerprint'")

    def _apply(
        self,
        conn: sqlite3.Connection,
        records: list[IndexedRecord],
        vanished: list[str],
        seen: dict[str, tuple[str, str, bool]],
        *,
        full: bool,
    ) -> int:
        """Write ``records`` and drop ``vanished`` in one transaction; return rows skipped."""
        skipped = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            if full:
                for table in _TABLES:
                    conn.execute(f"DELETE FROM {table}")
            rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _CHILD_TABLES}
            for rec in records:
                current = conn.execute(
                    "SELECT id, commit_sha, lifecycle, live FROM runs WHERE run_id = ?",
                    (rec.run_id,),
                ).fetchone()
                if not full and not self._unchanged_since_read(current, seen.get(rec.run_id)):
                    skipped += 1
                    continue
                rid = self._write_run(conn, current[0] if current else None, rec)
                _child_rows(rid, rec, rows)
            for table, values in rows.items():
                if values:
                    marks = ",".join("?" * len(values[0]))
                    conn.executemany(f"INSERT INTO {table} VALUES({marks})", values)
            for run_id in vanished:
                current = conn.execute(
                    "SELECT id, commit_sha, lifecycle, live FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if current is None:
                    continue
                if not self._unchanged_since_read(current, seen.get(run_id)):
                    skipped += 1
                    continue
                self._delete_children(conn, current[0])
                conn.execute("DELETE FROM runs WHERE id = ?", (current[0],))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return skipped

    @staticmethod
    def _unchanged_since_read(current: Any, before: tuple[str, str, bool] | None) -> bool:
        if current is None:
            return before is None
        return before is not None and (current[1], current[2], bool(current[3])) == before

    @staticmethod
    def _delete_children(conn: sqlite3.Connection, rid: int) -> None:
        for table in _CHILD_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE run = ?", (rid,))

    def _write_run(self, conn: sqlite3.Connection, rid: int | None, rec: IndexedRecord) -> int:
        info = rec.info
        values = (
            rec.commit, rec.lifecycle, int(rec.live), _attr_text(info.get("name")),
            _attr_text(info.get("experiment_id")), _attr_text(info.get("status")),
            _attr_int(info.get("start_time")), _attr_int(info.get("end_time")),
            _attr_text(info.get("user")), _attr_text(info.get("parent_run_id")),
        )  # fmt: skip
        if rid is None:
            cur = conn.execute(
                "INSERT INTO runs(run_id, commit_sha, lifecycle, live, name, experiment_id, "
                "status, start_time, end_time, user, parent_run_id) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (rec.run_id, *values),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]
        conn.execute(
            "UPDATE runs SET commit_sha=?, lifecycle=?, live=?, name=?, experiment_id=?, "
            "status=?, start_time=?, end_time=?, user=?, parent_run_id=? WHERE id=?",
            (*values, rid),
        )
        self._delete_children(conn, rid)
        return rid

    # -- searching ------------------------------------------------------------------------
    def search(
        self,
        clauses: Sequence[Comparison] = (),
        order: Sequence[OrderKey] = (),
        *,
        experiment_ids: Iterable[str] | None = None,
        lifecycles: Iterable[str] = (ACTIVE,),
        max_results: int | None = None,
    ) -> list[Run]:
        """Runs matching every clause, ordered as :func:`vtrack.query.sort_runs` orders them.

        ``experiment_ids`` None means every experiment. Call :meth:`sync` first for
        fresh results; the answer reflects the index as of one consistent snapshot.
        """
        sql, args = compile_search(
            clauses, order, experiment_ids=experiment_ids, lifecycles=lifecycles,
            max_results=max_results,
        )  # fmt: skip
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            rows = conn.execute(sql, args).fetchall()
            return self._runs_from_rows(conn, rows)
        finally:
            conn.execute("COMMIT")

    def list_runs(
        self, experiment_ids: Iterable[str] | None = None, lifecycles: Iterable[str] = (ACTIVE,)
    ) -> list[Run]:
        """Every run in scope, newest first (ties: higher run id first)."""
        sql, args = compile_search(
            (), (), experiment_ids=experiment_ids, lifecycles=lifecycles, max_results=None,
            tie_break="r.start_time IS NULL, r.start_time DESC, r.run_id DESC",
        )  # fmt: skip
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return self._runs_from_rows(conn, conn.execute(sql, args).fetchall())
        finally:
            conn.execute("COMMIT")

    def _runs_from_rows(self, conn: sqlite3.Connection, rows: list[Any]) -> list[Run]:
        if not rows:
            return []
        ids = _json([r[0] for r in rows])
        sub = "(SELECT value FROM json_each(?))"
        params: dict[int, dict[str, Any]] = {}
        for run, key, kind, num, text in conn.execute(
            f"SELECT run, key, kind, num, text FROM params WHERE run IN {sub} ORDER BY run, key", (ids,)
        ):
            params.setdefault(run, {})[key] = _param_value(kind, num, text)
        metrics: dict[int, dict[str, float]] = {}
        nan = math.nan
        for run, key, num in conn.execute(
            f"SELECT run, key, num FROM metrics WHERE run IN {sub} ORDER BY run, key", (ids,)
        ):
            metrics.setdefault(run, {})[key] = nan if num is None else num
        tags: dict[int, dict[str, str]] = {}
        for run, key, text in conn.execute(
            f"SELECT run, key, text FROM tags WHERE run IN {sub} ORDER BY run, key", (ids,)
        ):
            tags.setdefault(run, {})[key] = text
        records = {
            run: (info, inputs, artifacts)
            for run, info, inputs, artifacts in conn.execute(
                f"SELECT run, info, inputs, artifacts FROM records WHERE run IN {sub}", (ids,)
            )
        }
        loads = json.loads
        out = []
        for rid, run_id, commit, lifecycle, name, exp_id, status, start, _end, user, _parent in rows:
            info_json, inputs_json, artifacts_json = records.get(rid, ("{}", "[]", "{}"))
            info = loads(info_json)
            out.append(
                Run(
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
                        source=dict(info.get("source") or {}),
                        environment=dict(info.get("environment") or {}),
                    ),
                    data=RunData(
                        params=params.get(rid, {}), metrics=metrics.get(rid, {}), tags=tags.get(rid, {})
                    ),
                    inputs=RunInputs(datasets=loads(inputs_json), artifacts=loads(artifacts_json)),
                )
            )
        return out

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

    def by_prefix(self, prefix: str, lifecycles: Iterable[str], limit: int = 50) -> list[RunSummary]:
        """Runs whose id starts with ``prefix`` (lowercase hex), at most ``limit``."""
        life = tuple(lifecycles)
        return self._summaries(
            f"run_id >= ? AND run_id < ? AND lifecycle IN ({_marks(life)})",
            (prefix, prefix + "\x7f", *life), f"ORDER BY run_id LIMIT {int(limit)}",
        )  # fmt: skip

    def by_name(
        self, name: str, lifecycles: Iterable[str], experiment_ids: Iterable[str] | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:  # fmt: skip
        """Runs called exactly ``name``, newest first, at most ``limit``."""
        life = tuple(lifecycles)
        where, args = f"name = ? AND lifecycle IN ({_marks(life)})", [name, *life]
        if experiment_ids is not None:
            exps = tuple(experiment_ids)
            where += f" AND experiment_id IN ({_marks(exps)})"
            args += exps
        return self._summaries(
            where, args, f"ORDER BY start_time IS NULL, start_time DESC, run_id LIMIT {int(limit)}"
        )

    def newest(
        self, offset: int, lifecycles: Iterable[str], experiment_ids: Iterable[str] | None = None
    ) -> tuple[RunSummary | None, int]:
        """The ``offset``-th newest run in scope (0 = newest) and how many runs the scope has."""
        life = tuple(lifecycles)
        where, args = f"lifecycle IN ({_marks(life)})", list(life)
        if experiment_ids is not None:
            exps = tuple(experiment_ids)
            where += f" AND experiment_id IN ({_marks(exps)})"
            args += exps
        found = self._summaries(
            where, [*args, int(offset)],
            "ORDER BY start_time IS NULL, start_time DESC, run_id LIMIT 1 OFFSET ?",
        )
        if found:
            return found[0], -1
        count = self._conn().execute(f"SELECT count(*) FROM runs WHERE {where}", args).fetchone()
        return None, int(count[0])

    def count(self) -> int:
        """Number of runs in the index (any lifecycle)."""
        return int(self._conn().execute("SELECT count(*) FROM runs").fetchone()[0])


def _child_rows(rid: int, rec: IndexedRecord, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    rows["params"].extend((rid, k, *_param_row(v)) for k, v in rec.params.items())
    rows["metrics"].extend(
        (rid, k, None if math.isnan(v) else v) for k, v in rec.metrics.items()
    )
    rows["tags"].extend((rid, k, v) for k, v in rec.tags.items())
    rows["datasets"].extend(
        (rid, i, *(_text_or_none(d.get(f)) for f in ("name", "digest", "context")))
        for i, d in enumerate(rec.inputs)
        if isinstance(d, dict)
    )
    info = {k: v for k, v in rec.info.items() if k in ("end_time", "parent_run_id", "description", "source", "environment")}
    rows["records"].append((rid, _json(info), _json(rec.inputs), _json(rec.artifacts)))


# --- SQL functions ----------------------------------------------------------------------------


def _lower(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


def _numcmp(left: Any, op: str, right: Any) -> int | None:
    """Exact numeric comparison; either side may be the decimal text of an int beyond 64 bits."""
    if left is None or right is None:
        return None
    a = int(left) if isinstance(left, str) else left
    b = int(right) if isinstance(right, str) else right
    return int(_PY_OPS[op](a, b))


_PY_OPS: dict[str, Any] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


# --- compiling queries ------------------------------------------------------------------------


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items)) or "NULL"


def like_to_glob(pattern: str) -> str:
    """The GLOB pattern equal to a LIKE pattern (``%`` ``_``, no escape, case-sensitive)."""
    out = []
    for c in pattern:
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
    return "".join(out)


def _fits_int64(value: Any) -> bool:
    return not isinstance(value, int) or _INT64[0] <= value <= _INT64[1]


class _Column:
    """How one stored value is reached in SQL: numeric part, text part, param kind."""

    def __init__(self, num: str | None, text: str | None, kind: str | None = None) -> None:
        self.num, self.text, self.kind = num, text, kind

    def numeric(self, op: str, number: int | float, args: list[Any]) -> str:
        assert self.num is not None
        if _fits_int64(number):
            args.append(number)
            return f"{self.num} {op} ?"
        args.append(str(number))
        return f"vt_numcmp({self.num}, '{op}', ?)"

    def compare(self, op: str, value: Any, args: list[Any]) -> str:
        """SQL for ``stored <op> value`` on a present stored value (``_compare``'s rules)."""
        number = _filter_number(value)
        if self.text is None:  # numbers only (metrics, start/end time)
            assert number is not None
            return self.numeric(op, number, args)
        if self.num is None or number is None:  # text only, or a non-numeric filter value
            args.append(_text(value))
            return f"{self.text} {op} ?"
        # a param: numbers numerically (exactly, even beyond 64 bits), the rest as text
        parts = [f"CASE WHEN {self.kind} = 'bigint' THEN vt_numcmp({self.text}, '{op}', ?)"]
        args.append(number if _fits_int64(number) else str(number))
        parts.append(f"WHEN {self.num} IS NOT NULL THEN {self.numeric(op, number, args)}")
        args.append(_text(value))
        parts.append(f"ELSE {self.text} {op} ? END")
        return " ".join(parts)

    def predicate(self, op: str, value: Any, args: list[Any]) -> str:
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return self.compare(op, value, args)
        if op == "LIKE":
            args.append(like_to_glob(value))
            return f"{self.text} GLOB ?"
        if op == "ILIKE":
            args.append(like_to_glob(value.lower()))
            return f"vt_lower({self.text}) GLOB ?"
        if op in ("IN", "NOT IN"):
            parts = [f"({self.compare('=', v, args)})" for v in value]
            any_equal = " OR ".join(parts)
            return f"({any_equal})" if op == "IN" else f"NOT ({any_equal})"
        raise ValidationError(f"operator {op} cannot be compiled")  # pragma: no cover

    def present(self) -> str:
        return f"{self.text if self.text is not None else self.num} IS NOT NULL"


_ATTRIBUTE_COLUMNS = {
    "run_id": "r.run_id",
    "run_name": "r.name",
    "status": "r.status",
    "experiment_id": "r.experiment_id",
    "user_id": "r.user",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
}


def _entity_column(entity: str, key: str, alias: str) -> _Column:
    if entity == "metrics":
        return _Column(f"{alias}.num", None)
    if entity == "params":
        return _Column(f"{alias}.num", f"{alias}.text", f"{alias}.kind")
    if entity == "tags":
        return _Column(None, f"{alias}.text")
    if entity == "datasets":
        return _Column(None, f"{alias}.{key}")
    col = _ATTRIBUTE_COLUMNS[key]
    if key in ("start_time", "end_time"):
        return _Column(col, None)
    return _Column(None, col)


def _clause_sql(clause: Comparison, n: int, args: list[Any]) -> str:
    entity, key, op = clause.entity, clause.key, clause.op
    alias = f"c{n}"
    col = _entity_column(entity, key, alias)
    if entity == "attributes":
        if op == "IS NULL":
            return f"NOT ({col.present()})"
        if op == "IS NOT NULL":
            return col.present()
        return f"({col.present()} AND {col.predicate(op, clause.value, args)})"
    if entity == "datasets":
        table, key_filter = "datasets", ""
    else:
        table, key_filter = entity, f"{alias}.key = ? AND "
        args.append(key)
    head = f"r.id IN (SELECT {alias}.run FROM {table} {alias} WHERE {key_filter}{col.present()}"
    if op == "IS NULL":
        return "NOT " + head + ")"
    if op == "IS NOT NULL":
        return head + ")"
    return f"{head} AND {col.predicate(op, clause.value, args)})"


def compile_search(
    clauses: Sequence[Comparison],
    order: Sequence[OrderKey],
    *,
    experiment_ids: Iterable[str] | None = None,
    lifecycles: Iterable[str] = (ACTIVE,),
    max_results: int | None = None,
    tie_break: str = "r.start_time IS NULL, r.start_time DESC, r.run_id ASC",
) -> tuple[str, list[Any]]:
    """Parametrized SQL selecting the rows of matching runs, in order, at most ``max_results``.

    Values are always bound as parameters; only fixed column names, aliases and
    operators from the validated AST are written into the SQL text.
    """
    joins: list[str] = []
    join_args: list[Any] = []
    order_terms: list[str] = []
    for i, key in enumerate(order):
        alias = f"o{i}"
        if key.entity == "attributes":
            expr = _ATTRIBUTE_COLUMNS[key.key]
        else:
            joins.append(
                f"LEFT JOIN {key.entity} {alias} ON {alias}.run = r.id AND {alias}.key = ?"
            )
            join_args.append(key.key)
            if key.entity == "metrics":
                expr = f"{alias}.num"
            elif key.entity == "params":
                expr = f"CASE WHEN {alias}.text IS NULL THEN NULL ELSE coalesce({alias}.num, {alias}.text) END"
            else:
                expr = f"{alias}.text"
        order_terms.append(f"({expr}) IS NULL, ({expr}) {'ASC' if key.ascending else 'DESC'}")
    order_terms.append(tie_break)
    where_args: list[Any] = []
    life = tuple(lifecycles)
    where = [f"r.lifecycle IN ({_marks(life)})"]
    where_args += life
    if experiment_ids is not None:
        exps = tuple(str(e) for e in experiment_ids)
        where.append(f"r.experiment_id IN ({_marks(exps)})")
        where_args += exps
    for n, clause in enumerate(clauses):
        where.append(_clause_sql(clause, n, where_args))
    sql = (
        "SELECT r.id, r.run_id, r.commit_sha, r.lifecycle, r.name, r.experiment_id, r.status, "
        "r.start_time, r.end_time, r.user, r.parent_run_id FROM runs r "
        + " ".join(joins)
        + " WHERE " + " AND ".join(where)
        + " ORDER BY " + ", ".join(order_terms)
    )  # fmt: skip
    args = join_args + where_args
    if max_results is not None:
        sql += " LIMIT ?"
        args.append(int(max_results))
    return sql, args


# --- module-level conveniences ---------------------------------------------------------------


def sync(store: Store) -> SyncStats:
    """Bring ``store``'s index up to date (see :meth:`RunIndex.sync`)."""
    return RunIndex.for_store(store).sync()


def rebuild(store: Store) -> SyncStats:
    """Re-read every run of ``store`` into a fresh index (see :meth:`RunIndex.rebuild`)."""
    return RunIndex.for_store(store).rebuild()
