"""The fluent API's process state: the active-run stacks, their ending, exit and signals.

Each thread has its own stack of active runs; a thread that started none logs into the
main thread's active run. Interpreter exit ends active runs FINISHED, an uncaught
exception ends them FAILED, SIGTERM ends them KILLED (see :mod:`vtrack.store.termination`:
the handler takes no lock, it unwinds the main thread and the exit handlers end the runs).
A forked child starts with a fresh session. :mod:`vtrack.fluent` is the functions over it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from _thread import get_ident
from types import TracebackType
from typing import Any

from vtrack import sysmetrics
from vtrack.client import TrackingClient
from vtrack.entities import Run, RunStatus
from vtrack.store import termination


class ActiveRun:
    """A run started by :func:`start_run`; ends itself when used as a context manager."""

    def __init__(self, run: Run) -> None:
        self._run = run
        #: the run's id (read on every fluent logging call)
        self.run_id = run.info.run_id

    @property
    def info(self) -> Any:
        """The run's info as it was when started."""
        return self._run.info

    @property
    def data(self) -> Any:
        """The run's data as it was when started (use get_run for current data)."""
        return self._run.data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        state.end_run_id(self._run.info.run_id, status.value)

    def __repr__(self) -> str:
        return f"<ActiveRun {self._run.info.run_id} {self._run.info.run_name!r}>"


#: The main thread's id (re-read in a forked child): a cheaper test than current_thread().
MAIN_IDENT = threading.main_thread().ident


class Session:
    """Process state of the fluent API."""

    def __init__(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.client: TrackingClient | None = None
        self.local = threading.local()
        self.main_stack: list[ActiveRun] = []
        self.last_run_id: str | None = None
        self.failed = False
        self.lock = threading.RLock()

    def get_client(self) -> TrackingClient:
        if self.client is None:
            self.client = TrackingClient(self.tracking_uri)
        return self.client

    def stack(self) -> list[ActiveRun]:
        if get_ident() == MAIN_IDENT:
            return self.main_stack
        st = getattr(self.local, "stack", None)
        if st is None:
            st = self.local.stack = []
        return st

    def current(self) -> ActiveRun | None:
        st = self.stack()
        if st:
            return st[-1]
        if self.main_stack:
            return self.main_stack[-1]
        return None

    def end_run_id(self, run_id: str, status: str) -> None:
        with self.lock:
            for st in (self.stack(), self.main_stack):
                for i, r in enumerate(st):
                    if r.info.run_id == run_id:
                        # children still open end with their parent
                        for child in reversed(st[i + 1 :]):
                            sysmetrics.stop(child.info.run_id)
                            self._refresh_environment(child.info.run_id)
                            self.get_client().set_terminated(child.info.run_id, status)
                        del st[i:]
                        sysmetrics.stop(run_id)
                        self._refresh_environment(run_id)
                        self.get_client().set_terminated(run_id, status)
                        self.last_run_id = run_id
                        return

    def _refresh_environment(self, run_id: str) -> None:
        """Record the distributions imported while the run ran (those after start too)."""
        try:
            self.get_client().refresh_environment(run_id)
        except Exception as exc:  # noqa: BLE001 - ending the run matters more
            print(f"vtrack: could not update the environment of {run_id}: {exc}", file=sys.stderr)

    def end_all(self, status: str) -> None:
        with self.lock:
            st = self.main_stack
            while st:
                run = st.pop()
                try:
                    sysmetrics.stop(run.info.run_id)
                    self._refresh_environment(run.info.run_id)
                    self.get_client().set_terminated(run.info.run_id, status)
                except Exception as exc:  # noqa: BLE001 - shutting down
                    print(f"vtrack: could not end run {run.info.run_id}: {exc}", file=sys.stderr)
                self.last_run_id = run.info.run_id


#: This process's session; replaced by :func:`reset` and in a forked child.
state = Session()


def reset() -> None:
    """End and forget every active run and setting (test isolation)."""
    global state
    try:
        sysmetrics.stop_all()
        state.end_all(RunStatus.FINISHED.value)
    finally:
        from vtrack.store import snapshot
        from vtrack.store.writer import live_writers

        for w in live_writers():
            try:
                w.end(RunStatus.FINISHED.value)
            except Exception:  # noqa: BLE001
                w.abandon()
        snapshot.clear_cache()
        state = Session()


# -- process exit ------------------------------------------------------------------
handlers_installed = False


def install_handlers() -> None:
    global handlers_installed
    if handlers_installed:
        return
    handlers_installed = True
    previous_hook = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        state.failed = True
        if issubclass(exc_type, KeyboardInterrupt):
            state.end_all(RunStatus.KILLED.value)
        else:
            state.end_all(RunStatus.FAILED.value)
        previous_hook(exc_type, exc, tb)

    sys.excepthook = hook
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, termination.on_signal)
        except (ValueError, OSError):
            pass


def _at_exit() -> None:
    termination.begin_exit()
    if termination.killed():
        status = RunStatus.KILLED.value
    else:
        status = RunStatus.FAILED.value if state.failed else RunStatus.FINISHED.value
    state.end_all(status)


atexit.register(_at_exit)


def _after_fork_in_child() -> None:
    global state, MAIN_IDENT
    MAIN_IDENT = threading.main_thread().ident
    state = Session()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
