"""System metrics of a run: CPU, memory, disk, network and GPU, sampled in the background.

Turned on for one run with ``start_run(log_system_metrics=True)``, for every run of the
process with :func:`enable_system_metrics_logging`, or by
``VTRACK_ENABLE_SYSTEM_METRICS_LOGGING=1`` (in that order of precedence). A monitor's
thread reads the collectors of :mod:`vtrack.sysmetrics.collect` every
``VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL`` seconds (default
:data:`~vtrack.limits.DEFAULT_SYSTEM_METRICS_INTERVAL`) and logs the readings through
the run's writer as ordinary metrics named ``system/<name>`` (``system/<node>/<name>``
with a node id), the step counting samples from 0 as in MLflow. A run that ends more
than a second after its last sample, or before its first, gets one more sample at its
end, so a short run still has one.

**One sampler per machine and run.** Every process of a run (the ranks of a
distributed job) that wants system metrics starts a monitor, but only the monitor that
holds the node lock — ``sysmetrics-<host>.lock`` in the run's live folder
``.git/vtrack/live/<run_id>/``, created exclusively with its owner's pid — samples. The
others try to take it at every interval: when the holder ends (it removes the lock) or
dies (its pid is gone, so the lock is stale), another rank of that machine continues,
its steps following the run's last system step. The sampler sums the resident memory
of all the run's processes on its machine (``process_memory_usage_megabytes``) and
counts them (``process_count``). When a launcher says the job spans several machines
(torchrun's ``WORLD_SIZE`` above ``LOCAL_WORLD_SIZE``, ``SLURM_NNODES`` > 1) the host
name becomes the node id, so that machines do not log over each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack import config
from vtrack.errors import ValidationError
from vtrack.limits import DEFAULT_SYSTEM_METRICS_INTERVAL, SYSTEM_METRICS_FINAL_SAMPLE_AFTER
from vtrack.store.fileio import release_lock, try_lock
from vtrack.store.journal import list_writers
from vtrack.store.owner import HOST
from vtrack.store.writer import now_ms
from vtrack.sysmetrics.collect import Collector, build_collectors, sample_all

if TYPE_CHECKING:
    from vtrack.store.runs import RunRepository

log = logging.getLogger("vtrack")

#: Prefix of every system metric's name.
PREFIX = "system/"

_UNSET = object()
_enabled: bool | None = None
_interval: float | None = None
_node_id: object = _UNSET
_monitors: dict[str, SystemMetricsMonitor] = {}
_monitors_lock = threading.Lock()


# -- process-wide switches (MLflow's names) -----------------------------------------
def enable_system_metrics_logging() -> None:
    """Sample system metrics for every run this process starts (unless it passes
    ``log_system_metrics=False``)."""
    global _enabled
    _enabled = True


def disable_system_metrics_logging() -> None:
    """Sample system metrics only for runs started with ``log_system_metrics=True``."""
    global _enabled
    _enabled = False


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Seconds between samples for monitors started from now on; None restores the
    environment's value or the default. Raises ValidationError unless positive."""
    global _interval
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
            raise ValidationError(
                f"the sampling interval must be a positive number, not {interval!r}"
            )
        interval = float(interval)
    _interval = interval


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Name this machine in metric names (``system/<node_id>/…``); None restores the default."""
    global _node_id
    if node_id is not None and (
        not isinstance(node_id, str) or not node_id or _safe(node_id) != node_id
    ):
        raise ValidationError(
            f"node id {node_id!r} must be a non-empty name of letters, digits, '.', '_' or '-'"
        )
    _node_id = _UNSET if node_id is None else node_id


def wanted(explicit: bool | None) -> bool:
    """Whether a run started with ``log_system_metrics=explicit`` gets system metrics."""
    if explicit is not None:
        return bool(explicit)
    if _enabled is not None:
        return _enabled
    return bool(config.env_system_metrics_enabled())


def sampling_interval() -> float:
    """The interval new monitors use."""
    if _interval is not None:
        return _interval
    return config.env_system_metrics().interval or DEFAULT_SYSTEM_METRICS_INTERVAL


def node_id() -> str | None:
    """The node id new monitors put in metric names (None: plain ``system/<name>``)."""
    if _node_id is not _UNSET:
        return _node_id  # type: ignore[return-value]
    env = config.env_system_metrics()
    if env.node_id:
        return env.node_id
    return _safe(HOST) if env.multi_node else None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip(".")


def node_lock_path(repo: RunRepository, run_id: str) -> Path:
    """The node lock of this machine for ``run_id`` (see the module's docstring)."""
    return repo.store.run_live_dir(run_id) / f"sysmetrics-{_safe(HOST) or 'host'}.lock"


# -- the monitor ---------------------------------------------------------------------
class SystemMetricsMonitor:
    """Samples this machine for one run while it holds the machine's node lock."""

    def __init__(
        self,
        repo: RunRepository,
        run_id: str,
        *,
        interval: float | None = None,
        node: str | None | object = _UNSET,
        collectors: list[Collector] | None = None,
    ) -> None:
        self.repo = repo
        self.run_id = run_id
        self.interval = float(interval) if interval is not None else sampling_interval()
        node_name = node_id() if node is _UNSET else node
        self.prefix = PREFIX + (f"{node_name}/" if node_name else "")
        self.lock_path = node_lock_path(repo, run_id)
        self._given_collectors = collectors
        self._collectors: list[Collector] | None = None
        self._fd: int | None = None
        self._step = 0
        self._last_sample = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: CPU seconds the sampler thread used, known once it has stopped
        self.thread_cpu_seconds: float | None = None
        #: samples logged by this monitor
        self.samples = 0

    @property
    def sampling(self) -> bool:
        """True while this monitor holds the node lock (it is the one that samples)."""
        return self._fd is not None

    def start(self) -> None:
        """Start the background thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._loop, name="vtrack-sysmetrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling: a last sample if one is due, then the node lock is released."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        try:
            self._try_acquire()
            while not self._stop.wait(self.interval):
                if self._writer() is None:
                    return  # the run was ended without stopping us (client.set_terminated)
                if self._fd is None:
                    self._try_acquire()
                else:
                    self.sample_and_log()
            due = (
                self.samples == 0
                or time.monotonic() - self._last_sample >= SYSTEM_METRICS_FINAL_SAMPLE_AFTER
            )
            if self._fd is not None and due and self._writer() is not None:
                self.sample_and_log()
        except Exception as exc:  # noqa: BLE001 - system metrics never break a run
            log.warning("vtrack: system metrics of run %s stopped: %s", self.run_id, exc)
        finally:
            if self._fd is not None:
                # into the journal before the lock goes: the next sampler reads the steps there
                w = self.repo.own_writer(self.run_id)
                if w is not None and not w.closed:
                    with contextlib.suppress(Exception):
                        w.flush()
            self._release()
            self.thread_cpu_seconds = time.thread_time() - cpu0

    def _writer(self) -> object | None:
        w = self.repo.own_writer(self.run_id)
        return None if w is None or w.closed else w

    def _try_acquire(self) -> None:
        fd = try_lock(self.lock_path)
        if fd is None:
            return
        try:
            self._step = self._next_step()
            if self._collectors is None:
                self._collectors = (
                    self._given_collectors
                    if self._given_collectors is not None
                    else build_collectors(self._pids)
                )
        except BaseException:
            release_lock(self.lock_path, fd)
            raise
        self._last_sample = time.monotonic()
        self._fd = fd  # last: ``sampling`` is true only once a sample can be taken

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            release_lock(self.lock_path, fd)

    def _next_step(self) -> int:
        """One past the highest system step this run already has (another rank's or a
        resumed run's samples), so a sampler that takes over continues the count."""
        # this process's writer (flushed first) and every rank's journal on top of the tip
        records = [self.repo.state(self.run_id).record]
        records.append(self.repo.store.read_run_state(self.run_id)[1])
        top = -1
        for record in records:
            for key, hist in record.histories.items():
                if not key.startswith(self.prefix) or "/" in key[len(self.prefix) :]:
                    continue
                if hist.latest is not None:
                    top = max(top, hist.latest[0])
                else:  # a history loaded from a commit: its latest step is read on demand
                    top = max([top, *(row[0] for row in record.iter_history(key))])
        return top + 1

    def _pids(self) -> Iterable[int]:
        """The live processes on this machine that write the run (this one included)."""
        pids = {os.getpid()}
        for w in list_writers(self.repo.store.run_live_dir(self.run_id)):
            if w.owner is not None and w.owner.host == HOST and w.owner.is_alive():
                pids.add(w.owner.pid)
        return pids

    def sample_and_log(self) -> dict[str, float]:
        """Take one sample now and log it at the next step; return what was logged."""
        writer = self.repo.own_writer(self.run_id)
        if writer is None or writer.closed or self._collectors is None:
            return {}
        values = sample_all(self._collectors)
        ts = now_ms()
        points = [(self.prefix + k, float(v), self._step, ts) for k, v in sorted(values.items())]
        if points:
            writer.log_metrics(points)
            self._step += 1
            self.samples += 1
        self._last_sample = time.monotonic()
        return {p[0]: p[1] for p in points}


# -- the monitors of this process ----------------------------------------------------
def start(repo: RunRepository, run_id: str) -> SystemMetricsMonitor | None:
    """Start sampling for ``run_id`` (no-op if this process already does); never raises.

    Returns the monitor, or None if it could not be started (a warning says why).
    """
    with _monitors_lock:
        mon = _monitors.get(run_id)
        if mon is not None:
            return mon
        try:
            mon = SystemMetricsMonitor(repo, run_id)
            mon.start()
        except Exception as exc:  # noqa: BLE001 - system metrics never break start_run
            log.warning("vtrack: system metrics for run %s not started: %s", run_id, exc)
            return None
        _monitors[run_id] = mon
        return mon


def stop(run_id: str) -> SystemMetricsMonitor | None:
    """Stop the monitor of ``run_id`` if this process runs one; return it."""
    with _monitors_lock:
        mon = _monitors.pop(run_id, None)
    if mon is not None:
        mon.stop()
    return mon


def stop_all() -> None:
    """Stop every monitor of this process."""
    with _monitors_lock:
        mons = list(_monitors.values())
        _monitors.clear()
    for mon in mons:
        mon.stop()


def monitor_of(run_id: str) -> SystemMetricsMonitor | None:
    """This process's monitor of ``run_id``, or None."""
    return _monitors.get(run_id)


def _after_fork_in_child() -> None:
    # The threads did not survive the fork and the locks are the parent's: forget both.
    global _monitors_lock
    _monitors_lock = threading.Lock()
    with contextlib.suppress(Exception):
        _monitors.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = [
    "PREFIX",
    "SystemMetricsMonitor",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "monitor_of",
    "node_id",
    "sampling_interval",
    "set_system_metrics_node_id",
    "set_system_metrics_sampling_interval",
    "start",
    "stop",
    "stop_all",
    "wanted",
]
