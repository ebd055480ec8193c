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
* **Where things are.** The file, its schema and connections: :mod:`.index_schema`;
  keeping up with the refs: :mod:`.index_sync` (:class:`RunIndex` inherits it), whose
  build into an empty index writes whole tables at once (:mod:`.index_bulk`); the
  search SQL: :mod:`.index_sql`.
* **Same answers as the reference evaluator.** :func:`compile_search` turns
  :mod:`vtrack.query` clauses into parametrized SQL with exactly the semantics of
  :func:`vtrack.query.evaluate` and :func:`vtrack.query.sort_runs` (missing values are
  false for every operator but ``IS NULL`` and sort last; params compare numerically
  when stored as numbers). Known limit: ints beyond 64 bits compare exactly but sort
  as their nearest float.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.entities import Run, RunData, RunInfo
from vtrack.entities.run import fresh_copy
from vtrack.query import Comparison, OrderKey
from vtrack.store import index_inputs, index_keys, index_schema
from vtrack.store.index_records import IndexedRecord, run_view, to_json
from vtrack.store.index_schema import INDEX_FILE
from vtrack.store.index_sql import (
    ROW_LIVE,
    compile_count,
    compile_search,
    like_to_glob,
    marks,
    walkable,
)
from vtrack.store.index_sync import IndexSync, SyncStats
from vtrack.store.record import run_inputs
from vtrack.store.refs import ACTIVE, DELETED

if TYPE_CHECKING:
    from vtrack.store import Store

__all__ = [
    "ACTIVE", "DELETED", "RunIndex", "RunSummary", "SyncStats", "compile_search",
    "like_to_glob", "rebuild", "run_view", "sync",
]  # fmt: skip


#: What a search that walks its order's index (``compile_search(walk=True)``) may spend
#: before the clauses' own indexes are asked instead: SQLite instructions, a fixed part
#: and a part per row of the page (at 100,000 runs, the benchmark's 1,000-run page takes
#: ~110,000; a walk past every run ~1,600,000), counted every WALK_TICK instructions.
WALK_STEPS = 50_000
WALK_STEPS_PER_ROW = 150
WALK_TICK = 5_000
#: Run objects an index keeps built for the next search that returns them (~15 KB each).
BUILT_RUNS_KEPT = 2048

# --- the index ------------------------------------------------------------------------------


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


class RunIndex(IndexSync):
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
        return index_schema.open_index(self.path)

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


def sync(store: Store) -> SyncStats:
    """Bring ``store``'s index up to date (see :meth:`RunIndex.sync`)."""
    return RunIndex.for_store(store).sync()


def rebuild(store: Store) -> SyncStats:
    """Re-read every run of ``store`` into a fresh index (see :meth:`RunIndex.rebuild`)."""
    return RunIndex.for_store(store).rebuild()
