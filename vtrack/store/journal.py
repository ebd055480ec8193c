"""The live journal: an append-only log per writer under ``.git/vtrack/live/<run_id>/``.

Every logging call reaches a writer's journal within one flush interval; a
checkpoint turns journal entries into a run commit and starts a new segment. A
process that dies leaves its journal and an owner file (pid, process start time,
host) from which any later vtrack command finalizes the run.

Line format (UTF-8, tab separated, one operation per line)::

    m <key> <step> <timestamp_ms> <value>      metric point
    p <key> <json value>                        param
    t <key> <json value>                        tag set
    T <key>                                     tag deleted
    s <STATUS> <end_time_ms>                    terminal status
    n <json name> / d <json description>        run name / description
    f <json path> <mode> <sha>                  blob placed under .vtrack/
    a <json path> <json entry>                  artifact manifest entry
    i <json entry>                              dataset input entry

A final line without its newline (a write cut short by SIGKILL) is ignored; a write
that failed part-way (a full disk) is cut back off the segment before the next append,
so it can never glue itself to the line after it.

**Coverage.** Each run commit records, per writer, how much of that writer's journal
it holds: ``(segment, byte offset)`` — every earlier segment whole and the first
``offset`` bytes of that segment. Readers and recovery replay only what lies beyond,
so a kill between a checkpoint's ref update and the removal of the segment it
committed never applies that segment twice (see :func:`replay`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtrack.errors import ParamConflictError, StoreError
from vtrack.store.fileio import atomic_write
from vtrack.store.owner import BOOT_ID, HOST, Owner, proc_start, read_owner
from vtrack.store.record import RecordState, storable

OWNER_SUFFIX = ".owner"
SEGMENT_SUFFIX = ".journal"

#: ``writer id -> (segment, byte offset)`` a run commit holds of each writer's journal.
Coverage = dict[str, tuple[int, int]]
_COVERAGE_LINE = "journal: "


def format_coverage(covered: Coverage) -> str:
    """Commit-message lines recording ``covered`` (sorted, one writer per line)."""
    return "".join(
        f"{_COVERAGE_LINE}{wid} {seq} {off}\n" for wid, (seq, off) in sorted(covered.items())
    )


def parse_coverage(message: str) -> Coverage:
    """The coverage recorded in a run commit's message (empty when it records none)."""
    out: Coverage = {}
    for line in message.splitlines():
        if line.startswith(_COVERAGE_LINE):
            parts = line[len(_COVERAGE_LINE) :].split(" ")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


class JournalWriteError(StoreError):
    """A journal append failed (a full disk, a read-only store); nothing of it was recorded."""


def encode_param(key: str, value: Any) -> str:
    """Journal line for a param."""
    return f"p\t{key}\t{json.dumps(value, allow_nan=True)}\n"


def encode_tag(key: str, value: str) -> str:
    """Journal line for a tag."""
    return f"t\t{key}\t{json.dumps(value)}\n"


def encode_delete_tag(key: str) -> str:
    """Journal line for a deleted tag."""
    return f"T\t{key}\n"


def encode_status(status: str, end_time: int | None) -> str:
    """Journal line for a status change (``end_time`` None when running again)."""
    return f"s\t{status}\t{'' if end_time is None else end_time}\n"


def encode_info(field: str, value: Any) -> str:
    """Journal line for a run name (``n``) or description (``d``)."""
    return f"{field}\t{json.dumps(value)}\n"


def encode_file(path: str, mode: int, sha: str) -> str:
    """Journal line for a blob placed under ``.vtrack/``."""
    return f"f\t{json.dumps(path)}\t{mode:o}\t{sha}\n"


def encode_artifact(path: str, entry: dict[str, Any]) -> str:
    """Journal line for an artifact manifest entry."""
    return f"a\t{json.dumps(path)}\t{json.dumps(entry, sort_keys=True)}\n"


def encode_input(entry: dict[str, Any]) -> str:
    """Journal line for a dataset input entry."""
    return f"i\t{json.dumps(entry, sort_keys=True)}\n"


def _load(text: str) -> Any:
    """A journaled JSON value, with strings that are not valid Unicode escaped."""
    value = json.loads(text)
    return value if "\\ud" not in text else storable(value)


def apply_lines(state: RecordState, text: str) -> list[str]:
    """Apply journal text to ``state``; return warnings (e.g. param conflicts kept first)."""
    warnings: list[str] = []
    lines = text.split("\n")
    lines.pop()  # the part after the last newline: empty, or a torn write
    for line in lines:
        if not line:
            continue
        op = line[0]
        parts = line.split("\t")
        try:
            if op == "m":
                _, key, step, ts, value = parts
                state.add_metric(key, int(step), int(ts), float(value), f"{step}\t{ts}\t{value}\n")
            elif op == "p":
                try:
                    state.set_param(parts[1], _load(parts[2]))
                except ParamConflictError as exc:
                    warnings.append(str(exc))
            elif op == "t":
                state.set_tag(parts[1], _load(parts[2]))
            elif op == "T":
                state.delete_tag(parts[1])
            elif op == "s":
                state.info["status"] = parts[1]
                state.info["end_time"] = int(parts[2]) if parts[2] else None
            elif op == "n":
                state.info["name"] = _load(parts[1])
            elif op == "d":
                state.info["description"] = _load(parts[1])
            elif op == "f":
                state.add_file(_load(parts[1]), int(parts[2], 8), parts[3])
            elif op == "a":
                state.add_artifact(_load(parts[1]), _load(parts[2]))
            elif op == "i":
                state.add_input(_load(parts[1]))
            else:
                warnings.append(f"unknown journal operation {op!r} skipped")
        except (ValueError, IndexError) as exc:
            warnings.append(f"unreadable journal line skipped: {line[:80]!r} ({exc})")
    return warnings


class Journal:
    """One writer's journal: an owner file plus numbered append-only segments."""

    def __init__(self, run_dir: Path, writer_id: str) -> None:
        self.run_dir = run_dir
        self.writer_id = writer_id
        self.seq = 0
        self.fd = -1
        self.size = 0
        self._torn = False

    @property
    def owner_path(self) -> Path:
        """Path of this writer's owner file."""
        return self.run_dir / (self.writer_id + OWNER_SUFFIX)

    def segment_path(self, seq: int) -> Path:
        """Path of segment ``seq``."""
        return self.run_dir / f"{self.writer_id}.{seq:06d}{SEGMENT_SUFFIX}"

    def open(self) -> None:
        """Create the owner file and the first segment."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        owner = {
            "writer_id": self.writer_id,
            "pid": pid,
            "start": proc_start(pid),
            "host": HOST,
            "boot_id": BOOT_ID,
            "started": time.time(),
        }
        for attempt in range(10):
            try:
                atomic_write(self.owner_path, json.dumps(owner).encode())
                break
            except FileNotFoundError:
                # another process's recover_all removed the still-empty folder: make it again
                if attempt == 9:
                    raise
                self.run_dir.mkdir(parents=True, exist_ok=True)
        self._open_segment()

    def _open_segment(self) -> None:
        self.fd = os.open(
            self.segment_path(self.seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        self.size = 0
        self._torn = False

    def append(self, text: str) -> None:
        """Append whole lines to the current segment, all of them or (on error) none.

        Raises JournalWriteError (naming the journal and the OS error) when the write
        fails; the bytes it left are cut off before the next append.
        """
        if not text:
            return
        data = text.encode("utf-8")
        try:
            if self._torn:
                os.ftruncate(self.fd, self.size)
                self._torn = False
            view = memoryview(data)
            while view:
                self._torn = True
                n = os.write(self.fd, view)
                view = view[n:]
            self._torn = False
        except OSError as exc:
            raise JournalWriteError(
                f"could not write the journal {self.segment_path(self.seq)}: {exc.strerror or exc}",
                hint="free disk space; nothing of this call was recorded",
            ) from exc
        self.size += len(data)

    def coverage(self) -> tuple[int, int]:
        """``(segment, offset)`` of everything appended so far."""
        return self.seq, self.size

    def rotate(self) -> None:
        """Start a new segment and drop the old one (its content is committed).

        If the new segment cannot be opened the old one stays in use (its coverage
        keeps replay exact either way).
        """
        old_fd, old_seq = self.fd, self.seq
        try:
            fd = os.open(
                self.segment_path(old_seq + 1), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        except OSError:
            return
        self.fd, self.seq, self.size, self._torn = fd, old_seq + 1, 0, False
        os.close(old_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.segment_path(old_seq))

    def close(self, remove: bool = True) -> None:
        """Close the segment; with ``remove``, delete this writer's files."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.segment_path(self.seq))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.owner_path)
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()


@dataclass
class ForeignWriter:
    """A writer found in a run's live folder (possibly this process's own)."""

    run_dir: Path
    writer_id: str
    owner: Owner | None
    segments: list[Path]

    def is_alive(self) -> bool:
        """True while the owning process runs (unknown owners count as dead)."""
        return self.owner is not None and self.owner.is_alive()

    def read_new(
        self, covered: tuple[int, int] | None = None
    ) -> tuple[str, tuple[int, int] | None]:
        """The text beyond ``covered``, cut at its last full line, and the coverage it reaches.

        ``covered`` is ``(segment, offset)`` as a run commit records it (None: nothing
        covered). Returns ``("", None)`` when no segment remains.
        """
        out = []
        reached: tuple[int, int] | None = None
        for seg in self.segments:
            seq = segment_seq(seg)
            if covered is not None and seq < covered[0]:
                continue
            skip = covered[1] if covered is not None and seq == covered[0] else 0
            try:
                with open(seg, "rb") as f:
                    f.seek(skip)
                    data = f.read()
            except FileNotFoundError:
                continue
            cut = data.rfind(b"\n") + 1
            out.append(data[:cut].decode("utf-8", errors="replace"))
            reached = (seq, skip + cut)
        return "".join(out), reached

    def read_text(self, covered: tuple[int, int] | None = None) -> str:
        """All text beyond ``covered``, in order, each segment cut at its last full line."""
        return self.read_new(covered)[0] + "\n"

    def remove(self) -> None:
        """Delete this writer's segments and owner file."""
        for seg in self.segments:
            with contextlib.suppress(FileNotFoundError):
                seg.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / (self.writer_id + OWNER_SUFFIX)).unlink()


def segment_seq(path: Path) -> int:
    """The segment number in a segment file's name."""
    return int(path.name[: -len(SEGMENT_SUFFIX)].rsplit(".", 1)[1])


def replay(state: RecordState, writers: list[ForeignWriter]) -> list[str]:
    """Apply what ``writers`` journaled beyond the coverage ``state`` records; return warnings.

    Idempotent: text that the commit behind ``state`` already holds is skipped.
    """
    warnings: list[str] = []
    for w in writers:
        text, reached = w.read_new(state.covered.get(w.writer_id))
        if text:
            warnings += apply_lines(state, text + "\n")
        if reached is not None:
            state.covered[w.writer_id] = reached
    return warnings


def list_writers(run_dir: Path) -> list[ForeignWriter]:
    """Every writer with files in ``run_dir``."""
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return []
    writers: dict[str, ForeignWriter] = {}
    for name in sorted(names):
        if name.endswith(OWNER_SUFFIX):
            wid = name[: -len(OWNER_SUFFIX)]
            w = writers.setdefault(wid, ForeignWriter(run_dir, wid, None, []))
            w.owner = read_owner(run_dir / name)
        elif name.endswith(SEGMENT_SUFFIX):
            wid = name[: -len(SEGMENT_SUFFIX)].rsplit(".", 1)[0]
            writers.setdefault(wid, ForeignWriter(run_dir, wid, None, [])).segments.append(
                run_dir / name
            )
    return list(writers.values())
