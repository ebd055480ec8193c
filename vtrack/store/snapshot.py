"""Code snapshots: the working tree as it is on disk, written as a git tree.

Tracked files (uncommitted edits included) and untracked, non-ignored files up to
a size cap are captured through a temporary index, so the user's index and files
are never touched. Within one process a snapshot is reused while HEAD is
unchanged — for nested runs always (a sweep's children ran the parent's code), for a
top-level run only while the files it read are unchanged (:class:`Witness`: git's own
stat check against the capture's index, and the untracked listing, so an edited, added
or deleted file shows), checked at most once per
:data:`REVALIDATE_AFTER_NS` — so a notebook that edits a helper module between two runs
records each run's own code, and a loop starting runs back to back pays nothing.

Untracked files that look like secrets (:func:`vtrack.secrets.looks_like_secret_file`:
``.env``, private keys, ``credentials.json`` …) are left out unless the caller asks
for them, and listed in ``skipped_files`` with ``reason: looks like a secret``; tracked
files are in git already and stay. The remote URL is recorded without credentials.
Skipped paths that are not valid UTF-8 are recorded escaped (``\\xff``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtrack import gitcmd
from vtrack.config import StoreLocation
from vtrack.errors import GitError, StoreError
from vtrack.limits import RACY_MARGIN_NS
from vtrack.secrets import escape_text, looks_like_secret_file, strip_url_credentials
from vtrack.store.fileio import unique_suffix
from vtrack.store.gitobj import GitObjects, TreeEntry
from vtrack.store.record import RECORD_DIR
from vtrack.store.refs import RefStore

_UNINDEXABLE = re.compile(r"unable to index file '(.+?)'")


@dataclass(frozen=True)
class Snapshot:
    """The code a run executed: root tree entries (no ``.vtrack``) and where they came from."""

    entries: tuple[TreeEntry, ...]
    parent: str | None
    source: dict[str, Any] = field(default_factory=dict)


#: A top-level run reuses a cached snapshot unchecked within this long of the last check
#: (a person cannot edit a file and start the next run faster; a loop of runs can).
REVALIDATE_AFTER_NS = RACY_MARGIN_NS


@dataclass(frozen=True)
class Witness:
    """What a snapshot read, kept to tell later whether the tree on disk is still that.

    ``index`` is the temporary index the capture wrote (git's stat data of every captured
    file, racily clean entries smudged by git itself) and ``untracked`` the untracked
    listing it started from. The tree is unchanged when ``git diff-files`` finds no
    captured file changed or deleted against that index and the untracked listing is the
    same (no file added, none removed) — two git calls, no Python stat loop.
    """

    index: bytes
    untracked: bytes

    def holds(self, location: StoreLocation) -> bool:
        """True when nothing the snapshot read changed in ``location``'s working tree."""
        worktree = location.worktree
        if worktree is None:
            return False
        tmp_dir = location.vtrack_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp_index = tmp_dir / f"index-{unique_suffix()}"
        try:
            tmp_index.write_bytes(self.index)
            env = {"GIT_INDEX_FILE": str(tmp_index)}
            same = gitcmd.run(
                ["diff-files", "--quiet"], cwd=worktree, git_dir=location.head_dir,
                work_tree=worktree, env=env, check=False,
            )  # fmt: skip
            if same.returncode != 0:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_index.unlink()
        return _untracked(location, worktree) == self.untracked


def _untracked(location: StoreLocation, worktree: Path) -> bytes:
    return gitcmd.run(
        ["ls-files", "-z", "--others", "--exclude-standard"],
        cwd=worktree,
        git_dir=location.head_dir,
        work_tree=worktree,
    ).stdout


@dataclass
class _Cached:
    snapshot: Snapshot
    witness: Witness | None
    checked_ns: int


_cache: dict[tuple[str, str | None, str | None, int, bool], _Cached] = {}
_cache_lock = threading.Lock()
#: The monotonic clock the revalidation interval is measured by (tests inject their own).
clock: Callable[[], int] = time.monotonic_ns


def clear_cache() -> None:
    """Forget cached snapshots (tests, and forked children that must re-read)."""
    with _cache_lock:
        _cache.clear()


def capture(
    location: StoreLocation,
    objects: GitObjects,
    refs: RefStore,
    *,
    max_file_bytes: int,
    enabled: bool = True,
    include_secrets: bool = False,
    revalidate: bool = False,
) -> Snapshot:
    """Return the snapshot of the store's working tree (cached per HEAD in this process).

    With ``revalidate`` (a top-level run) a cached snapshot is reused only while its
    :class:`Witness` holds, checked at most once per :data:`REVALIDATE_AFTER_NS`;
    without it (a nested run) the cached snapshot is reused as is. Untracked files
    larger than ``max_file_bytes`` and, unless ``include_secrets``, untracked files that
    look like secrets are left out and listed in ``source["skipped_files"]``.
    """
    head, branch = refs.read_head(location.head_dir)
    key = (str(location.head_dir), head, branch, max_file_bytes if enabled else -1, include_secrets)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            if not revalidate or cached.witness is None or location.worktree is None:
                return cached.snapshot
            now = clock()
            if now - cached.checked_ns < REVALIDATE_AFTER_NS:
                return cached.snapshot
            if cached.witness.holds(location):
                cached.checked_ns = now
                return cached.snapshot
        snap, witness = _capture(
            location, objects, head, branch, max_file_bytes, enabled, include_secrets
        )
        _cache[key] = _Cached(snap, witness, clock())
        return snap


def _remote_url(location: StoreLocation) -> str | None:
    """origin's URL, else the first remote's, without credentials; None without remotes."""
    res = gitcmd.run(
        ["config", "--get-regexp", r"^remote\..*\.url$"], git_dir=location.git_dir, check=False
    )
    urls: dict[str, str] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        name, _, url = line.partition(" ")
        urls[name] = url
    origin = urls.get("remote.origin.url") or (next(iter(urls.values())) if urls else None)
    return None if origin is None else strip_url_credentials(origin)


def _capture(
    location: StoreLocation,
    objects: GitObjects,
    head: str | None,
    branch: str | None,
    max_file_bytes: int,
    enabled: bool,
    include_secrets: bool,
) -> tuple[Snapshot, Witness | None]:
    source: dict[str, Any] = {"commit": head, "branch": branch}
    worktree = location.worktree
    if worktree is None or not enabled:
        source["code_captured"] = False
        source["reason"] = "store has no working tree" if worktree is None else "disabled"
        return Snapshot(entries=(), parent=head, source=source), None
    source["remote_url"] = _remote_url(location)
    listing = _untracked(location, worktree)
    untracked = listing.split(b"\x00")
    skipped: list[dict[str, Any]] = []
    left_out: list[bytes] = []  # exact paths for the pathspec
    for raw in untracked:
        if not raw:
            continue
        path = os.fsdecode(raw)
        if not include_secrets and looks_like_secret_file(path):
            skipped.append({"path": escape_text(path), "reason": "looks like a secret"})
            left_out.append(raw)
            continue
        try:
            size = os.lstat(worktree / path).st_size
        except OSError:
            continue
        if size > max_file_bytes:
            skipped.append({"path": escape_text(path), "size": size})
            left_out.append(raw)
    tmp_dir = location.vtrack_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp_index = tmp_dir / f"index-{unique_suffix()}"
    try:
        real_index = location.head_dir / "index"
        if real_index.exists():
            tmp_index.write_bytes(real_index.read_bytes())
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        pathspec = b".\x00:(exclude,literal).vtrack\x00" + b"".join(
            b":(exclude,literal)" + raw + b"\x00" for raw in left_out
        )
        res = gitcmd.run(
            ["add", "-A", "--ignore-errors", "--pathspec-from-file=-", "--pathspec-file-nul"],
            cwd=worktree,
            git_dir=location.head_dir,
            work_tree=worktree,
            env=env,
            input=pathspec,
            check=False,
        )
        if res.returncode != 0:
            # files git could not read (permissions, vanished) are left out and listed;
            # anything else is a real failure
            stderr = res.stderr.decode("utf-8", "replace")
            unreadable = _UNINDEXABLE.findall(stderr)
            if not unreadable:
                raise GitError(["add", "-A"], res.returncode, stderr)
            skipped += [{"path": escape_text(p), "reason": "unreadable"} for p in unreadable]
        tree = gitcmd.output(
            ["write-tree"], cwd=worktree, git_dir=location.head_dir, work_tree=worktree, env=env
        )
        witness = Witness(tmp_index.read_bytes(), listing)
    except GitError as exc:
        raise StoreError(
            f"could not snapshot the code in {worktree}: {exc.stderr.strip()}"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_index.unlink()
    entries = tuple(e for e in objects.read_tree(tree) if e[1] != RECORD_DIR.encode())
    head_tree = objects.read_commit(head)["tree"] if head else None
    source["dirty"] = head_tree != tree
    source["code_captured"] = True
    source["code_tree"] = tree
    if skipped:
        source["skipped_files"] = skipped
    return Snapshot(entries=entries, parent=head, source=source), witness
