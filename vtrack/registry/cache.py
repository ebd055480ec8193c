"""The registry's derived state: a SQLite file keyed by the registry ref's commit.

``<git dir>/vtrack/registry.sqlite`` holds the fold (:mod:`vtrack.registry.fold`) of the
log up to the commit named in its ``meta`` table — one row per model, per version and
per history entry, each a JSON document. It is separate from the run index and can be
deleted at any time: the next read rebuilds it from the log. A read first compares the
ref with the cached commit (one file read); when the log grew on top of it only the new
events are read and only the models they touch are rewritten; anything else (a merge
that rebased the log, a missing commit, a damaged file) rebuilds it from scratch.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.errors import GitError, StoreError
from vtrack.registry.fold import ModelFold, apply
from vtrack.registry.log import read_log
from vtrack.store.refs import registry_tip

if TYPE_CHECKING:
    from vtrack.store import Store

#: Bumped when the cached documents change shape (an older file is rebuilt).
CACHE_FORMAT = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (name TEXT NOT NULL, version INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS history (name TEXT NOT NULL, seq INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (name, seq));
"""


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


class RegistryCache:
    """The cached fold of one store's registry log."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: Path = store.location.vtrack_dir / "registry.sqlite"
        # one connection per thread and process: SQLite connections must not cross either
        self._local = threading.local()

    @property
    def _db(self) -> sqlite3.Connection | None:
        held = getattr(self._local, "db", None)
        if held is None or held[0] != os.getpid():
            return None
        return held[1]

    @_db.setter
    def _db(self, db: sqlite3.Connection | None) -> None:
        self._local.db = None if db is None else (os.getpid(), db)

    # -- the connection -------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
            except sqlite3.DatabaseError:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        """Close the file (reopened on the next read)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _meta(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- bringing it up to date -----------------------------------------------------
    def sync(self) -> str | None:
        """Bring the cache to the registry's tip now and return that tip (None: empty log)."""
        tip = registry_tip(self.store.refs)
        db = self._connect()
        if self._meta(db, "tip") == (tip or "") and self._meta(db, "format") == CACHE_FORMAT:
            return tip
        with self._write() as db:
            self._sync_locked(db)
            return self._meta(db, "tip") or None

    def lock_and_read(self, name: str) -> tuple[str | None, ModelFold]:
        """Sync, then ``(tip, fold of model name)`` read in the same transaction."""
        with self._write() as db:
            self._sync_locked(db)
            return self._meta(db, "tip") or None, self._load(db, name)

    def _sync_locked(self, db: sqlite3.Connection) -> None:
        tip = registry_tip(self.store.refs)
        cached = self._meta(db, "tip")
        if cached == (tip or "") and self._meta(db, "format") == CACHE_FORMAT:
            return
        entries: list[tuple[str, str, dict[str, Any]]] | None = None
        count = int(self._meta(db, "count") or 0)
        if tip is not None and cached and self._meta(db, "format") == CACHE_FORMAT:
            try:
                entries = read_log(self.store, tip, since=cached)
            except GitError:
                entries = None
            if entries and entries[0][1] != cached:
                entries = None  # not a continuation of what is cached: a merge rebased it
        if entries is None:
            db.execute("DELETE FROM models")
            db.execute("DELETE FROM versions")
            db.execute("DELETE FROM history")
            count = 0
            entries = read_log(self.store, tip) if tip is not None else []
        folds: dict[str, ModelFold] = {}
        for commit, _parent, event in entries:
            name = event["model"]
            fold = folds.get(name)
            if fold is None:
                fold = folds[name] = self._load(db, name)
            count += 1
            apply(fold, event, count, commit)
        for fold in folds.values():
            self._store(db, fold)
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("tip", tip or ""), ("count", str(count)), ("format", CACHE_FORMAT)],
        )

    def _load(self, db: sqlite3.Connection, name: str) -> ModelFold:
        row = db.execute("SELECT doc FROM models WHERE name = ?", (name,)).fetchone()
        if row is None:
            return ModelFold.empty(name)
        fold = ModelFold(name, _loads(row[0]))
        for version, doc in db.execute("SELECT version, doc FROM versions WHERE name = ?", (name,)):
            fold.versions[int(version)] = _loads(doc)
        return fold

    def _store(self, db: sqlite3.Connection, fold: ModelFold) -> None:
        db.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", (fold.name, _dumps(fold.doc)))
        db.executemany(
            "INSERT OR REPLACE INTO versions VALUES (?, ?, ?)",
            [(fold.name, n, _dumps(fold.versions[n])) for n in sorted(fold.changed_versions)],
        )
        new = fold.history[len(fold.history) - fold.new_history :] if fold.new_history else []
        db.executemany(
            "INSERT OR REPLACE INTO history VALUES (?, ?, ?)",
            [(fold.name, h["seq"], _dumps(h)) for h in new],
        )

    # -- reading (call sync first) ------------------------------------------------------
    def model(self, name: str) -> ModelFold:
        """The fold of model ``name`` (an empty one if no event named it)."""
        return self._load(self._connect(), name)

    def model_docs(self) -> list[dict[str, Any]]:
        """Every model's record (deleted ones included), by name."""
        rows = self._connect().execute("SELECT doc FROM models ORDER BY name").fetchall()
        return [_loads(r[0]) for r in rows]

    def version_docs(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version's record (of model ``name``, or of all), by model and version."""
        db = self._connect()
        if name is None:
            rows = db.execute("SELECT doc FROM versions ORDER BY name, version").fetchall()
        else:
            rows = db.execute(
                "SELECT doc FROM versions WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [_loads(r[0]) for r in rows]

    def version_doc(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's record, or None."""
        row = (
            self._connect()
            .execute("SELECT doc FROM versions WHERE name = ? AND version = ?", (name, version))
            .fetchone()
        )
        return None if row is None else _loads(row[0])

    def history(self, name: str) -> list[dict[str, Any]]:
        """Model ``name``'s events in log order, each with ``seq``, ``commit`` and, when it
        changed nothing, ``ignored``."""
        rows = (
            self._connect()
            .execute("SELECT doc FROM history WHERE name = ? ORDER BY seq", (name,))
            .fetchall()
        )
        return [_loads(r[0]) for r in rows]


def _loads(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"the registry cache is damaged: {exc}", hint="delete it") from exc
    if not isinstance(doc, dict):
        raise StoreError("the registry cache is damaged", hint="delete it")
    return doc
