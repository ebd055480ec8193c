"""Git pack files that vtrack writes itself: kept while a ref does not reach them yet.

A live run's objects are written as small packs (``objects/pack/pack-<sha>.pack`` with
its version-2 ``.idx``) instead of loose objects. Each pack is published with a
``.keep`` file, which ``git repack -a -d`` respects, and ``git prune`` never deletes
packed objects: so a concurrent ``git gc --prune=now`` cannot remove anything a run
is about to reference. Once a ref reaches the objects the ``.keep`` is removed
(git's own ``receive-pack`` follows the same protocol), and a repack that lists the
pack later marks it reachable. At the end of a writer its packs are merged into one
(:func:`merge_entries`, or the last checkpoint's pack), so superseded checkpoints leave
no loose objects and no pack per checkpoint behind.

Entries are written whole, except superseded history tails, which a writer's last
checkpoint stores as deltas of their final chunk (:mod:`vtrack.store.tails`);
:class:`PackIndexes` answers membership and reads whole entries directly, leaving
deltified ones (those, and git's own repacks') to the caller's fallback.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtrack.store.fileio import unique_suffix
from vtrack.store.owner import Owner, parse_owner, this_process

KIND_NUMBERS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
KIND_NAMES = {n: k for k, n in KIND_NUMBERS.items()}
_IDX_MAGIC = b"\xfftOc\x00\x00\x00\x02"
#: Bytes of entries a pack builder holds in memory before it streams to a file.
SPILL_BYTES = 8 * 1024 * 1024
#: What a ``.keep`` written by vtrack starts with (then its owner record).
KEEP_PREFIX = b"vtrack "


@dataclass(frozen=True)
class Entry:
    """One object inside a pack: where its raw (header + zlib) bytes are."""

    sha: str
    offset: int
    length: int
    crc: int


@dataclass
class PackHandle:
    """A pack vtrack published; ``release`` removes its ``.keep``."""

    path: Path  # .../objects/pack/pack-<sha>.pack
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def keep_path(self) -> Path:
        """The ``.keep`` file that protects the pack from repacks."""
        return self.path.with_suffix(".keep")

    def release(self) -> None:
        """Let git repack this pack like any other (a ref reaches its objects now)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.keep_path)

    def delete(self) -> None:
        """Remove the pack (its objects are in another pack now)."""
        for ext in (".keep", ".idx", ".pack", ".rev", ".bitmap"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path.with_suffix(ext))


def entry_header(kind_num: int, size: int) -> bytes:
    """The type-and-size header of an undeltified pack entry."""
    byte = (kind_num << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


class PackBuilder:
    """Collects objects for a new pack; :meth:`publish` makes it a kept pack.

    Entries are kept in memory up to :data:`SPILL_BYTES`, then streamed to a temporary
    file, so memory stays bounded however much is added and a small pack (a checkpoint)
    costs three file writes. Publication order is ``.keep``, ``.pack``, ``.idx`` (git
    only sees a pack through its index), each renamed into place, so a kill leaves at
    worst files that git ignores.
    """

    def __init__(self, pack_dir: Path, tmp_dir: Path, *, fsync: bool = False) -> None:
        self.pack_dir = pack_dir
        self.tmp_dir = tmp_dir
        self.fsync = fsync
        self.entries: dict[str, Entry] = {}
        self._buf: list[bytes | memoryview] = []
        self._buffered = 0
        self._tmp: Path | None = None
        self._f: Any = None
        self._offset = 12

    def __len__(self) -> int:
        return len(self.entries)

    def _spill(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = self.tmp_dir / f"pack-{unique_suffix()}.tmp"
        self._f = open(self._tmp, "wb")  # noqa: SIM115 - closed in publish/discard
        self._f.write(b"\0" * 12)  # the header, written when the count is known
        for piece in self._buf:
            self._f.write(piece)
        self._buf, self._buffered = [], 0

    def add(self, sha: str, header: bytes, pieces: list[bytes | memoryview]) -> None:
        """Append one raw entry (``header`` + zlib ``pieces``); a SHA already added is skipped."""
        if sha in self.entries:
            return
        crc = zlib.crc32(header)
        length = len(header)
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
            length += len(piece)
        if self._f is None:
            self._buf.append(header)
            self._buf += [bytes(p) if isinstance(p, memoryview) else p for p in pieces]
            self._buffered += length
            if self._buffered > SPILL_BYTES:
                self._spill()
        else:
            self._f.write(header)
            for piece in pieces:
                self._f.write(piece)
        self.entries[sha] = Entry(sha, self._offset, length, crc)
        self._offset += length

    def publish(self) -> PackHandle | None:
        """Write the index and move the pack into place, kept; None when nothing was added."""
        if not self.entries:
            self.discard()
            return None
        head = b"PACK" + (2).to_bytes(4, "big") + len(self.entries).to_bytes(4, "big")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp_idx = self.tmp_dir / f"idx-{unique_suffix()}.tmp"
        try:
            import hashlib  # lazy: OpenSSL's load is start-up time for commands that hash nothing

            total = hashlib.sha1(head)
            if self._f is None:  # small: everything is in memory
                body = b"".join(self._buf)
                total.update(body)
                digest = total.digest()
                self._tmp = self.tmp_dir / f"pack-{unique_suffix()}.tmp"
                with open(self._tmp, "wb") as f:
                    f.write(head + body + digest)
                    if self.fsync:
                        f.flush()
                        os.fsync(f.fileno())
            else:
                f = self._f
                f.seek(0)
                f.write(head)
                f.flush()  # the count is known only now: hash the finished file once
                with open(self._tmp, "rb") as r:  # type: ignore[arg-type]
                    r.seek(12)
                    while chunk := r.read(1 << 20):
                        total.update(chunk)
                digest = total.digest()
                f.seek(0, os.SEEK_END)
                f.write(digest)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
                f.close()
                self._f = None
            with open(tmp_idx, "wb") as g:
                g.write(_index_bytes(self.entries, digest))
                if self.fsync:
                    g.flush()
                    os.fsync(g.fileno())
            final = self.pack_dir / f"pack-{digest.hex()}.pack"
            handle = PackHandle(final, dict(self.entries))
            # the .keep appears complete (renamed into place): one without its owner
            # record could never be told dead and released
            tmp_keep = self.tmp_dir / f"keep-{unique_suffix()}.tmp"
            tmp_keep.write_bytes(KEEP_PREFIX + this_process().to_json() + b"\n")
            try:
                os.replace(tmp_keep, handle.keep_path)
            except FileNotFoundError:
                self.pack_dir.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_keep, handle.keep_path)
            os.replace(self._tmp, final)  # type: ignore[arg-type]
            os.replace(tmp_idx, final.with_suffix(".idx"))
            return handle
        finally:
            self.discard()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_idx)

    def discard(self) -> None:
        """Drop what was added (nothing is published)."""
        self._buf, self._buffered = [], 0
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None


def _index_bytes(entries: dict[str, Entry], pack_digest: bytes) -> bytes:
    ordered = sorted(entries.values(), key=lambda e: e.sha)
    fanout = [0] * 256
    for e in ordered:
        fanout[int(e.sha[:2], 16)] += 1
    total = 0
    parts = [_IDX_MAGIC]
    cumulative = []
    for count in fanout:
        total += count
        cumulative.append(total.to_bytes(4, "big"))
    parts += cumulative
    parts += [bytes.fromhex(e.sha) for e in ordered]
    parts += [e.crc.to_bytes(4, "big") for e in ordered]
    large: list[int] = []
    for e in ordered:
        if e.offset < 0x80000000:
            parts.append(e.offset.to_bytes(4, "big"))
        else:
            parts.append((0x80000000 | len(large)).to_bytes(4, "big"))
            large.append(e.offset)
    parts += [o.to_bytes(8, "big") for o in large]
    parts.append(pack_digest)
    body = b"".join(parts)
    import hashlib  # lazy: OpenSSL's load is start-up time for commands that hash nothing

    return body + hashlib.sha1(body).digest()


def merge_entries(
    pack_dir: Path,
    tmp_dir: Path,
    sources: list[tuple[PackHandle, list[str]]],
    *,
    fsync: bool = False,
) -> PackHandle | None:
    """Publish one kept pack holding the named entries of ``sources``, copied byte for byte.

    ``sources`` pairs each pack with the SHAs to take from it. None when none is named.
    """
    builder = PackBuilder(pack_dir, tmp_dir, fsync=fsync)
    try:
        for handle, shas in sources:
            if not shas:
                continue
            with open(handle.path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                try:
                    for sha in shas:
                        e = handle.entries[sha]
                        builder.add(sha, b"", [data[e.offset : e.offset + e.length]])
                finally:
                    data.close()
        return builder.publish()
    except BaseException:
        builder.discard()
        raise


def keep_owner(keep: Path) -> Owner | None:
    """The vtrack process that wrote ``keep``, or None (absent, or not vtrack's)."""
    try:
        data = keep.read_bytes()
    except OSError:
        return None
    if not data.startswith(KEEP_PREFIX):
        return None
    return parse_owner(data[len(KEEP_PREFIX) :].strip())


def keep_owner_dead(keep: Path) -> bool:
    """True when ``keep`` is a vtrack ``.keep`` whose owner this host can prove is gone."""
    owner = keep_owner(keep)
    return owner is not None and not owner.is_alive()


class PackIndexes:
    """Membership tests and plain reads against a pack folder's version-2 indexes.

    The folder is listed on every call, so packs that a concurrent ``git gc`` wrote or
    deleted are seen at once.
    """

    def __init__(self, pack_dir: Path) -> None:
        self.pack_dir = pack_dir
        self._cache: dict[str, tuple[tuple[int, int], Any]] = {}

    def _index(self, path: str) -> Any:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(path, "rb") as f:
                view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        if view[:8] != _IDX_MAGIC:
            return None
        self._cache[path] = (key, view)
        return view

    def _names(self) -> list[str]:
        try:
            names = [n for n in os.listdir(self.pack_dir) if n.endswith(".idx")]
        except FileNotFoundError:
            return []
        if len(self._cache) > 2 * len(names) + 16:  # forget deleted packs
            keep = {f"{self.pack_dir}/{n}" for n in names}
            self._cache = {k: v for k, v in self._cache.items() if k in keep}
        return names

    @staticmethod
    def _find(idx: Any, raw: bytes) -> int | None:
        """Position of ``raw`` in the index's sorted SHA table, or None."""
        first = raw[0]
        fan = 8
        lo = int.from_bytes(idx[fan + 4 * (first - 1) : fan + 4 * first], "big") if first else 0
        hi = int.from_bytes(idx[fan + 4 * first : fan + 4 * first + 4], "big")
        base = fan + 1024
        while lo < hi:
            mid = (lo + hi) // 2
            here = idx[base + 20 * mid : base + 20 * mid + 20]
            if here < raw:
                lo = mid + 1
            elif here > raw:
                hi = mid
            else:
                return mid
        return None

    def contains(self, sha: str) -> bool:
        """True when some pack index in the folder lists ``sha``."""
        raw = bytes.fromhex(sha)
        for name in self._names():
            idx = self._index(f"{self.pack_dir}/{name}")
            if idx is not None and self._find(idx, raw) is not None:
                return True
        return False

    def read_plain(self, sha: str) -> tuple[bytes, bytes] | None:
        """``(kind, data)`` of ``sha`` if a pack holds it undeltified; None otherwise."""
        raw = bytes.fromhex(sha)
        for name in self._names():
            path = f"{self.pack_dir}/{name}"
            idx = self._index(path)
            if idx is None:
                continue
            pos = self._find(idx, raw)
            if pos is None:
                continue
            count = int.from_bytes(idx[8 + 1020 : 8 + 1024], "big")
            off_at = 8 + 1024 + 24 * count + 4 * pos
            offset = int.from_bytes(idx[off_at : off_at + 4], "big")
            if offset & 0x80000000:
                big_at = 8 + 1024 + 28 * count + 8 * (offset & 0x7FFFFFFF)
                offset = int.from_bytes(idx[big_at : big_at + 8], "big")
            try:
                with open(path[: -len(".idx")] + ".pack", "rb") as f:
                    f.seek(offset)
                    head = f.read(32)
                    kind_num = (head[0] >> 4) & 7
                    if kind_num not in KIND_NAMES:
                        return None  # deltified: the caller's fallback reads it
                    size = head[0] & 0x0F
                    shift, i = 4, 0
                    while head[i] & 0x80:
                        i += 1
                        size |= (head[i] & 0x7F) << shift
                        shift += 7
                    f.seek(offset + i + 1)
                    d = zlib.decompressobj()
                    out = bytearray()
                    while len(out) < size:
                        chunk = f.read(max(65536, size - len(out)))
                        if not chunk:
                            break
                        out += d.decompress(chunk)
                        if d.eof:
                            break
            except (OSError, zlib.error, IndexError):
                return None
            if len(out) != size:
                return None
            return KIND_NAMES[kind_num], bytes(out)
        return None


@contextlib.contextmanager
def git_gc_lock(git_dir: Path) -> Iterator[bool]:
    """Hold git's own gc lock (``gc.pid``) for the block if no gc runs; yield whether it is held.

    Deleting packs while a ``git gc`` runs would make its ``prune`` fail (it opens every
    pack it listed), so vtrack deletes packs only under the lock git's gc takes, with
    git's protocol: ``gc.pid.lock`` created exclusively, ``gc.pid`` checked for a live
    gc on this host (younger than 12 hours), then ``pid host`` written and renamed into
    place; removed again at the end. A gc that starts meanwhile waits its turn as it
    would for another gc (``--auto`` skips quietly).
    """
    lock = git_dir / "gc.pid.lock"
    pidfile = git_dir / "gc.pid"
    me = this_process()
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        yield False
        return
    held = False
    try:
        if not _gc_running(pidfile):
            os.write(fd, f"{me.pid} {me.host}".encode())
            os.close(fd)
            fd = -1
            os.replace(lock, pidfile)
            held = True
    finally:
        if fd >= 0:
            os.close(fd)
        if not held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    if not held:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            if pidfile.read_text().split() == [str(me.pid), me.host]:
                os.unlink(pidfile)


def _gc_running(pidfile: Path) -> bool:
    """git's rule: a ``gc.pid`` younger than 12 hours naming a live process on this host."""
    import time

    try:
        text = pidfile.read_text()
        age = time.time() - pidfile.stat().st_mtime
    except OSError:
        return False
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or age > 12 * 3600:
        return False
    if parts[1] != this_process().host:
        return True  # another machine's gc on a shared repository: assume it runs
    try:
        os.kill(int(parts[0]), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
