"""Temp files of uploads in progress: named by their owner, swept when the owner is gone.

A put writes ``<objects>/tmp/<name>`` first and publishes it under its digest at the
end. The name says who writes it::

    <prefix><pid>~<start>~<boot id>~<host hash>~<random>.tmp

(``start`` is the process start time of :func:`vtrack.store.owner.proc_start`, the host
is a 12-hex hash of the host name, so the name stays short), so a garbage collection
can tell, with :meth:`vtrack.store.owner.Owner.is_alive`, an abandoned temp file from
one that is still being written, whatever their ages. The owner is in the name and not
in a sidecar file because the name is created atomically with the file: there is no
moment when a temp file exists without its owner.

Sweep rule (:func:`sweep`): a temp file whose owner is provably gone (this host, and
the pid is dead or reused, or the machine rebooted) is removed at any age; one whose
owner still runs is never removed; one whose owner runs on another host (a store on a
shared folder: this host cannot tell) is removed only when untouched for longer than
the grace period and :data:`FOREIGN_MAX_AGE_SECONDS`; a name with no recognisable
owner (older vtrack, other programs) is removed when older than the grace period.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from vtrack.store.owner import HOST, Owner, this_process

TEMP_SUFFIX = ".tmp"
#: Temp files of another host's uploads are kept at least this long (seconds).
FOREIGN_MAX_AGE_SECONDS = 24 * 3600.0

_NAME = re.compile(
    r"(?P<prefix>[^~]*?)(?P<pid>[0-9]+)~(?P<start>[0-9.]*)~(?P<boot>[0-9a-fA-F-]*)"
    r"~(?P<host>[0-9a-f]{12})~[0-9a-f]+" + re.escape(TEMP_SUFFIX)
)


def _host_hash(host: str) -> str:
    import hashlib  # lazy: OpenSSL's load is start-up time for commands that hash nothing

    return hashlib.blake2b(host.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


_THIS_HOST = _host_hash(HOST)


def temp_name(prefix: str = "", owner: Owner | None = None) -> str:
    """A new, unique temp file name carrying ``owner`` (this process by default)."""
    me = owner if owner is not None else this_process()
    start = me.start if me.start is not None and re.fullmatch(r"[0-9.]+", me.start) else ""
    boot = me.boot_id if re.fullmatch(r"[0-9a-fA-F-]*", me.boot_id) else ""
    host = _host_hash(me.host)
    return f"{prefix}{me.pid}~{start}~{boot}~{host}~{secrets.token_hex(8)}{TEMP_SUFFIX}"


def temp_owner(name: str) -> Owner | None:
    """The owner a temp file name carries, or None when the name carries none.

    The host comes back as this host's name when its hash matches, else as
    ``"host#<hash>"`` (another machine; only equality with this host matters).
    """
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    host = HOST if m["host"] == _THIS_HOST else f"host#{m['host']}"
    return Owner("", int(m["pid"]), m["start"] or None, host, m["boot"], 0.0)


@dataclass(frozen=True)
class TempFile:
    """One temp file found by a sweep, and why it is (or would be) removed or kept."""

    name: str
    path: str
    size: int
    age_seconds: float
    owner: str  # "pid 123 on this host", "pid 9 on another host", "unknown"
    reason: str
    remove: bool

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready data."""
        return asdict(self)


def judge(name: str, age: float, grace_seconds: float) -> tuple[str, str, bool]:
    """``(owner label, reason, remove?)`` for a temp file of ``name`` and ``age``."""
    owner = temp_owner(name)
    if owner is None:
        old = age > grace_seconds
        return (
            "unknown",
            f"no owner recorded, {'older' if old else 'younger'} than the grace period",
            old,
        )
    if owner.host != HOST:
        label = f"pid {owner.pid} on another host"
        limit = max(grace_seconds, FOREIGN_MAX_AGE_SECONDS)
        if age > limit:
            return label, f"untouched for {age / 3600:.1f} h; its host cannot be asked", True
        return label, "its host cannot be asked whether it still runs", False
    label = f"pid {owner.pid} on this host"
    if owner.is_alive():
        return label, "upload in progress (its process runs)", False
    return label, "its process is gone", True


class _Stat(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def mtime(self) -> float: ...
    @property
    def links(self) -> int: ...


class _FS(Protocol):
    def join(self, *parts: str) -> str: ...
    def listdir(self, path: str) -> list[str]: ...
    def stat(self, path: str) -> _Stat: ...
    def remove(self, path: str) -> bool: ...


def sweep(
    fs: _FS,
    directory: str,
    grace_seconds: float,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> list[TempFile]:
    """Judge every temp file in ``directory`` (:func:`judge`); remove the doomed ones.

    Returns every file looked at, kept ones included (``remove`` says which). With
    ``dry_run`` nothing is removed. A file's ``size`` counts only bytes its removal
    frees (0 for a temp file still hard-linked to a published object). Files that
    vanish meanwhile are left out.
    """
    now = time.time() if now is None else now
    out = []
    for name in fs.listdir(directory):
        path = fs.join(directory, name)
        try:
            st = fs.stat(path)
        except FileNotFoundError:
            continue
        age = max(0.0, now - st.mtime)
        label, reason, doomed = judge(name, age, grace_seconds)
        if doomed and not dry_run and not fs.remove(path):
            continue  # removed by someone else meanwhile
        size = st.size if st.links <= 1 else 0
        out.append(TempFile(name, path, size, round(age, 3), label, reason, doomed))
    return out
