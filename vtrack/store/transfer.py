"""Copy the large objects one store lacks from another: in parallel, verified, resumable.

:func:`transfer` is what ``vtrack push`` (local → remote) and the lazy fetch on read
(remote → local) use. Guarantees:

- **Only what is missing moves**: an object the destination already holds is skipped
  (and freshened), so a transfer interrupted at any point is resumed by running it
  again — every object that reached the destination is whole (objects are published
  atomically, see :mod:`vtrack.store.objects`) and is not sent twice.
- **Verified by digest**: the bytes are hashed on the way; an object whose bytes do not
  match its name is never published, and is reported in ``corrupt`` with the digest.
- **Missing sources are reported**, never papered over (``missing``).
- **In parallel**: ``jobs`` objects at a time (threads: the work is I/O).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vtrack.errors import ArtifactNotFoundError, CorruptObjectError, VtrackError
from vtrack.store.objects import ObjectStore
from vtrack.store.tempfiles import temp_name

#: Objects copied at once by default.
DEFAULT_JOBS = 4


@dataclass
class TransferReport:
    """What a transfer did: copied and skipped digests, bytes moved, failures by digest."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every object asked for is now in the destination."""
        return not (self.missing or self.corrupt or self.failed)


def transfer(
    src: ObjectStore,
    dst: ObjectStore,
    digests: Iterable[str],
    *,
    jobs: int = DEFAULT_JOBS,
    progress: Callable[[int, int], None] | None = None,
) -> TransferReport:
    """Copy each of ``digests`` that ``dst`` lacks from ``src``; return the report.

    ``progress(done, total)`` is called after each object. Never raises for one
    object's failure: it is recorded in the report (see the module docstring).
    """
    wanted = sorted(set(digests))
    report = TransferReport()
    total = len(wanted)
    done = 0

    def one(digest: str) -> tuple[str, str, int, str]:
        try:
            if dst.exists(digest):
                if not dst.read_only:
                    dst.freshen(digest)
                return digest, "skipped", 0, ""
            if not src.exists(digest):
                return digest, "missing", 0, ""
            return digest, "copied", _copy(src, dst, digest), ""
        except CorruptObjectError as e:
            return digest, "corrupt", 0, e.message
        except ArtifactNotFoundError:
            return digest, "missing", 0, ""
        except (OSError, VtrackError) as e:
            return digest, "failed", 0, str(e)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for digest, outcome, size, why in pool.map(one, wanted):
            if outcome == "copied":
                report.copied.append(digest)
                report.bytes += size
            elif outcome == "skipped":
                report.skipped.append(digest)
            elif outcome == "missing":
                report.missing.append(digest)
            elif outcome == "corrupt":
                report.corrupt[digest] = why
            else:
                report.failed[digest] = why
            done += 1
            if progress is not None:
                progress(done, total)
    return report


def _copy(src: ObjectStore, dst: ObjectStore, digest: str) -> int:
    """Copy one object, verified against ``digest``; return its size."""
    local = src.fs.local_path(src.location_of(digest))
    if local is not None:
        # the source is on this disk: the destination verifies and publishes it
        return dst.put_file(local, expect=digest)[1]
    if dst.fs.local_path(dst.root) is not None:
        # down to this disk: straight into the destination's tmp/, verified, then linked
        return dst.fetch_into(digest, src.copy_to)
    with tempfile.TemporaryDirectory(prefix="vtrack-transfer-") as folder:
        tmp = os.path.join(folder, temp_name("fetch-"))
        size = src.copy_to(digest, tmp)
        dst.put_file(tmp, expect=digest)
    return size
