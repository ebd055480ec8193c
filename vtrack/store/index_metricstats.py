"""Derived metric summaries beside the run index: min, max and value at step N per run.

The runs table sorts by ``metrics.loss:min``, ``:max`` and ``:step=N`` across every
matching run, so these values must be in SQL next to the index's rows, not computed
per page. Promises:

* **Derived and beside the index.** Three tables in the index's own SQLite file, created
  here when first needed (the index's schema and sync are untouched; a rebuild of the
  index that drops every table drops these too, and they are computed again):
  ``metric_chunks`` (per sealed history chunk blob: its count, min and max of the
  non-NaN values, first and last step), ``metric_stats`` (per run and metric: min and
  max, stamped with the run commit they describe) and ``metric_at_step`` (per run,
  metric and step asked for: the value there, stamped likewise).
* **Incremental and correct for live runs.** A summary is reused while the run's
  commit in the index is the one it was computed from; a finished run is read once.
  Sealed chunks never change, so each is parsed once ever (by blob id); a live run is
  recomputed on every request from its journal-inclusive state, which costs its open
  tail only.
* **The search rule for order.** Ascending or descending, runs with a number come
  first, then runs whose value is NaN (every point NaN, or the point at step N is NaN),
  then runs without one (no such metric, or no point at step N); ties by start time,
  newest first, then run id. Min and max skip NaN points; ±inf are numbers.
* Only the runs the filter matches and that have the metric are summarised, read through
  ``git cat-file --batch`` pipes (two round trips per batch, not one process per run).

Index functions used, unchanged: :func:`vtrack.store.index_sql.compile_search` and
``RunIndex.connection`` / ``RunIndex.runs_from_rows`` (two small public methods added for this).
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.errors import StoreError, ValidationError
from vtrack.query import Comparison
from vtrack.store.gitobj import TREE_MODE, parse_tree
from vtrack.store.index_sql import ROW_COLUMNS, compile_search, correlated_terms
from vtrack.store.record import RECORD_DIR
from vtrack.store.refs import ACTIVE

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.index import RunIndex

#: Per index: (key, aggregate, step, scope) -> the index generation at which every run in
#: that scope had a current summary (this process's memo; the rows themselves are shared).
_FRESH: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], str]] = weakref.WeakKeyDictionary()
#: Aggregates a summary can be sorted by.
AGGREGATES = ("min", "max", "step")

SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_chunks(
    sha TEXT PRIMARY KEY, n INTEGER NOT NULL, lo, hi, first_step INTEGER, last_step INTEGER);
CREATE TABLE IF NOT EXISTS metric_stats(
    run_id TEXT NOT NULL, key TEXT NOT NULL, commit_sha TEXT NOT NULL, lo, hi,
    PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_stats_lo ON metric_stats(key, lo);
CREATE INDEX IF NOT EXISTS metric_stats_hi ON metric_stats(key, hi);
CREATE TABLE IF NOT EXISTS metric_at_step(
    run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, commit_sha TEXT NOT NULL,
    found INTEGER NOT NULL, value, PRIMARY KEY(run_id, key, step)) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Chunk:
    """What one history chunk says: points, min/max of its non-NaN values, step range."""

    n: int
    lo: float | None
    hi: float | None
    first_step: int | None
    last_step: int | None

    def covers(self, step: int) -> bool:
        """True when ``step`` lies within the chunk's step range."""
        if self.first_step is None or self.last_step is None:
            return False
        return self.first_step <= step <= self.last_step


def parse_points(text: str) -> tuple[list[int], list[float]]:
    """Steps and values of history lines (``step\\ttimestamp\\tvalue``)."""
    parts = text.split()
    return [int(s) for s in parts[0::3]], [float(v) for v in parts[2::3]]


def chunk_of(text: str) -> Chunk:
    """The :class:`Chunk` summary of one chunk's text."""
    steps, values = parse_points(text)
    finite = [v for v in values if not math.isnan(v)]
    return Chunk(
        len(values), min(finite) if finite else None, max(finite) if finite else None,
        min(steps) if steps else None, max(steps) if steps else None,
    )  # fmt: skip


def value_at(text: str, step: int) -> tuple[bool, float | None]:
    """``(found, value)`` of the last point logged at ``step`` in one chunk (NaN → None)."""
    found, value = False, None
    for line in text.splitlines():
        s, _, v = line.partition("\t")
        if s == str(step):
            found, val = True, float(v.rsplit("\t", 1)[-1])
            value = None if math.isnan(val) else val
    return found, value


def _batch(git_dir: Path, names: Sequence[str]) -> list[tuple[bytes, bytes] | None]:
    """Objects named ``names`` (``sha`` or ``commit:path``) through one ``cat-file`` pipe."""
    return list(gitcmd.batch_objects(git_dir, names, "summarising metrics"))


class MetricStats:
    """Summaries of metric histories for the runs of one :class:`RunIndex`."""

    def __init__(self, index: RunIndex) -> None:
        self.index = index
        self.store = index.store

    def _conn(self) -> sqlite3.Connection:
        conn = self.index.connection()
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        return conn

    # -- reading histories --------------------------------------------------------------------
    def _histories(self, rows: Sequence[tuple[str, str, bool]], key: str) -> list[Any]:
        """Per ``(run_id, commit, live)``: ``(sealed chunk shas, open text)``, None without one."""
        out: list[Any] = [None] * len(rows)
        plain = [i for i, r in enumerate(rows) if not r[2]]
        for i, (run_id, _, live) in enumerate(rows):
            if live:
                try:
                    _, state = self.store.read_run_state(run_id)
                except StoreError:
                    plain.append(i)
                    continue
                hist = state.history(key)
                if hist is not None:  # chunks sealed but not stored yet count as tail
                    unstored = state.unstored
                    early = "".join(unstored[s].decode() for s in hist.chunks if s in unstored)
                    shas = [s for s in hist.chunks if s not in unstored]
                    out[i] = (shas, early + "".join(hist.tail))
        trees = _batch(self.store.location.git_dir,
                       [f"{rows[i][1]}:{RECORD_DIR}/metrics/{key}" for i in plain])  # fmt: skip
        for i, found in zip(plain, trees, strict=True):
            if found is None or found[0] != b"tree":
                continue
            names = sorted((n.decode(), sha) for mode, n, sha in parse_tree(found[1])
                           if mode != TREE_MODE and n.endswith(b".tsv"))  # fmt: skip
            if names:
                out[i] = ([sha for _, sha in names], "")
        return out

    def _chunks(self, conn: sqlite3.Connection, shas: Iterable[str]) -> dict[str, Chunk]:
        """Summaries of sealed chunks, parsing (and remembering) those not seen before."""
        wanted = sorted(set(shas))
        known: dict[str, Chunk] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            for sha, *rest in conn.execute(
                f"SELECT sha, n, lo, hi, first_step, last_step FROM metric_chunks "
                f"WHERE sha IN ({','.join('?' * len(part))})", part,
            ):  # fmt: skip
                known[sha] = Chunk(*rest)
        missing = [s for s in wanted if s not in known]
        if missing:
            blobs = _batch(self.store.location.git_dir, missing)
            new = []
            for sha, found in zip(missing, blobs, strict=True):
                if found is None:
                    continue
                c = known[sha] = chunk_of(found[1].decode())
                new.append((sha, c.n, c.lo, c.hi, c.first_step, c.last_step))
            self._write(conn, "INSERT OR REPLACE INTO metric_chunks VALUES(?,?,?,?,?,?)", new)
        return known

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # -- keeping summaries current ------------------------------------------------------------
    def _stale(
        self, conn: sqlite3.Connection, scope_sql: str, scope_args: list[Any], table: str,
        key: str, extra: str = "", extra_args: Sequence[Any] = (),
    ) -> list[tuple[str, str, bool]]:  # fmt: skip
        """``(run_id, commit, live)`` of runs in scope with metric ``key`` and no current row."""
        self.index.ensure_keys([("metrics", key)])
        # CROSS JOIN: driven by the scope, always (SQLite otherwise chose to walk every
        # run's row of the metric to check a scope of 50 runs: 120 ms at 100,000 runs)
        sql = (
            f"SELECT m.run_id, m.commit_sha, rr.live FROM ({scope_sql}) m "
            "CROSS JOIN runs rr ON rr.id = m.id "
            "CROSS JOIN metrics mt ON mt.run = m.id AND mt.key = ? "
            f"LEFT JOIN {table} s ON s.run_id = m.run_id AND s.key = ?{extra} "
            "WHERE s.run_id IS NULL OR s.commit_sha != m.commit_sha OR rr.live = 1"
        )
        rows = conn.execute(sql, [*scope_args, key, key, *extra_args]).fetchall()
        return [(r, c, bool(live)) for r, c, live in rows]

    def refresh_minmax(
        self, conn: sqlite3.Connection, scope: tuple[str, list[Any]], key: str
    ) -> int:
        """Compute min/max of ``key`` for the runs in scope that lack a current summary."""
        stale = self._stale(conn, *scope, "metric_stats", key)
        hists = self._histories(stale, key)
        chunks = self._chunks(conn, (s for h in hists if h for s in h[0]))
        rows = []
        for (run_id, commit, live), h in zip(stale, hists, strict=True):
            lo = hi = None
            if h is not None:
                parts = [chunks[s] for s in h[0] if s in chunks]
                if h[1]:
                    parts.append(chunk_of(h[1]))
                los = [p.lo for p in parts if p.lo is not None]
                his = [p.hi for p in parts if p.hi is not None]
                lo, hi = (min(los) if los else None), (max(his) if his else None)
            rows.append((run_id, key, "" if live else commit, lo, hi))
        self._write(conn, "INSERT OR REPLACE INTO metric_stats VALUES(?,?,?,?,?)", rows)
        return len(rows)

    def refresh_at_step(
        self, conn: sqlite3.Connection, scope: tuple[str, list[Any]], key: str, step: int
    ) -> int:
        """Compute the value at ``step`` of ``key`` for the runs in scope lacking it."""
        stale = self._stale(conn, *scope, "metric_at_step", key, " AND s.step = ?", [step])
        hists = self._histories(stale, key)
        chunks = self._chunks(conn, (s for h in hists if h for s in h[0]))
        candidates = sorted({s for h in hists if h for s in h[0] if s in chunks
                             and chunks[s].covers(step)})  # fmt: skip
        texts = {sha: (f[1].decode() if f else "") for sha, f in zip(
            candidates, _batch(self.store.location.git_dir, candidates), strict=True)}  # fmt: skip
        rows = []
        for (run_id, commit, live), h in zip(stale, hists, strict=True):
            found, value = False, None
            if h is not None:
                shas, tail = h
                for sha in shas:
                    if sha not in texts:
                        continue
                    f, v = value_at(texts[sha], step)
                    if f:
                        found, value = True, v
                if tail:
                    f, v = value_at(tail, step)
                    if f:
                        found, value = True, v
            rows.append((run_id, key, step, "" if live else commit, int(found), value))
        self._write(conn, "INSERT OR REPLACE INTO metric_at_step VALUES(?,?,?,?,?,?)", rows)
        return len(rows)

    # -- sorted pages -------------------------------------------------------------------------
    def search(
        self,
        clauses: Sequence[Comparison],
        key: str,
        aggregate: str,
        *,
        step: int | None = None,
        ascending: bool = True,
        experiment_ids: Iterable[str] | None = None,
        lifecycles: Iterable[str] = (ACTIVE,),
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """One page of the runs matching ``clauses``, ordered by ``aggregate`` of ``key``.

        ``aggregate`` is ``min``, ``max`` or ``step`` (with ``step``); the order is the
        search rule of the module doc. Summaries missing or stale are computed first.
        """
        if aggregate not in AGGREGATES:
            raise ValidationError(f"aggregate must be min, max or step, not {aggregate!r}")
        if aggregate == "step" and not isinstance(step, int):
            raise ValidationError("sorting by the value at a step needs the step (an integer)")
        life = tuple(lifecycles)
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        scope = compile_search(clauses, (), experiment_ids=exps, lifecycles=life)
        conn = self._conn()
        self.index.ensure_keys([("metrics", key), *((c.entity, c.key) for c in clauses)])
        direction = "ASC" if ascending else "DESC"
        self._refresh_scope(conn, key, aggregate, step, exps, life)
        if aggregate != "step" and limit > 0:
            rows = self._walk(conn, clauses, key, aggregate, ascending, exps, life, limit, offset)
            if rows is not None:
                return rows
        if aggregate == "step":
            join = ("LEFT JOIN metric_at_step s ON s.run_id = m.run_id AND s.key = ? "
                    "AND s.step = ?")  # fmt: skip
            join_args: list[Any] = [key, step]
            rank = "CASE WHEN mt.run IS NULL OR s.found IS NOT 1 THEN 2 " \
                   "WHEN s.value IS NULL THEN 1 ELSE 0 END"  # fmt: skip
            expr = "s.value"
        else:
            join = "LEFT JOIN metric_stats s ON s.run_id = m.run_id AND s.key = ?"
            join_args = [key]
            col = "s.lo" if aggregate == "min" else "s.hi"
            rank = f"CASE WHEN mt.run IS NULL THEN 2 WHEN {col} IS NULL THEN 1 ELSE 0 END"
            expr = col
        sql = (
            f"SELECT m.* FROM ({scope[0]}) m "
            "LEFT JOIN metrics mt ON mt.run = m.id AND mt.key = ? "
            f"{join} ORDER BY {rank}, {expr} {direction}, m.start_time DESC, m.run_id ASC "
            "LIMIT ? OFFSET ?"
        )
        args = [*scope[1], key, *join_args, int(limit), int(offset)]
        conn.execute("BEGIN")
        try:
            rows = conn.execute(sql, args).fetchall()
            return self.index.runs_from_rows(conn, rows)
        finally:
            conn.execute("COMMIT")

    def _walk(
        self, conn: sqlite3.Connection, clauses: Sequence[Comparison], key: str,
        aggregate: str, ascending: bool, exps: list[str] | None, life: tuple[str, ...],
        limit: int, offset: int,
    ) -> list[Run] | None:  # fmt: skip
        """The page from the runs whose summary is a number, walking the summary's
        ``(key, lo|hi)`` index in order (as ``RunIndex.search`` walks a metric's): those
        runs sort first, so a full page is the answer; None when the page is short or the
        walk found matches too rare within its budget (the full sort answers then)."""
        from vtrack.store.index import within_budget

        col = "s.lo" if aggregate == "min" else "s.hi"
        args: list[Any] = [key, *life]
        where = [
            f"s.key = ? AND {col} IS NOT NULL",
            f"+r.lifecycle IN ({','.join('?' * len(life))})",
            # a summary of the run's current commit (a live run's is stamped '' and was
            # just recomputed), of a run that has the metric
            "(s.commit_sha = r.commit_sha OR s.commit_sha = '')",
            "EXISTS (SELECT 1 FROM metrics mt WHERE mt.run = r.id AND mt.key = s.key)",
        ]
        if exps is not None:
            where.append(f"+r.experiment_id IN ({','.join('?' * len(exps))})")
            args += exps
        where += correlated_terms(clauses, args)
        sql = (
            f"SELECT {ROW_COLUMNS} FROM metric_stats s JOIN runs r ON r.run_id = s.run_id "
            f"WHERE {' AND '.join(where)} "
            f"ORDER BY {col} {'ASC' if ascending else 'DESC'}, r.start_time DESC, r.run_id ASC "
            "LIMIT ? OFFSET ?"
        )
        args += [int(limit), int(offset)]
        conn.execute("BEGIN")
        try:
            rows = within_budget(conn, sql, args, offset + limit)
            if rows is None or len(rows) < limit:
                return None
            return self.index.runs_from_rows(conn, rows)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _refresh_scope(
        self, conn: sqlite3.Connection, key: str, aggregate: str, step: int | None,
        exps: list[str] | None, life: tuple[str, ...],
    ) -> None:  # fmt: skip
        """Make the summaries of every run of ``exps`` / ``life`` with metric ``key`` current.

        The filter is not applied here (its runs are a subset: summarising the scope's
        other runs too costs a little once and serves the next filter). Once every run in
        scope is current at an index generation, only live runs are looked at again until
        the index changes.
        """
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = row[0] if row else None
        memo = _FRESH.setdefault(self.index, {})
        mkey = (key, aggregate == "step", step if aggregate == "step" else None,
                None if exps is None else tuple(exps), life)  # fmt: skip
        where, args = f"r.lifecycle IN ({','.join('?' * len(life))})", list(life)
        if exps is not None:
            where += f" AND r.experiment_id IN ({','.join('?' * len(exps))})"
            args += exps
        if generation is not None and memo.get(mkey) == generation:
            where += " AND r.live = 1"
        scope = (f"SELECT r.id, r.run_id, r.commit_sha FROM runs r WHERE {where}", args)
        if aggregate == "step":
            self.refresh_at_step(conn, scope, key, int(step or 0))
        else:
            self.refresh_minmax(conn, scope, key)
        if generation is not None:
            memo[mkey] = generation

    def values(
        self, run_ids: Sequence[str], key: str, aggregate: str, step: int | None = None
    ) -> dict[str, float | None]:
        """The ``aggregate`` of ``key`` for each run named that has the metric.

        The same summaries the sort uses (computed first when missing or stale): NaN when
        the run has the metric but no number for it (every point NaN, or NaN at ``step``),
        None when there is no value (no point at ``step``). Runs without the metric, or
        not in the index, are left out.
        """
        if aggregate not in AGGREGATES:
            raise ValidationError(f"aggregate must be min, max or step, not {aggregate!r}")
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return {}
        scope = (
            "SELECT r.id, r.run_id, r.commit_sha FROM runs r "
            "WHERE r.run_id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
        conn = self._conn()
        nan = float("nan")
        if aggregate == "step":
            self.refresh_at_step(conn, scope, key, int(step or 0))
            rows = conn.execute(
                "SELECT run_id, found, value FROM metric_at_step WHERE key = ? AND step = ? "
                "AND run_id IN (SELECT value FROM json_each(?))", (key, int(step or 0), json.dumps(ids)),
            ).fetchall()  # fmt: skip
            return {r: ((nan if v is None else float(v)) if f else None) for r, f, v in rows}
        self.refresh_minmax(conn, scope, key)
        col = "lo" if aggregate == "min" else "hi"
        rows = conn.execute(
            f"SELECT run_id, {col} FROM metric_stats WHERE key = ? "
            "AND run_id IN (SELECT value FROM json_each(?))", (key, json.dumps(ids)),
        ).fetchall()  # fmt: skip
        return {r: (nan if v is None else float(v)) for r, v in rows}

    def summary(self, run_id: str, key: str) -> tuple[float | None, float | None] | None:
        """The stored ``(min, max)`` of one run's metric (None when not computed)."""
        row = (
            self._conn()
            .execute("SELECT lo, hi FROM metric_stats WHERE run_id = ? AND key = ?", (run_id, key))
            .fetchone()
        )
        return None if row is None else (row[0], row[1])
