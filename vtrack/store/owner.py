"""Who owns a file vtrack leaves behind while it works, and whether that owner still runs.

Journals, lock files and temporary uploads carry an owner: host, pid, the process's
start time (so that a reused pid is not mistaken for the owner) and the boot id. Only
this host can prove that one of its processes is gone; an owner on another host (a
store on a shared folder) always counts as alive.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def proc_start(pid: int) -> str | None:
    """Process start time as a string unique across pid reuse, or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[19]
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:
        import psutil

        return repr(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - any failure means we cannot see it
        return None


HOST = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "localhost")
BOOT_ID = _boot_id()


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class Owner:
    """Who writes a file: enough to tell, on this host, whether it still runs."""

    writer_id: str
    pid: int
    start: str | None
    host: str
    boot_id: str
    started: float

    def is_alive(self) -> bool:
        """False only when this host can prove the process is gone (robust to pid reuse)."""
        if self.host != HOST or (self.boot_id and BOOT_ID and self.boot_id != BOOT_ID):
            # another machine (shared folder), or this machine rebooted
            return self.host != HOST
        current = proc_start(self.pid)
        if current is None:
            return False
        if self.start is not None and current != self.start:
            return False
        return _not_zombie(self.pid)

    def to_json(self) -> bytes:
        """The owner as one line of JSON (what owner and lock files hold)."""
        return json.dumps(asdict(self), sort_keys=True).encode()


_me: dict[int, tuple[str | None, float]] = {}


def this_process(writer_id: str = "") -> Owner:
    """The owner record of the calling process (start time read once per pid)."""
    pid = os.getpid()
    known = _me.get(pid)
    if known is None:
        known = _me[pid] = (proc_start(pid), time.time())
    return Owner(writer_id, pid, known[0], HOST, BOOT_ID, known[1])


def parse_owner(data: bytes | str) -> Owner | None:
    """The owner held in ``data`` (JSON), or None when it is not an owner record."""
    try:
        raw = json.loads(data)
        return Owner(**raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError):
        return None


def read_owner(path: Path) -> Owner | None:
    """Parse an owner file; None if it vanished or is unreadable."""
    try:
        return parse_owner(path.read_bytes())
    except OSError:
        return None
