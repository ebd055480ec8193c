"""``.vtrack/summary.json``: the run record in one cheap-to-parse blob, derived from the YAML.

The YAML files stay the readable contract (``docs/concepts/run-record.md``); a fresh
clone's index would spend most of its time in PyYAML's constructor reading them
(issue 15: 92 of 122 s at 100,000 runs). So every run commit also carries one JSON
document holding exactly what ``load_yaml`` returns for each record file, and the blob
SHA of each file it was derived from::

    {"v": 1, "from": {"run.yaml": "<sha>", ...}, "docs": {"run.yaml": {...}, ...}}

A reader uses it only when ``from`` names exactly the record files of the same tree
(same names, same SHAs); anything else — a record edited by hand or by an older
vtrack that carried a stale copy along, a run made before the summary existed, a
damaged document — falls back to the YAML. A summary is written only for values that
JSON represents exactly as YAML reloads them (dicts with string keys, lists, strings,
ints, floats, booleans, None); a record holding anything else simply has none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: The file's name inside ``.vtrack/``.
SUMMARY_FILE = "summary.json"
SUMMARY_VERSION = 1
#: The record files a summary may stand for.
SUMMARIZED = ("run.yaml", "params.yaml", "metrics.yaml", "inputs.yaml", "artifacts.yaml")


def _exact(value: Any, depth: int = 0) -> bool:
    """True when ``json.loads(json.dumps(value))`` equals ``value`` in type and content."""
    if depth > 64:
        return False
    kind = type(value)
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the YAML holds them escaped
            return False
        return True
    if value is None or kind is bool or kind is int:
        return True
    if kind is float:
        return True
    if kind is list:
        return all(_exact(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _exact(k) and _exact(v, depth + 1) for k, v in value.items())
    return False


def encode(docs: Mapping[str, tuple[Any, str]]) -> bytes | None:
    """The summary of ``{file name: (loaded content, blob sha)}``; None when not exact."""
    if not all(_exact(data) for data, _ in docs.values()):
        return None
    body = {
        "v": SUMMARY_VERSION,
        "from": {name: sha for name, (_, sha) in sorted(docs.items())},
        "docs": {name: data for name, (data, _) in sorted(docs.items())},
    }
    # sort_keys: the YAML is dumped sorted, so the reloaded mappings are in that order
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


#: Digits to "0", everything else to " ": 19 zeros in a row after it mark a run of 19
#: digits or more, which an integer orjson reads as a float (beyond 64 bits) needs.
_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_LONG_RUN = b"0" * 19


def fast_loads(data: bytes | str) -> Any:
    """``json.loads``, through orjson when it is installed (3x faster here: the ``fast``
    extra) for text it reads exactly as ``json`` does. What orjson refuses (NaN,
    infinities, lone surrogates, very deep documents) or may read differently (integer
    literals of 19 digits or more, which it can turn into floats; any run of 19 digits
    sends the text to ``json``) is read by ``json``."""
    global _orjson, _calls
    if _orjson is None:
        _calls += 1
        if _calls < ORJSON_AFTER:
            return json.loads(data)
        _orjson = _load_orjson()
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if _orjson is not False and _LONG_RUN not in data.translate(_DIGITS):
        try:
            return _orjson.loads(data)
        except ValueError:
            pass
    return json.loads(data)


def plain_loads(data: bytes) -> Any:
    """A ``loads`` for the JSON documents inside ``data`` that is exactly ``json.loads``:
    orjson itself when it is installed and ``data`` holds no run of 19 digits or more
    (one scan of the whole text instead of one per document, see :func:`fast_loads`),
    else :func:`fast_loads`."""
    global _orjson
    if _orjson is None:
        _orjson = _load_orjson()
    if _orjson is False or _LONG_RUN in data.translate(_DIGITS):
        return fast_loads
    return _orjson.loads


def orjson_loads() -> Any:
    """orjson's ``loads`` when it is installed (the ``fast`` extra), else None: for
    callers that check what it may read differently themselves (:func:`fast_loads`)."""
    global _orjson
    if _orjson is None:
        _orjson = _load_orjson()
    return None if _orjson is False else _orjson.loads


def _load_orjson() -> Any:
    try:
        import orjson
    except ImportError:
        return False
    return orjson


#: Documents read with ``json`` before orjson is imported (its import costs ~12 ms: a
#: command reading a page of runs is faster without it).
ORJSON_AFTER = 200
_orjson: Any = None  # imported once many documents are read (False: not installed)
_calls = 0


def decode(data: bytes, shas: Mapping[str, str]) -> dict[str, Any] | None:
    """The documents of a summary whose sources are exactly ``shas`` (the tree's record
    files by name); None when it is stale, damaged or of another version."""
    try:
        body = fast_loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("v") != SUMMARY_VERSION:
        return None
    sources, docs = body.get("from"), body.get("docs")
    if not isinstance(docs, dict) or sources != dict(shas) or set(docs) != set(shas):
        return None
    return docs


def same_floats(a: Any, b: Any) -> bool:
    """Equality that holds NaN equal to NaN (what a reloaded record compares as)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_floats(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_floats(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
