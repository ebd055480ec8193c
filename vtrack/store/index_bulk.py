"""The bulk build of the run index: a summary table's lines straight into SQLite.

A fresh clone of 100,000 archived runs must answer its first command in seconds (issue
15). Its index build reads one summary table per batch of runs
(:mod:`vtrack.store.archive_summaries`). :func:`ingest` writes a whole batch's lines
with one ``executemany`` per table, parsing each line's derived JSON once, instead of
building a :class:`~vtrack.store.index_rows.DerivedRun` per run and going through the
per-run compare-and-swap of an incremental sync (which a build into tables that hold
none of these runs does not need). The rows are exactly the ones the one-by-one path
writes for the same lines (tested against it); a line whose derived JSON is not of the
expected shape is left out, and its run read from git like any run a table lacks.

Two more things make a build into an empty index cheap, both undone at its end:

- :func:`deferred_indexes`: the secondary indexes of the tables a build fills are
  dropped before it and created after it, in the same transaction (sorting once beats
  updating six B-trees per run);
- :func:`rollback_journal`: while the index file is brand new, a build writes through a
  rollback journal instead of the WAL (appended pages need no journal; through the WAL
  every page is written twice), and goes back to WAL after its commit. It is only tried
  when no other connection has the file open, which SQLite itself checks.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from typing import Any

from vtrack.store.archive_summaries import TableBatch, rows_fit
from vtrack.store.index_keys import KeyCounts
from vtrack.store.summary import orjson_loads

#: ``(run, entity keys...)``: the key sets of one experiment and lifecycle, counted.
_KeySets = tuple[Any, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def ingest(conn: sqlite3.Connection, batch: TableBatch, base: int, counts: KeyCounts) -> int:
    """Write the runs of ``batch`` as runs ``base``, ``base + 1``, ... (inside the
    caller's transaction, into tables holding none of them), count their keys in
    ``counts`` and set ``batch.taken``; return the next free run number.

    A line whose derived JSON is not ``[attrs (7), param keys, metric keys, tag keys,
    datasets, inputs]`` is left out (its run is read from git)."""
    loads = orjson_loads() or json.loads  # derived JSON holds no float but the times
    runs: list[tuple[Any, ...]] = []
    records: list[tuple[int, str]] = []
    datasets: list[tuple[Any, ...]] = []
    inputs: list[tuple[Any, ...]] = []
    sets: Counter[_KeySets] = Counter()
    taken: set[str] = set()
    rid = base
    for (run_id, commit, lifecycle, _), derived, body in batch.lines():
        try:
            try:
                attrs, pkeys, mkeys, tkeys, ds, ins = loads(derived)
            except ValueError:  # what orjson refuses (NaN...): json's reading
                attrs, pkeys, mkeys, tkeys, ds, ins = json.loads(derived)
            if not rows_fit(attrs, ds, ins):
                continue
            if type(attrs[3]) is float or type(attrs[4]) is float:  # as json reads them
                attrs = json.loads(derived)[0]
            row = (rid, run_id, commit, lifecycle, 0, *attrs)
            key = (attrs[1], lifecycle, tuple(pkeys), tuple(mkeys), tuple(tkeys))
            drows = [(rid, *d) for d in ds] if ds else ()
            irows = [(rid, *f) for f in ins] if ins else ()
        except (ValueError, TypeError):  # damaged: read from git
            continue
        runs.append(row)
        records.append((rid, body))
        if drows:
            datasets += drows
        if irows:
            inputs += irows
        sets[key] += 1
        taken.add(run_id)
        rid += 1
    for table, rows in (("runs", runs), ("records", records), ("datasets", datasets),
                        ("input_files", inputs)):  # fmt: skip
        if rows:
            marks = ",".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES({marks})", rows)
    for (exp, lifecycle, pkeys, mkeys, tkeys), n in sets.items():
        counts.add(exp, lifecycle, n, (("params", pkeys), ("metrics", mkeys), ("tags", tkeys)))
    batch.taken = taken
    return rid


# -- an empty index's build ------------------------------------------------------------------
_INDEX = re.compile(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON (\w+)\b[^;]*")


def secondary_indexes(schema: str, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, CREATE statement)`` of the schema's indexes on ``tables``."""
    return [(m[1], m[0]) for m in _INDEX.finditer(schema) if m[2] in tables]


@contextlib.contextmanager
def deferred_indexes(conn: sqlite3.Connection, indexes: list[tuple[str, str]]) -> Iterator[None]:
    """Drop ``indexes`` for the block and create them again after it (inside the
    caller's transaction: a rollback restores them as they were)."""
    for name, _ in indexes:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    yield
    for _, create in indexes:
        conn.execute(create)


def rollback_journal(conn: sqlite3.Connection) -> bool:
    """Switch a WAL database to a rollback journal when this is its only connection;
    True when it did (:func:`back_to_wal` undoes it)."""
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")  # never wait for another connection here
    try:
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError:  # another connection holds it
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return str(mode).lower() == "delete"


def back_to_wal(conn: sqlite3.Connection) -> None:
    """Go back to WAL after :func:`rollback_journal` (best effort: the next connection
    sets it anyway)."""
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode = WAL")
