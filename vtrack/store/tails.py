"""Superseded history tails, stored as deltas of the chunk they grew into.

Every checkpoint of a live run rewrites the open (tail) chunk of each metric history
(``metrics/<key>/<chunk>.tsv``), so a run leaves each earlier version behind: a run of
10 checkpoints of 10 metrics x 100 steps leaves ~5x its final histories in superseded
tails (~500 KB a run), and git's own repacks do not find the deltas (a superseded
object reaches no path name, and git sorts delta candidates by name). Each version is
a prefix of the next one, and of the chunk it ends in, so when a writer's last
checkpoint takes in its earlier packs it stores each superseded tail as a git
``REF_DELTA`` entry of one copy instruction against its final chunk in the same pack:
~30 bytes whatever its size. The object is still there (a reader on an older checkpoint
still reads it; git, dulwich and ``git fsck`` resolve it); only its form changes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from vtrack.store.packs import KIND_NUMBERS, entry_header

if TYPE_CHECKING:
    from vtrack.store.record import History

#: git's pack entry type of a delta naming its base by SHA.
REF_DELTA = 7
#: Largest size one git copy instruction can name (three size bytes).
_MAX_COPY = 0xFFFFFF
#: Bytes of sealed chunks a writer's end reads back as delta bases (older superseded
#: tails, beyond it, are copied whole).
BASES_BYTES = 64 * 1024 * 1024


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def prefix_delta(base_size: int, size: int) -> bytes:
    """A git delta that rebuilds the first ``size`` bytes of a base of ``base_size``."""
    out = bytearray(_varint(base_size) + _varint(size))
    offset = 0
    while offset < size:
        n = min(size - offset, _MAX_COPY)
        cmd = 0x80
        args = bytearray()
        for i in range(4):
            byte = (offset >> (8 * i)) & 0xFF
            if byte:
                cmd |= 1 << i
                args.append(byte)
        for i in range(3):
            byte = (n >> (8 * i)) & 0xFF
            if byte:
                cmd |= 0x10 << i
                args.append(byte)
        out.append(cmd)
        out += args
        offset += n
    return bytes(out)


def delta_entry(base_sha: str, base_size: int, size: int) -> tuple[bytes, list[bytes]]:
    """``(header, pieces)`` of a pack entry holding the first ``size`` bytes of a base."""
    delta = prefix_delta(base_size, size)
    return entry_header(REF_DELTA, len(delta)) + bytes.fromhex(base_sha), [zlib.compress(delta)]


def plain_blob(raw: bytes | memoryview, under: int) -> bytes | None:
    """The data of an undeltified blob entry (header + zlib) smaller than ``under`` bytes,
    or None for anything else (nothing is decompressed then)."""
    head = raw[0]
    if (head >> 4) & 7 != KIND_NUMBERS[b"blob"]:
        return None
    size, shift, i = head & 0x0F, 4, 0
    while raw[i] & 0x80:
        i += 1
        size |= (raw[i] & 0x7F) << shift
        shift += 7
    if size >= under:
        return None
    try:
        data = zlib.decompress(raw[i + 1 :])
    except zlib.error:
        return None
    return data if len(data) == size else None


class Bases:
    """The final chunks of a run's histories, which its superseded tails are prefixes of."""

    def __init__(self, chunks: dict[str, bytes]) -> None:
        self._by_first_line: dict[bytes, list[tuple[str, bytes]]] = {}
        #: the largest chunk's size: only smaller blobs can be prefixes of one
        self.largest = max(map(len, chunks.values()), default=0)
        for sha, data in chunks.items():
            end = data.find(b"\n")
            if end > 0:
                self._by_first_line.setdefault(data[: end + 1], []).append((sha, data))

    def __bool__(self) -> bool:
        return bool(self._by_first_line)

    def base_of(self, data: bytes) -> tuple[str, int] | None:
        """``(sha, size)`` of a chunk that ``data`` (whole lines) is a proper prefix of."""
        end = data.find(b"\n")
        if end <= 0 or not data.endswith(b"\n"):
            return None
        for sha, base in self._by_first_line.get(data[: end + 1], ()):
            if len(base) > len(data) and base.startswith(data):
                return sha, len(base)
        return None


def final_chunks(
    histories: Iterable[History],
    mine: set[str],
    read_blob: Callable[[str], bytes],
    budget: int = BASES_BYTES,
) -> dict[str, bytes]:
    """The chunks a writer's superseded tails may be prefixes of, by SHA: each history's
    current tail, then its newest sealed chunks among ``mine`` (the SHAs of the writer's
    packs) while ``budget`` bytes last."""
    histories = list(histories)
    chunks: dict[str, bytes] = {}
    for hist in histories:
        if hist.tail and hist.tail_sha is not None:
            chunks[hist.tail_sha] = "".join(hist.tail).encode()
            budget -= len(chunks[hist.tail_sha])
    for hist in histories:
        for sha in reversed(hist.chunks):  # the newest: the last to hold a tail
            if budget <= 0 or sha not in mine:
                break
            if sha not in chunks:
                chunks[sha] = read_blob(sha)
                budget -= len(chunks[sha])
    return chunks
