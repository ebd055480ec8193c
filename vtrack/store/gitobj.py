"""Git objects: write loose objects in-process, read loose or packed ones.

Writes are idempotent and safe with concurrent writers (temporary file + rename of
identical bytes), so parallel runs sharing blobs and trees never contend.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vtrack.errors import CorruptObjectError, StoreError
from vtrack.store.deflate import deflate
from vtrack.store.fileio import unique_suffix
from vtrack.store.packs import (
    KIND_NAMES,
    KIND_NUMBERS,
    PackBuilder,
    PackHandle,
    PackIndexes,
    entry_header,
)
from vtrack.store.tails import Bases, delta_entry, plain_blob

TREE_MODE = 0o040000
BLOB_MODE = 0o100644
EXEC_MODE = 0o100755
LINK_MODE = 0o120000
GITLINK_MODE = 0o160000

TreeEntry = tuple[int, bytes, str]  # (mode, name, hex sha)

#: Times a write recreates a fan-out folder that a concurrent ``git gc`` keeps removing.
_FOLDER_ATTEMPTS = 20
#: Objects up to this size stay readable from memory until their batch is published.
_KEEP_READABLE = 1 << 20


def _write_pieces(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write every piece to ``fd`` in order (writev in batches, finishing partial writes)."""
    for start in range(0, len(pieces), 256):
        batch = pieces[start : start + 256]
        done = os.writev(fd, batch)
        for piece in batch:
            if done >= len(piece):
                done -= len(piece)
                continue
            rest = memoryview(piece)[done:]
            done = 0
            while rest:
                rest = rest[os.write(fd, rest) :]


def _freshen(path: str) -> bool:
    """Set an existing loose object's mtime to now (git's own rule); False if it is absent."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:  # another user's object on a shared repository: it exists
        return os.path.exists(path)


def object_sha(kind: bytes, data: bytes) -> str:
    """Return the hex SHA-1 git gives an object of ``kind`` with ``data``."""
    import hashlib  # lazy: OpenSSL's load is start-up time for commands that hash nothing

    h = hashlib.sha1(b"%s %d\x00" % (kind, len(data)))
    h.update(data)
    return h.hexdigest()


def _tree_sort_key(entry: TreeEntry) -> bytes:
    mode, name, _ = entry
    return name + b"/" if mode == TREE_MODE else name


def serialize_tree(entries: list[TreeEntry]) -> bytes:
    """Return the raw bytes of a tree holding ``entries`` (sorted the way git sorts)."""
    parts = []
    for mode, name, sha in sorted(entries, key=_tree_sort_key):
        parts.append(b"%o %s\x00" % (mode, name))
        parts.append(bytes.fromhex(sha))
    return b"".join(parts)


def parse_tree(data: bytes) -> list[TreeEntry]:
    """Return the entries of a raw tree object."""
    out: list[TreeEntry] = []
    i = 0
    n = len(data)
    while i < n:
        sp = data.index(b" ", i)
        nul = data.index(b"\x00", sp)
        mode = int(data[i:sp], 8)
        name = data[sp + 1 : nul]
        sha = data[nul + 1 : nul + 21].hex()
        out.append((mode, name, sha))
        i = nul + 21
    return out


def serialize_commit(
    tree: str,
    parents: list[str],
    author: bytes,
    committer: bytes,
    timestamp: int,
    tz: bytes,
    message: bytes,
) -> bytes:
    """Return the raw bytes of a commit object."""
    lines = [b"tree " + tree.encode()]
    lines += [b"parent " + p.encode() for p in parents]
    lines.append(b"author %s %d %s" % (author, timestamp, tz))
    lines.append(b"committer %s %d %s" % (committer, timestamp, tz))
    return b"\n".join(lines) + b"\n\n" + message


def parse_commit(data: bytes) -> dict[str, Any]:
    """Return ``{"tree", "parents", "message", "committer"}`` of a raw commit."""
    head, _, message = data.partition(b"\n\n")
    tree = ""
    parents: list[str] = []
    committer = b""
    for line in head.split(b"\n"):
        if line.startswith(b"tree "):
            tree = line[5:].decode()
        elif line.startswith(b"parent "):
            parents.append(line[7:].decode())
        elif line.startswith(b"committer "):
            committer = line[10:]
    return {"tree": tree, "parents": parents, "message": message, "committer": committer}


class MissingObjectError(StoreError):
    """An object vtrack was about to reference is gone (pruned by a concurrent ``git gc``)."""


class Batch:
    """Objects written by one thread inside :meth:`GitObjects.batch`, bound for one pack."""

    def __init__(self, builder: PackBuilder) -> None:
        self.builder = builder
        self.handle: PackHandle | None = None
        #: the objects added, readable before the pack is published (data None: too large)
        self.objects: dict[str, tuple[bytes, bytes | None]] = {}


class GitObjects:
    """The object database of one repository (``<git_dir>/objects``).

    Outside a batch, objects are written loose (an existing one is freshened, as git
    does). Inside :meth:`batch` they go into one new pack, published with a ``.keep``
    before the caller moves a ref to them (see :mod:`vtrack.store.packs`): that is how
    live runs write, so a concurrent ``git gc --prune=now`` can never delete what a
    run is about to reference. Nothing about the object folders is cached: ``git gc``
    packs objects and removes emptied fan-out folders at any moment.
    """

    def __init__(self, git_dir: Path, *, fsync: bool = False) -> None:
        self.git_dir = git_dir
        self.objects_dir = git_dir / "objects"
        self.pack_dir = self.objects_dir / "pack"
        self.tmp_dir = git_dir / "vtrack" / "tmp"
        self.fsync = fsync
        self._dulwich: Any = None
        self._release: weakref.finalize[..., GitObjects] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._objects_str = str(self.objects_dir)
        self._indexes = PackIndexes(self.pack_dir)

    def _loose_path(self, sha: str) -> Path:
        return self.objects_dir / sha[:2] / sha[2:]

    @contextlib.contextmanager
    def batch(self) -> Iterator[Batch]:
        """Send every object this thread writes in the block into one new kept pack.

        The pack is published when the block ends without error (``batch.handle``; None
        if nothing was written); the caller then moves its ref and calls
        ``handle.release()``. Nested batches join the outer one. On error nothing is
        published. Raises StoreError when the pack cannot be written.
        """
        outer = getattr(self._local, "batch", None)
        if outer is not None:
            yield outer
            return
        b = Batch(PackBuilder(self.pack_dir, self.tmp_dir, fsync=self.fsync))
        self._local.batch = b
        try:
            yield b
        except BaseException:
            self._local.batch = None
            b.builder.discard()
            raise
        self._local.batch = None
        try:
            b.handle = b.builder.publish()
        except OSError as exc:
            raise StoreError(f"could not write a pack in {self.pack_dir}: {exc}") from exc

    def add_existing(self, shas: list[str]) -> None:
        """Copy already stored objects into the current batch (a no-op outside one).

        For objects others wrote moments ago, unreachable (``git add`` in a snapshot):
        the batch's kept pack then protects them too. Raises MissingObjectError when
        one is already gone.
        """
        b = getattr(self._local, "batch", None)
        if b is None:
            return
        for sha in shas:
            if sha in b.objects:
                continue
            try:
                kind, data = self.read(sha)
            except StoreError:
                raise MissingObjectError(
                    f"git object {sha} vanished before a ref reached it"
                ) from None
            self._add(b, sha, kind, data)

    def add_entries(self, handle: PackHandle, shas: list[str], bases: Bases | None = None) -> None:
        """Copy entries of an existing pack byte for byte into the current batch.

        With ``bases``, a blob that is a superseded tail of one of them already in the
        batch is stored as a delta of it instead (:mod:`vtrack.store.tails`). Raises
        StoreError outside a batch or when the pack cannot be read.
        """
        b = getattr(self._local, "batch", None)
        if b is None:
            raise StoreError("add_entries needs an open batch")
        import mmap

        builder = b.builder
        try:
            with open(handle.path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                try:
                    for sha in shas:
                        if sha in builder.entries:
                            continue
                        e = handle.entries[sha]
                        raw = data[e.offset : e.offset + e.length]
                        blob = plain_blob(raw, bases.largest) if bases else None
                        found = bases.base_of(blob) if bases and blob is not None else None
                        if found is not None and found[0] in builder.entries:
                            builder.add(sha, *delta_entry(found[0], found[1], len(blob)))  # type: ignore[arg-type]
                        else:
                            builder.add(sha, b"", [raw])
                finally:
                    data.close()
        except OSError as exc:
            raise StoreError(f"could not read the pack {handle.path}: {exc}") from exc

    def write(
        self, kind: bytes, data: bytes, *, compress: bool = True, tabular: bool = False
    ) -> str:
        """Store an object and return its hex SHA-1 (into the thread's batch, if one is open).

        ``compress=False`` writes objects over 64 KiB as stored deflate blocks (no
        compression work; ``git gc`` compresses them when it packs); ``tabular`` marks a
        metric history, compressed for numbers (:mod:`vtrack.store.deflate`). Raises StoreError
        when the object cannot be written.
        """
        sha = object_sha(kind, data)
        b = getattr(self._local, "batch", None)
        if b is not None:
            if sha not in b.objects:
                self._add(b, sha, kind, data, tabular=tabular)
            return sha
        if not _freshen(f"{self._objects_str}/{sha[:2]}/{sha[2:]}"):
            self._write_loose(sha, kind, data, compress=compress, tabular=tabular)
        return sha

    def _add(self, b: Batch, sha: str, kind: bytes, data: bytes, *, tabular: bool = False) -> None:
        # git's repacks reuse a pack entry's bytes as they are, so unlike a loose object
        # a stored (uncompressed) entry would stay uncompressed: only incompressible
        # data is stored, whatever ``compress`` says
        pieces = deflate(b"", data, tabular=tabular)
        try:
            b.builder.add(sha, entry_header(KIND_NUMBERS[kind], len(data)), pieces)
        except OSError as exc:
            raise StoreError(f"could not write git object {sha}: {exc}") from exc
        b.objects[sha] = (kind, data if len(data) <= _KEEP_READABLE else None)

    def _write_loose(
        self, sha: str, kind: bytes, data: bytes, *, compress: bool, tabular: bool
    ) -> None:
        folder = f"{self._objects_str}/{sha[:2]}"
        path = f"{folder}/{sha[2:]}"
        header = b"%s %d\x00" % (kind, len(data))
        pieces = deflate(header, data, compress=compress, tabular=tabular)
        for _attempt in range(_FOLDER_ATTEMPTS):
            tmp = f"{folder}/tmp_obj_{unique_suffix()}"
            try:
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                except FileNotFoundError:
                    # the fan-out folder is gone (git gc removes emptied ones): make it again
                    os.makedirs(folder, exist_ok=True)
                    continue
                try:
                    _write_pieces(fd, pieces)
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
                return
            except FileNotFoundError:
                # git prune removed our temporary file (it cleans up tmp_* files): again
                continue
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise StoreError(f"could not write git object {sha}: {exc}") from exc
        raise StoreError(
            f"could not write git object {sha}: {folder} kept disappearing",
            hint="is a 'git gc' or 'git prune' running in a loop?",
        )

    def write_blob(self, data: bytes, *, compress: bool = True, tabular: bool = False) -> str:
        """Store a blob and return its SHA (``compress`` and ``tabular`` as for :meth:`write`)."""
        return self.write(b"blob", data, compress=compress, tabular=tabular)

    def write_tree(self, entries: list[TreeEntry]) -> str:
        """Store a tree and return its SHA."""
        return self.write(b"tree", serialize_tree(entries))

    def read(self, sha: str) -> tuple[bytes, bytes]:
        """Return ``(kind, data)`` of an object, loose or packed; raise StoreError if absent."""
        b = getattr(self._local, "batch", None)
        if b is not None:
            kept = b.objects.get(sha)
            if kept is not None and kept[1] is not None:  # b"" (an empty blob) counts
                return kept[0], kept[1]
        path = self._loose_path(sha)
        try:
            raw = zlib.decompress(path.read_bytes())
        except FileNotFoundError:
            found = self._indexes.read_plain(sha)
            return found if found is not None else self._read_packed(sha)
        except zlib.error as exc:
            raise CorruptObjectError(f"git object {sha} is corrupt: {exc}") from exc
        nul = raw.index(b"\x00")
        kind, _, _size = raw[:nul].partition(b" ")
        return kind, raw[nul + 1 :]

    def _packs(self) -> Any:
        with self._lock:
            if self._dulwich is None:
                from dulwich.object_store import DiskObjectStore

                store = DiskObjectStore(str(self.objects_dir))
                self._dulwich = store
                # a handle dropped without close() still releases its packs: dulwich's
                # finalizer would warn (ResourceWarning) about the unclosed pack files
                self._release = weakref.finalize(self, _close_quietly, store)
                _open_stores.add(self)
            return self._dulwich

    def _read_packed(self, sha: str) -> tuple[bytes, bytes]:
        try:
            kind_num, data = self._packs().get_raw(sha.encode())
        except KeyError:
            raise StoreError(f"git object {sha} is missing from {self.objects_dir}") from None
        except (OSError, ValueError, AssertionError) as exc:  # a damaged pack or index
            raise CorruptObjectError(f"git object {sha} could not be read: {exc}") from exc
        return KIND_NAMES[kind_num], data

    def exists(self, sha: str) -> bool:
        """True when the object is present (loose or packed), as the disk is now."""
        if os.path.exists(f"{self._objects_str}/{sha[:2]}/{sha[2:]}"):
            return True
        # loose first, then packs: git writes a pack before it deletes the loose copies
        return self._indexes.contains(sha)

    def close(self) -> None:
        """Release the pack files this handle has open (it reopens them when needed)."""
        with self._lock:
            self._dulwich = None
            release, self._release = self._release, None
        if release is not None:
            release()  # _close_quietly(store), once

    def read_tree(self, sha: str) -> list[TreeEntry]:
        """Return the entries of tree ``sha``."""
        kind, data = self.read(sha)
        if kind != b"tree":
            raise StoreError(f"object {sha} is a {kind.decode()}, not a tree")
        return parse_tree(data)

    def read_blob(self, sha: str) -> bytes:
        """Return the bytes of blob ``sha``."""
        kind, data = self.read(sha)
        if kind != b"blob":
            raise StoreError(f"object {sha} is a {kind.decode()}, not a blob")
        return data

    def read_commit(self, sha: str) -> dict[str, Any]:
        """Return the parsed commit ``sha`` (tree, parents, message)."""
        kind, data = self.read(sha)
        if kind != b"commit":
            raise StoreError(f"object {sha} is a {kind.decode()}, not a commit")
        return parse_commit(data)

    def tree_lookup(self, tree_sha: str, path: str) -> tuple[int, str] | None:
        """Return ``(mode, sha)`` of ``path`` (posix, relative) inside a tree, or None."""
        mode, sha = TREE_MODE, tree_sha
        for part in path.strip("/").split("/"):
            if mode != TREE_MODE:
                return None
            name = part.encode()
            for m, n, s in self.read_tree(sha):
                if n == name:
                    mode, sha = m, s
                    break
            else:
                return None
        return mode, sha

    def changed_objects(self, tree: str, base: str | None) -> list[str]:
        """The objects of ``tree`` that ``base`` lacks (only differing entries are visited)."""
        found: list[str] = []
        stack: list[tuple[str, str | None]] = [(tree, base)]
        while stack:
            t, b = stack.pop()
            if t == b:
                continue
            found.append(t)
            before = {name: (mode, sha) for mode, name, sha in self.read_tree(b)} if b else {}
            for mode, name, sha in self.read_tree(t):
                old_mode, old_sha = before.get(name, (None, None))
                if sha == old_sha or mode == GITLINK_MODE:
                    continue
                if mode == TREE_MODE:
                    stack.append((sha, old_sha if old_mode == TREE_MODE else None))
                else:
                    found.append(sha)
        return found


#: Handles with packs open, closed at exit: dulwich's own finalizer would otherwise run
#: during interpreter shutdown and print "Exception ignored ... sys.meta_path is None".
_open_stores: weakref.WeakSet[GitObjects] = weakref.WeakSet()


def _close_quietly(store: Any) -> None:
    with contextlib.suppress(Exception):
        store.close()


def _close_all() -> None:
    for objects in list(_open_stores):
        objects.close()


atexit.register(_close_all)
