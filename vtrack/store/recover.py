"""Finalizing runs whose writer died: replay its journal, mark the run KILLED.

A writer is dead when this host can prove its process is gone (pid absent, or
reused by a process that started at another time). Its journal holds everything
it logged since its last checkpoint; recovery commits what the run's newest commit
does not already hold (its journal coverage, see :mod:`vtrack.store.journal`), so a
recovery killed between its ref update and the removal of the journal never applies
anything twice. When no live writer remains and the run still says RUNNING, it
becomes KILLED, with the time of the journal's last write as its end time.

A dead writer may also have left a ref lock (killed between creating
``<ref>.lock`` and renaming it): reading commands report it, ``vtrack recover``
removes it (:func:`clear_stale_locks`) and then finalizes the run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vtrack.errors import RefConflictError, StoreError
from vtrack.logs import log
from vtrack.store import Store
from vtrack.store.fileio import StaleLockError, lock_file, remove_if_stale
from vtrack.store.journal import apply_lines, list_writers
from vtrack.store.packs import keep_owner

RECOVER_LOCK = "recover.lock"


def recover_run(store: Store, run_id: str) -> str | None:
    """Commit what dead writers of ``run_id`` left; return the new commit SHA or None.

    Safe to call from many processes at once: one of them does the work. A stale ref
    lock left by a dead writer is reported (a warning) and left for ``vtrack recover``.
    """
    run_dir = store.run_live_dir(run_id)
    writers = list_writers(run_dir)
    if not writers:
        _remove_dead_locks(run_dir)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        return None
    if all(w.is_alive() for w in writers):
        return None
    try:
        with lock_file(run_dir / RECOVER_LOCK, timeout=5.0, stale_seconds=30.0):
            return _recover_locked(store, run_id)
    except StaleLockError as exc:
        log.warning("vtrack: run %s cannot be finalized: %s", run_id, exc)
        return None
    except StoreError:
        return None  # another process is recovering this run


def _remove_dead_locks(run_dir: Path) -> None:
    """Remove lock files of dead processes from the live folder of a run nobody writes.

    With no writer left they guard nothing (a killed system-metrics sampler's node
    lock, a dead writer's end lock); live owners' locks are kept.
    """
    try:
        names = [n for n in os.listdir(run_dir) if n.endswith(".lock")]
    except OSError:
        return
    for name in names:
        remove_if_stale(run_dir / name)


def _recover_locked(store: Store, run_id: str) -> str | None:
    run_dir = store.run_live_dir(run_id)
    writers = list_writers(run_dir)
    dead = [w for w in writers if not w.is_alive()]
    alive = [w for w in writers if w.is_alive()]
    if not dead:
        return None
    for _attempt in range(20):
        tip = store.refs.run_tip(run_id)
        if tip is None:
            for w in dead:
                w.remove()
            return None
        state, code, parent = store.read_run_commit(tip)
        last_write = 0.0
        for w in dead:
            text, reached = w.read_new(state.covered.get(w.writer_id))
            if text:
                apply_lines(state, text + "\n")
            if reached is not None:
                state.covered[w.writer_id] = reached
            for seg in w.segments:
                with contextlib.suppress(OSError):
                    last_write = max(last_write, os.stat(seg).st_mtime)
        if not alive and state.info.get("status") == "RUNNING":
            state.info["status"] = "KILLED"
            state.info["end_time"] = int(last_write * 1000) if last_write else None
        with store.objects.batch() as batch:
            sha = store.write_run_commit(state, code, parent)
        try:
            store.refs.update_run(run_id, tip, sha)
        except RefConflictError:
            continue
        finally:
            if batch.handle is not None:
                batch.handle.release()
        for w in dead:
            w.remove()
        release_dead_keeps(store)  # packs the dead writers published and never released
        return sha
    return None


def clear_stale_locks(store: Store) -> list[Path]:
    """Remove lock files (ref locks, run locks) whose vtrack owner is provably dead.

    Returns the paths removed. Locks of live processes and of other tools (git's own)
    are never touched.
    """
    removed = []
    candidates = store.refs.stale_locks()
    for run_id in store.live_run_ids():
        run_dir = store.run_live_dir(run_id)
        with contextlib.suppress(OSError):
            candidates += [run_dir / n for n in os.listdir(run_dir) if n.endswith(".lock")]
    for path in candidates:
        if remove_if_stale(path):
            removed.append(path)
    return removed


def release_dead_keeps(store: Store) -> int:
    """Remove the ``.keep`` of packs whose vtrack writer died before a ref reached them.

    A pack whose dead owner still has a journal waiting for recovery stays kept: it may
    hold a blob that only that journal references (an artifact logged just before the
    kill), which a ``git gc --prune=now`` would otherwise remove before recovery commits
    it. Released packs become ordinary ones: git keeps what a ref reaches and collects
    the rest. Returns how many were released.
    """
    pack_dir = store.objects.pack_dir
    try:
        names = [n for n in os.listdir(pack_dir) if n.endswith(".keep")]
    except FileNotFoundError:
        return 0
    if not names:
        return 0
    waiting = {
        (w.owner.host, w.owner.pid, w.owner.start)
        for run_id in store.live_run_ids()
        for w in list_writers(store.run_live_dir(run_id))
        if w.owner is not None
    }
    released = 0
    for name in names:
        owner = keep_owner(pack_dir / name)
        if owner is None or owner.is_alive() or (owner.host, owner.pid, owner.start) in waiting:
            continue
        with contextlib.suppress(FileNotFoundError):
            (pack_dir / name).unlink()
            released += 1
    return released


def recover_all(store: Store, *, clear_locks: bool = False) -> list[str]:
    """Recover every run with a dead writer; return the ids of runs that changed.

    With ``clear_locks`` (``vtrack recover``), stale lock files of dead writers are
    removed first, so runs they blocked can be finalized.
    """
    if clear_locks:
        for path in clear_stale_locks(store):
            log.warning("vtrack: removed stale lock %s (its process died)", path)
    changed = []
    for run_id in store.live_run_ids():
        if recover_run(store, run_id):
            changed.append(run_id)
    release_dead_keeps(store)  # after recovery: their journals no longer need the packs
    # folders left empty by finished writers
    for run_id in store.live_run_ids():
        run_dir = store.run_live_dir(run_id)
        if not list_writers(run_dir):
            _remove_dead_locks(run_dir)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
    return changed
