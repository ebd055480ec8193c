"""Folder manifests: the ``path<TAB>size<TAB>digest`` TSV and the folder digest over it.

A manifest lists a folder's files as ``(relative posix path, size, file digest)``. Its
text form (:func:`manifest_to_tsv`) is the ``.vtrack/inputs/<name>.tsv`` file of a run
record, and its xxh3-128 is the folder's Merkle digest (:func:`folder_digest`): the lines
``"<relative posix path>\\t<size>\\t<file digest>\\n"`` sorted by path, where a path's
backslash, tab, newline and carriage return are written ``\\\\``, ``\\t``, ``\\n``,
``\\r`` and a byte that is not UTF-8 (a surrogate escape) is written ``\\xNN``.

Readers of recorded manifests (the run index, audits) need only this module, not the
folder walker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vtrack.errors import ValidationError
from vtrack.hashing import hash_bytes, parse_digest

__all__ = ["folder_digest", "manifest_from_tsv", "manifest_to_tsv"]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r\udc80-\udcff]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_UNESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-f]{2})")
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_MANIFEST_DIGEST = re.compile(r"xxh3-128:[0-9a-f]{32}")


def _escape_path(path: str) -> str:
    if not _NEEDS_ESCAPE.search(path):
        return path
    out = path.translate(_ESCAPES)
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", out)


def _unescape_path(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("x"):
            return chr(0xDC00 + int(code[1:], 16))
        return _UNESCAPES[code]

    return _UNESCAPE.sub(sub, text) if "\\" in text else text


def manifest_to_tsv(files: Iterable[tuple[str, int, str]]) -> str:
    """Render a folder manifest as ``path\\tsize\\tdigest`` lines sorted by path.

    This text is the ``.vtrack/inputs/<name>.tsv`` format, and its xxh3-128 is the
    folder digest. Raises ValidationError on a duplicate path.
    """
    rows = sorted(files, key=lambda f: f[0])
    for a, b in zip(rows, rows[1:], strict=False):
        if a[0] == b[0]:
            raise ValidationError(f"manifest lists {a[0]!r} twice")
    if _NEEDS_ESCAPE.search("".join(r[0] for r in rows)):
        return "".join(f"{_escape_path(p)}\t{int(size)}\t{digest}\n" for p, size, digest in rows)
    return "".join([f"{p}\t{int(size)}\t{digest}\n" for p, size, digest in rows])


def manifest_from_tsv(text: str) -> list[tuple[str, int, str]]:
    """Parse :func:`manifest_to_tsv` output back into sorted ``(path, size, digest)``.

    Raises ValidationError naming the line of any malformed row.
    """
    out: list[tuple[str, int, str]] = []
    append, valid = out.append, _MANIFEST_DIGEST.fullmatch
    for n, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].isdigit() or valid(parts[2]) is None:
            if len(parts) == 3 and parts[1].isdigit():
                parse_digest(parts[2])  # raises, saying what is wrong with the digest
            raise ValidationError(f"manifest line {n} is not 'path<TAB>size<TAB>digest': {line!r}")
        rel = parts[0]
        append((_unescape_path(rel) if "\\" in rel else rel, int(parts[1]), parts[2]))
    if any(out[i][0] > out[i + 1][0] for i in range(len(out) - 1)):
        out.sort(key=lambda f: f[0])
    return out


def folder_digest(files: Iterable[tuple[str, int, str]]) -> str:
    """Return the Merkle digest of a manifest; independent of the order of ``files``."""
    return hash_bytes(manifest_to_tsv(files).encode("utf-8"))
