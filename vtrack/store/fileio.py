"""Atomic file writes and lock files: the only ways vtrack changes a mutable file."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

from vtrack.errors import StoreError
from vtrack.store.owner import Owner, parse_owner, this_process

_counter = 0
#: vtrack's own randomness (never the global ``random``: user code and test frameworks own
#: that state, and a writer thread drawing from it races them); os.urandom-backed, so a
#: forked child never repeats its parent's draws.
rng = random.SystemRandom()


def unique_suffix() -> str:
    """Return a suffix unique to this process and call (for temporary names)."""
    global _counter
    _counter += 1
    return f"{os.getpid()}-{_counter}-{rng.getrandbits(32):08x}"


def atomic_write(path: Path, data: bytes, *, fsync: bool = False, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new bytes, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp-{unique_suffix()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644 if mode is None else mode)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def backoff_delays(
    total_seconds: float, first: float = 0.001, cap: float = 0.05
) -> Iterator[float]:
    """Yield jittered, exponentially growing sleep times until ``total_seconds`` have passed."""
    deadline = time.monotonic() + total_seconds
    delay = first
    while time.monotonic() < deadline:
        yield delay * (0.5 + rng.random())
        delay = min(cap, delay * 2)


class StaleLockError(StoreError):
    """A lock file is held by a process that this host can prove is gone."""


def _create_owned(path: Path, content: bytes) -> int:
    """Create ``path`` exclusively holding ``content``; return a descriptor open on it.

    Raises FileExistsError when ``path`` exists. (A kill between the create and the
    write, a few microseconds, leaves an empty lock: one of unknown owner, as git's.)
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, content)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd


def lock_owner(path: Path) -> Owner | None:
    """The vtrack process that holds the lock file ``path``, or None (absent or foreign)."""
    try:
        return parse_owner(path.read_bytes())
    except OSError:
        return None


def is_stale(path: Path) -> bool:
    """True when ``path`` is a vtrack lock whose owner this host can prove is gone."""
    owner = lock_owner(path)
    return owner is not None and not owner.is_alive()


def acquire_lock(
    path: Path, *, timeout: float, stale_seconds: float | None = None, take_over_dead: bool = False
) -> int:
    """Create the lock file ``path`` exclusively (waiting with backoff); return its descriptor.

    The lock holds this process's owner record (:mod:`vtrack.store.owner`). A lock whose
    vtrack owner is provably dead raises :class:`StaleLockError` at once (naming it and
    ``vtrack recover``), or is taken over with ``take_over_dead``. A lock of unknown
    owner (git's, another tool's) is waited for; with ``stale_seconds`` one older than
    that is taken over. Raises StoreError naming the lock when it cannot be had within
    ``timeout`` seconds.
    """
    content = this_process().to_json()
    for delay in backoff_delays(timeout):
        try:
            return _create_owned(path, content)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        except FileExistsError:
            owner = lock_owner(path)
            if owner is not None and not owner.is_alive():
                if take_over_dead:
                    remove_if_stale(path)
                    continue
                raise StaleLockError(
                    f"{path} was left by process {owner.pid}, which died while holding it",
                    hint="run 'vtrack recover' to remove stale locks",
                    path=str(path),
                    pid=owner.pid,
                ) from None
            if owner is None and stale_seconds is not None:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > stale_seconds:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    continue
            time.sleep(delay)
        except OSError as exc:
            raise StoreError(f"cannot create the lock {path}: {exc.strerror or exc}") from exc
    raise StoreError(
        f"could not lock {path} within {timeout:.0f} s; another process holds it",
        hint="if no vtrack or git process is running, the lock is stale: remove it",
    )


def remove_if_stale(path: Path) -> bool:
    """Remove the lock file ``path`` if its vtrack owner is provably dead; True if removed.

    The lock is first renamed to a private name and checked again there, so a lock that
    a live process took meanwhile is put back rather than removed.
    """
    if not is_stale(path):
        return False
    aside = path.with_name(f".{path.name}.stale-{unique_suffix()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if is_stale(aside):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        return True
    # a live lock was moved aside: put it back unless a new one was taken meanwhile
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    with contextlib.suppress(FileNotFoundError):
        os.unlink(aside)
    return False


def try_lock(path: Path) -> int | None:
    """Take the lock file ``path`` now if it is free; return its descriptor, or None.

    One attempt, no waiting: a lock held by a live process (or one of unknown owner)
    means None; a lock whose vtrack owner is provably dead is taken over. A missing
    parent folder also means None (nothing to lock in). Release with :func:`release_lock`.
    """
    content = this_process().to_json()
    for _ in range(2):
        try:
            return _create_owned(path, content)
        except FileNotFoundError:
            return None
        except FileExistsError:
            if not remove_if_stale(path):
                return None
    return None


def release_lock(path: Path, fd: int) -> None:
    """Release a lock taken with :func:`try_lock` (close, then remove the file)."""
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def lock_file(path: Path, *, timeout: float = 10.0, stale_seconds: float = 60.0) -> Iterator[int]:
    """Hold ``path`` (a ``.lock`` file created exclusively) for the duration of the block.

    Yields the open file descriptor. A lock whose owner died is taken over at once, one
    of unknown owner once it is older than ``stale_seconds``. Raises StoreError when
    the lock cannot be had in time.
    """
    fd = acquire_lock(path, timeout=timeout, stale_seconds=stale_seconds, take_over_dead=True)
    try:
        yield fd
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
