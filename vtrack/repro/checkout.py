"""Checking a run out: its exact code, params and artifacts on disk, in a git worktree.

A checkout puts the run commit's tree on disk — the code snapshot, uncommitted edits of
the original included, plus the run record under ``.vtrack/`` (so ``.vtrack/params.yaml``
and small artifacts are there) — and replaces the pointer files of large artifacts in
``.vtrack/artifacts/`` with their bytes. Nothing is written outside ``.vtrack/``, so the
code equals the snapshot byte for byte and a run started there captures the same code
(snapshots leave ``.vtrack/`` out).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack.errors import DirtyWorktreeError, ValidationError, VtrackError

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

#: Uncommitted files a refused checkout names before "...".
DIRTY_FILES_SHOWN = 5


def store_git(
    repo: RunRepository, args: list[str], cwd: Path | None = None, check: bool = True
) -> str:
    """The output of ``git ARGS`` in the store's working tree (its git dir when bare)."""
    from vtrack import gitcmd

    loc = repo.store.location
    if loc.worktree is not None:
        return gitcmd.output(args, cwd=cwd or loc.worktree, check=check)
    return gitcmd.output(args, cwd=cwd or loc.git_dir, git_dir=loc.git_dir, check=check)


def require_snapshot(run: Run) -> str:
    """The run commit of ``run``; raise ValidationError when it has none or captured no code."""
    src = run.info.source or {}
    if not run.info.commit:
        raise ValidationError(f"run {run.info.run_id} has no commit to check out")
    if src.get("code_captured") is False:
        raise ValidationError(
            f"run {run.info.run_id} recorded no code snapshot ({src.get('reason', 'not captured')})",
            hint="only runs made inside a git working tree can be checked out",
        )
    return run.info.commit


def materialise_artifacts(repo: RunRepository, run: Run, target: Path) -> list[str]:
    """Put the bytes of large artifacts at ``target/.vtrack/artifacts/<path>``; return their paths.

    Small artifacts are git blobs of the run tree, so the checkout already holds them;
    a large one is a pointer file there, replaced here by its verified bytes from the
    large-object store (ArtifactNotFoundError if this clone does not have them).
    """
    from vtrack import artifacts

    base = target / ".vtrack" / artifacts.ARTIFACTS_DIR
    written = []
    for path, entry in sorted(run.inputs.artifacts.items()):
        if not entry.is_large and (base / path).exists():
            continue
        artifacts.download_artifacts(repo, run.info.run_id, path, base)
        written.append(path)
    return written


def dirty_files(repo: RunRepository) -> list[str]:
    """Tracked files with uncommitted changes in the store's working tree."""
    from vtrack import gitcmd

    loc = repo.store.location
    raw = gitcmd.run(
        ["status", "--porcelain", "-z", "--untracked-files=no"],
        cwd=loc.worktree or loc.git_dir,
        git_dir=None if loc.worktree else loc.git_dir,
    ).stdout  # unstripped and NUL-separated: " M train.py" must keep its leading space
    entries = raw.split(b"\0")
    out: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        out.append(os.fsdecode(entry[3:]))
        if entry[:1] in (b"R", b"C"):
            i += 1  # the original path of a rename or copy follows
    return out


def checkout_run(repo: RunRepository, run: Run, into: Path | None) -> Path:
    """Put run ``run`` on disk (see the module docstring); return the folder.

    With ``into`` a new detached git worktree is added there (the folder must not exist
    or be empty); if putting the artifacts there fails (a large object missing from this
    clone), the worktree is removed again — unregistered, its files deleted, an empty
    folder that was there before left empty — and the error re-raised. Without it the
    store's own working tree is switched to the run commit (detached HEAD), refused with
    DirtyWorktreeError when tracked files have uncommitted changes.
    """
    commit = require_snapshot(run)
    loc = repo.store.location
    if into is None:
        if loc.worktree is None:
            raise ValidationError("this store has no working tree", hint="use --into DIR")
        dirty = dirty_files(repo)
        if dirty:
            shown = ", ".join(dirty[:DIRTY_FILES_SHOWN])
            shown += " ..." if len(dirty) > DIRTY_FILES_SHOWN else ""
            raise DirtyWorktreeError(
                f"refusing to check out over uncommitted changes in {loc.worktree}: {shown}",
                hint="commit or stash them, or use --into DIR",
            )
        store_git(repo, ["checkout", "-q", "--detach", commit])
        target = loc.worktree
    else:
        target = into.expanduser().resolve()
        existed = target.exists()
        if existed and (not target.is_dir() or any(target.iterdir())):
            raise ValidationError(f"{target} exists and is not an empty folder")
        store_git(repo, ["worktree", "add", "-q", "--detach", str(target), commit])
        try:
            materialise_artifacts(repo, run, target)
        except BaseException:
            # no half checkout stays registered: remove the worktree and what it wrote
            remove_worktree(repo, target)
            if existed:
                target.mkdir(exist_ok=True)
            raise
        return target
    materialise_artifacts(repo, run, target)
    return target


def remove_worktree(repo: RunRepository, path: Path) -> None:
    """Unregister the linked worktree at ``path`` and delete its files (no error if absent)."""
    try:
        store_git(repo, ["worktree", "remove", "--force", str(path)])
    except VtrackError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    try:
        store_git(repo, ["worktree", "prune"])
    except VtrackError:
        pass
