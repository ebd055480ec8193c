"""The stat cache: skip rehashing files whose stat says they have not changed.

A :class:`StatCache` maps ``(absolute path, st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)`` to the file's xxh3-128 digest in a SQLite file (in production
``.git/vtrack/statcache.sqlite``). :class:`NoStatCache` has the same interface and
never caches; both are interchangeable wherever a cache is accepted.

What the cache promises:

- It never vouches for content that changed. Every stat field must match, and ctime
  is part of the key, so a same-size rewrite whose mtime was put back with
  ``os.utime`` still misses (the kernel moves ctime on every write and every utime).
- Git's "racily clean" rule: an entry is trusted only when both the file's mtime and
  ctime are older than the racy margin (:data:`RACY_MARGIN_NS` unless the cache was
  built with another) before the moment the entry was written. A file touched within that window could change again inside the same
  timestamp tick without its stat moving, so it is rehashed (and stored again once
  it is old enough).
- An entry is stored only when the file's stat was the same before and after it was
  read, so a file written while being hashed is never cached.
- It is only a cache: deleting the database changes no result. A locked, unreadable
  or corrupt database degrades to hashing, never to an error; a corrupt one or one
  with an unknown schema version is dropped and rebuilt.
- Several processes may share one database (WAL journal, busy timeout).

Errors about the *files* (missing, unreadable, not a regular file) are raised as
:class:`~vtrack.errors.DatasetError` naming the file; ``fields["reason"]`` is one of
``"missing"``, ``"unreadable"`` or ``"not_a_file"``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, NamedTuple

import xxhash

from vtrack.errors import DatasetError
from vtrack.hashing import ALGORITHM, hash_fd
from vtrack.limits import HASH_CHUNK_BYTES, RACY_MARGIN_NS

log = logging.getLogger(__name__)

#: Version of the SQLite layout; any other version found on disk is dropped and rebuilt.
SCHEMA_VERSION = 1
#: Seconds a cache operation waits for another process's lock before giving up on the cache.
BUSY_TIMEOUT_SECONDS = 2.0
#: Threads hashing large files in :meth:`BaseStatCache.digest_many`.
HASH_WORKERS = 4
#: Files at least this large go to the thread pool; smaller ones are hashed inline,
#: because for tiny files threads only add GIL hand-offs (measured ~4x slower).
PARALLEL_MIN_BYTES = 1024 * 1024
_LOOKUP_BATCH = 500
_RANGE_SCAN_MIN = 2000
_U64 = 1 << 64
_I64_LIMIT = 1 << 63
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS |= getattr(os, "O_BINARY", 0)
_PREFIX = ALGORITHM + ":"

#: ``progress(files_done, bytes_done)``, called from the calling thread.
ProgressCallback = Callable[[int, int], None]
#: The wall clock in nanoseconds, in the time base of file timestamps (``time.time_ns``).
Clock = Callable[[], int]

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "RACY_MARGIN_NS",
    "SCHEMA_VERSION",
    "BaseStatCache",
    "Clock",
    "FileStat",
    "NoStatCache",
    "ProgressCallback",
    "StatCache",
    "file_error",
    "hash_regular_file",
    "stat_regular",
]


class FileStat(NamedTuple):
    """The stat fields the cache keys on (dev and ino folded into SQLite's int64 range)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        dev, ino = st.st_dev, st.st_ino
        return cls(
            dev - _U64 if dev >= _I64_LIMIT else dev,
            ino - _U64 if ino >= _I64_LIMIT else ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )

    def is_racy(self, written_ns: int, margin_ns: int = RACY_MARGIN_NS) -> bool:
        """True if the file was touched too close to ``written_ns`` to trust its stat."""
        return max(self.mtime_ns, self.ctime_ns) >= written_ns - margin_ns


def file_error(path: str, exc: OSError | None = None, reason: str = "unreadable") -> DatasetError:
    """Build the DatasetError for a file that cannot be hashed, naming the file."""
    if reason == "missing":
        if os.path.islink(path):
            msg = f"input file {path} is a dangling symbolic link (its target does not exist)"
        else:
            msg = f"input file {path} does not exist"
        err = DatasetError(msg, path=path, reason=reason)
    elif reason == "not_a_file":
        err = DatasetError(
            f"input {path} is not a regular file (a FIFO, socket or device cannot be hashed)",
            hint="exclude it or pass a regular file",
            path=path,
            reason=reason,
        )
    else:
        detail = exc.strerror if exc is not None and exc.strerror else str(exc)
        err = DatasetError(
            f"cannot read input file {path}: {detail}",
            hint="check its permissions",
            path=path,
            reason=reason,
        )
    if exc is not None:
        err.__cause__ = exc
    return err


def stat_regular(path: str) -> os.stat_result:
    """``os.stat`` (following symlinks) that insists on a regular file; DatasetError otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise file_error(path, exc, "missing") from exc
    except NotADirectoryError as exc:
        raise file_error(path, exc, "missing") from exc
    except OSError as exc:
        raise file_error(path, exc) from exc
    if not stat_mod.S_ISREG(st.st_mode):
        raise file_error(path, None, "not_a_file")
    return st


_local = threading.local()


def _buffer() -> bytearray:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(HASH_CHUNK_BYTES)
    return buf


def hash_regular_file(
    path: str, before: os.stat_result | None = None
) -> tuple[str, int, FileStat | None]:
    """Hash the regular file at ``path``.

    Returns ``(digest, size, stat)`` where ``stat`` is the file's stat as it was while
    it was read, or None when the file changed during the read (the digest is then of
    whatever bytes were read and must not be cached). ``before`` is an ``os.stat`` of
    ``path`` the caller took just now (it spares one system call per file): the read
    counts as stable only if the file's stat after the read still equals it, so a
    file replaced or rewritten in between is hashed but never cached. Raises
    DatasetError naming the file if it is missing, unreadable or not a regular file;
    never blocks on a FIFO.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise file_error(path, exc, "missing") from exc
    except OSError as exc:
        raise file_error(path, exc) from exc
    try:
        if before is None:
            before = os.fstat(fd)
        if not stat_mod.S_ISREG(before.st_mode):
            raise file_error(path, None, "not_a_file")
        if before.st_size < HASH_CHUNK_BYTES:
            # Small files: one right-sized read beats a reused large buffer. A short
            # read of a regular file means end of file, so no extra read to see EOF.
            want = before.st_size + 1
            data = os.read(fd, want)
            size = len(data)
            if size < want:  # the whole file in one read: hash it in one call
                digest = _PREFIX + xxhash.xxh3_128_hexdigest(data)
            else:  # it grew since ``before``: read on (the stat check below rejects it)
                h = xxhash.xxh3_128(data)
                while data := os.read(fd, HASH_CHUNK_BYTES):
                    h.update(data)
                    size += len(data)
                digest = _PREFIX + h.hexdigest()
        else:
            if hasattr(os, "posix_fadvise"):  # a larger readahead window on real disks
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            digest, size = hash_fd(fd, _buffer())
        after = os.fstat(fd)
    except DatasetError:
        raise
    except OSError as exc:
        raise file_error(path, exc) from exc
    finally:
        os.close(fd)
    if not stat_mod.S_ISREG(after.st_mode):  # swapped for a FIFO or device after ``before``
        raise file_error(path, None, "not_a_file")
    stable = (
        size == before.st_size == after.st_size and after.st_ino == before.st_ino
        and after.st_mtime_ns == before.st_mtime_ns and after.st_ctime_ns == before.st_ctime_ns
        and after.st_dev == before.st_dev
    )  # fmt: skip
    return digest, size, FileStat.of(before) if stable else None


def _i64(v: int) -> int:
    """Fold an unsigned 64-bit stat field into SQLite's signed INTEGER range."""
    return v - _U64 if v >= _I64_LIMIT else v


class BaseStatCache:
    """The stat-cache interface; subclasses provide lookup and store.

    Counters (instrumentation, reset never): ``hits`` (digests served from the cache),
    ``misses`` (files hashed), ``racy`` (hashed files not stored because they were
    touched within the racy window), ``stored`` (entries written), ``errors``
    (database failures tolerated by falling back to hashing).

    ``clock`` is the wall clock the cache reads when it writes an entry and judges a
    file racy; ``racy_margin_ns`` is how much older than that moment a file's mtime and
    ctime must be for its entry to be trusted. Both are parameters so that tests can
    move time forward instead of sleeping; production code keeps the defaults.
    """

    def __init__(
        self, *, clock: Clock = time.time_ns, racy_margin_ns: int = RACY_MARGIN_NS
    ) -> None:
        if not isinstance(racy_margin_ns, int) or racy_margin_ns < 0:
            raise ValueError(f"racy_margin_ns must be a non-negative int, not {racy_margin_ns!r}")
        self._clock = clock
        self.racy_margin_ns = racy_margin_ns
        self.hits = 0
        self.misses = 0
        self.racy = 0
        self.stored = 0
        self.errors = 0
        self._pending: list[tuple[Any, ...]] = []
        self._batch_depth = 0

    # -- what subclasses provide -------------------------------------------------
    def _lookup(self, paths: Sequence[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """Return rows ``path -> (path, dev, ino, size, mtime_ns, ctime_ns, digest, written_ns)``.

        ``paths`` are absolute and fs-encoded; rows for other paths may be included.
        """
        return {}

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        """Persist rows; must swallow database failures."""

    # -- public interface -----------------------------------------------------
    def digest(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Return ``(digest, size)`` of the regular file at ``path``, hashing when needed.

        Raises DatasetError naming the file if it is missing, unreadable or not a
        regular file. Never raises because of the cache itself.
        """
        return self.digest_many([path])[0]

    def digest_many(
        self,
        paths: Iterable[str | os.PathLike[str]],
        progress: ProgressCallback | None = None,
        *,
        stats: Sequence[os.stat_result] | None = None,
    ) -> list[tuple[str, int]]:
        """Return ``(digest, size)`` for each path, in order.

        Cache lookups and writes happen in one transaction each; files that must be
        hashed are read inline when small and by a pool of :data:`HASH_WORKERS`
        threads when large. ``progress(files_done, bytes_done)`` is called from the
        calling thread as files complete. The first file that cannot be hashed raises
        DatasetError naming it. ``stats``, if given, are ``os.stat`` results the caller
        just took for the same paths (it saves a second stat per file).
        """
        isabs, abspath = os.path.isabs, os.path.abspath
        abspaths = [p if isabs(p) else abspath(p) for p in (os.fspath(q) for q in paths)]
        now, margin = self._clock(), self.racy_margin_ns
        if stats is None:
            stats = [stat_regular(p) for p in abspaths]
        elif len(stats) != len(abspaths):
            raise ValueError("digest_many: stats and paths differ in length")
        encoded = [os.fsencode(p) for p in abspaths]
        rows = self._lookup(encoded) if abspaths else {}
        results: list[tuple[str, int] | None] = [None] * len(abspaths)
        small: list[int] = []
        large: list[int] = []
        files_done = bytes_done = 0
        for i, st in enumerate(stats):
            row = rows.get(encoded[i]) if rows else None
            if row is not None:
                fst = FileStat.of(st)
                if row[1:6] == fst and max(fst.mtime_ns, fst.ctime_ns) < row[7] - margin:
                    results[i] = (row[6], fst.size)
                    self.hits += 1
                    files_done += 1
                    bytes_done += fst.size
                    continue
            if st.st_size >= PARALLEL_MIN_BYTES:
                large.append(i)
            else:
                small.append(i)
        if progress is not None and files_done:
            progress(files_done, bytes_done)

        new_rows: list[tuple[Any, ...]] = []

        def record(i: int, res: tuple[str, int, FileStat | None]) -> None:
            nonlocal files_done, bytes_done
            digest, size, fst = res
            results[i] = (digest, size)
            self.misses += 1
            files_done += 1
            bytes_done += size
            if fst is None or max(fst.mtime_ns, fst.ctime_ns) >= now - margin:
                self.racy += 1
            else:
                new_rows.append((encoded[i], *fst, digest, now))
            if progress is not None:
                progress(files_done, bytes_done)

        pool: ThreadPoolExecutor | None = None
        try:
            futures: dict[Future[tuple[str, int, FileStat | None]], int] = {}
            if len(large) > 1:
                pool = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="vtrack-hash")
                futures = {pool.submit(hash_regular_file, abspaths[i], stats[i]): i for i in large}
            else:
                small.extend(large)
            for i in small:
                record(i, hash_regular_file(abspaths[i], stats[i]))
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    record(futures[fut], fut.result())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if new_rows:
            self._pending.extend(new_rows)
            if self._batch_depth == 0:
                self.flush()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    @contextmanager
    def batch(self) -> Iterator[BaseStatCache]:
        """Defer cache writes made inside the block to one transaction at its end."""
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self.flush()

    def flush(self) -> None:
        """Write pending entries now (in one transaction); failures are tolerated."""
        rows, self._pending = self._pending, []
        if rows:
            self._write(rows)

    def close(self) -> None:
        """Flush pending entries and release resources; safe to call twice."""
        self.flush()

    def __enter__(self) -> BaseStatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoStatCache(BaseStatCache):
    """A stat cache that never caches: every :meth:`digest` hashes the file."""


class StatCache(BaseStatCache):
    """A persistent stat cache in the SQLite file ``db_path`` (created with its folder).

    ``clock`` and ``racy_margin_ns`` are as for :class:`BaseStatCache` (entries record
    the clock's time when they are written, and a later cache with the real clock judges
    them by it); ``busy_timeout`` is how long to wait for another process's lock before
    treating the cache as unavailable for that operation.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        clock: Clock = time.time_ns,
        racy_margin_ns: int = RACY_MARGIN_NS,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(clock=clock, racy_margin_ns=racy_margin_ns)
        self.db_path = os.fspath(db_path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._open()

    # -- connection and schema -------------------------------------------------
    def _open(self) -> None:
        try:
            self._conn = self._connect()
            return
        except sqlite3.OperationalError as exc:
            if not _is_corrupt(exc):
                self._give_up("open", exc)
                return
            corrupt: sqlite3.Error = exc
        except sqlite3.DatabaseError as exc:
            corrupt = exc
        except OSError as exc:
            self._give_up("open", exc)
            return
        log.warning("stat cache %s is corrupt (%s); rebuilding it", self.db_path, corrupt)
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(self.db_path + suffix)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._give_up("rebuild", exc)
                return
        try:
            self._conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            self._give_up("rebuild", exc)

    def _connect(self) -> sqlite3.Connection:
        parent = os.path.dirname(os.path.abspath(self.db_path))
        os.makedirs(parent, exist_ok=True)
        conn = sqlite3.connect(
            self.db_path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        def version() -> int | None:
            try:
                row = conn.execute("SELECT version FROM schema_version").fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
            return row[0] if row else None

        if version() == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version() != SCHEMA_VERSION:  # re-check under the write lock
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type='table' "
                        "AND name NOT LIKE 'sqlite_%'"
                    )
                ]
                for t in tables:
                    conn.execute(f'DROP TABLE IF EXISTS "{t}"')
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                conn.execute(
                    "CREATE TABLE entries ("
                    " path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,"
                    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                    " ctime_ns INTEGER NOT NULL, digest TEXT NOT NULL,"
                    " written_ns INTEGER NOT NULL) WITHOUT ROWID"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _give_up(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("stat cache %s unavailable (%s: %s); hashing instead", self.db_path, what, exc)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None

    @property
    def available(self) -> bool:
        """True while the database is usable; False once it has been given up on."""
        return self._conn is not None

    # -- lookup and store ----------------------------------------------------
    def _lookup(self, paths: Sequence[bytes]) -> dict[bytes, tuple[Any, ...]]:
        query = "SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest, written_ns FROM entries"
        out: dict[bytes, tuple[Any, ...]] = {}
        with self._lock:
            conn = self._conn
            if conn is None:
                return out
            try:
                conn.execute("BEGIN")
                try:
                    if len(paths) > _RANGE_SCAN_MIN:
                        # Many files under one folder: one index range scan beats
                        # thousands of point lookups.
                        prefix = _common_folder(paths)
                        upper = prefix[:-1] + b"0"  # the byte after "/"
                        for row in conn.execute(
                            f"{query} WHERE path >= ? AND path < ?", (prefix, upper)
                        ):
                            out[row[0]] = row
                    else:
                        for start in range(0, len(paths), _LOOKUP_BATCH):
                            chunk = paths[start : start + _LOOKUP_BATCH]
                            marks = ",".join("?" * len(chunk))
                            for row in conn.execute(f"{query} WHERE path IN ({marks})", chunk):
                                out[row[0]] = row
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._tolerate("lookup", exc)
                return {}
        return out

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT OR REPLACE INTO entries (path, dev, ino, size, mtime_ns,"
                        " ctime_ns, digest, written_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self.stored += len(rows)
            except sqlite3.Error as exc:
                self._tolerate("write", exc)

    def _tolerate(self, what: str, exc: sqlite3.Error) -> None:
        """A lock costs this operation only; anything else retires the cache."""
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            self.errors += 1
            log.info("stat cache %s busy during %s; skipped", self.db_path, what)
            try:
                if self._conn is not None and self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return
        self._give_up(what, exc)

    def close(self) -> None:
        """Flush pending entries and close the database; safe to call twice."""
        self.flush()
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass
                self._conn = None


def _common_folder(paths: Sequence[bytes]) -> bytes:
    """The longest ``/``-terminated prefix shared by all absolute ``paths``."""
    lo, hi = min(paths), max(paths)  # the common prefix of all is that of these two
    n = 0
    for a, b in zip(lo, hi, strict=False):
        if a != b:
            break
        n += 1
    return lo[: lo.rfind(b"/", 0, n + 1 if n < len(lo) else n) + 1] or b"/"


def _is_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text
