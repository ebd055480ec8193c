"""Dataset provenance entries: what a run read, as a plain YAML-ready dict.

:func:`describe_input` turns a file, a folder, a pandas DataFrame (or Series), a numpy
array or a remote URI into an entry. Every entry has ``name``, ``context``,
``source``, ``kind`` (``file``, ``folder``, ``dataframe``, ``array`` or ``uri``),
``digest``, ``size``, ``format``, ``verifiable`` and ``tags``; each kind adds its
own keys (see :func:`describe_input`). A folder entry also carries ``files``, the
per-file manifest, which the caller stores beside the entry as a TSV
(:func:`manifest_to_tsv`) and removes before writing YAML.

Folder digest: xxh3-128 of the manifest TSV, i.e. of the lines
``"<relative posix path>\\t<size>\\t<file digest>\\n"`` sorted by path, where a
path's backslash, tab, newline and carriage return are written ``\\\\``, ``\\t``,
``\\n``, ``\\r`` and a byte that is not UTF-8 is written ``\\xNN``.

In-memory data is hashed over canonical bytes (see :func:`dataframe_digest` and
:func:`array_digest`), so equal data gives the same digest whatever its memory layout.

pandas, numpy, pyarrow and rich are imported inside the functions that need them.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import decimal
import io
import os
import re
import stat as stat_mod
import struct
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote, urlparse

import xxhash

from vtrack.errors import DatasetError, ValidationError
from vtrack.hashing import format_digest, hash_bytes, parse_digest
from vtrack.limits import MAX_KEY_LENGTH
from vtrack.statcache import BaseStatCache, NoStatCache

#: CSV files smaller than this get a row count (one extra read of the file).
CSV_ROW_COUNT_MAX_BYTES = 64 * 1024 * 1024
#: Bytes of a CSV file read to find its header and sniff column types.
CSV_SAMPLE_BYTES = 64 * 1024
#: Data rows of that sample used for type sniffing.
CSV_SAMPLE_ROWS = 1000
#: A folder's progress bar appears only after hashing has taken this long (and on a TTY).
PROGRESS_DELAY_SECONDS = 1.0
#: Values per slice when hashing in-memory columns (bounds extra memory).
_SLICE_BYTES = 16 * 1024 * 1024

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".npz": "npz",
    ".txt": "txt", ".feather": "feather", ".arrow": "arrow", ".pkl": "pickle",
    ".pickle": "pickle", ".h5": "hdf5", ".hdf5": "hdf5", ".xlsx": "xlsx", ".avro": "avro",
    ".orc": "orc", ".zip": "zip", ".tar": "tar", ".png": "png", ".jpg": "jpeg",
    ".jpeg": "jpeg", ".wav": "wav", ".pt": "torch", ".safetensors": "safetensors",
    ".yaml": "yaml", ".yml": "yaml", ".xml": "xml",
}
_COMPRESSIONS = {".gz": "gz", ".bz2": "bz2", ".xz": "xz", ".zst": "zst"}


# --------------------------------------------------------------------------- entries
def describe_input(
    data: Any,
    name: str | None = None,
    context: str | None = None,
    source: str | os.PathLike[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    cache: BaseStatCache | None = None,
    *,
    exclude: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Return the provenance entry for ``data``.

    ``data`` may be a path (str or PathLike) to a file or folder, a remote URI string
    (``s3://``, ``gs://``, ``http(s)://``, ``hf://`` …; ``file://`` is a local path),
    a pandas DataFrame or Series, or a numpy array. ``cache`` (a stat cache) avoids
    rehashing unchanged files; without one every file is hashed. ``exclude`` takes
    gitignore-style patterns for folders (see :func:`list_folder`).

    Keys by kind, besides the common ones:

    - ``file``: ``path`` (absolute), ``file_count`` (1), ``schema`` and ``rows`` when
      cheap to know (CSV/TSV header and sampled types, rows under
      :data:`CSV_ROW_COUNT_MAX_BYTES`; Parquet metadata when pyarrow is installed;
      ``.npy`` header). ``source`` defaults to ``path``.
    - ``folder``: ``path``, ``file_count``, ``files`` (sorted ``(relpath, size,
      digest)`` tuples), ``exclude`` when given; ``format`` is the files' common
      format or ``"mixed"``.
    - ``dataframe`` / ``array``: ``schema`` (columns and dtypes / dtype and shape),
      ``rows``; if ``source`` names an existing local file it is hashed too and
      recorded as ``path``, ``source_digest`` and ``source_size`` (then the entry is
      ``verifiable``).
    - ``uri``: nothing is read; ``digest`` and ``size`` are None, ``verifiable`` False.

    Raises DatasetError naming the path if it is missing or a file cannot be read,
    ValidationError for a bad name, tag or unsupported ``data`` type.
    """
    tag_map = _validate_tags(tags)
    if name is not None:
        _validate_name(name)
    if context is not None and not isinstance(context, str):
        raise ValidationError(f"input context {context!r} must be a string, like 'train'")
    if source is not None:
        source = os.fspath(source)
    if isinstance(exclude, str):
        exclude = [exclude]
    the_cache = cache if cache is not None else NoStatCache()

    frame_like = _as_dataframe(data)
    if frame_like is not None:
        digest, size = dataframe_digest(frame_like)
        entry = _base(name or f"dataframe-{parse_digest(digest)[:8]}", context, source,
                      "dataframe", digest, size, "pandas", tag_map)
        entry["schema"] = {
            "columns": [
                {"name": str(c), "dtype": str(t)}
                for c, t in zip(frame_like.columns, frame_like.dtypes, strict=True)
            ]
        }
        entry["rows"] = int(frame_like.shape[0])
        return _attach_source_file(entry, source, the_cache)

    if _is_ndarray(data):
        digest, size = array_digest(data)
        entry = _base(name or f"array-{parse_digest(digest)[:8]}", context, source,
                      "array", digest, size, "numpy", tag_map)
        entry["schema"] = {"dtype": str(data.dtype), "shape": [int(n) for n in data.shape]}
        if data.ndim:
            entry["rows"] = int(data.shape[0])
        return _attach_source_file(entry, source, the_cache)

    if isinstance(data, str) and is_uri(data) and not data.lower().startswith("file://"):
        entry = _base(name or _uri_name(data), context, source or data, "uri", None, None,
                      detect_format(urlparse(data).path), tag_map)
        entry["verifiable"] = False
        return entry

    if isinstance(data, str) and data.lower().startswith("file://"):
        data = unquote(urlparse(data).path)
    if not isinstance(data, (str, os.PathLike)):
        raise ValidationError(
            f"cannot describe an input of type {type(data).__name__}",
            hint="pass a path, a URI, a pandas DataFrame or a numpy array",
        )
    path = os.path.abspath(os.fspath(data))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DatasetError(f"input path {path} does not exist", path=path, reason="missing") from None
    except OSError as exc:
        raise DatasetError(f"cannot read input path {path}: {exc.strerror}", path=path) from exc
    base_name = name or os.path.basename(path.rstrip(os.sep)) or path
    _validate_name(base_name)

    if stat_mod.S_ISDIR(st.st_mode):
        files = hash_folder(path, exclude=exclude, cache=the_cache)
        entry = _base(base_name, context, source or path, "folder", folder_digest(files),
                      sum(size for _, size, _ in files), _folder_format(files), tag_map)
        entry["path"] = path
        entry["file_count"] = len(files)
        if exclude:
            entry["exclude"] = list(exclude)
        entry["files"] = files
        return entry

    digest, size = the_cache.digest(path)
    fmt = detect_format(path)
    entry = _base(base_name, context, source or path, "file", digest, size, fmt, tag_map)
    entry["path"] = path
    entry["file_count"] = 1
    schema, rows = _file_schema_and_rows(path, fmt, size)
    if schema is not None:
        entry["schema"] = schema
    if rows is not None:
        entry["rows"] = rows
    return entry


def _base(name: str, context: str | None, source: str | None, kind: str, digest: str | None,
          size: int | None, fmt: str | None, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name, "context": context, "source": source, "kind": kind, "digest": digest,
        "size": size, "format": fmt, "verifiable": kind in ("file", "folder"), "tags": tags,
    }


def _attach_source_file(entry: dict[str, Any], source: str | None,
                        cache: BaseStatCache) -> dict[str, Any]:
    """Hash ``source`` as well when it names an existing local file (for later audits)."""
    if not source or is_uri(source):
        return entry
    path = os.path.abspath(source)
    if os.path.isfile(path):
        entry["path"] = path
        entry["source_digest"], entry["source_size"] = cache.digest(path)
        entry["verifiable"] = True
    return entry


def is_uri(text: str) -> bool:
    """True if ``text`` looks like ``scheme://…`` (a remote location, or ``file://``)."""
    return bool(_URI_RE.match(text))


def _uri_name(uri: str) -> str:
    parsed = urlparse(uri)
    tail = [seg for seg in parsed.path.split("/") if seg]
    return unquote(tail[-1]) if tail else (parsed.netloc or parsed.scheme)


def _validate_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"input name {name!r} must be a non-empty string")
    if len(name) > MAX_KEY_LENGTH:
        raise ValidationError(f"input name {name[:40]!r}… is longer than {MAX_KEY_LENGTH}")
    if name in (".", "..") or any(c in name for c in "/\\\0\n\r"):
        raise ValidationError(
            f"input name {name!r} cannot be used as a file name",
            hint="use no slashes, backslashes or newlines, and not '.' or '..'",
        )


def _validate_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationError(f"input tags must be a mapping, not {type(tags).__name__}")
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not k:
            raise ValidationError(f"input tag key {k!r} must be a non-empty string")
        out[k] = "" if v is None else str(v)
    return dict(sorted(out.items()))


def _as_dataframe(data: Any) -> Any:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    return None


def _is_ndarray(data: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(data, (np.ndarray, np.generic))


# --------------------------------------------------------------------------- folders
def list_folder(root: str | os.PathLike[str],
                exclude: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """List the files under ``root`` recursively as sorted ``(relative posix path, abspath)``.

    Symlinks to files and folders are followed (a symlink loop raises DatasetError).
    Entries that are not folders are listed even if they are not regular files (FIFOs,
    dangling links) so that hashing can report them. ``exclude`` holds gitignore-style
    patterns matched with fnmatch: a pattern without ``/`` matches a name at any depth,
    one with ``/`` matches the whole relative path (a leading ``/`` anchors it, a
    leading ``**/`` also matches at the top), a trailing ``/`` matches only folders,
    and an excluded folder excludes everything below it. ``!`` negation is not
    supported (ValidationError).
    """
    rules = _compile_excludes(exclude or ())
    top = os.path.abspath(os.fspath(root))
    out: list[tuple[str, str]] = []
    try:
        top_st = os.stat(top)
    except OSError as exc:
        raise DatasetError(f"cannot read input folder {top}: {exc.strerror}", path=top) from exc
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, "", frozenset({(top_st.st_dev, top_st.st_ino)}))
    ]
    while stack:
        folder, prefix, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            raise DatasetError(
                f"cannot list input folder {folder}: {exc.strerror}", path=folder
            ) from exc
        for e in entries:
            rel = prefix + e.name
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if rules and _excluded(rel, is_dir, rules):
                continue
            if not is_dir:
                out.append((rel, e.path))
                continue
            ident: tuple[int, int] | None = None
            if e.is_symlink():
                st = os.stat(e.path)
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    raise DatasetError(
                        f"symbolic link {e.path} loops back to a folder that contains it",
                        hint="exclude it", path=e.path,
                    )
            else:
                st = e.stat(follow_symlinks=False)
                ident = (st.st_dev, st.st_ino)
            stack.append((e.path, rel + "/", ancestors | {ident}))
    out.sort()
    return out


def _compile_excludes(patterns: Iterable[str]) -> list[tuple[str, bool, bool]]:
    rules = []
    for raw in [patterns] if isinstance(patterns, str) else patterns:
        if not isinstance(raw, str) or not raw.strip():
            raise ValidationError(f"exclude pattern {raw!r} must be a non-empty string")
        pat = raw.strip()
        if pat.startswith("!"):
            raise ValidationError(f"exclude pattern {raw!r}: '!' negation is not supported")
        dir_only = pat.endswith("/")
        pat = pat.rstrip("/")
        anchored = "/" in pat
        rules.append((pat.lstrip("/"), anchored, dir_only))
    return rules


def _excluded(rel: str, is_dir: bool, rules: list[tuple[str, bool, bool]]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    for pat, anchored, dir_only in rules:
        if dir_only and not is_dir:
            continue
        if anchored:
            if fnmatchcase(rel, pat) or (pat.startswith("**/") and fnmatchcase(rel, pat[3:])):
                return True
        elif fnmatchcase(base, pat):
            return True
    return False


def hash_folder(root: str | os.PathLike[str], exclude: Sequence[str] | None = None,
                cache: BaseStatCache | None = None) -> list[tuple[str, int, str]]:
    """Return the folder's manifest: sorted ``(relative posix path, size, digest)``.

    Hashes through ``cache`` (or without one); shows a progress bar on stderr when it
    takes more than :data:`PROGRESS_DELAY_SECONDS` and stderr is a terminal. Raises
    DatasetError naming the first file that cannot be hashed.
    """
    listing = list_folder(root, exclude)
    the_cache = cache if cache is not None else NoStatCache()
    progress = DeferredProgress(len(listing), f"hashing {os.path.basename(os.fspath(root))}")
    try:
        with the_cache.batch():
            results = the_cache.digest_many([p for _, p in listing], progress=progress)
    finally:
        progress.close()
    return [(rel, size, digest) for (rel, _), (digest, size) in zip(listing, results, strict=True)]


class DeferredProgress:
    """A rich progress bar over files that appears only after a delay, and only on a TTY.

    Call it as ``progress(files_done, bytes_done)`` (a statcache ``ProgressCallback``)
    and :meth:`close` it at the end; nothing is printed when stderr is not a terminal
    or when the work ends within ``delay`` seconds (default
    :data:`PROGRESS_DELAY_SECONDS`). rich is imported only when the bar appears.
    """

    def __init__(self, total: int, label: str, delay: float | None = None) -> None:
        self.total = total
        self.label = label
        self.start = time.monotonic()
        self.delay = PROGRESS_DELAY_SECONDS if delay is None else delay
        self.enabled = _stderr_is_tty()
        self.bar: Any = None
        self.task: Any = None
        self.last = 0.0

    def __call__(self, files_done: int, bytes_done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        if self.bar is None:
            if now - self.start < self.delay:
                return
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(file=sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        self.bar.update(self.task, completed=files_done)

    def close(self) -> None:
        """Remove the bar if it was shown; safe to call twice."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- manifests
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


# --------------------------------------------------------------------------- formats
def detect_format(path: str) -> str | None:
    """Guess a file's format from its extension (``csv``, ``parquet``, ``csv.gz`` …)."""
    root, ext = os.path.splitext(os.path.basename(path).lower())
    if ext in _COMPRESSIONS:
        inner = detect_format(root)
        return f"{inner}.{_COMPRESSIONS[ext]}" if inner else _COMPRESSIONS[ext]
    if ext in _FORMATS:
        return _FORMATS[ext]
    return ext[1:] if len(ext) > 1 and ext[1:].isalnum() else None


def _folder_format(files: Sequence[tuple[str, int, str]]) -> str | None:
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


def _file_schema_and_rows(path: str, fmt: str | None, size: int) -> tuple[Any, int | None]:
    """Schema and row count where they are cheap; (None, None) when unknown. Never raises."""
    try:
        if fmt in ("csv", "tsv"):
            delim = "\t" if fmt == "tsv" else None
            schema = _csv_schema(path, delim)
            rows = _csv_rows(path) if schema is not None and size < CSV_ROW_COUNT_MAX_BYTES else None
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


# --------------------------------------------------------------------------- canonical bytes
class _Hasher:
    """xxh3-128 that counts the bytes it was fed."""

    __slots__ = ("h", "n")

    def __init__(self) -> None:
        self.h = xxhash.xxh3_128()
        self.n = 0

    def update(self, data: Any) -> None:
        self.h.update(data)
        self.n += len(data)

    def put_str(self, text: str) -> None:
        raw = text.encode("utf-8", "surrogatepass")
        self.update(struct.pack("<Q", len(raw)))
        self.update(raw)

    def absorb(self, sub: _Hasher) -> None:
        """Feed a finished sub-stream's raw digest (its bytes count as fed)."""
        self.h.update(sub.h.digest())
        self.n += sub.n


def dataframe_digest(df: Any) -> tuple[str, int]:
    """Return ``(digest, canonical byte count)`` of a pandas DataFrame.

    Canonical form, version 1 (stable across pandas and numpy versions and memory
    layouts): the header ``vtrack-dataframe-v1\\n``, row and column counts and an
    index flag, then each column in order as its name (tagged value), its dtype name
    and its values:

    - numpy numeric, bool, datetime64 and timedelta64 dtypes: the little-endian
      C-contiguous bytes, every NaN replaced by the one canonical NaN;
    - timezone-aware datetimes: the int64 UTC instants (the zone is in the dtype name);
    - nullable numeric and boolean dtypes: the null mask, then values with nulls as 0;
    - categoricals: the ordered flag, the categories (as a column), the int64 codes;
    - strings (any string dtype, or object dtype whose non-null values are all str;
      dtype name ``string`` for all of them, so pandas 2's object columns and pandas 3's
      ``str`` columns agree): digests of the null mask, of the UTF-8 lengths (uint64)
      and of the concatenated UTF-8 bytes;
    - anything else: each value tagged by type (null, bool, int, float, str, bytes,
      date/time as ISO text, Decimal, sequences, and as a last resort type name + repr).

    The index is hashed (as leading columns) unless it is an unnamed integer index,
    which is positional bookkeeping rather than data. Row-equal frames with equal
    dtypes therefore share a digest; changing any value, name or dtype changes it.
    """
    import pandas as pd

    h = _Hasher()
    h.update(b"vtrack-dataframe-v1\n")
    nrows, ncols = df.shape
    index = df.index
    with_index = not (
        index.nlevels == 1 and index.name is None and pd.api.types.is_integer_dtype(index.dtype)
    )
    h.update(struct.pack("<QQB", nrows, ncols, with_index))
    if with_index:
        for level in range(index.nlevels):
            values = pd.Series(index.get_level_values(level), copy=False)
            _hash_column(h, ("__index__", level, index.names[level]), values)
    for i in range(ncols):
        _hash_column(h, df.columns[i], df.iloc[:, i])
    return format_digest(h.h.hexdigest()), h.n


def _hash_column(h: _Hasher, name: Any, values: Any) -> None:
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    h.update(b"C")
    _put_value(h, name)
    if isinstance(dtype, pd.CategoricalDtype):
        h.put_str(str(dtype))
        h.update(b"K\x01" if dtype.ordered else b"K\x00")
        _hash_column(h, "__categories__", pd.Series(dtype.categories, copy=False))
        _hash_ndarray(h, values.cat.codes.to_numpy(dtype=np.int64))
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        h.put_str(str(dtype))
        h.update(b"F")
        _hash_ndarray(h, values.to_numpy())
    elif isinstance(dtype, pd.DatetimeTZDtype):
        h.put_str(str(dtype))
        h.update(b"Z")
        utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        _hash_ndarray(h, utc.view(np.int64))
    elif getattr(dtype, "numpy_dtype", None) is not None and dtype.numpy_dtype.kind in "biufc":
        h.put_str(str(dtype))
        h.update(b"M")
        mask = values.isna().to_numpy(dtype=bool)
        fill = False if dtype.numpy_dtype.kind == "b" else 0
        _hash_ndarray(h, mask.view(np.uint8))
        _hash_ndarray(h, values.to_numpy(dtype=dtype.numpy_dtype, na_value=fill))
    else:
        objs = values.to_numpy(dtype=object)
        mask = np.asarray(pd.isna(objs), dtype=bool)
        present = objs[~mask]
        if all(isinstance(v, str) for v in present):
            # object-of-str (pandas 2) and str/string (pandas 3) hash alike
            h.put_str("string")
            h.update(b"S")
            _hash_strings(h, mask, present)
        else:
            h.put_str(str(dtype))
            h.update(b"O")
            for v in objs:
                _put_value(h, v)


def _hash_strings(h: _Hasher, mask: Any, present: Any) -> None:
    import numpy as np

    mask_h, len_h, data_h = _Hasher(), _Hasher(), _Hasher()
    mask_h.update(mask.view(np.uint8))
    step = 65536
    for start in range(0, len(present), step):
        raw = [v.encode("utf-8", "surrogatepass") for v in present[start : start + step]]
        len_h.update(np.fromiter(map(len, raw), dtype="<u8", count=len(raw)).view(np.uint8))
        data_h.update(b"".join(raw))
    for sub in (mask_h, len_h, data_h):
        h.absorb(sub)


def _hash_ndarray(h: _Hasher, arr: Any) -> None:
    """Feed the little-endian C-order bytes of a non-object array, NaNs canonical."""
    import numpy as np

    a = np.asarray(arr)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    flat = np.ascontiguousarray(a).reshape(-1)
    if flat.dtype.kind == "c":
        flat = flat.view(np.dtype(f"<f{flat.dtype.itemsize // 2}"))
    step = max(1, _SLICE_BYTES // max(flat.dtype.itemsize, 1))
    floating = flat.dtype.kind == "f"
    for start in range(0, flat.size, step):
        part = flat[start : start + step]
        if floating:
            nan = np.isnan(part)
            if nan.any():
                part = part.copy()
                part[nan] = np.nan
        h.update(part.view(np.uint8))


def _put_value(h: _Hasher, v: Any) -> None:
    """Feed one Python value in the tagged, self-delimiting canonical encoding."""
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if v is None or (pd is not None and (v is pd.NA or v is pd.NaT)):
        h.update(b"N")
    elif isinstance(v, bool) or (np is not None and isinstance(v, np.bool_)):
        h.update(b"T" if v else b"F")
    elif isinstance(v, int) or (np is not None and isinstance(v, np.integer)):
        h.update(b"I")
        h.put_str(str(int(v)))
    elif isinstance(v, float) or (np is not None and isinstance(v, np.floating)):
        f = float(v)
        h.update(b"N" if f != f else b"D" + struct.pack("<d", f))
    elif isinstance(v, complex) or (np is not None and isinstance(v, np.complexfloating)):
        c = complex(v)
        h.update(b"X" + struct.pack("<dd", c.real, c.imag))
    elif isinstance(v, str):
        h.update(b"S")
        h.put_str(v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        raw = bytes(v)
        h.update(b"B" + struct.pack("<Q", len(raw)))
        h.update(raw)
    elif isinstance(v, (dt.datetime, dt.date, dt.time)):
        h.update(b"t")
        h.put_str(v.isoformat())
    elif pd is not None and isinstance(v, pd.Timedelta):
        h.update(b"l" + struct.pack("<q", v.value))
    elif isinstance(v, dt.timedelta):
        h.update(b"l" + struct.pack("<q", (v.days * 86400 + v.seconds) * 10**9 + v.microseconds * 1000))
    elif isinstance(v, decimal.Decimal):
        h.update(b"m")
        h.put_str(str(v))
    elif isinstance(v, (tuple, list)):
        h.update((b"U" if isinstance(v, tuple) else b"L") + struct.pack("<Q", len(v)))
        for item in v:
            _put_value(h, item)
    elif np is not None and isinstance(v, np.ndarray):
        h.update(b"A")
        _array_into(h, v)
    elif np is not None and isinstance(v, (np.datetime64, np.timedelta64)):
        h.update(b"n")
        h.put_str(f"{v.dtype.str}:{v.astype(np.int64)}")
    else:
        h.update(b"R")
        h.put_str(f"{type(v).__module__}.{type(v).__qualname__}")
        h.put_str(repr(v))


def array_digest(arr: Any) -> tuple[str, int]:
    """Return ``(digest, canonical byte count)`` of a numpy array.

    Canonical form, version 1: ``vtrack-array-v1\\n``, the little-endian dtype
    descriptor, the shape, then the C-order little-endian bytes with every NaN made
    the canonical NaN (object arrays: each element tagged as in
    :func:`dataframe_digest`). Equal dtype, shape and values give equal digests
    whatever the memory order, strides or byte order.
    """
    h = _Hasher()
    h.update(b"vtrack-array-v1\n")
    _array_into(h, arr)
    return format_digest(h.h.hexdigest()), h.n


def _array_into(h: _Hasher, arr: Any) -> None:
    import numpy as np

    a = np.asarray(arr)
    dtype = a.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        dtype = dtype.newbyteorder("<")
    h.put_str(dtype.str if dtype.fields is None else repr(dtype.descr))
    h.update(struct.pack(f"<Q{a.ndim}Q", a.ndim, *a.shape))
    if dtype.kind == "O":
        for v in a.reshape(-1):
            _put_value(h, v)
    else:
        _hash_ndarray(h, a)


__all__ = [
    "CSV_ROW_COUNT_MAX_BYTES",
    "DeferredProgress",
    "array_digest",
    "dataframe_digest",
    "describe_input",
    "detect_format",
    "folder_digest",
    "hash_folder",
    "is_uri",
    "list_folder",
    "manifest_from_tsv",
    "manifest_to_tsv",
]

