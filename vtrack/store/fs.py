"""The filesystem port of the object store: stream-shaped, so fsspec can implement it.

An object store is "a filesystem handle plus a root" (dvc-objects' model): everything
:class:`~vtrack.store.objects.ObjectStore` and :mod:`~vtrack.store.transfer` do to
bytes at rest goes through the few operations of :class:`FileSystem` — open a file as a
read or write stream, size, modification time, existence, listing, rename, remove,
"put this local file here" and "get that file to this local path". Paths are plain
``/``-joined strings under the store's root.

Two implementations:

- :class:`LocalFS` — the local disk. It also offers :meth:`LocalFS.local_path`, which
  lets the object store keep its local fast paths (a kernel-side ``copy_file_range``
  copy, publication by hard link, early writeback), so local performance is that of
  the disk.
- :class:`FsspecFS` — any fsspec filesystem (``s3://``, ``gs://``, ``memory://``, a
  folder through ``file://``). fsspec and its backends are imported only when one is
  opened (the ``[remote]`` extra installs fsspec and s3fs).

:func:`open_url` turns an fsspec URL or a local path into ``(filesystem, root)``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from vtrack.errors import MissingDependencyError, ValidationError
from vtrack.store.tempfiles import temp_name

#: Bytes per early-writeback window of a streamed local write (see _LocalWriter).
WRITEBACK_WINDOW = 8 * 1024 * 1024
_FADVISE = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None
#: fsspec protocols whose writes become visible only once complete (a PUT is atomic).
_ATOMIC_WRITE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


@dataclass(frozen=True)
class FileStat:
    """What a listing needs to know about one file."""

    size: int
    mtime: float
    links: int = 1


class FileSystem(Protocol):
    """The operations an object store performs; see the module docstring."""

    #: True when a file written under its final name appears only once complete.
    atomic_writes: bool

    def join(self, *parts: str) -> str: ...
    def open_read(self, path: str) -> BinaryIO: ...
    def open_write(self, path: str) -> BinaryIO: ...
    def create_temp(self, directory: str, prefix: str = "") -> tuple[BinaryIO, str]: ...
    def size(self, path: str) -> int: ...
    def mtime(self, path: str) -> float: ...
    def stat(self, path: str) -> FileStat: ...
    def exists(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def makedirs(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def remove(self, path: str) -> bool: ...
    def touch(self, path: str) -> bool: ...
    def publish(self, tmp: str, final: str) -> bool: ...
    def put_file(self, local: str, path: str) -> None: ...
    def get_file(self, path: str, local: str) -> None: ...
    def local_path(self, path: str) -> str | None: ...


class _LocalWriter(io.RawIOBase):
    """A write stream on a local file: whole writes, early writeback, fsync on close.

    Writes always write everything (``os.write`` may write less). Every
    :data:`WRITEBACK_WINDOW` bytes, one window behind the write position, it hints the
    kernel to start writing the finished pages (only when fsyncing), so the closing
    fsync has little left to do and a large put does not fill the page cache.
    """

    def __init__(self, fd: int, *, fsync: bool) -> None:
        super().__init__()
        self._fd = fd
        self._fsync = fsync
        self._written = 0
        self._synced = 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._written += total
        if (
            self._fsync
            and _FADVISE is not None
            and self._written - self._synced >= 2 * WRITEBACK_WINDOW
        ):
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, self._synced, WRITEBACK_WINDOW, _FADVISE)
            self._synced += WRITEBACK_WINDOW
        return total

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._fsync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            super().close()

    def abort(self) -> None:
        """Close without flushing to stable storage (the file is about to be removed)."""
        if not self.closed:
            os.close(self._fd)
            super().close()


class LocalFS:
    """The local disk. With ``fsync`` false (vtrack's default, as for git's loose
    objects) finished files survive a killed process, not a power loss;
    ``VTRACK_FSYNC=1`` turns it on."""

    atomic_writes = False

    def __init__(self, *, fsync: bool = True) -> None:
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalFS(fsync={self.fsync})"

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def local_path(self, path: str) -> str | None:
        """The OS path of ``path`` (this filesystem is the local disk)."""
        return path

    def open_read(self, path: str) -> BinaryIO:
        """Open ``path`` for unbuffered binary reading. FileNotFoundError propagates."""
        return open(path, "rb", buffering=0)

    def open_write(self, path: str) -> BinaryIO:
        """Open ``path`` for writing (created or truncated); closing it makes it durable."""
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666
        )
        return _LocalWriter(fd, fsync=self.fsync)  # type: ignore[return-value]

    def create_temp(self, directory: str, prefix: str = "") -> tuple[BinaryIO, str]:
        """Create a new, empty, uniquely named file in ``directory``; return ``(stream, path)``.

        The name is unique across processes and hosts sharing the directory and carries
        the creating process as its owner (:func:`vtrack.store.tempfiles.temp_name`), so
        the file is never without one.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            path = os.path.join(directory, temp_name(prefix))
            try:
                fd = os.open(path, flags, 0o666)
            except FileExistsError:
                continue
            return _LocalWriter(fd, fsync=self.fsync), path  # type: ignore[return-value]

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def mtime(self, path: str) -> float:
        return os.stat(path).st_mtime

    def stat(self, path: str) -> FileStat:
        """Size, mtime and link count of ``path`` itself (links not followed)."""
        st = os.lstat(path)
        return FileStat(st.st_size, st.st_mtime, st.st_nlink)

    def exists(self, path: str) -> bool:
        """True if ``path`` is an existing regular file."""
        return os.path.isfile(path)

    def listdir(self, path: str) -> list[str]:
        """The sorted entry names of ``path``, or ``[]`` if it does not exist."""
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` to ``dst`` (replacing it) and make it durable."""
        os.replace(src, dst)
        if self.fsync:
            _sync_dir(os.path.dirname(dst) or ".")

    def remove(self, path: str) -> bool:
        """Remove the file ``path``; False if it did not exist."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except PermissionError:
            if os.name != "nt":
                raise
            os.chmod(path, 0o644)  # Windows will not unlink a read-only file
            os.unlink(path)
        return True

    def touch(self, path: str) -> bool:
        """Set the modification time to now; False if absent (someone else's file counts
        as present)."""
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        except PermissionError:
            return os.path.exists(path)
        return True

    def publish(self, tmp: str, final: str) -> bool:
        """Atomically give the finished, read-only file ``tmp`` the name ``final``.

        Returns True if ``final`` was created, False if a file of the same size already
        held that name (then ``tmp`` is removed and the existing file kept, freshened so
        that a collection sparing young objects spares it). A file of another size is a
        damaged object and is replaced. Either way ``tmp`` is gone afterwards.
        """
        os.chmod(tmp, 0o444)
        self.makedirs(os.path.dirname(final))
        try:
            os.link(tmp, final)
        except FileExistsError:
            try:
                same = os.stat(final).st_size == os.stat(tmp).st_size
            except FileNotFoundError:
                same = False
            if same and self.touch(final):
                self.remove(tmp)
                return False
            self.rename(tmp, final)
            return True
        except OSError:
            # no hard links here (some network and FUSE filesystems): a rename still
            # publishes atomically; a racing writer may replace it with identical bytes
            if self.exists(final) and self.touch(final):
                self.remove(tmp)
                return False
            self.rename(tmp, final)
            return True
        self.remove(tmp)
        if self.fsync:
            _sync_dir(os.path.dirname(final))
        return True

    def put_file(self, local: str, path: str) -> None:
        """Copy the local file ``local`` to ``path`` (kernel-side where possible)."""
        shutil.copyfile(local, path)

    def get_file(self, path: str, local: str) -> None:
        """Copy ``path`` to the local file ``local``."""
        shutil.copyfile(path, local)


def _sync_dir(directory: str) -> None:
    # a rename is durable only once its directory entry is on disk
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


class FsspecFS:
    """An fsspec filesystem behind the port. Missing files raise FileNotFoundError,
    as fsspec does; ``publish`` is a rename (or, where writes are atomic, the temp
    file's bytes are already whole)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self.atomic_writes = any(p in _ATOMIC_WRITE_PROTOCOLS for p in protocols)

    def __repr__(self) -> str:
        return f"FsspecFS({self.fs!r})"

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)

    def local_path(self, path: str) -> str | None:
        return None

    def open_read(self, path: str) -> BinaryIO:
        return self.fs.open(path, "rb")

    def open_write(self, path: str) -> BinaryIO:
        return self.fs.open(path, "wb")

    def create_temp(self, directory: str, prefix: str = "") -> tuple[BinaryIO, str]:
        path = self.join(directory, temp_name(prefix))
        return self.open_write(path), path

    def size(self, path: str) -> int:
        return int(self.fs.size(path))

    def mtime(self, path: str) -> float:
        try:
            return float(self.fs.modified(path).timestamp())
        except NotImplementedError:
            return 0.0

    def stat(self, path: str) -> FileStat:
        info = self.fs.info(path)
        return FileStat(int(info.get("size") or 0), self.mtime(path), 1)

    def exists(self, path: str) -> bool:
        try:
            return bool(self.fs.isfile(path))
        except FileNotFoundError:
            return False

    def listdir(self, path: str) -> list[str]:
        try:
            names = self.fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted({n.rstrip("/").rsplit("/", 1)[-1] for n in names})

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)

    def rename(self, src: str, dst: str) -> None:
        self.fs.mv(src, dst)

    def remove(self, path: str) -> bool:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def touch(self, path: str) -> bool:
        if not self.exists(path):
            return False
        with contextlib.suppress(NotImplementedError, OSError, ValueError):
            self.fs.touch(path, truncate=False)
        return True

    def publish(self, tmp: str, final: str) -> bool:
        if self.exists(final) and self.size(final) == self.size(tmp):
            self.remove(tmp)
            return False
        self.rename(tmp, final)
        return True

    def put_file(self, local: str, path: str) -> None:
        self.fs.put_file(local, path)

    def get_file(self, path: str, local: str) -> None:
        self.fs.get_file(path, local)


def open_url(url: str, *, fsync: bool = False, **options: Any) -> tuple[FileSystem, str]:
    """``(filesystem, root)`` for an fsspec URL (``s3://bucket/prefix``) or a local path.

    A plain path or ``file://`` URL is the local disk (:class:`LocalFS`); any other
    scheme goes through fsspec with ``options`` (e.g. ``endpoint_url`` for s3fs given as
    ``client_kwargs``). ValidationError for an empty URL; MissingDependencyError when
    fsspec or the scheme's backend is not installed.
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise ValidationError(f"object store URL {url!r} must be a non-empty string")
    if "://" not in text or text.startswith("file://"):
        path = text[len("file://") :] if text.startswith("file://") else text
        return LocalFS(fsync=fsync), os.path.abspath(os.path.expanduser(path))
    try:
        import fsspec
        from fsspec.core import split_protocol

        protocol, root = split_protocol(text)
        # no instance cache: credentials and endpoints come from the environment, which may change
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    except ImportError as e:
        raise MissingDependencyError(
            f"the object store {text!r} needs {e.name or 'fsspec'}",
            hint="pip install 'vtrack[remote]'",
        ) from None
    except ValueError as e:
        raise ValidationError(f"object store URL {text!r}: {e}") from None
    return FsspecFS(fs), str(root).rstrip("/")
