"""Reading stored bytes with their digest checked: a verifying stream and a hashing loop."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO

from vtrack.errors import CorruptObjectError
from vtrack.hashing import new_hasher, parse_digest
from vtrack.limits import HASH_CHUNK_BYTES


class VerifyingReader(io.RawIOBase):
    """A raw stream that hashes what it serves and checks the digest at the end.

    Sequential reads are hashed as they pass; the first seek that moves the position
    runs ``check_whole`` (a full re-hash) once, after which reads are served freely.
    """

    def __init__(self, raw: io.RawIOBase, digest: str, check_whole: Callable[[], None]) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._expected = parse_digest(digest)
        self._check_whole = check_whole
        self._hasher = new_hasher()
        self._pos = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        n = self._raw.readinto(view) or 0
        if not self._verified:
            if n:
                self._hasher.update(view[:n])
            else:
                actual = self._hasher.hexdigest()
                if actual != self._expected:
                    self._check_whole()  # raises CorruptObjectError naming the digest
                    # The file changed under us but now matches: bytes served may not.
                    raise CorruptObjectError(
                        f"object {self._digest} changed while it was being read",
                        digest=self._digest,
                    )
                self._verified = True
        self._pos += n
        return n

    def readall(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            chunk = self.read(HASH_CHUNK_BYTES)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR and offset == 0:
            return self._pos
        new = self._raw.seek(offset, whence)
        if new != self._pos and not self._verified:
            self._check_whole()
            self._verified = True
        self._pos = new
        return new

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def hash_raw(raw: Any, out: BinaryIO | None = None) -> tuple[str, int]:
    """Hash an unbuffered stream to its end, copying it to ``out`` if given.

    Returns ``(hexdigest, size)``.
    """
    hasher = new_hasher()
    buf = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buf)
    size = 0
    while True:
        n = raw.readinto(buf)
        if not n:
            return hasher.hexdigest(), size
        hasher.update(view[:n])
        if out is not None:
            out.write(view[:n])
        size += n
