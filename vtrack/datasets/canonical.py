"""Canonical bytes of in-memory data: the digests of pandas DataFrames and numpy arrays.

Equal data gives the same digest whatever its memory layout, strides or byte order, and
across pandas and numpy versions (the canonical forms are versioned: see
:func:`dataframe_digest` and :func:`array_digest`). Changing any value, name or dtype
changes the digest.

pandas and numpy are imported inside the functions that need them (or looked up in
``sys.modules`` when only a type check is needed), never at import time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import sys
from typing import Any

from vtrack.hashing import format_digest, new_hasher

__all__ = ["array_digest", "dataframe_digest"]

#: Values per slice when hashing in-memory columns (bounds extra memory).
_SLICE_BYTES = 16 * 1024 * 1024


class _Hasher:
    """xxh3-128 that counts the bytes it was fed."""

    __slots__ = ("h", "n")

    def __init__(self) -> None:
        self.h = new_hasher()
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
        h.update(
            b"l" + struct.pack("<q", (v.days * 86400 + v.seconds) * 10**9 + v.microseconds * 1000)
        )
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
