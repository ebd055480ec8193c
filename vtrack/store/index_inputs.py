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
path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.errors import StoreError
from vtrack.store.record import RECORD_DIR

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.index_records import IndexedRecord

log = logging.getLogger("vtrack")

TABLE = "input_files"
#: Prefix of a ``loc`` relative to the working tree.
REPO = "repo:"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE}(
    run INTEGER NOT NULL, idx INTEGER NOT NULL, part INTEGER NOT NULL, loc TEXT, path TEXT,
    digest TEXT, name TEXT, context TEXT, kind TEXT, source TEXT, manifest TEXT,
    PRIMARY KEY(run, idx, part)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {TABLE}_loc ON {TABLE}(loc) WHERE loc IS NOT NULL;
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
        rows: list[Row] = []
        for idx, entry in enumerate(rec.inputs):
            if isinstance(entry, Mapping):
                rows.extend(_entry_rows(idx, entry))
        if rows:
            out[rec.run_id] = rows
    return out


def _entry_rows(idx: int, entry: Mapping[str, Any]) -> Iterable[Row]:
    kind = _text(entry.get("kind"))
    path = _text(entry.get("path"))
    loc = loc_of(path, _text(entry.get("repo_path")))
    in_memory = kind in ("dataframe", "array")
    yield (
        idx, 0, None if in_memory else loc, path, _text(entry.get("digest")),
        _text(entry.get("name")), _text(entry.get("context")), kind, _text(entry.get("source")),
        _text(entry.get("manifest")) if kind == "folder" else None,
    )  # fmt: skip
    if in_memory and loc and entry.get("source_digest"):
        yield (idx, 1, loc, path, _text(entry.get("source_digest")), None, None, None, None, None)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- queries --------------------------------------------------------------------------------


def find_uses(
    conn: sqlite3.Connection,
    *,
    store: Store,
    loc: str | None = None,
    under: bool = False,
    digest: str | None = None,
    lifecycles: Sequence[str] = ("active",),
) -> list[dict[str, Any]]:
    """What runs read at ``loc`` (and below it, with ``under``), or with ``digest``.

    ``loc`` matches inputs recorded there and files of folder inputs recorded at one of
    its parent folders; ``digest`` (full, or a prefix) matches input digests, source
    files of in-memory data and files inside folder inputs. Returns one dict per match:
    ``run_id``, ``run_name``, ``experiment_id``, ``status``, ``start_time``, ``idx``,
    ``part`` (0: the input itself or a file in it, 1: a DataFrame's source file),
    ``relpath`` (the file inside a folder input, else None), ``digest`` (of what
    matched) and the input's ``name``, ``context``, ``kind``, ``source`` and ``path``.
    """
    hits: list[tuple[int, int, int, str | None, str | None]] = []  # run, idx, part, rel, digest
    if digest is not None:
        _fill_folders(conn, store, None)
        cond, args = _digest_cond("digest", digest)
        hits += conn.execute(
            f"SELECT run, idx, part, NULL, digest FROM {TABLE} WHERE {cond}", args
        ).fetchall()
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for folder, rel, dig in conn.execute(
            f"SELECT folder, relpath, digest FROM folder_files WHERE {cond}", args
        ):
            by_folder.setdefault(folder, []).append((rel, dig))
        hits += _folder_hits(conn, by_folder, None)
    elif loc is not None:
        sep = "/" if loc.startswith(REPO) else os.sep
        base = loc.rstrip(sep) or loc
        if under:
            low, high = _prefix_range(base, sep)
            sql = (f"SELECT run, idx, part, NULL, digest FROM {TABLE} "
                   "WHERE loc = ? OR (loc >= ? AND loc < ?)")  # fmt: skip
            hits += conn.execute(sql, (base, low, high)).fetchall()
        else:
            hits += conn.execute(
                f"SELECT run, idx, part, NULL, digest FROM {TABLE} WHERE loc = ?", (base,)
            ).fetchall()
        parents = _parents(base, sep)
        folder_rows = []
        for parent, _rel in parents:
            folder_rows += conn.execute(
                f"SELECT DISTINCT digest FROM {TABLE} WHERE loc = ? AND kind = 'folder'", (parent,)
            ).fetchall()
        _fill_folders(conn, store, {r[0] for r in folder_rows if r[0]})
        for parent, rel in parents:
            by_folder = {}
            if under:
                low, high = _prefix_range(rel, "/")
                sql = ("SELECT f.folder, f.relpath, f.digest FROM folder_files f WHERE f.folder IN "
                       f"(SELECT digest FROM {TABLE} WHERE loc = ? AND kind = 'folder') "
                       "AND (f.relpath = ? OR (f.relpath >= ? AND f.relpath < ?))")  # fmt: skip
                args: tuple[Any, ...] = (parent, rel, low, high)
            else:
                sql = ("SELECT f.folder, f.relpath, f.digest FROM folder_files f WHERE f.folder IN "
                       f"(SELECT digest FROM {TABLE} WHERE loc = ? AND kind = 'folder') "
                       "AND f.relpath = ?")  # fmt: skip
                args = (parent, rel)
            for folder, r, dig in conn.execute(sql, args):
                by_folder.setdefault(folder, []).append((r, dig))
            hits += _folder_hits(conn, by_folder, parent)
    return _describe_hits(conn, hits, lifecycles)


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


def _folder_hits(
    conn: sqlite3.Connection, by_folder: dict[str, list[tuple[str, str]]], loc: str | None
) -> list[tuple[int, int, int, str | None, str | None]]:
    """The (run, idx) of folder inputs with these digests (recorded at ``loc`` if given)."""
    out: list[tuple[int, int, int, str | None, str | None]] = []
    for folder, files in by_folder.items():
        if loc is None:
            entries = conn.execute(
                f"SELECT run, idx FROM {TABLE} WHERE digest = ? AND kind = 'folder'", (folder,)
            ).fetchall()
        else:
            entries = conn.execute(
                f"SELECT run, idx FROM {TABLE} WHERE loc = ? AND digest = ? AND kind = 'folder'",
                (loc, folder),
            ).fetchall()
        for run, idx in entries:
            out.extend((run, idx, 0, rel, dig) for rel, dig in files)
    return out


def _describe_hits(
    conn: sqlite3.Connection, hits: list[tuple[int, int, int, str | None, str | None]],
    lifecycles: Sequence[str],
) -> list[dict[str, Any]]:  # fmt: skip
    runs: dict[int, tuple[Any, ...]] = {}
    entries: dict[tuple[int, int], tuple[Any, ...]] = {}
    ids = sorted({h[0] for h in hits})
    lifes = set(lifecycles)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT id, run_id, name, experiment_id, status, start_time, lifecycle FROM runs "
            f"WHERE id IN ({marks})", chunk,
        ):  # fmt: skip
            if row[6] in lifes:
                runs[row[0]] = row
        for run, idx, name, context, kind, source, path in conn.execute(
            f"SELECT run, idx, name, context, kind, source, path FROM {TABLE} "
            f"WHERE part = 0 AND run IN ({marks})", chunk,
        ):  # fmt: skip
            entries[(run, idx)] = (name, context, kind, source, path)
    out = []
    seen: set[tuple[Any, ...]] = set()
    for run, idx, part, rel, dig in hits:
        info = runs.get(run)
        if info is None or (run, idx, part, rel) in seen:
            continue
        seen.add((run, idx, part, rel))
        name, context, kind, source, path = entries.get((run, idx), (None,) * 5)
        out.append({
            "run_id": info[1], "run_name": info[2], "experiment_id": info[3], "status": info[4],
            "start_time": info[5], "idx": idx, "part": part, "relpath": rel, "digest": dig,
            "name": name, "context": context, "kind": kind, "source": source, "path": path,
        })  # fmt: skip
    return out


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
    if not names:
        return []
    try:
        proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch", "--buffer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=gitcmd.git_env(),
        )  # fmt: skip
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH", hint="install git 2.30+") from None
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        with contextlib.suppress(OSError):
            stdin.write(("\n".join(names) + "\n").encode("utf-8"))
        with contextlib.suppress(OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, name="vtrack-index-manifests", daemon=True)
    feeder.start()
    out: list[bytes | None] = []
    try:
        for _ in names:
            header = stdout.readline()
            if not header:
                raise StoreError("git cat-file --batch stopped early while reading manifests")
            parts = header.split()
            if len(parts) == 3 and parts[1] in (b"blob", b"tree", b"commit", b"tag"):
                size = int(parts[2])
                data = stdout.read(size + 1)[:size]
                out.append(data if parts[1] == b"blob" else None)
            else:
                out.append(None)
    finally:
        feeder.join()
        stdout.close()
        proc.wait()
    return out
