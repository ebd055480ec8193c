"""What an input is: a provenance entry, as a plain YAML-ready dict.

:func:`describe_input` turns a file, a folder, a pandas DataFrame (or Series), a numpy
array or a remote URI into an entry. Every entry has ``name``, ``context``,
``source``, ``kind`` (``file``, ``folder``, ``dataframe``, ``array`` or ``uri``),
``digest``, ``size``, ``format``, ``verifiable`` and ``tags``; each kind adds its
own keys (see :func:`describe_input`). A folder entry also carries ``files``, the
per-file manifest, which the caller stores beside the entry as a TSV
(:func:`~vtrack.datasets.manifest.manifest_to_tsv`) and removes before writing YAML.

pandas and numpy are never imported here: data is recognised as a DataFrame or an array
only when its library is already loaded.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from vtrack.datasets.canonical import array_digest, dataframe_digest
from vtrack.datasets.folders import hash_folder
from vtrack.datasets.manifest import folder_digest
from vtrack.datasets.schema import detect_format, file_schema_and_rows, folder_format
from vtrack.errors import DatasetError, ValidationError
from vtrack.hashing import parse_digest
from vtrack.limits import MAX_KEY_LENGTH
from vtrack.statcache import BaseStatCache, NoStatCache

__all__ = ["describe_input", "is_uri"]

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


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
        entry = _base(
            name or f"dataframe-{parse_digest(digest)[:8]}",
            context,
            source,
            "dataframe",
            digest,
            size,
            "pandas",
            tag_map,
        )
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
        entry = _base(
            name or f"array-{parse_digest(digest)[:8]}",
            context,
            source,
            "array",
            digest,
            size,
            "numpy",
            tag_map,
        )
        entry["schema"] = {"dtype": str(data.dtype), "shape": [int(n) for n in data.shape]}
        if data.ndim:
            entry["rows"] = int(data.shape[0])
        return _attach_source_file(entry, source, the_cache)

    if isinstance(data, str) and is_uri(data) and not data.lower().startswith("file://"):
        entry = _base(
            name or _uri_name(data),
            context,
            source or data,
            "uri",
            None,
            None,
            detect_format(urlparse(data).path),
            tag_map,
        )
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
        raise DatasetError(
            f"input path {path} does not exist", path=path, reason="missing"
        ) from None
    except OSError as exc:
        raise DatasetError(f"cannot read input path {path}: {exc.strerror}", path=path) from exc
    base_name = name or os.path.basename(path.rstrip(os.sep)) or path
    _validate_name(base_name)

    if stat_mod.S_ISDIR(st.st_mode):
        files = hash_folder(path, exclude=exclude, cache=the_cache)
        entry = _base(
            base_name,
            context,
            source or path,
            "folder",
            folder_digest(files),
            sum(size for _, size, _ in files),
            folder_format(files),
            tag_map,
        )
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
    schema, rows = file_schema_and_rows(path, fmt, size)
    if schema is not None:
        entry["schema"] = schema
    if rows is not None:
        entry["rows"] = rows
    return entry


def _base(
    name: str,
    context: str | None,
    source: str | None,
    kind: str,
    digest: str | None,
    size: int | None,
    fmt: str | None,
    tags: dict[str, str],
) -> dict[str, Any]:
    return {
        "name": name,
        "context": context,
        "source": source,
        "kind": kind,
        "digest": digest,
        "size": size,
        "format": fmt,
        "verifiable": kind in ("file", "folder"),
        "tags": tags,
    }


def _attach_source_file(
    entry: dict[str, Any], source: str | None, cache: BaseStatCache
) -> dict[str, Any]:
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
