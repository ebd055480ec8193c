"""Atomic file writes and lock files: the only ways vtrack changes a mutable file."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

from vtrack.errors import StoreError

_counter = 0


def unique_suffix() -> str:
    """Return a suffix unique to this process and call (for temporary names)."""
    global _counter
    _counter += 1
    return f"{os.getpid()}-{_counter}-{random.getrandbits(32):08x}"


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


def backoff_delays(total_seconds: float, first: float = 0.001, cap: float = 0.05) -> Iterator[float]:
    """Yield jittered, exponentially growing sleep times until ``total_seconds`` have passed."""
    deadline = time.monotonic() + total_seconds
    delay = first
    while time.monotonic() < deadline:
        yield delay * (0.5 + random.random())
        delay = min(cap, delay * 2)


def acquire_lock(path: Path, *, timeout: float, stale_seconds: float | None = None) -> int:
    """Create ``path`` exclusively (waiting with backoff) and return its open descriptor.

    With ``stale_seconds``, a lock file older than that is taken over (its owner died);
    without, an old lock is waited for like any other (git's rule for ref locks).
    Raises StoreError naming the lock when it cannot be had within ``timeout`` seconds.
    """
    for delay in backoff_delays(timeout):
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if stale_seconds is not None:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > stale_seconds:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    continue
            time.sleep(delay)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
    raise StoreError(
        f"could not lock {path} within {timeout:.0f} s; another process holds it",
        hint="if no vtrack or git process is running, the lock is stale: remove it",
    )


@contextlib.contextmanager
def lock_file(path: Path, *, timeout: float = 10.0, stale_seconds: float = 60.0) -> Iterator[int]:
    """Hold ``path`` (a ``.lock`` file created exclusively) for the duration of the block.

    Yields the open file descriptor. A lock older than ``stale_seconds`` is taken
    over (its owner died). Raises StoreError when the lock cannot be had in time.
    """
    fd = acquire_lock(path, timeout=timeout, stale_seconds=stale_seconds)
    try:
        yield fd
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
