"""The kept rerun worktree: one linked git worktree per store, reused from rerun to rerun.

Adding a git worktree writes every file of the snapshot (5,000 files: seconds on a busy
disk), and removing it deletes them all again; switching an existing worktree to another
run commit writes only the files that differ. So ``vtrack rerun`` keeps one worktree at
``.git/vtrack/rerun/tree/<the repository's absolute path>`` (the path mirrored so that
data outside the repository keeps its relative position), guarded by an exclusive lock:

- :func:`acquire` takes the lock without waiting; a second rerun running at the same
  time gets None and uses a temporary worktree instead (as ``--keep`` does);
- :func:`refresh` puts a run commit in it: ``git checkout --force --detach`` then ``git
  clean -ffdx`` (whatever the previous rerun wrote, ignored files included, is removed),
  so the tree equals the snapshot exactly as a fresh worktree would;
- :func:`scrub` cleans it after a rerun (outputs of the run are not kept around).

It shows in ``git worktree list`` as a detached worktree under ``.git/vtrack/rerun``;
deleting that folder is harmless (the next rerun adds it again).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack.errors import VtrackError

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

RERUN_DIR = "rerun"


def acquire(repo: RunRepository) -> tuple[Path, int] | None:
    """``(folder of the kept worktree's mirror root, lock fd)``, or None when it is busy."""
    import fcntl

    base = repo.store.location.vtrack_dir / RERUN_DIR
    try:
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / "lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return base / "tree", fd


def release(fd: int | None) -> None:
    """Release the lock taken by :func:`acquire` (no error when already released)."""
    if fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass


def refresh(repo: RunRepository, run: Run, workdir: Path) -> None:
    """Make ``workdir`` a worktree holding exactly ``run``'s commit (artifacts materialised)."""
    from vtrack.repro.checkout import (
        checkout_run,
        materialise_artifacts,
        remove_worktree,
        require_snapshot,
        store_git,
    )

    commit = require_snapshot(run)
    if (workdir / ".git").is_file():
        try:
            store_git(repo, ["checkout", "-q", "--force", "--detach", commit], cwd=workdir)
            store_git(repo, ["clean", "-ffdxq"], cwd=workdir)
            materialise_artifacts(repo, run, workdir)
            return
        except VtrackError:
            remove_worktree(repo, workdir)  # a damaged worktree: start over
    elif workdir.exists():
        remove_worktree(repo, workdir)
    else:
        store_git(repo, ["worktree", "prune"], check=False)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    checkout_run(repo, run, workdir)


def scrub(repo: RunRepository, workdir: Path) -> None:
    """Remove what a rerun wrote into the kept worktree (its files stay for the next one)."""
    from vtrack.repro.checkout import store_git

    if (workdir / ".git").is_file():
        store_git(repo, ["clean", "-ffdxq"], cwd=workdir, check=False)
