"""Refs under ``refs/vtrack/``: the one holder of the ref layout.

Names, reads, compare-and-swap updates, listings, the fingerprint the index watches and
the refspecs sharing moves: no other module knows where runs, the trash or experiments
live, so the layout can change (archive refs at scale, DESIGN.md §11) in one place.
Updates use git's own lock protocol (``<ref>.lock`` created exclusively), so they
interoperate with concurrent git commands. The names themselves are in
:mod:`vtrack.store.refs_names` (re-exported here), what sharing needs in
:mod:`vtrack.store.refs_sharing` (:class:`RefStore` inherits it).
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.errors import GitError, RefConflictError, StoreError
from vtrack.store.fileio import acquire_lock, is_stale, unique_suffix
from vtrack.store.refs_names import (  # noqa: F401 - the layout, re-exported
    ACTIVE,
    ARCHIVE,
    DELETED,
    EXPERIMENTS,
    LIVE,
    REGISTRY,
    REMOTES,
    ROOT,
    RUNS,
    SHARED,
    TRACKING_TABLE,
    TRASH,
    ZERO,
    archive_ref,
    experiment_ref,
    live_ref,
    parse_listing,
    run_ref,
    trash_ref,
)
from vtrack.store.refs_sharing import SharingRefs

if TYPE_CHECKING:
    from vtrack.store.archive_read import ArchiveView

_SHA = re.compile(rb"[0-9a-f]{40}")
#: Ref updates per ``git update-ref --stdin`` transaction (:meth:`RefStore.apply`).
APPLY_CHUNK = 5000
#: A ``packed-refs`` file larger than this is not parsed to read one ref (git reads it).
PACKED_PARSE_BYTES = 1 << 20
#: A well-formed ``packed-refs`` file: comment lines, peeled lines, ``<sha> <name>`` lines.
_PACKED_FILE = re.compile(rb"(?:#[^\n]*\n|\^[0-9a-f]{40}\n|[0-9a-f]{40} [^\n]+\n)*")
_PACKED_LINE = re.compile(r"^([0-9a-f]{40}) ([^\n]+)$", re.M)


def _raise_corrupt_packed(path: Path, data: bytes) -> None:
    """Raise the error naming the first line of ``packed-refs`` that is not well formed."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line or line.startswith((b"#", b"^")):
            continue
        sha, _, name = line.partition(b" ")
        if not _SHA.fullmatch(sha) or not name:
            raise StoreError(
                f"{path} is corrupt at line {number}: {line[:100]!r}",
                hint="repair or remove that line (git refuses this file too)",
            )
    raise StoreError(f"{path} is corrupt", hint="repair or remove it (git refuses it too)")


class RefStore(SharingRefs):
    """Refs of one repository's common git directory."""

    def __init__(self, git_dir: Path, *, fsync: bool = False) -> None:
        self.git_dir = git_dir
        self.fsync = fsync
        self._packed_key: tuple[int, int, int, int] | None = None
        self._packed_names: list[str] = []
        self._packed_shas: list[str] = []
        self._archive: ArchiveView | None = None

    @property
    def archive(self) -> ArchiveView:
        """The archive batches, merged and cached (:mod:`vtrack.store.archive_read`)."""
        if self._archive is None:
            from vtrack.store.archive_read import ArchiveView

            self._archive = ArchiveView(self)
        return self._archive

    # -- reading ---------------------------------------------------------
    def _packed_stat(self) -> tuple[int, int, int, int] | None:
        """What identifies this version of ``packed-refs`` (None: there is none). git's
        own rule: a rewrite within one timestamp tick keeps mtime and size, but not the
        inode or ctime."""
        try:
            st = (self.git_dir / "packed-refs").stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)

    def _load_packed(self) -> None:
        path = self.git_dir / "packed-refs"
        key = self._packed_stat()
        if key is None:
            self._packed_key, self._packed_names, self._packed_shas = None, [], []
            return
        if key == self._packed_key:
            return
        with open(path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            data += b"\n"
        # the whole file checked and split by the regex engine (100,000 refs: tens of
        # milliseconds; a Python loop over its lines took ten times that)
        if not _PACKED_FILE.fullmatch(data):
            _raise_corrupt_packed(path, data)
        text = data.decode("utf-8", "replace")
        pairs = _PACKED_LINE.findall(text)
        if not text.startswith("# pack-refs with:") or " sorted" not in text.partition("\n")[0]:
            pairs.sort(key=lambda p: p[1])  # hand-written: git reads it unsorted too
        self._packed_names = [p[1] for p in pairs]
        self._packed_shas = [p[0] for p in pairs]
        self._packed_key = key

    def _read_packed(self, name: str) -> str | None:
        key = self._packed_stat()
        if key is None:
            return None
        if key != self._packed_key and key[1] > PACKED_PARSE_BYTES:
            # one ref of a big file (100,000 packed run refs: 9 MB): git's binary search
            # of the sorted file is a few milliseconds; parsing it here, hundreds
            res = gitcmd.run(["for-each-ref", "--format=%(objectname) %(refname)", "--", name],
                             git_dir=self.git_dir)  # fmt: skip
            for line in res.stdout.decode("utf-8", "replace").splitlines():
                sha, _, ref = line.partition(" ")
                if ref == name:
                    return sha
            return None
        self._load_packed()
        i = bisect.bisect_left(self._packed_names, name)
        if i < len(self._packed_names) and self._packed_names[i] == name:
            return self._packed_shas[i]
        return None

    def packed_under(self, prefix: str) -> dict[str, str]:
        """``{ref name: sha}`` of the ``packed-refs`` entries under ``prefix`` (read
        in-process, re-read only when the file changed; loose refs not included)."""
        self._load_packed()
        names = self._packed_names
        i = bisect.bisect_left(names, prefix)
        out = {}
        while i < len(names) and names[i].startswith(prefix):
            out[names[i]] = self._packed_shas[i]
            i += 1
        return out

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
            if _SHA.fullmatch(text.encode()):
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

    # -- runs, the trash and experiments, by id -----------------------------
    def run_tip(self, run_id: str) -> str | None:
        """The newest commit of a (not deleted) run, or None: its loose ref, else the
        archive's entry unless a trash ref shadows it."""
        sha = self.read(run_ref(run_id))
        if sha is not None:
            return sha
        return self.archived_tip(run_id)

    def archived_tip(self, run_id: str) -> str | None:
        """The commit an archive batch holds for ``run_id`` when no loose or trash ref
        shadows it, else None."""
        if not self.archive.batches() or self.read(trash_ref(run_id)) is not None:
            return None
        if self.read(run_ref(run_id)) is not None:
            return None
        return self.archive.tip(run_id)

    def trash_tip(self, run_id: str) -> str | None:
        """The commit of a deleted run, or None."""
        return self.read(trash_ref(run_id))

    def experiment_tip(self, exp_id: str) -> str | None:
        """The commit of an experiment record, or None."""
        return self.read(experiment_ref(exp_id))

    def update_run(self, run_id: str, old: str | None, new: str) -> None:
        """Move a run to ``new`` if it is at ``old`` (None: create it); RefConflictError else.

        An archived run at ``old`` gets a loose ref at ``new`` (which shadows the archive
        entry): two writers racing from the same archived commit still conflict.
        """
        try:
            self.cas(run_ref(run_id), old, new)
        except RefConflictError as exc:
            if (
                old is None
                or exc.fields.get("found") is not None
                or self.archived_tip(run_id) != old
            ):
                raise
            self.cas(run_ref(run_id), None, new)

    def create_runs(self, tips: dict[str, str]) -> builtins.list[str]:
        """Create the refs of new runs (run id -> commit) in one ``git update-ref``
        transaction; return the ids whose ref existed already (those are left as they were)."""
        failed = self.apply([(run_ref(rid), None, sha) for rid, sha in tips.items()])
        return [name[len(RUNS) :] for name in failed]

    def update_experiment(self, exp_id: str, old: str | None, new: str) -> None:
        """Move an experiment record to ``new`` if it is at ``old`` (None: create it)."""
        self.cas(experiment_ref(exp_id), old, new)

    def list_runs(self) -> dict[str, str]:
        """``{run_id: commit}`` of every run that is not deleted (loose refs, then the
        archive's entries that no loose or trash ref shadows)."""
        loose = self.list_ids(RUNS)
        if not self.archive.batches():
            return loose
        trash = self.list_ids(TRASH)
        out = {rid: sha for rid, (sha, _) in self.archive.entries().items() if rid not in trash}
        out.update(loose)
        return out

    def list_loose_runs(self) -> dict[str, str]:
        """``{run_id: commit}`` of the runs that have their own ref (not archived)."""
        return self.list_ids(RUNS)

    def list_trash(self) -> dict[str, str]:
        """``{run_id: commit}`` of every deleted run."""
        return self.list_ids(TRASH)

    def list_experiments(self) -> dict[str, str]:
        """``{experiment id: commit}`` of every experiment record."""
        return self.list_ids(EXPERIMENTS)

    def move_to_trash(self, run_id: str, tip: str) -> None:
        """Delete a run that is at ``tip``, keeping it restorable (an older trash copy goes).

        An archived run only gets its trash ref (which shadows the archive entry)."""
        archived = self.read(run_ref(run_id)) is None and self.archived_tip(run_id) == tip
        old = self.trash_tip(run_id)
        if old is not None and old != tip:
            self.delete(trash_ref(run_id), old)
            old = None
        if old is None:
            with contextlib.suppress(RefConflictError):
                self.cas(trash_ref(run_id), None, tip)
        if not archived:
            self.delete(run_ref(run_id), tip)

    def restore_from_trash(self, run_id: str, tip: str) -> None:
        """Bring a deleted run that is at ``tip`` back (RefConflictError if it exists).

        A run whose archive entry is ``tip`` just loses its trash ref (the entry shows)."""
        if self.read(run_ref(run_id)) is not None:
            raise RefConflictError(f"run {run_id} exists", ref=run_ref(run_id))
        if self.archive.batches() and self.archive.tip(run_id) == tip:
            self.delete(trash_ref(run_id), tip)
            return
        self.cas(run_ref(run_id), None, tip)
        self.delete(trash_ref(run_id), tip)

    def purge(self, run_id: str, tip: str) -> None:
        """Forget a deleted run for good (its objects become git's garbage).

        An archived run is also dropped from its batch, which is rewritten with a
        tombstone (:func:`vtrack.store.archive.forget`): it never shows again, even after
        a pull from a clone that still has the old batch.
        """
        self.delete(trash_ref(run_id), tip)
        if self.archive.batches():
            from vtrack.store.archive import forget

            forget(self, {run_id: tip})

    def purge_many(self, tips: dict[str, str]) -> builtins.list[str]:
        """:meth:`purge` of several deleted runs (``{run id: trash commit}``), their
        archive tombstones in one rewrite per batch; return the ids purged (a trash ref
        that moved meanwhile is left alone)."""
        done = []
        for run_id, tip in tips.items():
            with contextlib.suppress(RefConflictError):
                self.delete(trash_ref(run_id), tip)
                done.append(run_id)
        if done and self.archive.batches():
            from vtrack.store.archive import forget

            forget(self, {rid: tips[rid] for rid in done})
        return done

    def count_run_refs(self) -> int:
        """How many runs have their own ref (loose files and ``packed-refs`` entries)."""
        try:
            loose = {n for n in os.listdir(self.git_dir / RUNS) if not n.endswith(".lock")}
        except (FileNotFoundError, NotADirectoryError):
            loose = set()
        packed = self.packed_under(RUNS)
        return len(loose) + len(packed) - sum(1 for n in packed if n[len(RUNS) :] in loose)

    def run_listing(self) -> bytes:
        """One listing of every run ref, deleted run ref and archive batch (what the index
        compares with: equal listings hold equal tips). Batches are listed as
        ``<batch commit> refs/vtrack/archive/<batch>``, ahead of git's listing."""
        res = gitcmd.run(
            ["for-each-ref", "--format=%(objectname) %(refname)", RUNS, TRASH],
            git_dir=self.git_dir,
        )
        batches = self.archive.batches()
        if not batches:
            return res.stdout
        lines = [f"{sha} {ARCHIVE}{b}\n" for b, sha in sorted(batches.items())]
        return "".join(lines).encode() + res.stdout

    def parse_run_listing(self, listing: bytes) -> dict[str, tuple[str, str]]:
        """``{run_id: (commit, ACTIVE or DELETED)}`` of a :meth:`run_listing`: a run's own
        ref wins over its trash ref, which wins over its entry in the listed batches."""
        tips: dict[str, tuple[str, str]] = {}
        batches: dict[str, str] = {}
        for line in listing.decode("utf-8", "replace").splitlines():
            sha, _, name = line.partition(" ")
            if name.startswith(RUNS):
                tips[name[len(RUNS) :]] = (sha, ACTIVE)
            elif name.startswith(TRASH):
                tips.setdefault(name[len(TRASH) :], (sha, DELETED))
            elif name.startswith(ARCHIVE):
                batches[name[len(ARCHIVE) :]] = sha
        if batches:
            view = self.archive
            entries = view.entries() if batches == view.batches() else view.entries_of(batches)
            for rid, (sha, _) in entries.items():
                tips.setdefault(rid, (sha, ACTIVE))
        return tips

    def fingerprint(self) -> builtins.list[Any]:
        """A stat fingerprint of where run refs are stored: equal means no run ref changed."""
        out: builtins.list[Any] = []
        for rel in ("packed-refs", ROOT, RUNS, TRASH, ARCHIVE):
            try:
                st = os.stat(self.git_dir / rel)
                out.append([st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size])
            except FileNotFoundError:
                out.append(None)
        return out

    def run_parents(self) -> dict[str, str]:
        """``{run_id: parent code commit}`` of every (not deleted) run that has one: one git
        call for the loose refs, the archive tables for archived runs."""
        res = gitcmd.run(
            ["for-each-ref", "--format=%(refname) %(parent)", RUNS], git_dir=self.git_dir
        )
        out = {}
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            name, _, parents = line.partition(" ")
            if parents:
                out[name[len(RUNS) :]] = parents.split()[0]
        if self.archive.batches():
            trash = self.list_ids(TRASH)
            loose = self.list_ids(RUNS)
            for rid, parent in self.archive.parents().items():
                if parent and rid not in trash and rid not in loose:
                    out[rid] = parent
        return out

    def apply(
        self, updates: builtins.list[tuple[str, str | None, str | None]], *, force: bool = False
    ) -> builtins.list[str]:
        """Apply ``(name, old, new)`` updates (None: absent) as compare-and-swaps
        (``force``: whatever the refs hold now — for tracking refs).

        In ``git update-ref --stdin`` transactions of at most :data:`APPLY_CHUNK` updates
        (each update is its own compare-and-swap; a chunk bounds how long one git call
        runs — deleting 100,000 packed run refs in one transaction outlasted git's
        timeout on a loaded machine); a chunk with a conflict is applied again in halves
        (so a few conflicts among thousands of updates cost a few transactions, not one
        per update — each rewrites ``packed-refs`` when it deletes a packed ref), and the
        names that moved meanwhile are returned (those updates are not made). Tracking
        refs and shared refs alike.
        """
        if not updates:
            return []
        if len(updates) > APPLY_CHUNK:
            failed: builtins.list[str] = []
            for at in range(0, len(updates), APPLY_CHUNK):
                failed += self.apply(updates[at : at + APPLY_CHUNK], force=force)
            return failed
        if self._transaction(updates, force):
            return []
        if len(updates) == 1:
            return [updates[0][0]]
        half = len(updates) // 2
        return self.apply(updates[:half], force=force) + self.apply(updates[half:], force=force)

    def _transaction(
        self, updates: builtins.list[tuple[str, str | None, str | None]], force: bool
    ) -> bool:
        lines = []
        for name, old, new in updates:
            if new is None:
                lines.append(f"delete {name}" if force else f"delete {name} {old or ''}".rstrip())
            else:
                lines.append(
                    f"update {name} {new}" if force else f"update {name} {new} {old or ZERO}"
                )
        res = gitcmd.run(
            ["update-ref", "--stdin"],
            git_dir=self.git_dir, input=("\n".join(lines) + "\n").encode(), check=False,
        )  # fmt: skip
        return res.returncode == 0

    # -- writing ---------------------------------------------------------
    def cas(self, name: str, old: str | None, new: str, *, fsync: bool | None = None) -> None:
        """Point ``name`` at ``new`` if it currently points at ``old`` (None: absent).

        Holds git's ``<ref>.lock`` for the update, so git and vtrack never update one ref
        at once; the lock file names its owner (a dead owner's lock raises StaleLockError
        at once). The new value is written aside and renamed over the ref, so readers see
        the old or the new value. Raises RefConflictError when the
        ref holds something else, and StoreError when its lock cannot be taken.
        """
        if not _SHA.fullmatch(new.encode()):
            raise StoreError(f"refusing to point {name} at {new!r}: not a 40-hex object id")
        path = self.git_dir / name
        lock = path.with_name(path.name + ".lock")
        os.close(acquire_lock(lock, timeout=10.0))
        # the lock keeps naming its owner until the end: a kill right before the rename
        # must leave a lock that says whose it was, so the value is written aside
        tmp = self._tmp_dir() / f"ref-{unique_suffix()}"
        try:
            current = self.read(name)
            if current != old:
                raise RefConflictError(
                    f"ref {name} moved: expected {old or 'nothing'}, found {current or 'nothing'}",
                    ref=name,
                    expected=old,
                    found=current,
                )
            try:
                tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(tfd, new.encode() + b"\n")
                    if self.fsync if fsync is None else fsync:
                        os.fsync(tfd)
                finally:
                    os.close(tfd)
                os.replace(tmp, path)
            except OSError as exc:
                raise StoreError(f"could not update ref {name}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)

    def _tmp_dir(self) -> Path:
        tmp = self.git_dir / "vtrack" / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)  # never cached: a user may remove it
        except OSError as exc:
            raise StoreError(f"cannot write in {tmp}: {exc}") from exc
        return tmp

    def delete(self, name: str, old: str) -> None:
        """Delete ``name`` if it points at ``old`` (loose and packed copies).

        A loose-only ref is removed in-process under its lock; a packed one through
        ``git update-ref -d``. Raises RefConflictError when the ref moved.
        """
        path = self.git_dir / name
        if self._read_packed(name) is None:
            lock = path.with_name(path.name + ".lock")
            try:
                fd = acquire_lock(lock, timeout=10.0)
            except StoreError:
                fd = -1
            if fd >= 0:
                os.close(fd)
                try:
                    current = self.read(name)
                    if current != old:
                        raise RefConflictError(
                            f"ref {name} moved while deleting it", ref=name, expected=old,
                            found=current,
                        )  # fmt: skip
                    if self._read_packed(name) is None:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(path)
                        return
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(lock)
        try:
            gitcmd.run(["update-ref", "-d", name, old], git_dir=self.git_dir)
        except GitError as exc:
            if self.read(name) != old:
                raise RefConflictError(f"ref {name} moved while deleting it", ref=name) from exc
            raise

    def stale_locks(self) -> builtins.list[Path]:
        """Lock files under ``refs/vtrack/`` whose vtrack owner is provably dead."""
        out = []
        for folder, _, files in os.walk(self.git_dir / ROOT):
            for f in files:
                if f.endswith(".lock") and is_stale(Path(folder) / f):
                    out.append(Path(folder) / f)
        return sorted(out)


# -- the model registry ----------------------------------------------------------------------


def registry_tip(refs: RefStore) -> str | None:
    """The newest event commit of the model registry, or None when nothing was registered."""
    return refs.read(REGISTRY)


def update_registry(refs: RefStore, old: str | None, new: str) -> None:
    """Move the registry to event commit ``new`` if it is at ``old`` (None: create it).

    RefConflictError when another writer moved it first (the caller re-reads and retries).
    """
    refs.cas(REGISTRY, old, new)


def registry_tracking_ref(remote: str) -> str:
    """Where this clone remembers ``remote``'s registry as of the last push or pull."""
    return RefStore.tracking_prefix(remote) + REGISTRY[len(ROOT) :]


def registry_fetch_refspec(remote: str) -> str:
    """The refspec that fetches ``remote``'s registry into its tracking ref."""
    return f"+{REGISTRY}:{registry_tracking_ref(remote)}"


#: Where the optional GTO-compatible tag mirror of the registry writes (``churn@v3.0.0``).
TAGS = "refs/tags/"


def tag_ref(tag: str) -> str:
    """The ref of the tag named ``tag``."""
    return TAGS + tag
