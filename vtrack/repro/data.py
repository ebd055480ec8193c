"""The data a run read from outside its snapshot, brought into a checkout after a digest check.

A snapshot holds the code, not the data: inputs logged from gitignored folders (the
common ``data/`` case) or from outside the repository are not in the run commit. A
checkout for a rerun (and ``vtrack checkout --into``) needs them at the same paths
relative to the working tree, so :func:`plan_data` finds every file or folder input
whose files the snapshot lacks and checks the bytes on disk against the record
(:func:`vtrack.provenance.audit`'s rules, through the stat cache), before anything runs:

- ``unchanged`` inputs are linked in by :func:`link_data` — a read-only reflink per file
  where the filesystem shares extents (btrfs, XFS: no bytes copied, its own inode, so the
  rerun cannot write the original), else a symbolic link (no bytes copied, the original
  untouched), else a hard link, else a copy made read-only. A symbolic or hard link cannot
  itself be read-only, so each original is fingerprinted (size, mtime, ctime, inode) when
  linked and :func:`modified_originals` names those a rerun wrote to;
- ``changed`` inputs (drift since the run) are refused unless the caller allows drift,
  and then linked and reported as differing;
- ``missing`` inputs raise :class:`~vtrack.errors.InputMissingError` (exit 3) naming the
  input and its recorded source; refused drift is a
  :class:`~vtrack.errors.DataDriftError` (exit 1, as ``vtrack audit`` reports drift).

Inputs outside the repository are placed at their relative position from the working
tree only where the checkout's surroundings are vtrack's own (a rerun's temporary folder
mirrors the repository's absolute path); a ``checkout --into DIR`` writes nothing outside
DIR and reports those inputs as read from their recorded paths.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.entities import DatasetInput, RunInputs
from vtrack.errors import DataDriftError, InputMissingError

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.statcache import BaseStatCache
    from vtrack.store.runs import RunRepository

IN_SNAPSHOT, LINKED, AT_SOURCE = "in snapshot", "linked", "at recorded path"


@dataclass(frozen=True)
class DataInput:
    """One input the checkout lacks: where it is, where it goes, and whether it drifted.

    ``rel`` is its path relative to the working tree (``../x`` for one outside it);
    ``files`` the relative paths under it that the snapshot lacks (``""`` for a file
    input); ``status`` the audit status (``unchanged``, ``changed``, ``missing``);
    ``how`` what :func:`link_data` did (``reflink``, ``symlink``, ``hard link``, ``copy``, or
    :data:`AT_SOURCE` when it stays where it was).
    """

    name: str
    source: str
    kind: str
    path: str
    rel: str
    files: tuple[str, ...]
    status: str
    changed_files: tuple[str, ...] = ()
    how: str = ""
    size: int = 0
    links: tuple[str, ...] = field(default_factory=tuple)
    #: (original path, its stat fingerprint when linked) for links that share its bytes
    originals: tuple[tuple[str, tuple[int, ...]], ...] = field(default_factory=tuple)

    @property
    def drifted(self) -> bool:
        """True when the bytes on disk differ from what the run recorded."""
        return self.status == "changed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "path": self.path,
            "at": self.rel,
            "files": len(self.files),
            "status": self.status,
            "changed_files": list(self.changed_files),
            "how": self.how,
        }


def plan_data(repo: RunRepository, run: Run) -> list[DataInput]:
    """The inputs of ``run`` that its snapshot lacks, each audited against the disk now."""
    from vtrack.provenance import audit
    from vtrack.provenance.audits import local_path, read_manifest

    if not run.inputs.datasets:
        return []
    store = repo.store
    worktree = store.location.worktree
    state = repo.state(run.info.run_id, deleted_ok=True).record
    audited = audit(repo, run.info.run_id)
    out: list[DataInput] = []
    entries = RunInputs.from_record(state.inputs, {}).datasets
    for entry, result in zip(entries, audited, strict=False):
        kind = entry.kind
        path = local_path(store, entry) or entry.path
        if kind not in ("file", "folder") or not isinstance(path, str) or worktree is None:
            continue
        rel = entry.repo_path or os.path.relpath(path, worktree)
        rel = Path(rel).as_posix()
        if kind == "file":
            files: list[str] = [""]
        else:
            text = read_manifest(store, state, entry)
            files = _manifest_paths(text, entry)
        lacking = _not_in_snapshot(repo, run, rel, files, inside=bool(entry.repo_path))
        if not lacking:
            continue
        status = result["status"]
        if status == "missing":
            raise InputMissingError(
                f"input {entry.name!r} of run {run.info.run_id} is missing: nothing at "
                f"{path} (recorded source {entry.source}); the rerun needs it at {rel}",
                hint="restore the data at that path, then run the command again",
                path=path,
                reason="missing",
            )
        changed = tuple(result["added"] + result["removed"] + result["modified"])
        out.append(
            DataInput(
                name=entry.name,
                source=str(entry.source),
                kind=str(kind),
                path=path,
                rel=rel,
                files=tuple(lacking),
                status=status,
                changed_files=changed,
                size=entry.size or 0,
            )
        )
    return out


def _manifest_paths(text: str | None, entry: DatasetInput) -> list[str]:
    from vtrack.datasets import manifest_from_tsv

    if text is not None:
        return [p for p, _, _ in manifest_from_tsv(text)]
    return [str(row[0]) for row in entry.files or ()]


def _not_in_snapshot(
    repo: RunRepository, run: Run, rel: str, files: list[str], *, inside: bool
) -> list[str]:
    """The files of an input at ``rel`` that the run commit's tree does not hold."""
    from vtrack.repro.checkout import store_git

    if not inside or rel.startswith("../"):
        return files
    listed = store_git(
        repo, ["ls-tree", "-r", "--name-only", "-z", run.info.commit or "", "--", rel], check=False
    )
    have = set(listed.split("\0"))
    prefix = "" if rel == "." else rel + "/"
    return [f for f in files if (prefix + f if f else rel) not in have]


def drift_refusal(run_id: str, items: list[DataInput]) -> DataDriftError:
    """The error of a rerun whose data drifted since the run (``--allow-drift`` overrides)."""
    lines = []
    for d in items:
        if d.drifted:
            shown = ", ".join(d.changed_files[:5]) or "its content"
            more = " ..." if len(d.changed_files) > 5 else ""
            lines.append(f"  {d.name} at {d.path}: {shown}{more} changed")
    return DataDriftError(
        f"the data of run {run_id} changed since it ran:\n" + "\n".join(lines),
        hint="restore the data, or pass --allow-drift to run on the data as it is now",
        reason="drifted",
    )


def link_data(
    items: list[DataInput], workdir: Path, *, outside_ok: bool, cache: BaseStatCache | None = None
) -> list[DataInput]:
    """Put each input's lacking files at ``workdir / rel``; return the items with ``how``.

    ``outside_ok`` allows placing inputs whose ``rel`` leaves ``workdir`` (a rerun's own
    temporary folder); otherwise they are left at their recorded path. Existing files in
    the checkout are never replaced. With ``cache`` (the store's stat cache), every
    symlink gets its original's trusted entry (:meth:`~vtrack.statcache.BaseStatCache.alias`),
    so a script that logs the linked input again does not rehash it.
    """
    out = []
    aliases: list[tuple[str, str]] = []
    root = workdir.resolve()
    for d in items:
        dest_root = Path(os.path.normpath(root / d.rel))
        inside = dest_root == root or root in dest_root.parents
        if not inside and not outside_ok:
            out.append(replace(d, how=AT_SOURCE))
            continue
        hows: set[str] = set()
        links: list[str] = []
        originals: list[tuple[str, tuple[int, ...]]] = []
        for f in d.files:
            src = Path(d.path) / f if f else Path(d.path)
            dest = dest_root / f if f else dest_root
            if dest.exists() or dest.is_symlink():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            how = _link(src, dest)
            hows.add(how)
            links.append(str(dest))
            if how in ("symlink", "hard link"):
                originals.append((str(src), _fingerprint(src)))
            if how == "symlink":
                aliases.append((str(src), str(dest)))
        out.append(
            replace(
                d,
                how=", ".join(sorted(hows)) or IN_SNAPSHOT,
                links=tuple(links),
                originals=tuple(originals),
            )
        )
    if cache is not None and aliases:
        cache.alias(aliases)
    return out


def _fingerprint(path: Path) -> tuple[int, ...]:
    """What changes when a file's bytes are written: size, mtime, ctime and inode."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def modified_originals(items: list[DataInput]) -> list[str]:
    """Names of the inputs whose original files changed since :func:`link_data` linked them.

    A rerun reads its data through symbolic (or hard) links, which share the original's
    bytes; a script that writes to its input writes the original. This names those inputs
    so the rerun can say so (its record of the original run no longer matches the disk).
    """
    out = []
    for d in items:
        if any(_fingerprint(Path(p)) != fp for p, fp in d.originals):
            out.append(d.name)
    return out


#: ``ioctl(FICLONE)``: the destination shares the source's extents (copy on write).
_FICLONE = 0x40049409


def _reflink(src: Path, dest: Path) -> bool:
    """Clone ``src`` to a new ``dest`` sharing its extents; False where unsupported."""
    import fcntl

    try:
        fd_src = os.open(src, os.O_RDONLY)
    except OSError:
        return False
    try:
        fd_dest = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except OSError:
        os.close(fd_src)
        return False
    ok = False
    try:
        fcntl.ioctl(fd_dest, _FICLONE, fd_src)
        ok = True
    except OSError:
        pass
    finally:
        os.close(fd_dest)
        os.close(fd_src)
    if not ok:
        os.unlink(dest)
        return False
    st = os.stat(src)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    return True


def _link(src: Path, dest: Path) -> str:
    # a reflink first: its own read-only inode, no bytes copied, the original untouched
    if _reflink(src, dest):
        return "reflink"
    # then a symlink: a hard link would move the original's ctime (the link count is
    # inode metadata), so every stat-cache entry for it would miss and 1 GiB be rehashed
    try:
        os.symlink(src, dest)
        return "symlink"
    except OSError:
        pass
    try:
        os.link(src, dest)
        return "hard link"
    except OSError:
        pass
    shutil.copy2(src, dest)
    dest.chmod(stat.S_IMODE(dest.stat().st_mode) & ~0o222)
    return "copy"


def unlink_data(items: list[DataInput]) -> None:
    """Remove the links :func:`link_data` made (never the files they point to)."""
    for d in items:
        for link in d.links:
            try:
                os.unlink(link)
            except OSError:
                pass
