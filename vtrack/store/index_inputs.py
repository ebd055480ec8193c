"""The run index's record of what runs read, for lineage questions.

Two kinds of rows, both derived from run records only (so a rebuilt index holds the same):

* ``input_files``: per run, one row per input entry (``part`` 0) with its ``name``,
  ``context``, ``kind``, ``source``, recorded ``path``, ``digest`` (a folder's is its
  Merkle digest), ``manifest`` and ``loc``; and, for a DataFrame or array logged with a
  local source file, a second row (``part`` 1) for that file (``digest`` its
  ``source_digest``). Rows are written by the index's sync with the run's other rows.
* ``folder_files``: the files of each folder manifest, keyed by the folder's Merkle
  digest — stored **once per distinct folder content**, however many runs read it (a
  sweep of 1,000 runs over one 100,000-file folder adds 1,000 rows to ``input_files``
  and 100,000 to ``folder_files``, not 10^8). A manifest's digest is the hash of its
  text, so these rows never go stale. They are filled on demand: a lineage query first
  reads (through one ``git cat-file --batch``) the manifests of the folders it needs
  that are not in ``folders`` yet, and checks each against its digest.

``loc`` is where an input lives in a form every clone agrees on: ``repo:<posix path>``
for inputs inside the store's working tree (their ``repo_path``), else the absolute
path; ``""`` for in-memory data. Rows are clustered by ``loc`` (the primary key leads
with it), so the runs that read one place are one range of the table.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.logs import log
from vtrack.store.record import RECORD_DIR

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.index_records import IndexedRecord


TABLE = "input_files"
#: Prefix of a ``loc`` relative to the working tree.
REPO = "repo:"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE}(
    run INTEGER NOT NULL, idx INTEGER NOT NULL, part INTEGER NOT NULL, loc TEXT NOT NULL,
    path TEXT, digest TEXT, name TEXT, context TEXT, kind TEXT, source TEXT, manifest TEXT,
    PRIMARY KEY(loc, run, idx, part)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {TABLE}_run ON {TABLE}(run, idx, part);
CREATE INDEX IF NOT EXISTS {TABLE}_digest ON {TABLE}(digest) WHERE digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS folders(folder TEXT PRIMARY KEY, files INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folder_files(
    folder TEXT NOT NULL, relpath TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY(folder, relpath)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS folder_files_digest ON folder_files(digest);
"""
#: Manifests of at most this many folders are read in-process instead of through git.
BATCH_READ_THRESHOLD = 16
_DIGEST_LEN = len("xxh3-128:") + 32
_CHUNK = 500

Row = tuple[Any, ...]  # (idx, part, loc, path, digest, name, context, kind, source, manifest)


def loc_of(path: str | None, repo_path: str | None) -> str | None:
    """The ``loc`` of an input recorded at ``path`` (with ``repo_path`` when in the worktree)."""
    if repo_path:
        return REPO + repo_path
    return path or None


# --- rows written at sync ------------------------------------------------------------------


def input_file_rows(store: Store, records: Sequence[IndexedRecord]) -> dict[str, list[Row]]:
    """``{run_id: rows}`` for ``records`` (without the index's run number, added on insert)."""
    out: dict[str, list[Row]] = {}
    for rec in records:
        rows = record_rows(rec)
        if rows:
            out[rec.run_id] = rows
    return out


def record_rows(rec: IndexedRecord) -> list[Row]:
    """The ``input_files`` rows of one record (without the index's run number)."""
    rows: list[Row] = []
    for idx, entry in enumerate(rec.inputs):
        if isinstance(entry, Mapping):
            rows.extend(_entry_rows(idx, entry))
    return rows


def _entry_rows(idx: int, entry: Mapping[str, Any]) -> Iterable[Row]:
    kind = _text(entry.get("kind"))
    path = _text(entry.get("path"))
    loc = loc_of(path, _text(entry.get("repo_path")))
    in_memory = kind in ("dataframe", "array")
    yield (
        idx, 0, "" if in_memory or loc is None else loc, path, _text(entry.get("digest")),
        _text(entry.get("name")), _text(entry.get("context")), kind, _text(entry.get("source")),
        _text(entry.get("manifest")) if kind == "folder" else None,
    )  # fmt: skip
    if in_memory and loc and entry.get("source_digest"):
        yield (idx, 1, loc, path, _text(entry.get("source_digest")), None, None, None, None, None)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- queries --------------------------------------------------------------------------------


#: Columns of every :func:`find_uses` result, in order.
USE_FIELDS = ("run_id", "run_name", "experiment_id", "status", "start_time", "idx", "part",
              "relpath", "digest", "name", "context", "kind", "source", "path")  # fmt: skip
_SELECT = (
    "SELECT r.run_id, r.name, r.experiment_id, r.status, r.start_time, e.idx, {part}, "
    "{relpath}, {digest}, e.name, e.context, e.kind, e.source, e.path "
)
# Matches of the inputs themselves (part 0) carry their own columns; the few part-1 rows
# (a DataFrame's source file) are completed from their entry row afterwards.
_DIRECT = _SELECT.format(part="e.part", relpath="NULL", digest="e.digest") + (
    f"FROM {TABLE} e JOIN runs r ON r.id = e.run WHERE ({{where}}) AND r.lifecycle IN ({{lifes}})"
)
_IN_FOLDER = _SELECT.format(part="0", relpath="f.relpath", digest="f.digest") + (
    f"FROM {TABLE} e JOIN folder_files f ON f.folder = e.digest JOIN runs r ON r.id = e.run "
    "WHERE e.kind = 'folder' AND e.part = 0 AND ({where}) AND r.lifecycle IN ({lifes})"
)


def find_uses(
    conn: sqlite3.Connection,
    *,
    store: Store,
    loc: str | None = None,
    under: bool = False,
    digest: str | None = None,
    lifecycles: Sequence[str] = ("active",),
) -> list[tuple[Any, ...]]:
    """What runs read at ``loc`` (and below it, with ``under``), or with ``digest``.

    ``loc`` matches inputs recorded there and files of folder inputs recorded at one of
    its parent folders; ``digest`` (full, or a prefix) matches input digests, source
    files of in-memory data and files inside folder inputs. Returns one tuple per match
    with the fields :data:`USE_FIELDS`: the run's id, name, experiment, status and start
    time; the input's index in ``inputs.yaml``; ``part`` (0: the input itself or a file
    in it, 1: a DataFrame's or array's source file); ``relpath`` (the file inside a
    folder input, else None); ``digest`` (of what matched); and the input's name,
    context, kind, source and recorded path. In no particular order.
    """
    lifes = list(lifecycles)
    marks = ",".join("?" * len(lifes)) or "NULL"
    out: list[tuple[Any, ...]] = []
    conn.execute("BEGIN")
    try:
        if digest is not None:
            cond, args = _digest_cond("e.digest", digest)
            out += _complete(conn, conn.execute(
                _DIRECT.format(where=cond, lifes=marks), [*args, *lifes]
            ).fetchall())  # fmt: skip
            conn.execute("COMMIT")
            _fill_folders(conn, store, None)
            conn.execute("BEGIN")
            cond, args = _digest_cond("f.digest", digest)
            out += conn.execute(
                _IN_FOLDER.format(where=cond, lifes=marks), [*args, *lifes]
            ).fetchall()
            return out
        if loc is None:
            return out
        sep = "/" if loc.startswith(REPO) else os.sep
        base = loc.rstrip(sep) or loc
        if under:
            low, high = _prefix_range(base, sep)
            where, args = "e.loc = ? OR (e.loc >= ? AND e.loc < ?)", (base, low, high)
        else:
            where, args = "e.loc = ?", (base,)
        out += _complete(conn, conn.execute(
            _DIRECT.format(where=where, lifes=marks), [*args, *lifes]
        ).fetchall())  # fmt: skip
        parents = _parents(base, sep)
        wanted: set[str] = set()
        for parent, _rel in parents:
            wanted.update(d for (d,) in conn.execute(
                f"SELECT DISTINCT digest FROM {TABLE} WHERE loc = ? AND kind = 'folder'", (parent,)
            ) if d)  # fmt: skip
        if not wanted:
            return out
        conn.execute("COMMIT")
        _fill_folders(conn, store, wanted)
        conn.execute("BEGIN")
        for parent, rel in parents:
            if under:
                low, high = _prefix_range(rel, "/")
                where = "e.loc = ? AND (f.relpath = ? OR (f.relpath >= ? AND f.relpath < ?))"
                args = (parent, rel, low, high)
            else:
                where, args = "e.loc = ? AND f.relpath = ?", (parent, rel)
            out += conn.execute(
                _IN_FOLDER.format(where=where, lifes=marks), [*args, *lifes]
            ).fetchall()
        return out
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _complete(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Fill the input's columns of part-1 matches (a source file) from the input's row."""
    if all(r[6] == 0 for r in rows):
        return rows
    out = []
    for r in rows:
        if r[6] != 0:
            entry = conn.execute(
                f"SELECT r.run_id, e.name, e.context, e.kind, e.source, e.path FROM {TABLE} e "
                "JOIN runs r ON r.id = e.run WHERE r.run_id = ? AND e.idx = ? AND e.part = 0",
                (r[0], r[5]),
            ).fetchone()
            if entry is not None:
                r = (*r[:9], *entry[1:])
        out.append(r)
    return out


def _digest_cond(column: str, digest: str) -> tuple[str, tuple[str, ...]]:
    if len(digest) >= _DIGEST_LEN:
        return f"{column} = ?", (digest,)
    return f"{column} >= ? AND {column} < ?", (digest, digest + "~")


def _prefix_range(base: str, sep: str) -> tuple[str, str]:
    """Bounds of every string below ``base`` + ``sep`` (the byte after ``sep`` ends it)."""
    prefix = base if base.endswith(sep) else base + sep
    return prefix, prefix[:-1] + chr(ord(sep) + 1)


def _parents(loc: str, sep: str) -> list[tuple[str, str]]:
    """``(parent loc, path of loc inside it)`` for every folder above ``loc``, nearest first."""
    out = []
    if loc.startswith(REPO):
        rel = loc[len(REPO) :]
        if rel == ".":
            return []
        parts = rel.split("/")
        for i in range(len(parts) - 1, 0, -1):
            out.append((REPO + "/".join(parts[:i]), "/".join(parts[i:])))
        out.append((REPO + ".", rel))
        return out
    head = loc
    while True:
        parent = os.path.dirname(head)
        if not parent or parent == head:
            return out
        rest = os.path.relpath(loc, parent).replace(os.sep, "/")
        out.append((parent, rest))
        head = parent


# --- folder manifests, read on demand ----------------------------------------------------------


def _fill_folders(conn: sqlite3.Connection, store: Store, digests: set[str] | None) -> None:
    """Store the files of folder inputs (these digests, or all) not stored yet."""
    if digests is not None and not digests:
        return
    sql = (
        f"SELECT e.digest, e.manifest, r.commit_sha, r.run_id, r.live FROM {TABLE} e "
        "JOIN runs r ON r.id = e.run WHERE e.kind = 'folder' AND e.part = 0 "
        "AND e.digest IS NOT NULL AND e.manifest IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM folders f WHERE f.folder = e.digest)"
    )
    args: list[Any] = []
    if digests is not None:
        sql += " AND e.digest IN (SELECT value FROM json_each(?))"
        import json

        args.append(json.dumps(sorted(digests)))
    missing: dict[str, tuple[str, str, str, bool]] = {}
    for dig, manifest, commit, run_id, live in conn.execute(sql, args):
        known = missing.get(dig)
        if known is None or (known[3] and not live):  # prefer a committed copy
            missing[dig] = (manifest, commit, run_id, bool(live))
    if not missing:
        return
    texts = _read_manifests(store, missing)
    from vtrack.datasets import manifest_from_tsv
    from vtrack.hashing import hash_bytes

    folders: list[tuple[str, int]] = []
    files: list[tuple[str, str, str]] = []
    for dig, data in texts.items():
        if data is None or hash_bytes(data) != dig:
            log.warning("vtrack: the manifest of folder %s is missing or damaged; skipped", dig)
            continue
        try:
            rows = manifest_from_tsv(data.decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - one bad manifest must not stop a query
            log.warning("vtrack: unreadable manifest of folder %s: %s", dig, exc)
            continue
        folders.append((dig, len(rows)))
        files.extend((dig, rel, d) for rel, _size, d in rows)
    if not folders:
        return
    with contextlib.suppress(sqlite3.OperationalError):  # busy or read-only: answer anyway
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO folder_files VALUES(?, ?, ?)", files)
            conn.executemany("INSERT OR IGNORE INTO folders VALUES(?, ?)", folders)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


def _read_manifests(
    store: Store, wanted: Mapping[str, tuple[str, str, str, bool]]
) -> dict[str, bytes | None]:
    """Manifest bytes by folder digest, from ``(manifest path, commit, run id, live)``."""
    digs = list(wanted)
    names = [f"{wanted[d][1]}:{RECORD_DIR}/{wanted[d][0]}" for d in digs]
    if len(names) > BATCH_READ_THRESHOLD:
        blobs = _cat_file_batch(store.location.git_dir, names)
    else:
        blobs = [_read_inprocess(store, wanted[d][1], wanted[d][0]) for d in digs]
    out = dict(zip(digs, blobs, strict=True))
    for dig in digs:
        manifest, _commit, run_id, live = wanted[dig]
        if out[dig] is None and live:  # still pending in the run's journal
            with contextlib.suppress(Exception):
                _, state = store.read_run_state(run_id)
                pending = state.pending_files.get(manifest)
                if pending is not None:
                    out[dig] = store.objects.read_blob(pending[1])
    return out


def _read_inprocess(store: Store, commit_sha: str, rel: str) -> bytes | None:
    try:
        commit = store.objects.read_commit(commit_sha)
        found = store.objects.tree_lookup(commit["tree"], f"{RECORD_DIR}/{rel}")
        return None if found is None else store.objects.read_blob(found[1])
    except Exception:  # noqa: BLE001 - a missing object is reported by the caller
        return None


def _cat_file_batch(git_dir: Path, names: Sequence[str]) -> list[bytes | None]:
    """The blobs named ``<commit>:<path>`` through one ``git cat-file --batch``; None if absent."""
    return list(gitcmd.batch_blobs(git_dir, names, "reading manifests"))
