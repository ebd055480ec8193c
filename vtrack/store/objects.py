"""The large-object store: artifact files keyed by their xxh3-128 digest.

Layout under the root (``.git/vtrack/objects`` in a repository)::

    <root>/<first 2 hex of the digest>/<remaining 30 hex>   one finished object
    <root>/tmp/<owner>~<random>.tmp                           writes in progress

Promises:

- An object file, once visible at its final name, holds exactly the bytes its name
  says. Writes go to ``tmp/`` first, are fsynced and then published with a single
  atomic link or rename, so a crash or a kill at any moment leaves either no object
  or a complete one (plus, at worst, a stale temp file; its name says which process
  wrote it, so :meth:`ObjectStore.sweep_temp` removes it once that process is gone,
  and never while it runs — see :mod:`vtrack.store.tempfiles`).
- Puts stream: memory use does not depend on the size of the file.
- The same bytes are stored once, however many times and by however many processes
  they are put, concurrently or not.
- Reads verify: :meth:`ObjectStore.open`, :meth:`ObjectStore.copy_to` and
  :meth:`ObjectStore.verify` re-hash what they serve and raise
  :class:`~vtrack.errors.CorruptObjectError` (naming the digest) instead of serving
  bytes that no longer match.

The store is "a filesystem handle plus a root": everything that touches the disk goes
through :class:`LocalFS`, so a remote sibling (fsspec, ``s3://``) can provide the same
few operations later.
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
from typing import BinaryIO

from vtrack.errors import ArtifactError, ArtifactNotFoundError, CorruptObjectError, ValidationError
from vtrack.hashing import format_digest, hash_file, new_hasher, parse_digest
from vtrack.limits import HASH_CHUNK_BYTES
from vtrack.pathsafety import file_kind
from vtrack.store.tempfiles import TempFile, sweep, temp_name, temp_owner

_HEX = frozenset("0123456789abcdef")
_FANOUT = 2
_REST = 30
_TMP_DIR = "tmp"
#: Finished objects are read-only on disk, as git's loose objects are.
_OBJECT_MODE = 0o444
#: Bytes per early-writeback window of a streamed put (see LocalFS.start_writeback).
_WRITEBACK_WINDOW = 8 * 1024 * 1024
#: Bytes per copy_file_range call of a kernel-side copy.
_KERNEL_COPY_CHUNK = 64 * 1024 * 1024
#: errno values meaning "no kernel copy between these files": fall back to a read loop.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}
_FADVISE = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None
_OPEN_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_READ_FLAGS |= getattr(os, "O_BINARY", 0)
#: Default age after which :meth:`ObjectStore.gc_temp` treats a temp file as abandoned.
DEFAULT_TEMP_MAX_AGE_SECONDS = 24 * 3600.0


class LocalFS:
    """Every local-disk operation the object store performs, and nothing else.

    A remote variant provides the same methods with the same promises; paths are
    plain strings. With ``fsync`` false (vtrack's default, as for git's loose objects)
    finished objects are not forced to stable storage: they survive a killed process,
    not a power loss; ``VTRACK_FSYNC=1`` turns it on.
    """

    def __init__(self, *, fsync: bool = True) -> None:
        self.fsync = fsync

    def open_read(self, path: str) -> io.RawIOBase:
        """Open ``path`` for unbuffered binary reading. FileNotFoundError propagates."""
        return open(path, "rb", buffering=0)

    def size(self, path: str) -> int:
        """Return the size of the regular file at ``path``. FileNotFoundError propagates."""
        return os.stat(path).st_size

    def isfile(self, path: str) -> bool:
        """Return True if ``path`` is an existing regular file."""
        return os.path.isfile(path)

    def mtime(self, path: str) -> float:
        """Return the modification time of ``path`` (seconds since the epoch)."""
        return os.stat(path).st_mtime

    def stat(self, path: str) -> os.stat_result:
        """Return the stat of ``path`` itself (links not followed). FileNotFoundError propagates."""
        return os.lstat(path)

    def listdir(self, path: str) -> list[str]:
        """Return the sorted entry names of ``path``, or ``[]`` if it does not exist."""
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents; succeed if it exists (safe under races)."""
        os.makedirs(path, exist_ok=True)

    def create_temp(self, directory: str, prefix: str = "") -> tuple[int, str]:
        """Create a new, empty, uniquely named file in ``directory``; return ``(fd, path)``.

        The name is unique across processes and hosts sharing the directory and
        carries the creating process as its owner (:func:`vtrack.store.tempfiles.temp_name`),
        so the file is never without one; its mode follows the umask like any newly
        created file.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            name = temp_name(prefix)
            path = os.path.join(directory, name)
            try:
                return os.open(path, flags, 0o666), path
            except FileExistsError:
                continue

    def write_all(self, fd: int, data: memoryview | bytes) -> None:
        """Write all of ``data`` to ``fd`` (os.write may write less than asked)."""
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def start_writeback(self, fd: int, offset: int, length: int) -> None:
        """Hint that ``length`` bytes at ``offset`` are final: start writing them to disk.

        Only a hint (a no-op where unsupported). It lets the disk work while later
        chunks are still being copied, so the closing fsync has little left to do,
        and keeps a large put from filling the page cache with pages nobody reads.
        """
        if _FADVISE is not None and self.fsync:
            try:
                os.posix_fadvise(fd, offset, length, _FADVISE)
            except OSError:
                pass

    def finish_temp(self, fd: int, path: str, mode: int | None) -> None:
        """Flush ``fd`` to stable storage (when fsyncing), close it and optionally chmod ``path``."""
        try:
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(path, mode)

    def publish(self, tmp: str, final: str) -> bool:
        """Atomically give the finished file ``tmp`` the name ``final``.

        Returns True if ``final`` was created, False if an object of the same size
        already held that name (then ``tmp`` is removed and the existing file kept,
        with its modification time set to now, so that a garbage collection that
        spares young objects spares it too). An existing file of a different size is
        a damaged object and is replaced. Either way ``tmp`` no longer exists
        afterwards and ``final`` is complete.
        """
        self.makedirs(os.path.dirname(final))
        try:
            os.link(tmp, final)
        except FileExistsError:
            try:
                same = os.stat(final).st_size == os.stat(tmp).st_size
            except FileNotFoundError:
                same = False
            # If the object vanished (collected) between the checks, ours replaces it.
            if same and self.touch(final):
                self.remove(tmp)
                return False
            os.replace(tmp, final)
            self._sync_dir(os.path.dirname(final))
            return True
        except OSError:
            # No hard links here (some network and FUSE filesystems): a rename still
            # publishes atomically; a racing writer may replace it with identical bytes.
            if self.isfile(final) and self.touch(final):
                self.remove(tmp)
                return False
            os.replace(tmp, final)
            self._sync_dir(os.path.dirname(final))
            return True
        self.remove(tmp)
        self._sync_dir(os.path.dirname(final))
        return True

    def touch(self, path: str) -> bool:
        """Set the modification time of ``path`` to now; return False if it does not exist.

        A file this user may not touch (someone else's, on a shared store) counts as
        existing.
        """
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        except PermissionError:
            return os.path.exists(path)
        return True

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` to ``dst`` (replacing it). FileNotFoundError propagates."""
        os.replace(src, dst)

    def replace(self, tmp: str, final: str) -> None:
        """Atomically rename ``tmp`` over ``final`` and make the rename durable."""
        os.replace(tmp, final)
        self._sync_dir(os.path.dirname(final) or ".")

    def remove(self, path: str) -> bool:
        """Remove the file ``path``; return False if it did not exist."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except PermissionError:
            if os.name != "nt":
                raise
            # Windows will not unlink a read-only file.
            os.chmod(path, 0o644)
            os.unlink(path)
        return True

    @staticmethod
    def _sync_dir(directory: str) -> None:
        # A rename is durable only once its directory entry is on disk.
        if not hasattr(os, "O_DIRECTORY"):
            return
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


class ObjectStore:
    """Content-addressed store of large files under ``root``; see the module docstring.

    ``read_only=True`` refuses every write (put, delete, gc) with ArtifactError and
    never creates directories. ``fs`` is the filesystem handle (local by default).
    """

    def __init__(
        self, root: str | os.PathLike[str], read_only: bool = False, *, fs: LocalFS | None = None
    ) -> None:
        self.root = Path(root)
        self.read_only = read_only
        self.fs = fs if fs is not None else LocalFS()
        self._root = os.fspath(self.root)
        self._tmp = os.path.join(self._root, _TMP_DIR)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"ObjectStore({self._root!r}{mode})"

    # --- writing -------------------------------------------------------------

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store the regular file at ``path``; return ``(digest, size)``.

        Reads the file once, hashing exactly the bytes it copies, so the object is
        consistent even if the source changes meanwhile. Raises ValidationError, before
        reading a byte, if ``path`` is not a regular file (a FIFO, socket or device:
        use :meth:`put_stream` for streams); ArtifactError if the source cannot be read
        or the store cannot be written.
        """
        self._check_writable()
        try:
            # non-blocking, so a FIFO is refused below instead of hanging the open
            fd = os.open(path, _OPEN_READ_FLAGS)
        except OSError as e:
            raise ArtifactError(
                f"cannot read {os.fspath(path)!r}: {e.strerror or e}", path=os.fspath(path)
            ) from e
        with open(fd, "rb", buffering=0) as src:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise _not_regular(os.fspath(path), mode)
            os.set_blocking(fd, True)
            fast = self._put_by_kernel_copy(src.fileno(), os.fspath(path))
            if fast is not None:
                return fast
            return self._put_from(src.readinto, None, source=os.fspath(path))

    def _put_by_kernel_copy(self, src_fd: int, source: str) -> tuple[str, int] | None:
        """Copy a regular file inside the kernel, then hash the copy; None if unsupported.

        ``copy_file_range`` moves the bytes without a trip through Python (and reflinks
        on filesystems that can), and hashing the finished temp file — not the source —
        keeps the promise that an object holds exactly the bytes its name says, even if
        the source changes meanwhile. Falls back (None) where the call is missing or the
        filesystems refuse it, before anything is published.
        """
        copy = getattr(os, "copy_file_range", None)
        if copy is None or type(self.fs) is not LocalFS:
            return None
        try:
            if not stat.S_ISREG(os.fstat(src_fd).st_mode):
                return None
            self.fs.makedirs(self._tmp)
            fd, tmp = self.fs.create_temp(self._tmp)
        except OSError:
            return None
        try:
            size = 0
            while True:
                try:
                    n = copy(src_fd, fd, _KERNEL_COPY_CHUNK)
                except OSError as e:
                    if size == 0 and e.errno in _NO_KERNEL_COPY:
                        os.close(fd)
                        self.fs.remove(tmp)
                        return None
                    raise ArtifactError(f"cannot copy {source}: {e.strerror or e}") from e
                if not n:
                    break
                size += n
            digest, hashed = hash_file(tmp)
            if hashed != size:
                raise ArtifactError(f"the copy of {source} changed while it was hashed")
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.close(fd)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        self._publish(fd, tmp, self._object_path(digest))
        return digest, size

    def put_stream(self, fileobj: BinaryIO) -> tuple[str, int]:
        """Store everything readable from the binary stream ``fileobj``; return ``(digest, size)``.

        The stream is read to its end in fixed-size chunks and not closed.
        Raises ValidationError for a text stream, ArtifactError on I/O failure.
        """
        self._check_writable()
        if isinstance(fileobj, io.TextIOBase):
            raise ValidationError("put_stream needs a binary stream, got a text stream")
        readinto = getattr(fileobj, "readinto", None)
        if readinto is not None:
            return self._put_from(readinto, None, source=repr(fileobj))
        return self._put_from(None, fileobj.read, source=repr(fileobj))

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Store ``data``; return ``(digest, size)``. Writes nothing if the object exists."""
        self._check_writable()
        view = memoryview(data).cast("B")
        hasher = new_hasher()
        hasher.update(view)
        digest = format_digest(hasher.hexdigest())
        final = self._object_path(digest)
        try:
            if self.fs.isfile(final) and self.fs.size(final) == len(view):
                return digest, len(view)
            self.fs.makedirs(self._tmp)
            fd, tmp = self.fs.create_temp(self._tmp)
        except OSError as e:
            raise self._write_error(e) from e
        try:
            self.fs.write_all(fd, view)
        except BaseException as e:
            os.close(fd)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        self._publish(fd, tmp, final)
        return digest, len(view)

    def _put_from(
        self,
        readinto: Callable[[bytearray], int | None] | None,
        read: Callable[[int], bytes] | None,
        source: str,
    ) -> tuple[str, int]:
        """Copy a source into a temp file while hashing it, then publish it."""
        try:
            self.fs.makedirs(self._tmp)
            fd, tmp = self.fs.create_temp(self._tmp)
        except OSError as e:
            raise self._write_error(e) from e
        hasher = new_hasher()
        size = 0
        synced = 0
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
                    self.fs.write_all(fd, chunk)
                    size += n
                    if size - synced >= 2 * _WRITEBACK_WINDOW:
                        # One window behind the write position, so pages still being
                        # filled are left alone.
                        self.fs.start_writeback(fd, synced, _WRITEBACK_WINDOW)
                        synced += _WRITEBACK_WINDOW
            else:
                assert read is not None
                while True:
                    data = read(HASH_CHUNK_BYTES)
                    if not data:
                        break
                    hasher.update(data)
                    self.fs.write_all(fd, data)
                    size += len(data)
                    if size - synced >= 2 * _WRITEBACK_WINDOW:
                        self.fs.start_writeback(fd, synced, _WRITEBACK_WINDOW)
                        synced += _WRITEBACK_WINDOW
        except BaseException as e:
            os.close(fd)
            self.fs.remove(tmp)
            if isinstance(e, OSError):
                raise self._write_error(e) from e
            raise
        digest = format_digest(hasher.hexdigest())
        self._publish(fd, tmp, self._object_path(digest))
        return digest, size

    def _publish(self, fd: int, tmp: str, final: str) -> None:
        """fsync and close the temp file, then give it its final name (or drop it)."""
        try:
            self.fs.finish_temp(fd, tmp, _OBJECT_MODE)
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

        A caller about to record a reference to an object it put a while ago calls
        this first: :meth:`delete_if_older` spares an object freshened after its cutoff.
        """
        self._check_writable()
        return self.fs.touch(self._object_path(digest))

    def delete_if_older(self, digest: str, cutoff: float) -> int | None:
        """Remove the object unless it was modified (put or freshened) after ``cutoff``.

        Returns the bytes freed, or None if the object was kept or absent. Safe against
        a concurrent put or :meth:`freshen` of the same object: the object is first
        renamed away, then its time is checked again and, if it was freshened in the
        meantime, it is put back (its bytes are the same either way). So a writer whose
        put or freshen succeeded after ``cutoff`` still finds the object; one whose
        freshen found it gone (False) knows to put it again.
        """
        self._check_writable()
        final = self._object_path(digest)
        try:
            if self.fs.mtime(final) > cutoff:
                return None
            self.fs.makedirs(self._tmp)
            doomed = os.path.join(self._tmp, temp_name("gc-"))
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

        A temp file whose name shows that its writing process still runs on this host
        is kept at any age (an upload may block for long on a slow source). Returns how
        many files were removed. :meth:`sweep_temp` is the owner-aware rule ``vtrack
        gc`` uses.
        """
        self._check_writable()
        cutoff = time.time() - older_than_seconds
        removed = 0
        for name in self.fs.listdir(self._tmp):
            path = os.path.join(self._tmp, name)
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

        The rule is :func:`vtrack.store.tempfiles.sweep`'s: a temp file whose writer is
        provably gone goes at any age, one whose writer runs stays even with a grace of
        0, one without a recognisable owner goes once older than ``grace_seconds``.
        ``dry_run`` removes nothing (and works on a read-only store).
        """
        if not dry_run:
            self._check_writable()
        return sweep(self.fs, self._tmp, grace_seconds, dry_run=dry_run)

    # --- reading -------------------------------------------------------------

    def path_of(self, digest: str) -> Path:
        """Return where the object lives on disk (whether or not it exists)."""
        return Path(self._object_path(digest))

    def exists(self, digest: str) -> bool:
        """Return True if the object is stored (its content is not re-checked)."""
        return self.fs.isfile(self._object_path(digest))

    def size(self, digest: str) -> int:
        """Return the object's size in bytes; ArtifactNotFoundError if it is not stored."""
        path = self._object_path(digest)
        try:
            return self.fs.size(path)
        except FileNotFoundError:
            raise self._not_found(digest) from None

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
        checked = _VerifyingReader(raw, digest, lambda: self._check_whole(digest))
        return io.BufferedReader(checked)

    def verify(self, digest: str) -> bool:
        """Re-hash the stored bytes; return True if they match ``digest``.

        Raises ArtifactNotFoundError if the object is not stored.
        """
        expected = parse_digest(digest)
        with self._open_raw(digest) as raw:
            actual, _ = _hash_raw(raw)
        return actual == expected

    def copy_to(self, digest: str, dst_path: str | os.PathLike[str]) -> int:
        """Write the object's bytes to ``dst_path``, verified; return the size.

        ``dst_path`` appears atomically and only with verified content: on a digest
        mismatch it is left untouched and CorruptObjectError is raised. The parent
        directory must exist (OSError otherwise). The bytes are staged in a hidden
        ``.vtrack-*.tmp`` file beside ``dst_path``, which only a kill can leave behind.
        """
        expected = parse_digest(digest)
        dst = os.fspath(dst_path)
        with self._open_raw(digest) as raw:
            fd, tmp = self.fs.create_temp(os.path.dirname(os.path.abspath(dst)), ".vtrack-")
            try:
                hasher = new_hasher()
                buf = bytearray(HASH_CHUNK_BYTES)
                view = memoryview(buf)
                size = 0
                while True:
                    n = raw.readinto(buf)
                    if not n:
                        break
                    hasher.update(view[:n])
                    self.fs.write_all(fd, view[:n])
                    size += n
                if hasher.hexdigest() != expected:
                    raise self._corrupt(digest, hasher.hexdigest())
                done, fd = fd, -1
                self.fs.finish_temp(done, tmp, None)
                self.fs.replace(tmp, dst)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                self.fs.remove(tmp)
                raise
        return size

    # --- listing -------------------------------------------------------------

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every finished object, sorted. Temp files never appear."""
        for fan in self.fs.listdir(self._root):
            if len(fan) != _FANOUT or not _is_hex(fan):
                continue
            for rest in self.fs.listdir(os.path.join(self._root, fan)):
                if len(rest) == _REST and _is_hex(rest):
                    yield format_digest(fan + rest)

    def find_prefix(self, hexprefix: str) -> list[str]:
        """Return the sorted digests that start with ``hexprefix``.

        ``hexprefix`` is 1–32 hex characters, with or without the ``xxh3-128:``
        prefix; ValidationError otherwise.
        """
        text = hexprefix.split(":", 1)[1] if hexprefix.startswith("xxh3-128:") else hexprefix
        text = text.lower()
        if not 1 <= len(text) <= _FANOUT + _REST or not _is_hex(text):
            raise ValidationError(
                f"digest prefix {hexprefix!r} must be 1 to 32 hex characters",
                prefix=hexprefix,
            )
        if len(text) < _FANOUT:
            return [d for d in self.iter_digests() if d.split(":", 1)[1].startswith(text)]
        fan, rest = text[:_FANOUT], text[_FANOUT:]
        return [
            format_digest(fan + name)
            for name in self.fs.listdir(os.path.join(self._root, fan))
            if len(name) == _REST and _is_hex(name) and name.startswith(rest)
        ]

    def total_bytes(self) -> int:
        """Return the summed size of all finished objects (temp files excluded)."""
        total = 0
        for digest in self.iter_digests():
            try:
                total += self.fs.size(self._object_path(digest))
            except FileNotFoundError:
                continue  # deleted meanwhile
        return total

    # --- helpers -------------------------------------------------------------

    def _object_path(self, digest: str) -> str:
        hexpart = parse_digest(digest)
        return os.path.join(self._root, hexpart[:_FANOUT], hexpart[_FANOUT:])

    def _open_raw(self, digest: str) -> io.RawIOBase:
        try:
            return self.fs.open_read(self._object_path(digest))
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def _check_whole(self, digest: str) -> None:
        expected = parse_digest(digest)
        with self._open_raw(digest) as raw:
            actual, _ = _hash_raw(raw)
        if actual != expected:
            raise self._corrupt(digest, actual)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ArtifactError(
                f"object store {self._root!r} is open read-only; nothing was written",
                root=self._root,
            )

    def _write_error(self, e: OSError) -> ArtifactError:
        gone = e.filename if isinstance(e, FileNotFoundError) else None
        if gone and os.path.dirname(os.fspath(gone)) == self._tmp:
            return ArtifactError(
                f"cannot write to object store {self._root!r}: the temp file {gone} "
                "was removed while it was being written",
                hint="something cleaned the store's tmp/ folder meanwhile; log the artifact again",
                root=self._root,
            )
        return ArtifactError(
            f"cannot write to object store {self._root!r}: {e.strerror or e}",
            hint="check free space and permissions",
            root=self._root,
        )

    def _not_found(self, digest: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"object {digest} is not in the object store {self._root!r}",
            hint="fetch the run's large objects from the remote it was shared through",
            digest=digest,
        )

    def _corrupt(self, digest: str, actual_hex: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"object {digest} is corrupt: its bytes hash to {format_digest(actual_hex)}",
            hint=f"delete {self._object_path(digest)} and log or fetch the artifact again",
            digest=digest,
            path=self._object_path(digest),
        )


class _VerifyingReader(io.RawIOBase):
    """A raw stream that hashes what it serves and checks the digest at the end.

    Sequential reads are hashed as they pass; the first seek that moves the position
    runs ``check_whole`` (a full re-hash) once, after which reads are served freely.
    """

    def __init__(self, raw: io.RawIOBase, digest: str, check_whole: Callable[[], None]) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._expected = parse_digest(digest)
        self._check_whole = check_whole
        self._hasher = new_hasher()
        self._pos = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        n = self._raw.readinto(view) or 0
        if not self._verified:
            if n:
                self._hasher.update(view[:n])
            else:
                actual = self._hasher.hexdigest()
                if actual != self._expected:
                    self._check_whole()  # raises CorruptObjectError naming the digest
                    # The file changed under us but now matches: bytes served may not.
                    raise CorruptObjectError(
                        f"object {self._digest} changed while it was being read",
                        digest=self._digest,
                    )
                self._verified = True
        self._pos += n
        return n

    def readall(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            chunk = self.read(HASH_CHUNK_BYTES)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR and offset == 0:
            return self._pos
        new = self._raw.seek(offset, whence)
        if new != self._pos and not self._verified:
            self._check_whole()
            self._verified = True
        self._pos = new
        return new

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _hash_raw(raw: io.RawIOBase) -> tuple[str, int]:
    """Hash an unbuffered stream to its end; return ``(hexdigest, size)``."""
    hasher = new_hasher()
    buf = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buf)
    size = 0
    while True:
        n = raw.readinto(buf)
        if not n:
            return hasher.hexdigest(), size
        hasher.update(view[:n])
        size += n


def _not_regular(path: str, mode: int) -> ValidationError:
    return ValidationError(
        f"cannot store {path!r}: it is a {file_kind(mode)}, not a regular file",
        hint="put_file stores regular files; use put_stream for a stream",
        path=path,
    )


def _is_hex(text: str) -> bool:
    return all(c in _HEX for c in text)
