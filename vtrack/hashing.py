"""Content digests: xxh3-128, streamed, formatted as ``xxh3-128:<32 hex>``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO

import xxhash

from vtrack.errors import ValidationError
from vtrack.limits import HASH_CHUNK_BYTES

ALGORITHM = "xxh3-128"
_PREFIX = ALGORITHM + ":"
_HEX_LEN = 32


def new_hasher() -> xxhash.xxh3_128:
    """Return a fresh incremental xxh3-128 hasher (``update``/``hexdigest``)."""
    return xxhash.xxh3_128()


def format_digest(hexdigest: str) -> str:
    """Return the canonical digest string for a 32-hex xxh3-128 value."""
    return _PREFIX + hexdigest


def parse_digest(text: str) -> str:
    """Return the 32-hex part of a digest string; raise ValidationError if malformed."""
    if not isinstance(text, str) or not text.startswith(_PREFIX):
        raise ValidationError(f"digest {text!r} must start with {_PREFIX!r}")
    hexpart = text[len(_PREFIX) :]
    if len(hexpart) != _HEX_LEN or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValidationError(f"digest {text!r} must end with 32 lowercase hex characters")
    return hexpart


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the digest string of ``data``."""
    return _PREFIX + xxhash.xxh3_128_hexdigest(data)


def hash_chunks(chunks: Iterable[bytes]) -> str:
    """Return the digest string of the concatenation of ``chunks``."""
    h = xxhash.xxh3_128()
    for c in chunks:
        h.update(c)
    return _PREFIX + h.hexdigest()


def hash_stream(stream: BinaryIO, chunk_size: int = HASH_CHUNK_BYTES) -> tuple[str, int]:
    """Hash a readable binary stream to its end; return ``(digest, size)``."""
    h = xxhash.xxh3_128()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            h.update(view[:n])
        else:
            data = stream.read(chunk_size)
            if not data:
                break
            n = len(data)
            h.update(data)
        size += n
    return _PREFIX + h.hexdigest(), size


def hash_fd(fd: int, buf: bytearray | None = None) -> tuple[str, int]:
    """Hash what remains readable from file descriptor ``fd``; return ``(digest, size)``.

    ``buf`` is the read buffer to reuse (a fresh 1 MiB one by default). OSError propagates.
    """
    h = xxhash.xxh3_128()
    if buf is None:
        buf = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buf)
    size = 0
    while True:
        n = os.readv(fd, [buf])
        if not n:
            break
        h.update(view[:n])
        size += n
    return _PREFIX + h.hexdigest(), size


def hash_file(path: str | os.PathLike[str], chunk_size: int = HASH_CHUNK_BYTES) -> tuple[str, int]:
    """Hash the file at ``path``; return ``(digest, size)``. OSError propagates."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return hash_fd(fd, bytearray(chunk_size))
    finally:
        os.close(fd)
