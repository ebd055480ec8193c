"""The run index's record of consumed files, for lineage questions.

Table ``input_files`` holds, for every input entry of every indexed run:

* one **entry row** (``relpath`` NULL) with the entry's ``name``, ``context``, ``kind``,
  ``source``, ``path`` (file or folder; NULL for in-memory data), ``repo_path`` and
  ``digest``;
* for a folder, one **file row** per manifest line (``relpath`` the path inside the
  folder, ``path``/``repo_path`` the folder's joined with it, ``digest`` the file's);
* for a DataFrame or array logged with a local source file, one file row with
  ``relpath`` ``""`` for that file (``digest`` its ``source_digest``).

Rows are derived from the run record only (``inputs.yaml`` and the manifests it
names), so a rebuilt index holds the same rows. The manifests of many runs are read
through one ``git cat-file --batch`` pipe.
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
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE}(
    run INTEGER NOT NULL, idx INTEGER NOT NULL, relpath TEXT, path TEXT, repo_path TEXT,
    digest TEXT, name TEXT, context TEXT, kind TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS {TABLE}_run ON {TABLE}(run);
CREATE INDEX IF NOT EXISTS {TABLE}_path ON {TABLE}(path) WHERE path IS NOT NULL;
CREATE INDEX IF NOT EXISTS {TABLE}_repo_path ON {TABLE}(repo_path) WHERE repo_path IS NOT NULL;
CREATE INDEX IF NOT EXISTS {TABLE}_digest ON {TABLE}(digest) WHERE digest IS NOT NULL;
"""
#: Manifests of at most this many runs are read in-process instead of through git.
BATCH_READ_THRESHOLD = 16

Row = tuple[Any, ...]  # (idx, relpath, path, repo_path, digest, name, context, kind, source)


# --- rows -------------------------------------------------------------------------------------


def input_file_rows(store: Store, records: Sequence[IndexedRecord]) -> dict[str, list[Row]]:
    """``{run_id: rows}`` for ``records`` (rows lack the index's run number, added on insert).

    A manifest that cannot be read is logged and its files are left out (the entry row
    stays), so one damaged run never stops a sync.
    """
    manifests = _read_manifests(store, records)
    out: dict[str, list[Row]] = {}
    for rec in records:
        rows: list[Row] = []
        for idx, entry in enumerate(rec.inputs):
            if isinstance(entry, Mapping):
                rows.extend(_entry_rows(idx, entry, manifests.get((rec.run_id, idx))))
        if rows:
            out[rec.run_id] = rows
    return out


def _entry_rows(idx: int, entry: Mapping[str, Any], manifest: str | None) -> Iterable[Row]:
    kind = _text(entry.get("kind"))
    path = _text(entry.get("path"))
    repo = _text(entry.get("repo_path"))
    in_memory = kind in ("dataframe", "array")
    yield (
        idx, None, None if in_memory else path, None if in_memory else repo,
        _text(entry.get("digest")), _text(entry.get("name")), _text(entry.get("context")),
        kind, _text(entry.get("source")),
    )  # fmt: skip
    if in_memory and path and entry.get("source_digest"):
        yield (idx, "", path, repo, _text(entry.get("source_digest")), None, None, None, None)
    if kind == "folder" and manifest is not None and path:
        from vtrack.datasets import manifest_from_tsv

        try:
            files = manifest_from_tsv(manifest)
        except Exception as exc:  # noqa: BLE001 - a damaged manifest must not stop a sync
            log.warning("vtrack: unreadable manifest of input %r: %s", entry.get("name"), exc)
            return
        base = path.rstrip(os.sep) + os.sep
        rbase = "" if repo in (None, ".") else repo + "/"  # type: ignore[operator]
        for rel, _size, digest in files:
            native = rel if os.sep == "/" else rel.replace("/", os.sep)
            yield (idx, rel, base + native, None if repo is None else rbase + rel, digest,
                   None, None, None, None)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _read_manifests(store: Store, records: Sequence[IndexedRecord]) -> dict[tuple[str, int], str]:
    wanted: list[tuple[IndexedRecord, int, str]] = []
    for rec in records:
        for idx, entry in enumerate(rec.inputs):
            if isinstance(entry, Mapping) and entry.get("kind") == "folder":
                rel = entry.get("manifest")
                if isinstance(rel, str) and rel:
                    wanted.append((rec, idx, rel))
    out: dict[tuple[str, int], str] = {}
    live = [w for w in wanted if w[0].live]
    plain = [w for w in wanted if not w[0].live]
    for rec, idx, rel in live:  # pending in a journal: read through the record state
        with contextlib.suppress(Exception):
            _, state = store.read_run_state(rec.run_id)
            pending = state.pending_files.get(rel)
            if pending is not None:
                out[(rec.run_id, idx)] = store.objects.read_blob(pending[1]).decode("utf-8")
            else:
                plain.append((rec, idx, rel))
    names = [f"{rec.commit}:{RECORD_DIR}/{rel}" for rec, _, rel in plain]
    if len({rec.run_id for rec, _, _ in plain}) > BATCH_READ_THRESHOLD:
        blobs = _cat_file_batch(store.location.git_dir, names)
    else:
        blobs = [_read_inprocess(store, rec.commit, rel) for rec, _, rel in plain]
    for (rec, idx, rel), data in zip(plain, blobs, strict=True):
        if data is None:
            log.warning("vtrack: run %s names manifest %s but its commit lacks it", rec.run_id, rel)
            continue
        out[(rec.run_id, idx)] = data.decode("utf-8", "replace")
    return out


def _read_inprocess(store: Store, commit_sha: str, rel: str) -> bytes | None:
    try:
        commit = store.objects.read_commit(commit_sha)
        found = store.objects.tree_lookup(commit["tree"], f"{RECORD_DIR}/{rel}")
        return None if found is None else store.objects.read_blob(found[1])
    except Exception:  # noqa: BLE001 - missing objects are reported by the caller
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
                raise StoreError("git cat-file --batch stopped early while indexing inputs")
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


# --- queries ----------------------------------------------------------------------------------


def find_uses(
    conn: sqlite3.Connection,
    *,
    path: str | None = None,
    repo_path: str | None = None,
    under: bool = False,
    digest: str | None = None,
    lifecycles: Sequence[str] = ("active",),
) -> list[dict[str, Any]]:
    """Rows of ``input_files`` that match, joined with their run and their entry row.

    Matches ``path`` (and ``repo_path``) exactly, or with ``under`` also everything
    below it; or ``digest`` exactly, or as a prefix when it is shorter than a full
    digest. Each result has ``run_id``, ``run_name``, ``experiment_id``, ``status``,
    ``start_time``, ``idx``, ``relpath``, ``path`` and ``digest`` (of the matching row)
    and the entry's ``name``, ``context``, ``kind``, ``source`` and ``input_path``.
    """
    where: list[str] = []
    args: list[Any] = []
    if digest is not None:
        if len(digest) >= len("xxh3-128:") + 32:
            where.append("f.digest = ?")
            args.append(digest)
        else:
            where.append("(f.digest >= ? AND f.digest < ?)")
            args += [digest, digest + "~"]
    for column, value, sep in (("path", path, os.sep), ("repo_path", repo_path, "/")):
        if value is None:
            continue
        if under and column == "repo_path" and value == ".":
            where.append("f.repo_path IS NOT NULL")
        elif under:
            prefix = value.rstrip(sep) + sep
            where.append(f"(f.{column} = ? OR (f.{column} >= ? AND f.{column} < ?))")
            args += [value.rstrip(sep) or sep, prefix, prefix[:-1] + chr(ord(sep) + 1)]
        else:
            where.append(f"f.{column} = ?")
            args.append(value)
    if not where:
        return []
    lifes = list(lifecycles)
    sql = (
        "SELECT r.id, r.run_id, r.name, r.experiment_id, r.status, r.start_time, f.idx, "
        f"f.relpath, f.path, f.digest FROM {TABLE} f JOIN runs r ON r.id = f.run "
        f"WHERE ({' OR '.join(where)}) AND r.lifecycle IN ({','.join('?' * len(lifes))})"
    )
    conn.execute("BEGIN")
    try:
        hits = conn.execute(sql, [*args, *lifes]).fetchall()
        entries: dict[tuple[int, int], tuple[Any, ...]] = {}
        runs = sorted({h[0] for h in hits})
        for start in range(0, len(runs), 500):
            chunk = runs[start : start + 500]
            for run, idx, name, context, kind, source, ipath in conn.execute(
                f"SELECT run, idx, name, context, kind, source, path FROM {TABLE} "
                f"WHERE relpath IS NULL AND run IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                entries[(run, idx)] = (name, context, kind, source, ipath)
    finally:
        conn.execute("COMMIT")
    out = []
    for rid, run_id, run_name, exp_id, status, start, idx, relpath, fpath, dig in hits:
        name, context, kind, source, ipath = entries.get((rid, idx), (None,) * 5)
        out.append({
            "run_id": run_id, "run_name": run_name, "experiment_id": exp_id, "status": status,
            "start_time": start, "idx": idx, "relpath": relpath, "path": fpath, "digest": dig,
            "name": name, "context": context, "kind": kind, "source": source,
            "input_path": ipath,
        })  # fmt: skip
    return out
