"""Which keys the run index holds value rows for, and the key list of every scope.

A fresh clone's index must be built in seconds at 100,000 runs (issue 15): one row per
param, metric and tag (30+ per run) costs ~6 µs each in SQLite here, 20 s for three
million rows, while the queries people run touch a handful of keys. So the index
stores each run's record once (``records.body``, the verified ``summary.json`` as is)
and writes the ``params`` / ``metrics`` / ``tags`` rows of a key only when a query
first names it. Promises:

* **Complete per key.** A key listed in ``materialized`` has a row for every indexed run
  that has it: :func:`ensure` fills it from the stored bodies in one write transaction,
  and every sync writes rows for the keys listed at that moment (under the same write
  lock), so a search that saw the key listed sees all of its rows.
* **Keys without values.** ``key_counts`` counts, per entity, key, experiment and
  lifecycle, the runs that have the key; :func:`keys_in_scope` answers the column
  chooser from it without touching value rows.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vtrack.store.index_records import VALUE_TABLES, fast_loads, value_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS materialized(entity TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY(entity, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_counts(entity TEXT NOT NULL, key TEXT NOT NULL,
    experiment_id TEXT NOT NULL, lifecycle TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(entity, key, experiment_id, lifecycle)) WITHOUT ROWID;
"""
TABLES = ("materialized", "key_counts")


def materialized(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """``{entity: keys}`` that have value rows (read inside the caller's transaction)."""
    out: dict[str, set[str]] = {t: set() for t in VALUE_TABLES}
    for entity, key in conn.execute("SELECT entity, key FROM materialized"):
        out.setdefault(entity, set()).add(key)
    return out


def missing(conn: sqlite3.Connection, wanted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(entity, key)`` of ``wanted`` (value tables only) without value rows yet."""
    out = []
    for entity, key in dict.fromkeys(wanted):
        if entity not in VALUE_TABLES:
            continue
        found = conn.execute(
            "SELECT 1 FROM materialized WHERE entity = ? AND key = ?", (entity, key)
        ).fetchone()
        if found is None:
            out.append((entity, key))
    return out


def ensure(conn: sqlite3.Connection, wanted: Iterable[tuple[str, str]]) -> int:
    """Give every ``(entity, key)`` of ``wanted`` its value rows; return the rows written.

    Cheap when all are there (one indexed probe each); otherwise one write transaction
    reads every stored body once and writes the rows of all missing keys together.
    """
    todo = missing(conn, wanted)
    if not todo:
        return 0
    written = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        todo = missing(conn, todo)  # another process may have done it meanwhile
        by_entity: dict[str, list[str]] = {}
        for entity, key in todo:
            present = conn.execute(
                "SELECT 1 FROM key_counts WHERE entity = ? AND key = ? AND n > 0 LIMIT 1",
                (entity, key),
            ).fetchone()
            if present is not None:
                by_entity.setdefault(entity, []).append(key)
        if by_entity:
            for entity, values in _rows_of(conn, by_entity).items():
                if values:
                    marks = ",".join("?" * len(values[0]))
                    conn.executemany(f"INSERT INTO {entity} VALUES({marks})", values)
                    written += len(values)
        conn.executemany("INSERT OR IGNORE INTO materialized VALUES(?, ?)", todo)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return written


def _rows_of(
    conn: sqlite3.Connection, by_entity: dict[str, list[str]]
) -> dict[str, list[tuple[Any, ...]]]:
    """The value rows of ``by_entity``'s keys for every stored body.

    SQLite picks each value's JSON text out of the bodies (``->`` renders a number as
    written, so ``json.loads`` of that text is exactly what parsing the whole body
    gives); bodies SQLite cannot read (a NaN or infinity written by Python's json) and
    keys a JSON path cannot name are parsed in Python instead.
    """
    rows: dict[str, list[tuple[Any, ...]]] = {e: [] for e in by_entity}
    pairs = [(e, k) for e, keys in by_entity.items() for k in keys if _PATH_SAFE.fullmatch(k)]
    slow = {e: [k for k in keys if not _PATH_SAFE.fullmatch(k)] for e, keys in by_entity.items()}
    unread: list[int] = []  # bodies SQLite cannot read
    if pairs:
        picks = ", ".join("CASE WHEN ok THEN body -> ? END" for _ in pairs)
        paths = [f'$.docs.{_SECTIONS[e]}."{k}"' for e, k in pairs]
        for rid, ok, *texts in conn.execute(
            f"SELECT run, ok, {picks} FROM (SELECT run, body, json_valid(body) AS ok FROM records)",
            paths,
        ):
            if not ok:
                unread.append(rid)
                continue
            for (entity, key), text in zip(pairs, texts, strict=True):
                if text is not None:
                    rows[entity].extend(value_rows(rid, entity, {key: _decode(text)}, (key,)))
        bodies = conn.execute(
            "SELECT run, body FROM records WHERE run IN (SELECT value FROM json_each(?))",
            (json.dumps(unread),),
        )
    else:
        bodies = conn.execute("SELECT run, body FROM records")
    for rid, body in bodies:  # every body when no key has a path, else the unread ones
        docs = fast_loads(body)["docs"]
        for entity, keys in by_entity.items():
            values = _values(docs, entity)
            if values and keys:
                rows[entity].extend(value_rows(rid, entity, values, keys))
    if pairs and any(slow.values()):  # keys a path cannot name, over the bodies SQLite read
        for rid, body in conn.execute("SELECT run, body FROM records WHERE json_valid(body)"):
            docs = fast_loads(body)["docs"]
            for entity, keys in slow.items():
                values = _values(docs, entity)
                if keys and values:
                    rows[entity].extend(value_rows(rid, entity, values, keys))
    return rows


def _decode(text: str) -> Any:
    """``json.loads(text)`` of one JSON value, with shortcuts for plain strings and numbers."""
    if text[0] == '"':
        if "\\" not in text:
            return text[1:-1]
    elif text[0] in "-0123456789" and not text.lstrip("-").isdigit():
        try:
            return float(text)  # a JSON number with a fraction or exponent: what json reads
        except ValueError:
            pass
    return json.loads(text)


#: Where each value table's values sit in a stored body, as a JSON path.
_SECTIONS = {"params": '"params.yaml"', "metrics": '"metrics.yaml"', "tags": '"run.yaml".tags'}
#: Keys a quoted JSON path label names exactly.
_PATH_SAFE = re.compile(r"[A-Za-z0-9_./ :+-]+")


def _values(docs: dict[str, Any], entity: str) -> dict[str, Any]:
    """The entity's values in a stored body, normalised as ``IndexedRecord.from_docs`` does."""
    if entity == "params":
        return docs.get("params.yaml") or {}
    if entity == "metrics":
        return docs.get("metrics.yaml") or {}
    return (docs.get("run.yaml") or {}).get("tags") or {}


class KeyCounts:
    """Changes to ``key_counts`` gathered during one sync, written by :meth:`flush`.

    Runs are counted by their key *sets* (most runs of an experiment share one), and the
    sets are expanded into per-key counts once, at the end.
    """

    def __init__(self) -> None:
        self._sets: Counter[tuple[str, str, str, tuple[str, ...]]] = Counter()

    def add(self, experiment_id: str | None, lifecycle: str, sign: int,
            entities: Iterable[tuple[str, Iterable[str]]]) -> None:  # fmt: skip
        """Count (``sign`` 1) or uncount (-1) the keys of one run."""
        exp = "" if experiment_id is None else str(experiment_id)
        sets = self._sets
        for entity, keys in entities:
            if keys:
                sets[(entity, exp, lifecycle, tuple(keys))] += sign

    def flush(self, conn: sqlite3.Connection) -> None:
        """Apply the gathered changes (inside the caller's transaction) and clear them."""
        per_key: Counter[tuple[str, str, str, str]] = Counter()
        for (entity, exp, lifecycle, keys), n in self._sets.items():
            if n:
                for key in keys:
                    per_key[(entity, key, exp, lifecycle)] += n
        rows = [(*k, n) for k, n in per_key.items() if n]
        if rows:
            conn.executemany(
                "INSERT INTO key_counts VALUES(?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
                "SET n = n + excluded.n",
                rows,
            )
            conn.execute("DELETE FROM key_counts WHERE n <= 0")
        self._sets.clear()


def keys_in_scope(
    conn: sqlite3.Connection, experiment_ids: Sequence[str] | None, lifecycles: Sequence[str]
) -> dict[str, list[str]]:
    """The param, metric and tag keys some run in scope has (sorted, per entity)."""
    where = f"lifecycle IN ({','.join('?' * len(lifecycles)) or 'NULL'})"
    args: list[Any] = list(lifecycles)
    if experiment_ids is not None:
        where += f" AND experiment_id IN ({','.join('?' * len(experiment_ids)) or 'NULL'})"
        args += list(experiment_ids)
    out: dict[str, list[str]] = {t: [] for t in VALUE_TABLES}
    for entity, key in conn.execute(
        f"SELECT DISTINCT entity, key FROM key_counts WHERE {where} AND n > 0 ORDER BY key", args
    ):
        out[entity].append(key)
    return out
