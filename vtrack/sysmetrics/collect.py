"""What a system-metrics sample reads: psutil, the Linux ``/proc`` files, NVIDIA's NVML.

Each collector returns ``{name: value}`` without the ``system/`` prefix, under MLflow's
names where MLflow has one (``cpu_utilization_percentage``,
``system_memory_usage_megabytes``, ``gpu_0_utilization_percentage``, …). Megabytes
are 10^6 bytes, as in MLflow. A library or device that is missing means a collector
that is not built, never an error; a reading that fails once is left out of that sample.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger("vtrack")

MB = 1e6


class Collector(Protocol):
    """One source of readings."""

    name: str

    def sample(self) -> dict[str, float]:
        """Read the current values."""
        ...


def _rss_from_proc(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _meminfo() -> dict[str, int] | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            out = {}
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[key] = int(parts[0]) * 1024
            return out
    except (OSError, ValueError):
        return None


class PsutilCollector:
    """CPU, system memory, disk usage and I/O, network I/O, through psutil.

    Disk and network I/O are counted from when the collector was made (MLflow's rule
    for network traffic), so a run's figures start at 0. CPU utilisation is the share
    of the time between two samples that the CPUs were busy.
    """

    name = "psutil"

    def __init__(self, psutil: Any, disk_path: str = os.sep) -> None:
        self.psutil = psutil
        self.disk_path = disk_path
        self._cpu = self._cpu_times()
        net = self._net()
        self._net0 = net
        self._disk0 = self._disk_io()

    def _cpu_times(self) -> tuple[float, float] | None:
        try:
            t = self.psutil.cpu_times()
        except Exception:  # noqa: BLE001 - a reading that fails is left out
            return None
        idle = t.idle + getattr(t, "iowait", 0.0)
        return sum(t), idle

    def _net(self) -> tuple[int, int] | None:
        try:
            n = self.psutil.net_io_counters()
        except Exception:  # noqa: BLE001
            return None
        return None if n is None else (n.bytes_recv, n.bytes_sent)

    def _disk_io(self) -> tuple[int, int] | None:
        try:
            d = self.psutil.disk_io_counters()
        except Exception:  # noqa: BLE001
            return None
        return None if d is None else (d.read_bytes, d.write_bytes)

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        cpu = self._cpu_times()
        if cpu is not None and self._cpu is not None:
            total, idle = cpu[0] - self._cpu[0], cpu[1] - self._cpu[1]
            if total > 0:
                out["cpu_utilization_percentage"] = round(100.0 * (1.0 - idle / total), 1)
        self._cpu = cpu
        try:
            mem = self.psutil.virtual_memory()
            out["system_memory_usage_megabytes"] = round(mem.used / MB, 1)
            out["system_memory_usage_percentage"] = round(mem.used / mem.total * 100, 1)
        except Exception:  # noqa: BLE001
            pass
        out.update(_disk_usage(self.disk_path))
        disk = self._disk_io()
        if disk is not None and self._disk0 is not None:
            out["disk_read_megabytes"] = round((disk[0] - self._disk0[0]) / MB, 3)
            out["disk_write_megabytes"] = round((disk[1] - self._disk0[1]) / MB, 3)
        net = self._net()
        if net is not None and self._net0 is not None:
            out["network_receive_megabytes"] = round((net[0] - self._net0[0]) / MB, 3)
            out["network_transmit_megabytes"] = round((net[1] - self._net0[1]) / MB, 3)
        return out


def _disk_usage(path: str) -> dict[str, float]:
    try:
        du = shutil.disk_usage(path)
    except OSError:
        return {}
    return {
        "disk_usage_percentage": round(du.used / du.total * 100, 1) if du.total else 0.0,
        "disk_usage_megabytes": round(du.used / MB, 1),
        "disk_available_megabytes": round(du.free / MB, 1),
    }


class FallbackCollector:
    """What the standard library and ``/proc`` tell without psutil: memory and disk usage."""

    name = "procfs"

    def __init__(self, disk_path: str = os.sep) -> None:
        self.disk_path = disk_path

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        info = _meminfo()
        if info and info.get("MemTotal"):
            total = info["MemTotal"]
            # psutil's "used" on Linux: what the kernel could not hand out now
            avail = info.get("MemAvailable")
            if avail is None:  # kernels before 3.14
                avail = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
            used = max(0, total - avail)
            out["system_memory_usage_megabytes"] = round(used / MB, 1)
            out["system_memory_usage_percentage"] = round(used / total * 100, 1)
        out.update(_disk_usage(self.disk_path))
        return out


class ProcessMemoryCollector:
    """Resident memory of the run's processes on this machine, summed.

    ``pids`` returns them (the ranks writing the run from this host); each is read from
    psutil, or from ``/proc/<pid>/status`` without it.
    """

    name = "process"

    def __init__(self, pids: Callable[[], Iterable[int]], psutil: Any = None) -> None:
        self.pids = pids
        self.psutil = psutil

    def _rss(self, pid: int) -> int | None:
        if self.psutil is not None:
            try:
                return int(self.psutil.Process(pid).memory_info().rss)
            except Exception:  # noqa: BLE001 - the process may have just ended
                return None
        return _rss_from_proc(pid)

    def sample(self) -> dict[str, float]:
        total, seen = 0, 0
        for pid in set(self.pids()):
            rss = self._rss(pid)
            if rss is not None:
                total += rss
                seen += 1
        if not seen:
            return {}
        return {"process_memory_usage_megabytes": round(total / MB, 1), "process_count": seen}


class NvmlCollector:
    """Per-GPU utilisation, memory, temperature and power through NVIDIA's NVML."""

    name = "nvml"

    def __init__(self, pynvml: Any) -> None:
        self.nvml = pynvml
        pynvml.nvmlInit()  # raises NVMLError without a driver or a GPU
        count = pynvml.nvmlDeviceGetCount()
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def sample(self) -> dict[str, float]:
        nv = self.nvml
        out: dict[str, float] = {}
        for i, h in enumerate(self.handles):
            p = f"gpu_{i}_"
            for read in (self._memory, self._utilization, self._temperature, self._power):
                try:
                    out.update({p + k: v for k, v in read(nv, h).items()})
                except nv.NVMLError as exc:  # an unsupported reading on this device
                    log.debug("vtrack: GPU %d reading failed: %s", i, exc)
        return out

    @staticmethod
    def _memory(nv: Any, h: Any) -> dict[str, float]:
        m = nv.nvmlDeviceGetMemoryInfo(h)
        return {"memory_usage_percentage": round(m.used / m.total * 100, 1),
                "memory_usage_megabytes": round(m.used / MB, 1)}  # fmt: skip

    @staticmethod
    def _utilization(nv: Any, h: Any) -> dict[str, float]:
        return {"utilization_percentage": float(nv.nvmlDeviceGetUtilizationRates(h).gpu)}

    @staticmethod
    def _temperature(nv: Any, h: Any) -> dict[str, float]:
        return {
            "temperature_celsius": float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        }

    @staticmethod
    def _power(nv: Any, h: Any) -> dict[str, float]:
        mw = nv.nvmlDeviceGetPowerUsage(h)
        limit = nv.nvmlDeviceGetEnforcedPowerLimit(h)
        out = {"power_usage_watts": round(mw / 1000, 1)}
        if limit:
            out["power_usage_percentage"] = round(mw / limit * 100, 1)
        return out


def build_collectors(pids: Callable[[], Iterable[int]]) -> list[Collector]:
    """The collectors this machine supports: psutil's (or the ``/proc`` fallback), the run's
    process memory, and NVML's when ``nvidia-ml-py`` and an NVIDIA driver are present."""
    try:
        import psutil
    except ImportError:
        psutil = None
    collectors: list[Collector] = []
    if psutil is not None:
        collectors.append(PsutilCollector(psutil))
    else:
        log.debug("vtrack: psutil is missing; system metrics are limited to memory and disk")
        collectors.append(FallbackCollector())
    collectors.append(ProcessMemoryCollector(pids, psutil))
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            collectors.append(NvmlCollector(pynvml))
        except Exception as exc:  # noqa: BLE001 - no driver, no GPU: no GPU metrics
            log.debug("vtrack: no GPU metrics: %s", exc)
    return collectors


def sample_all(collectors: Iterable[Collector]) -> dict[str, float]:
    """One reading of every collector; a collector that fails is left out of it."""
    out: dict[str, float] = {}
    for c in collectors:
        try:
            out.update(c.sample())
        except Exception as exc:  # noqa: BLE001 - never let one source stop the others
            log.debug("vtrack: system metrics from %s failed: %s", c.name, exc)
    return out
