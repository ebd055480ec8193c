"""Finalizing runs whose writer died: replay its journal, mark the run KILLED.

A writer is dead when this host can prove its process is gone (pid absent, or
reused by a process that started at another time). Its journal holds everything
it logged since its last checkpoint; recovery commits that on top of the run's
newest commit. When no live writer remains and the run still says RUNNING, it
becomes KILLED, with the time of the journal's last write as its end time.
"""

from __future__ import annotations

import contextlib
import os

from vtrack.errors import RefConflictError, StoreError
from vtrack.store import Store
from vtrack.store import refs as refnames
from vtrack.store.fileio import lock_file
from vtrack.store.journal import apply_lines, list_writers


def recover_run(store: Store, run_id: str) -> str | None:
    """Commit what dead writers of ``run_id`` left; return the new commit SHA or None.

    Safe to call from many processes at once: one of them does the work.
    """
    run_dir = store.run_live_dir(run_id)
    writers = list_writers(run_dir)
    if not writers:
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        return None
    if all(w.is_alive() for w in writers):
        return None
    try:
        with lock_file(run_dir / "recover.lock", timeout=5.0, stale_seconds=30.0):
            return _recover_locked(store, run_id)
    except StoreError:
        return None  # another process is recovering this run


def _recover_locked(store: Store, run_id: str) -> str | None:
    run_dir = store.run_live_dir(run_id)
    writers = list_writers(run_dir)
    dead = [w for w in writers if not w.is_alive()]
    alive = [w for w in writers if w.is_alive()]
    if not dead:
        return None
    ref = refnames.run_ref(run_id)
    for _attempt in range(20):
        tip = store.refs.read(ref)
        if tip is None:
            for w in dead:
                w.remove()
            return None
        state, code, parent = store.read_run_commit(tip)
        last_write = 0.0
        for w in dead:
            apply_lines(state, w.read_text())
            for seg in w.segments:
                with contextlib.suppress(OSError):
                    last_write = max(last_write, os.stat(seg).st_mtime)
        if not alive and state.info.get("status") == "RUNNING":
            state.info["status"] = "KILLED"
            state.info["end_time"] = int(last_write * 1000) if last_write else None
        sha = store.write_run_commit(state, code, parent)
        try:
            store.refs.cas(ref, tip, sha)
        except RefConflictError:
            continue
        for w in dead:
            w.remove()
        return sha
    return None


def recover_all(store: Store) -> list[str]:
    """Recover every run with a dead writer; return the ids of runs that changed."""
    changed = []
    for run_id in store.live_run_ids():
        if recover_run(store, run_id):
            changed.append(run_id)
    # folders left empty by finished writers
    for run_id in store.live_run_ids():
        with contextlib.suppress(OSError):
            store.run_live_dir(run_id).rmdir()
    return changed
