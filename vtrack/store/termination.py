"""How a process that writes runs ends when it is told to stop (SIGTERM).

A signal handler runs in the main thread between two bytecodes of whatever that thread
was doing, possibly inside a writer's critical section with its locks held. So the
handler never takes a lock and never writes: it records that the process was killed and
raises :class:`Terminated` (a ``SystemExit``), which unwinds the interrupted code and
releases its locks; the exit handlers then end every open run KILLED and the process
dies by the signal, as if no handler had been installed.

A writer's critical sections (journal appends, flushes, checkpoints) run under a
:class:`CriticalLock`. A signal that arrives while the main thread is inside one is
held back until the outermost section is left, so a section never stops half-done.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType


class Terminated(SystemExit):
    """Raised in the main thread when the process received SIGTERM."""


class _State:
    """Process-wide termination state (one per process; reset in a forked child)."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the signal that killed the process, once one did
        self.pending = False  # a signal waits for the main thread to leave a critical section
        self.depth = 0  # critical sections the main thread is inside
        self.exiting = False  # exit handlers are running: never raise again


state = _State()


def killed() -> bool:
    """True once this process received SIGTERM."""
    return state.signum is not None


def on_signal(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler: record the kill and unwind the main thread (or defer that)."""
    state.signum = signum
    if state.exiting:
        return
    if state.depth > 0:
        state.pending = True
        return
    raise Terminated(128 + signum)


def begin_exit() -> None:
    """Exit handlers started: a later signal only marks the process killed."""
    state.exiting = True


def die_by_signal_if_killed() -> None:
    """After the runs are ended: die by the signal that killed the process, if one did."""
    signum = state.signum
    if signum is None:
        return
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main thread
        return
    os.kill(os.getpid(), signum)


class CriticalLock:
    """A reentrant lock whose sections a termination signal never interrupts half-way."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> CriticalLock:
        main = threading.current_thread() is threading.main_thread()
        if main:
            state.depth += 1
        try:
            self._lock.acquire()
        except BaseException:
            if main:
                state.depth -= 1
                _raise_pending()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
        if threading.current_thread() is threading.main_thread():
            state.depth -= 1
            _raise_pending()


def _raise_pending() -> None:
    if state.depth == 0 and state.pending and not state.exiting:
        state.pending = False
        raise Terminated(128 + (state.signum or signal.SIGTERM))


def _after_fork_in_child() -> None:
    global state
    state = _State()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
