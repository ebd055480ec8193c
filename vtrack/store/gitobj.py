"""Git objects: write loose objects in-process, read loose or packed ones.

Writes are idempotent and safe with concurrent writers (temporary file + rename of
identical bytes), so parallel runs sharing blobs and trees never contend.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vtrack.errors import CorruptObjectError, StoreError
from vtrack.limits import PENDING_OBJECT_PROTECTION_SECONDS
from vtrack.store.fileio import unique_suffix

TREE_MODE = 0o040000
BLOB_MODE = 0o100644
EXEC_MODE = 0o100755
LINK_MODE = 0o120000
GITLINK_MODE = 0o160000

TreeEntry = tuple[int, bytes, str]  # (mode, name, hex sha)

#: Objects larger than this are probed for compressibility before they are written.
_PROBE_OVER = 65536
#: Bytes of the object compressed as a probe (from its middle).
_PROBE_BYTES = 4096
#: A probe that shrinks by less than this fraction marks the data as incompressible.
_MIN_GAIN = 0.1
#: Times a write recreates a fan-out folder that a concurrent ``git gc`` keeps removing.
_FOLDER_ATTEMPTS = 20
#: Largest stored (uncompressed) deflate block.
_STORED_BLOCK = 65535


def _incompressible(data: bytes | bytearray | memoryview) -> bool:
    """True when a sample of ``data`` does not shrink under zlib (media, weights, archives)."""
    mid = len(data) // 2
    sample = bytes(memoryview(data)[mid : mid + _PROBE_BYTES])
    return len(zlib.compress(sample, 1)) > len(sample) * (1 - _MIN_GAIN)


def _stored_zlib(header: bytes, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
    """Pieces of a zlib stream holding ``header + data`` uncompressed (stored deflate blocks).

    Readers (git, dulwich, zlib.decompress) see an ordinary zlib stream; writing it costs
    no compression and no copy of ``data``, which matters for incompressible artifacts
    (zlib level 1 runs at ~40 MB/s on random bytes).
    """
    view = memoryview(data).cast("B")
    pieces: list[bytes | memoryview] = [b"\x78\x01"]  # deflate, 32 KiB window, no dictionary
    blocks = [memoryview(header)] + [
        view[i : i + _STORED_BLOCK] for i in range(0, len(view), _STORED_BLOCK)
    ]
    for i, block in enumerate(blocks):
        n = len(block)
        final = 1 if i == len(blocks) - 1 else 0
        pieces.append(bytes((final, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF)))
        pieces.append(block)
    adler = zlib.adler32(view, zlib.adler32(header))
    pieces.append(adler.to_bytes(4, "big"))
    return pieces


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


def _protect(path: str) -> bool:
    """Move an existing loose object's mtime into the future; False if it does not exist."""
    future = time.time() + PENDING_OBJECT_PROTECTION_SECONDS
    try:
        os.utime(path, (future, future))
        return True
    except FileNotFoundError:
        return False
    except PermissionError:  # another user's object on a shared repository: it exists
        return os.path.exists(path)


def object_sha(kind: bytes, data: bytes) -> str:
    """Return the hex SHA-1 git gives an object of ``kind`` with ``data``."""
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


class GitObjects:
    """The object database of one repository (``<git_dir>/objects``).

    Nothing about the object folders is cached: ``git gc`` may pack objects, remove
    emptied fan-out folders and (with ``--prune=now``) delete unreachable objects at any
    moment, so every write checks the disk and recreates a vanished folder. Writers that
    must know their objects survived until a ref reached them record what they wrote
    (:meth:`recording`) and re-check it afterwards (:meth:`ensure`).
    """

    def __init__(self, git_dir: Path, *, fsync: bool = False) -> None:
        self.git_dir = git_dir
        self.objects_dir = git_dir / "objects"
        self.fsync = fsync
        self._dulwich: Any = None
        self._lock = threading.Lock()
        self._recording = threading.local()
        self._objects_str = str(self.objects_dir)

    def _loose_path(self, sha: str) -> Path:
        return self.objects_dir / sha[:2] / sha[2:]

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, bytes, bytes]]]:
        """Collect ``(sha, kind, data)`` of every object this thread writes in the block.

        Objects found already present are collected too: an unreachable object that
        exists now may be pruned before the caller's ref reaches it.
        """
        outer = getattr(self._recording, "log", None)
        log: list[tuple[str, bytes, bytes]] = []
        self._recording.log = log
        try:
            yield log
        finally:
            self._recording.log = outer
            if outer is not None:
                outer.extend(log)

    def ensure(self, written: list[tuple[str, bytes, bytes]]) -> int:
        """Write again every recorded object that is gone (pruned meanwhile); return how many.

        Call it once a ref reaches the objects: from then on git keeps them, so an object
        present after this call stays present.
        """
        rewritten = 0
        seen: set[str] = set()
        for sha, kind, data in written:
            if sha in seen:
                continue
            seen.add(sha)
            if not self.exists(sha):
                self._write_loose(sha, kind, data, compress=True)
                rewritten += 1
        return rewritten

    def write(self, kind: bytes, data: bytes, *, compress: bool = True) -> str:
        """Store an object (if absent), protect it from pruning, and return its hex SHA-1.

        Whether new or already present, the loose object's modification time is set
        :data:`~vtrack.limits.PENDING_OBJECT_PROTECTION_SECONDS` into the future: ``git
        prune`` (even ``--expire=now``) keeps loose objects newer than its own start, so
        nothing a live run is about to reference can be pruned before a ref reaches it.
        An object found only in a pack gets a fresh loose copy for the same reason.
        ``compress=False`` writes objects over 64 KiB as stored deflate blocks (no
        compression work; ``git gc`` compresses them when it packs). Raises StoreError
        when the object cannot be written.
        """
        sha = object_sha(kind, data)
        log = getattr(self._recording, "log", None)
        if log is not None:
            log.append((sha, kind, data))
        if not _protect(f"{self._objects_str}/{sha[:2]}/{sha[2:]}"):
            self._write_loose(sha, kind, data, compress=compress)
        return sha

    def _write_loose(self, sha: str, kind: bytes, data: bytes, *, compress: bool) -> None:
        folder = f"{self._objects_str}/{sha[:2]}"
        path = f"{folder}/{sha[2:]}"
        header = b"%s %d\x00" % (kind, len(data))
        if len(data) > _PROBE_OVER and (not compress or _incompressible(data)):
            pieces = _stored_zlib(header, data)
        else:
            pieces = [zlib.compress(header + data, 1 if len(data) > _PROBE_OVER else 6)]
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
                    future = time.time() + PENDING_OBJECT_PROTECTION_SECONDS
                    os.utime(fd, (future, future))
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

    def write_blob(self, data: bytes, *, compress: bool = True) -> str:
        """Store a blob and return its SHA (``compress`` as for :meth:`write`)."""
        return self.write(b"blob", data, compress=compress)

    def write_tree(self, entries: list[TreeEntry]) -> str:
        """Store a tree and return its SHA."""
        return self.write(b"tree", serialize_tree(entries))

    def read(self, sha: str) -> tuple[bytes, bytes]:
        """Return ``(kind, data)`` of an object, loose or packed; raise StoreError if absent."""
        path = self._loose_path(sha)
        try:
            raw = zlib.decompress(path.read_bytes())
        except FileNotFoundError:
            return self._read_packed(sha)
        except zlib.error as exc:
            raise CorruptObjectError(f"git object {sha} is corrupt: {exc}") from exc
        nul = raw.index(b"\x00")
        kind, _, _size = raw[:nul].partition(b" ")
        return kind, raw[nul + 1 :]

    def _packs(self) -> Any:
        with self._lock:
            if self._dulwich is None:
                from dulwich.object_store import DiskObjectStore

                self._dulwich = DiskObjectStore(str(self.objects_dir))
                _open_stores.add(self)
            return self._dulwich

    def _read_packed(self, sha: str) -> tuple[bytes, bytes]:
        try:
            kind_num, data = self._packs().get_raw(sha.encode())
        except KeyError:
            raise StoreError(f"git object {sha} is missing from {self.objects_dir}") from None
        except (OSError, ValueError, AssertionError) as exc:  # a damaged pack or index
            raise CorruptObjectError(f"git object {sha} could not be read: {exc}") from exc
        names = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
        return names[kind_num], data

    def exists(self, sha: str) -> bool:
        """True when the object is present (loose or packed), as the disk is now."""
        if os.path.exists(f"{self._objects_str}/{sha[:2]}/{sha[2:]}"):
            return True
        try:
            # loose first, then packs: git writes a pack before it deletes the loose copies
            return bool(self._packs().contains_packed(sha.encode()))
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Release the pack files this handle has open (it reopens them when needed)."""
        with self._lock:
            store, self._dulwich = self._dulwich, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

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


#: Handles with packs open, closed at exit: dulwich's own finalizer would otherwise run
#: during interpreter shutdown and print "Exception ignored ... sys.meta_path is None".
_open_stores: weakref.WeakSet[GitObjects] = weakref.WeakSet()


def _close_all() -> None:
    for objects in list(_open_stores):
        objects.close()


atexit.register(_close_all)
