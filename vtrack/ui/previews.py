"""Artifact previews that stay cheap: a bounded prefix, a kind, and how much was left out.

Promises:

- :func:`kind_of` names how a file is previewed from its name: ``image`` (served as a
  file, never inlined), ``html`` (shown in a sandboxed frame), ``csv``, ``json``,
  ``yaml``, ``model`` (a ``model.yaml``: flavor and signature), ``markdown``, ``text``
  or ``binary``.
- :func:`read_prefix` reads at most ``limit`` bytes of a stream, whatever its size, and
  says whether it stopped early. :func:`preview` turns the prefix into what a page shows
  (text, or the first rows of a CSV as a table) with ``truncated`` set, so the page can
  say so and link to the download for the rest.
- The served types of :func:`served_type` are safe for untrusted bytes: HTML, SVG and
  anything scriptable go out as ``text/plain`` unless they are shown inside the
  sandboxed frame (which the app serves with a ``sandbox`` Content-Security-Policy).
"""

from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO

#: Bytes a preview reads at most.
PREVIEW_BYTES = 64 * 1024
#: Rows of a CSV preview at most.
PREVIEW_ROWS = 100

_IMAGE = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".gif": "image/gif", ".webp": "image/webp", ".bmp": "image/bmp"}  # fmt: skip
_TEXT = (".txt", ".log", ".py", ".cfg", ".ini", ".toml", ".sh", ".tsv", ".xml", ".svg")


def _ext(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def kind_of(path: str) -> str:
    """How the file at ``path`` is previewed (see the module docstring)."""
    name = path.rsplit("/", 1)[-1].lower()
    ext = _ext(path)
    if name == "model.yaml":
        return "model"
    if ext in _IMAGE:
        return "image"
    if ext in (".html", ".htm"):
        return "html"
    if ext == ".csv":
        return "csv"
    if ext == ".json":
        return "json"
    if ext in (".yaml", ".yml"):
        return "yaml"
    if ext in (".md", ".markdown"):
        return "markdown"
    if ext in _TEXT or not ext:
        return "text"
    return "binary"


def served_type(path: str, *, framed: bool = False) -> str:
    """The Content-Type an artifact is served with (see the module docstring)."""
    ext = _ext(path)
    if ext in _IMAGE:
        return _IMAGE[ext]
    if framed and ext in (".html", ".htm"):
        return "text/html; charset=utf-8"
    if kind_of(path) in ("text", "csv", "json", "yaml", "markdown", "model", "html"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def read_prefix(stream: BinaryIO, limit: int = PREVIEW_BYTES) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from ``stream`` and whether more followed."""
    data = stream.read(limit + 1)
    return data[:limit], len(data) > limit


def _text(data: bytes, truncated: bool) -> str | None:
    """UTF-8 text of a prefix (a character cut at the end is dropped); None if binary."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8", "replace")
        return None


def preview(path: str, data: bytes, truncated: bool, size: int) -> dict[str, Any]:
    """What a page shows of the file: kind, text or CSV rows, and what was left out."""
    kind = kind_of(path)
    out: dict[str, Any] = {"path": path, "kind": kind, "size": size, "truncated": truncated,
                           "shown_bytes": len(data)}  # fmt: skip
    if kind in ("image", "html"):
        return out
    text = _text(data, truncated)
    if text is None:
        out["kind"] = "binary"
        return out
    if kind == "csv":
        lines = text.splitlines()
        if truncated and lines:
            lines = lines[:-1]  # the last line may be cut
        rows = list(csv.reader(io.StringIO("\n".join(lines[: PREVIEW_ROWS + 1]))))
        out["header"] = rows[0] if rows else []
        out["rows"] = rows[1:]
        out["rows_truncated"] = truncated or len(lines) > PREVIEW_ROWS + 1
        return out
    if kind == "model" and not truncated:
        try:
            import yaml

            doc = yaml.safe_load(text)
        except Exception:  # noqa: BLE001 - a broken model.yaml is shown as text
            doc = None
        if isinstance(doc, dict):
            out["flavor"] = doc.get("flavor") or doc.get("flavors")
            out["signature"] = doc.get("signature")
    out["text"] = text
    return out
