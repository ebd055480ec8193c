"""What kind of data a file holds: its format, and its columns, dtypes and rows when cheap.

:func:`detect_format` names a format from the file name (``csv``, ``parquet``,
``csv.gz`` …); :func:`file_schema_and_rows` reads just enough of a CSV/TSV (header and a
sample, stdlib ``csv``), a Parquet file (its metadata, when pyarrow is installed) or a
``.npy`` file (its header) to report columns or dtype and shape and a row count. It
never raises: a file it cannot make sense of just has no schema.

pyarrow and numpy are imported inside the functions that need them.
"""

from __future__ import annotations

import ast
import csv
import io
import os
import re
import struct
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "CSV_ROW_COUNT_MAX_BYTES",
    "CSV_SAMPLE_BYTES",
    "CSV_SAMPLE_ROWS",
    "detect_format",
    "file_schema_and_rows",
    "folder_format",
]

#: CSV files smaller than this get a row count (one extra read of the file).
CSV_ROW_COUNT_MAX_BYTES = 64 * 1024 * 1024
#: Bytes of a CSV file read to find its header and sniff column types.
CSV_SAMPLE_BYTES = 64 * 1024
#: Data rows of that sample used for type sniffing.
CSV_SAMPLE_ROWS = 1000

_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".npz": "npz",
    ".txt": "txt", ".feather": "feather", ".arrow": "arrow", ".pkl": "pickle",
    ".pickle": "pickle", ".h5": "hdf5", ".hdf5": "hdf5", ".xlsx": "xlsx", ".avro": "avro",
    ".orc": "orc", ".zip": "zip", ".tar": "tar", ".png": "png", ".jpg": "jpeg",
    ".jpeg": "jpeg", ".wav": "wav", ".pt": "torch", ".safetensors": "safetensors",
    ".yaml": "yaml", ".yml": "yaml", ".xml": "xml",
}  # fmt: skip
_COMPRESSIONS = {".gz": "gz", ".bz2": "bz2", ".xz": "xz", ".zst": "zst"}


def detect_format(path: str) -> str | None:
    """Guess a file's format from its extension (``csv``, ``parquet``, ``csv.gz`` …)."""
    root, ext = os.path.splitext(os.path.basename(path).lower())
    if ext in _COMPRESSIONS:
        inner = detect_format(root)
        return f"{inner}.{_COMPRESSIONS[ext]}" if inner else _COMPRESSIONS[ext]
    if ext in _FORMATS:
        return _FORMATS[ext]
    return ext[1:] if len(ext) > 1 and ext[1:].isalnum() else None


def folder_format(files: Sequence[tuple[str, int, str]]) -> str | None:
    """The files' common format, ``"mixed"``, or None for an empty folder."""
    by_ext: dict[str, str] = {}  # one detect_format per distinct extension
    formats: set[str | None] = set()
    for rel, _, _ in files:
        dot = rel.rfind(".")
        ext = rel[dot:].lower() if dot > rel.rfind("/") + 1 else ""
        if ext in _COMPRESSIONS:
            formats.add(detect_format(rel))
        else:
            if ext not in by_ext:
                by_ext[ext] = detect_format("x" + ext) or ""
            formats.add(by_ext[ext] or None)
        if len(formats) > 1:
            return "mixed"
    return formats.pop() if formats else None


def file_schema_and_rows(path: str, fmt: str | None, size: int) -> tuple[Any, int | None]:
    """Schema and row count where they are cheap; (None, None) when unknown. Never raises."""
    try:
        if fmt in ("csv", "tsv"):
            delim = "\t" if fmt == "tsv" else None
            schema = _csv_schema(path, delim)
            rows = (
                _csv_rows(path) if schema is not None and size < CSV_ROW_COUNT_MAX_BYTES else None
            )
            return schema, rows
        if fmt == "parquet":
            return _parquet_info(path)
        if fmt == "npy":
            return _npy_info(path)
    except (OSError, csv.Error, UnicodeError, ValueError, SyntaxError):
        pass
    return None, None


_NULLS = {"", "na", "nan", "null", "none", "n/a", "#n/a", "nat"}
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?inf(inity)?", re.IGNORECASE)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")


def _cell_type(text: str) -> str | None:
    s = text.strip()
    if s.lower() in _NULLS:
        return None
    if _INT_RE.fullmatch(s):
        return "int64"
    if _FLOAT_RE.fullmatch(s):
        return "float64"
    if s.lower() in ("true", "false"):
        return "bool"
    if _DATE_RE.fullmatch(s):
        return "datetime64"
    return "string"


def _column_type(cells: Iterable[str]) -> str:
    kinds = {t for t in map(_cell_type, cells) if t is not None}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"int64", "float64"}:
        return "float64"
    return "string"


def _csv_schema(path: str, delimiter: str | None) -> dict[str, Any] | None:
    """Header names and types sniffed from the first rows (stdlib csv, no pandas)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        sample = f.read(CSV_SAMPLE_BYTES)
        more = bool(f.read(1))
    if more:
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        if cut > 0:
            sample = sample[: cut + 1]
    if not sample.strip():
        return None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
    header, body = rows[0], rows[1 : CSV_SAMPLE_ROWS + 1]
    columns = [
        {"name": col, "dtype": _column_type(r[i] for r in body if i < len(r))}
        for i, col in enumerate(header)
    ]
    return {"columns": columns, "delimiter": delimiter}


def _csv_rows(path: str) -> int:
    """Data rows (records after the header); exact even with quoted newlines."""
    with open(path, "rb") as f:
        data = f.read()
    if b'"' not in data and b"\n\n" not in data and b"\r\n\r\n" not in data and b"\r" not in data:
        lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
        return max(lines - 1, 0)
    text = data.decode("utf-8-sig", errors="replace")
    records = sum(1 for r in csv.reader(io.StringIO(text, newline="")) if r)
    return max(records - 1, 0)


def _parquet_info(path: str) -> tuple[dict[str, Any] | None, int | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None, None
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception:  # not a readable Parquet file: the digest is still recorded
        return None, None
    cols = [{"name": f.name, "dtype": str(f.type)} for f in schema]
    return {"columns": cols}, int(meta.num_rows)


def _npy_info(path: str) -> tuple[dict[str, Any] | None, int | None]:
    """Read the ``.npy`` header (a Python literal) without loading the array."""
    with open(path, "rb") as f:
        head = f.read(10)
        if len(head) < 10 or head[:6] != b"\x93NUMPY":
            return None, None
        if head[6] == 1:
            hlen = struct.unpack("<H", head[8:10])[0]
        else:
            hlen = struct.unpack("<I", head[8:10] + f.read(2))[0]
        header = ast.literal_eval(f.read(hlen).decode("latin-1"))
    descr, shape = header["descr"], tuple(int(n) for n in header["shape"])
    try:
        import numpy as np

        dtype = str(np.dtype(descr))
    except (ImportError, TypeError, ValueError):
        dtype = str(descr)
    return {"dtype": dtype, "shape": list(shape)}, (shape[0] if shape else None)
