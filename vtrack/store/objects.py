"""The large-object store: artifact files keyed by their xxh3-128 digest.

An :class:`ObjectStore` is a filesystem handle plus a root (:mod:`vtrack.store.fs`):
``.git/vtrack/objects`` on the local disk, or a folder, bucket or prefix of a remote
object store. Layout under the root::

    <root>/<first 2 hex of the digest>/<remaining 30 hex>   one finished object
    <root>/tmp/<owner>~<random>.tmp                           writes in progress

Promises:

- An object file, once visible at its final name, holds exactly the bytes its name
  says. Writes go to ``tmp/`` first, are fsynced and then published with a single
  atomic link or rename (on object stores whose writes are atomic, a PUT of the whole
  object), so a crash or a kill at any moment leaves either no object or a complete
  one (plus, at worst, a stale temp file; its name says which process wrote it, so
  :meth:`ObjectStore.sweep_temp` removes it once that process is gone, and never while
  it runs — see :mod:`vtrack.store.tempfiles`).
- Puts stream: memory use does not depend on the size of the file. On the local disk a
  regular file is copied inside the kernel (``copy_file_range``) and the copy hashed.
- The same bytes are stored once, however many times and by however many processes
  they are put, concurrently or not.
- Reads verify: :meth:`ObjectStore.open`, :meth:`ObjectStore.copy_to` and
  :meth:`ObjectStore.verify` re-hash what they serve and raise
  :class:`~vtrack.errors.CorruptObjectError` (naming the digest) instead of serving
  bytes that no longer match; :meth:`ObjectStore.put_file` with ``expect`` refuses to
  publish bytes that do not hash to the expected digest.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from vtrack.errors import ArtifactError, ArtifactNotFoundError, CorruptObjectError, ValidationError
from vtrack.hashing import format_digest, hash_file, new_hasher, parse_digest
from vtrack.limits import HASH_CHUNK_BYTES
from vtrack.pathsafety import file_kind
from vtrack.store.fs import FileSystem, LocalFS
from vtrack.store.tempfiles import TempFile, sweep, temp_name, temp_owner
from vtrack.store.verify import VerifyingReader, hash_raw

_HEX = frozenset("0123456789abcdef")
_FANOUT = 2
_REST = 30
_TMP_DIR = "tmp"
#: Bytes per copy_file_range call of a kernel-side copy.
_KERNEL_COPY_CHUNK = 64 * 1024 * 1024
#: errno values meaning "no kernel copy between these files": fall back to a read loop.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}
_OPEN_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_READ_FLAGS |= getattr(os, "O_BINARY", 0)
#: Default age after which :meth:`ObjectStore.gc_temp` treats a temp file as abandoned.
DEFAULT_TEMP_MAX_AGE_SECONDS = 24 * 3600.0


class ObjectStore:
    """Content-addressed store of large files: ``fs`` plus ``root``; see the module docstring.

    ``read_only=True`` refuses every write (put, delete, gc) with ArtifactError and
    never creates directories.
    """

    def __init__(
        self, fs: FileSystem, root: str | os.PathLike[str], *, read_only: bool = False
    ) -> None:
        self.fs = fs
        self.root = os.fspath(root)
        self.read_only = read_only
        self._tmp = fs.join(self.root, _TMP_DIR)
        self._local = fs.local_path(self.root) is not None

    @classmethod
    def local(
        cls, root: str | os.PathLike[str], *, fsync: bool = True, read_only: bool = False
    ) -> ObjectStore:
        """A store on the local disk at ``root``."""
        return cls(LocalFS(fsync=fsync), root, read_only=read_only)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"ObjectStore({self.fs!r}, {self.root!r}{mode})"

    # --- writing -------------------------------------------------------------

    def put_file(
        self, path: str | os.PathLike[str], *, expect: str | None = None
    ) -> tuple[str, int]:
        """Store the regular local file at ``path``; return ``(digest, size)``.

        Reads the file once, hashing exactly the bytes it stores, so the object is
        consistent even if the source changes meanwhile. With ``expect`` (a digest) the
        bytes are published only if they hash to it, else CorruptObjectError. Raises
        ValidationError, before reading a byte, if ``path`` is not a regular file (use
        :meth:`put_stream` for streams); ArtifactError if the source cannot be read or
        the store cannot be written.
        """
        self._check_writable()
        source = os.fspath(path)
        try:
            fd = os.open(path, _OPEN_READ_FLAGS)  # non-blocking: a FIFO is refused, not waited on
        except OSError as e:
            raise ArtifactError(f"cannot read {source!r}: {e.strerror or e}", path=source) from e
        with open(fd, "rb", buffering=0) as src:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise _not_regular(source, mode)
            os.set_blocking(fd, True)
            if self._local:
                fast = self._put_by_kernel_copy(fd, source, expect)
                if fast is not None:
                    return fast
            elif self.fs.atomic_writes and expect is not None:
                return self._put_whole(source, expect)
            return self._put_from(src.readinto, None, source=source, expect=expect)

    def _put_whole(self, source: str, expect: str) -> tuple[str, int]:
        """Upload a local file of known digest straight to its final name (atomic PUT).

        The file is hashed first; only matching bytes are sent.
        """
        final = self._object_path(expect)
        digest, size = hash_file(source)
        if digest != expect:
            raise self._corrupt_source(expect, digest, source)
        try:
            if self.fs.exists(final) and self.fs.size(final) == size:
                self.fs.touch(final)
                return digest, size
            self.fs.put_file(source, final)
        except OSError as e:
            raise self._write_error(e) from e
        return digest, size

    def _put_by_kernel_copy(
        self, src_fd: int, source: str, expect: str | None
    ) -> tuple[str, int] | None:
        """Copy a regular file inside the kernel, then hash the copy; None if unsupported.

        ``copy_file_range`` moves the bytes without a trip through Python (and reflinks on
        filesystems that can); hashing the finished temp file — not the source — keeps
        the promise that an object holds exactly the bytes its name says. Falls back
        (None) where the call is missing or refused, before anything is published.
        """
        copy = getattr(os, "copy_file_range", None)
        if copy is None:
            return None
        try:
            self.fs.makedirs(self._tmp)
            out, tmp = self.fs.create_temp(self._tmp)
        except OSError:
            return None
        try:
            size = 0
            while True:
                try:
                    n = copy(src_fd, out.fileno(), _KERNEL_COPY_CHUNK)
                except OSError as e:
                    if size == 0 and e.errno in _NO_KERNEL_COPY:
                        _abort(out)
                        self.fs.remove(tmp)
                        return None
                    raise ArtifactError(f"cannot copy {source}: {e.strerror or e}") from e
                if not n:
                    break
                size += n
            digest, hashed = hash_file(tmp)
            if hashed != size:
                raise ArtifactError(f"the copy of {source} changed while it was hashed")
            if expect is not None and digest != expect:
                raise self._corrupt_source(expect, digest, source)
        except BaseException as e:
            _abort(out)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        self._publish(out, tmp, self._object_path(digest))
        return digest, size

    def put_stream(self, fileobj: BinaryIO, *, expect: str | None = None) -> tuple[str, int]:
        """Store everything readable from the binary stream ``fileobj``; return ``(digest, size)``.

        The stream is read to its end in fixed-size chunks and not closed. ``expect`` as
        for :meth:`put_file`. Raises ValidationError for a text stream, ArtifactError on
        I/O failure.
        """
        self._check_writable()
        if isinstance(fileobj, io.TextIOBase):
            raise ValidationError("put_stream needs a binary stream, got a text stream")
        readinto = getattr(fileobj, "readinto", None)
        if readinto is not None:
            return self._put_from(readinto, None, source=repr(fileobj), expect=expect)
        return self._put_from(None, fileobj.read, source=repr(fileobj), expect=expect)

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Store ``data``; return ``(digest, size)``. Writes nothing if the object exists."""
        self._check_writable()
        view = memoryview(data).cast("B")
        hasher = new_hasher()
        hasher.update(view)
        digest = format_digest(hasher.hexdigest())
        final = self._object_path(digest)
        try:
            if self.fs.exists(final) and self.fs.size(final) == len(view):
                return digest, len(view)
            self.fs.makedirs(self._tmp)
            out, tmp = self.fs.create_temp(self._tmp)
        except OSError as e:
            raise self._write_error(e) from e
        try:
            out.write(view)
        except BaseException as e:
            _abort(out)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        self._publish(out, tmp, final)
        return digest, len(view)

    def _put_from(
        self,
        readinto: Callable[[bytearray], int | None] | None,
        read: Callable[[int], bytes] | None,
        source: str,
        expect: str | None = None,
    ) -> tuple[str, int]:
        """Copy a source into a temp file while hashing it, then publish it."""
        try:
            self.fs.makedirs(self._tmp)
            out, tmp = self.fs.create_temp(self._tmp)
        except OSError as e:
            raise self._write_error(e) from e
        hasher = new_hasher()
        size = 0
        try:
            if readinto is not None:
                buf = bytearray(HASH_CHUNK_BYTES)
                view = memoryview(buf)
                while True:
                    try:
                        n = readinto(buf)
                    except OSError as e:
                        raise ArtifactError(f"cannot read {source}: {e.strerror or e}") from e
                    if n is None:
                        continue  # a non-blocking source with nothing ready yet
                    if not n:
                        break
                    chunk = view[:n]
                    hasher.update(chunk)
                    out.write(chunk)
                    size += n
            else:
                assert read is not None
                while True:
                    data = read(HASH_CHUNK_BYTES)
                    if not data:
                        break
                    hasher.update(data)
                    out.write(data)
                    size += len(data)
            digest = format_digest(hasher.hexdigest())
            if expect is not None and digest != expect:
                raise self._corrupt_source(expect, digest, source)
        except BaseException as e:
            _abort(out)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        self._publish(out, tmp, self._object_path(digest))
        return digest, size

    def fetch_into(self, digest: str, copy_to: Callable[[str, str], int]) -> int:
        """Store ``digest`` from elsewhere: ``copy_to(digest, path)`` must write that
        object's verified bytes to the local ``path`` (a temp file in this store's
        ``tmp/``, named by its owner); the file is then published. Returns the size.
        Local stores only."""
        self._check_writable()
        try:
            self.fs.makedirs(self._tmp)
        except OSError as e:
            raise self._write_error(e) from e
        tmp = self.fs.join(self._tmp, temp_name("fetch-"))
        try:
            size = copy_to(digest, tmp)
            self.fs.publish(tmp, self._object_path(digest))
        except BaseException as e:
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        return size

    def _publish(self, out: BinaryIO, tmp: str, final: str) -> None:
        """Close (fsync) the temp file, then give it its final name (or drop it)."""
        try:
            out.close()
            self.fs.publish(tmp, final)
        except BaseException as e:
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise

    def delete(self, digest: str) -> bool:
        """Remove the object; return False if it was not there. Never touches other objects."""
        self._check_writable()
        return self.fs.remove(self._object_path(digest))

    def freshen(self, digest: str) -> bool:
        """Mark the object as just used (modification time now); False if it is not stored.

        A caller about to record a reference to an object it put a while ago calls this
        first: :meth:`delete_if_older` spares an object freshened after its cutoff.
        """
        self._check_writable()
        return self.fs.touch(self._object_path(digest))

    def delete_if_older(self, digest: str, cutoff: float) -> int | None:
        """Remove the object unless it was modified (put or freshened) after ``cutoff``.

        Returns the bytes freed, or None if the object was kept or absent. Safe against
        a concurrent put or :meth:`freshen`: the object is first renamed away, then its
        time is checked again and, if it was freshened meanwhile, it is put back.
        """
        self._check_writable()
        final = self._object_path(digest)
        try:
            if self.fs.mtime(final) > cutoff:
                return None
            self.fs.makedirs(self._tmp)
            doomed = self.fs.join(self._tmp, temp_name("gc-"))
            self.fs.rename(final, doomed)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._write_error(e) from e
        try:
            if self.fs.mtime(doomed) > cutoff:
                self.fs.rename(doomed, final)
                return None
            size = self.fs.size(doomed)
            self.fs.remove(doomed)
        except OSError as e:
            raise self._write_error(e) from e
        return size

    def gc_temp(self, older_than_seconds: float = DEFAULT_TEMP_MAX_AGE_SECONDS) -> int:
        """Remove temp files older than the given age, except those of running uploads.

        Returns how many were removed. :meth:`sweep_temp` is the owner-aware rule
        ``vtrack gc`` uses.
        """
        self._check_writable()
        cutoff = time.time() - older_than_seconds
        removed = 0
        for name in self.fs.listdir(self._tmp):
            path = self.fs.join(self._tmp, name)
            try:
                if self.fs.mtime(path) > cutoff:
                    continue
            except FileNotFoundError:
                continue
            owner = temp_owner(name)
            if owner is not None and owner.is_alive():
                continue
            if self.fs.remove(path):
                removed += 1
        return removed

    def sweep_temp(self, grace_seconds: float, *, dry_run: bool = False) -> list[TempFile]:
        """Remove the temp files of abandoned uploads; return every temp file judged.

        The rule is :func:`vtrack.store.tempfiles.sweep`'s. ``dry_run`` removes nothing
        (and works on a read-only store).
        """
        if not dry_run:
            self._check_writable()
        return sweep(self.fs, self._tmp, grace_seconds, dry_run=dry_run)

    # --- reading -------------------------------------------------------------

    def path_of(self, digest: str) -> Path:
        """Where the object lives on the local disk (whether or not it exists).

        ArtifactError for a store that is not on the local disk.
        """
        local = self.fs.local_path(self._object_path(digest))
        if local is None:
            raise ArtifactError(f"object store {self.root!r} is not on the local disk")
        return Path(local)

    def location_of(self, digest: str) -> str:
        """The object's path in the store's filesystem (whether or not it exists)."""
        return self._object_path(digest)

    def exists(self, digest: str) -> bool:
        """Return True if the object is stored (its content is not re-checked)."""
        return self.fs.exists(self._object_path(digest))

    def size(self, digest: str) -> int:
        """Return the object's size in bytes; ArtifactNotFoundError if it is not stored."""
        try:
            return self.fs.size(self._object_path(digest))
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def mtime(self, digest: str) -> float:
        """When the object was last put or freshened; FileNotFoundError if absent."""
        return self.fs.mtime(self._object_path(digest))

    def open(self, digest: str, verify: bool = True) -> BinaryIO:
        """Open the object for binary reading; ArtifactNotFoundError if it is not stored.

        With ``verify`` (the default) the stream re-hashes what it serves: reading to
        the end raises CorruptObjectError if the bytes do not match ``digest``, and the
        first seek to another position checks the whole object before serving more.
        A reader that stops early gets no verdict; use :meth:`verify` or
        :meth:`copy_to` when that matters. The stream has no ``fileno()``.
        """
        raw = self._open_raw(digest)
        if not verify:
            return io.BufferedReader(raw)
        checked = VerifyingReader(raw, digest, lambda: self._check_whole(digest))
        return io.BufferedReader(checked)

    def verify(self, digest: str) -> bool:
        """Re-hash the stored bytes; True if they match ``digest``. ArtifactNotFoundError if absent."""
        expected = parse_digest(digest)
        with self._open_raw(digest) as raw:
            actual, _ = hash_raw(raw)
        return actual == expected

    def copy_to(self, digest: str, dst_path: str | os.PathLike[str]) -> int:
        """Write the object's bytes to the local file ``dst_path``, verified; return the size.

        ``dst_path`` appears atomically and only with verified content: on a digest
        mismatch it is left untouched and CorruptObjectError is raised. The parent folder
        must exist (OSError otherwise). The bytes are staged in a hidden ``.vtrack-*.tmp``
        file beside ``dst_path``, which only a kill can leave behind.
        """
        expected = parse_digest(digest)
        dst = os.fspath(dst_path)
        disk = LocalFS(fsync=getattr(self.fs, "fsync", False))
        out, tmp = disk.create_temp(os.path.dirname(os.path.abspath(dst)), ".vtrack-")
        try:
            if self._local:
                with self._open_raw(digest) as raw:
                    actual, size = hash_raw(raw, out)
            else:
                _abort(out)
                try:
                    self.fs.get_file(self._object_path(digest), tmp)
                except FileNotFoundError:
                    raise self._not_found(digest) from None
                actual, size = (lambda d: (parse_digest(d[0]), d[1]))(hash_file(tmp))
            if actual != expected:
                raise self._corrupt(digest, actual)
            out.close()
            disk.rename(tmp, dst)
        except BaseException:
            _abort(out)
            disk.remove(tmp)
            raise
        return size

    # --- listing -------------------------------------------------------------

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every finished object, sorted. Temp files never appear."""
        for fan in self.fs.listdir(self.root):
            if len(fan) != _FANOUT or not _is_hex(fan):
                continue
            for rest in self.fs.listdir(self.fs.join(self.root, fan)):
                if len(rest) == _REST and _is_hex(rest):
                    yield format_digest(fan + rest)

    def find_prefix(self, hexprefix: str) -> list[str]:
        """Return the sorted digests that start with ``hexprefix`` (1–32 hex characters,
        with or without the ``xxh3-128:`` prefix; ValidationError otherwise)."""
        text = hexprefix.split(":", 1)[1] if hexprefix.startswith("xxh3-128:") else hexprefix
        text = text.lower()
        if not 1 <= len(text) <= _FANOUT + _REST or not _is_hex(text):
            raise ValidationError(
                f"digest prefix {hexprefix!r} must be 1 to 32 hex characters", prefix=hexprefix
            )
        if len(text) < _FANOUT:
            return [d for d in self.iter_digests() if d.split(":", 1)[1].startswith(text)]
        fan, rest = text[:_FANOUT], text[_FANOUT:]
        return [
            format_digest(fan + name)
            for name in self.fs.listdir(self.fs.join(self.root, fan))
            if len(name) == _REST and _is_hex(name) and name.startswith(rest)
        ]

    def total_bytes(self) -> int:
        """Return the summed size of all finished objects (temp files excluded)."""
        total = 0
        for digest in self.iter_digests():
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                total += self.fs.size(self._object_path(digest))
        return total

    # --- helpers -------------------------------------------------------------

    def _object_path(self, digest: str) -> str:
        hexpart = parse_digest(digest)
        return self.fs.join(self.root, hexpart[:_FANOUT], hexpart[_FANOUT:])

    def _open_raw(self, digest: str) -> Any:
        try:
            return self.fs.open_read(self._object_path(digest))
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def _check_whole(self, digest: str) -> None:
        with self._open_raw(digest) as raw:
            actual, _ = hash_raw(raw)
        if actual != parse_digest(digest):
            raise self._corrupt(digest, actual)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ArtifactError(
                f"object store {self.root!r} is open read-only; nothing was written", root=self.root
            )

    def _write_error(self, e: OSError) -> ArtifactError:
        gone = e.filename if isinstance(e, FileNotFoundError) else None
        if gone and os.path.dirname(os.fspath(gone)) == self._tmp:
            return ArtifactError(
                f"cannot write to object store {self.root!r}: the temp file {gone} "
                "was removed while it was being written",
                hint="something cleaned the store's tmp/ folder meanwhile; log the artifact again",
                root=self.root,
            )
        return ArtifactError(
            f"cannot write to object store {self.root!r}: {e.strerror or e}",
            hint="check free space and permissions",
            root=self.root,
        )

    def _not_found(self, digest: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"object {digest} is not in the object store {self.root!r}",
            hint="fetch the run's large objects from the remote it was shared through",
            digest=digest,
        )

    def _corrupt(self, digest: str, actual_hex: str) -> CorruptObjectError:
        where = self._object_path(digest)
        return CorruptObjectError(
            f"object {digest} is corrupt: its bytes hash to {format_digest(actual_hex)}",
            hint=f"delete {where} and log or fetch the artifact again",
            digest=digest,
            path=where,
        )

    def _corrupt_source(self, expect: str, digest: str, source: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"{source} should hold object {expect} but its bytes hash to {digest}; "
            f"nothing was stored in {self.root!r}",
            digest=expect,
            path=source,
        )


def _abort(out: BinaryIO) -> None:
    """Close a temp file's stream without flushing it anywhere durable."""
    abort = getattr(out, "abort", None) or getattr(out, "discard", None)
    with contextlib.suppress(Exception):
        if abort is not None:
            abort()
        if not out.closed:
            out.close()


def _not_regular(path: str, mode: int) -> ValidationError:
    return ValidationError(
        f"cannot store {path!r}: it is a {file_kind(mode)}, not a regular file",
        hint="put_file stores regular files; use put_stream for a stream",
        path=path,
    )


def _is_hex(text: str) -> bool:
    return all(c in _HEX for c in text)
