"""Refs under ``refs/vtrack/``: names, reads, compare-and-swap updates, prefix listing.

The ref layout is private to this module so that it can change (DESIGN.md §11).
Updates use git's own lock protocol (``<ref>.lock`` created exclusively, then
renamed), so they interoperate with concurrent git commands.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from pathlib import Path

from vtrack import gitcmd
from vtrack.errors import GitError, RefConflictError, StoreError
from vtrack.store.fileio import acquire_lock

RUNS = "refs/vtrack/runs/"
EXPERIMENTS = "refs/vtrack/experiments/"
TRASH = "refs/vtrack/trash/"
ZERO = "0" * 40


def run_ref(run_id: str) -> str:
    """Ref name of a live (not deleted) run."""
    return RUNS + run_id


def trash_ref(run_id: str) -> str:
    """Ref name of a deleted run."""
    return TRASH + run_id


def experiment_ref(exp_id: str) -> str:
    """Ref name of an experiment."""
    return EXPERIMENTS + exp_id


class RefStore:
    """Refs of one repository's common git directory."""

    def __init__(self, git_dir: Path, *, fsync: bool = False) -> None:
        self.git_dir = git_dir
        self.fsync = fsync
        self._packed_key: tuple[int, int] | None = None
        self._packed_names: list[str] = []
        self._packed_shas: list[str] = []

    # -- reading ---------------------------------------------------------
    def _load_packed(self) -> None:
        path = self.git_dir / "packed-refs"
        try:
            st = path.stat()
        except FileNotFoundError:
            self._packed_key, self._packed_names, self._packed_shas = None, [], []
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self._packed_key:
            return
        pairs = []
        with open(path, "rb") as f:
            for line in f:
                if line.startswith((b"#", b"^")):
                    continue
                sha, _, name = line.rstrip(b"\n").partition(b" ")
                pairs.append((name.decode("utf-8", "replace"), sha.decode()))
        pairs.sort()
        self._packed_names = [p[0] for p in pairs]
        self._packed_shas = [p[1] for p in pairs]
        self._packed_key = key

    def _read_packed(self, name: str) -> str | None:
        self._load_packed()
        i = bisect.bisect_left(self._packed_names, name)
        if i < len(self._packed_names) and self._packed_names[i] == name:
            return self._packed_shas[i]
        return None

    def read(self, name: str) -> str | None:
        """Return the SHA ``name`` points at, or None if the ref does not exist."""
        for _ in range(5):
            try:
                text = (self.git_dir / name).read_text().strip()
            except FileNotFoundError:
                return self._read_packed(name)
            except IsADirectoryError:
                return None
            if text.startswith("ref: "):
                return self.read(text[5:].strip())
            if len(text) == 40:
                return text
            time.sleep(0.001)  # torn read of a ref being rewritten by a foreign tool
        raise StoreError(f"ref {name} holds unreadable content")

    def read_head(self, head_dir: Path) -> tuple[str | None, str | None]:
        """Return ``(commit sha or None, branch name or None)`` of HEAD in ``head_dir``."""
        try:
            text = (head_dir / "HEAD").read_text().strip()
        except FileNotFoundError:
            return None, None
        if text.startswith("ref: "):
            ref = text[5:].strip()
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
            local = head_dir / ref
            if head_dir != self.git_dir and local.is_file():
                return local.read_text().strip(), branch
            return self.read(ref), branch
        return (text if len(text) == 40 else None), None

    def list(self, prefix: str) -> dict[str, str]:
        """Return ``{ref name: sha}`` for every ref under ``prefix`` (loose and packed)."""
        res = gitcmd.run(
            ["for-each-ref", "--format=%(objectname) %(refname)", prefix], git_dir=self.git_dir
        )
        out: dict[str, str] = {}
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            sha, _, name = line.partition(" ")
            out[name] = sha
        return out

    def list_ids(self, prefix: str) -> dict[str, str]:
        """Return ``{last path part: sha}`` for refs under ``prefix``."""
        return {name[len(prefix) :]: sha for name, sha in self.list(prefix).items()}

    # -- writing ---------------------------------------------------------
    def cas(self, name: str, old: str | None, new: str, *, fsync: bool | None = None) -> None:
        """Point ``name`` at ``new`` if it currently points at ``old`` (None: absent).

        Raises RefConflictError when the ref holds something else, and StoreError
        when its lock cannot be taken.
        """
        path = self.git_dir / name
        lock = path.with_name(path.name + ".lock")
        fd = acquire_lock(lock, timeout=10.0)
        try:
            try:
                current = self.read(name)
                if current != old:
                    raise RefConflictError(
                        f"ref {name} moved: expected {old or 'nothing'}, found {current or 'nothing'}",
                        ref=name,
                        expected=old,
                        found=current,
                    )
                os.write(fd, new.encode() + b"\n")
                if self.fsync if fsync is None else fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(lock, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            raise

    def delete(self, name: str, old: str) -> None:
        """Delete ``name`` if it points at ``old`` (loose and packed copies)."""
        try:
            gitcmd.run(["update-ref", "-d", name, old], git_dir=self.git_dir)
        except GitError as exc:
            if self.read(name) != old:
                raise RefConflictError(f"ref {name} moved while deleting it", ref=name) from exc
            raise
