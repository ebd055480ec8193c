"""Input rules for keys, params, tags, metrics and names.

Every function returns the normalized value or raises :class:`ValidationError`
naming the key and the rule it broke. The rules are MLflow's, so scripts move over
unchanged.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from vtrack.errors import ValidationError
from vtrack.limits import (
    HISTORY_CHUNK_DIGITS,
    MAX_DESCRIPTION_LENGTH,
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    RUN_ID_HEX_LENGTH,
)

# Patterns are always applied with fullmatch: "$" also matches before a final newline.
_KEY_RE = re.compile(r"[A-Za-z0-9_\-./ ]+")
_KEY_CHAR_RE = re.compile(r"[A-Za-z0-9_\-./ ]")
_CHUNK_NAME_RE = re.compile(rf"[0-9]{{{HISTORY_CHUNK_DIGITS}}}\.tsv")
_RUN_ID_RE = re.compile(rf"[0-9a-f]{{{RUN_ID_HEX_LENGTH}}}")
_EXP_ID_RE = re.compile(r"[0-9a-z][0-9a-z_-]{0,63}")
_CACHE_LIMIT = 100_000

# Keys already checked in this process, one set per rule (a key valid as a tag key may
# still be refused as a metric key); keeps log_metric on its fast path.
_valid_keys: set[str] = set()
_valid_metric_keys: set[str] = set()
#: Metric keys already checked (read-only for others: the client's fast path of log_metric).
KNOWN_METRIC_KEYS: frozenset[str] | set[str] = _valid_metric_keys


def check_text(what: str, text: str) -> str:
    """Return ``text`` if it can be stored (valid Unicode: no lone surrogates), else raise.

    Python makes lone surrogates out of bytes that are not UTF-8 (file names from
    ``os.listdir``, ``sys.argv``); YAML, JSON for git and SQLite cannot store them, so a
    record holding one would be unreadable. Refused here, before anything is recorded.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("utf-8", "surrogateescape").hex()
        raise ValidationError(
            f"{what} {text[:40]!r} is not valid Unicode (it holds the undecodable byte(s) "
            f"0x{bad} at position {exc.start})",
            hint="decode file names and arguments with a real encoding first, "
            "e.g. os.fsencode(name).decode('utf-8', 'backslashreplace')",
        ) from None
    return text


def validate_key(key: Any, what: str = "key") -> str:
    """Return ``key`` if it is a valid param, metric or tag key, else raise.

    Keys are 1-250 characters of letters, digits, ``_ - . /`` and space; they may
    not contain ``..``, start or end with ``/``, or hold empty or ``.`` path parts.
    """
    if key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise ValidationError(f"{what} {key!r} must be a string, not {type(key).__name__}")
    if not key:
        raise ValidationError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"{what} {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.fullmatch(key):
        bad = sorted({c for c in key if not _KEY_CHAR_RE.fullmatch(c)})
        raise ValidationError(
            f"{what} {key!r} contains {''.join(bad)!r}; only letters, digits, "
            "'_', '-', '.', '/' and spaces are allowed"
        )
    if ".." in key:
        raise ValidationError(f"{what} {key!r} must not contain '..'")
    if key.startswith("/") or key.endswith("/"):
        raise ValidationError(f"{what} {key!r} must not start or end with '/'")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".") or part.strip() == "":
            raise ValidationError(f"{what} {key!r} has an empty or '.' path component")
    if len(_valid_keys) < _CACHE_LIMIT:
        _valid_keys.add(key)
    return key


def validate_metric_key(key: Any) -> str:
    """Return ``key`` if valid as a metric key (a key whose path parts are not chunk names)."""
    if key in _valid_metric_keys:
        return key
    validate_key(key, "metric key")
    if any(_CHUNK_NAME_RE.fullmatch(p) for p in key.split("/")):
        raise ValidationError(
            f"metric key {key!r} has a path part that looks like a history chunk file name"
        )
    if len(_valid_metric_keys) < _CACHE_LIMIT:
        _valid_metric_keys.add(key)
    return key


def validate_metric_value(key: str, value: Any) -> float:
    """Return ``value`` as a float; NaN and ±inf are allowed, non-numbers raise."""
    t = type(value)
    if t is float:
        return value
    if t is int:
        return float(value)
    if isinstance(value, (str, bytes, complex)) or value is None:
        raise ValidationError(
            f"metric {key!r}: value {value!r} is not a real number ({type(value).__name__})"
        )
    if isinstance(value, numbers.Real) or hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"metric {key!r}: value {value!r} is not a real number") from exc
    raise ValidationError(
        f"metric {key!r}: value {value!r} is not a real number ({type(value).__name__})"
    )


def validate_step(key: str, step: Any) -> int:
    """Return ``step`` as an int (None means 0, MLflow's default)."""
    if step is None:
        return 0
    if type(step) is int:
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise ValidationError(f"metric {key!r}: step {step!r} must be an integer")
    return int(step)


def validate_timestamp(key: str, timestamp: Any) -> int:
    """Return a millisecond timestamp as an int."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        if isinstance(timestamp, float) and math.isfinite(timestamp):
            return int(timestamp)
        raise ValidationError(f"metric {key!r}: timestamp {timestamp!r} must be an integer (ms)")
    return int(timestamp)


def normalize_param_value(key: str, value: Any) -> Any:
    """Return ``value`` as a YAML scalar (int, float, bool, str or None).

    Scalars keep their type; numpy scalars become Python scalars; anything else is
    turned into its ``str()``. Strings longer than the limit raise.
    """
    if value is None or type(value) in (bool, int, float):
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, numbers.Number) and hasattr(value, "item"):
        value = value.item()
        if isinstance(value, (bool, int, float)):
            return value
        text = str(value)
    elif isinstance(value, bool):
        return bool(value)
    elif isinstance(value, numbers.Integral):
        return int(value)
    elif isinstance(value, numbers.Real):
        return float(value)
    else:
        text = str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise ValidationError(
            f"param {key!r}: value is {len(text)} characters; the limit is {MAX_PARAM_VALUE_LENGTH}"
        )
    if "\x00" in text:
        raise ValidationError(f"param {key!r}: value contains a NUL character")
    return check_text(f"param {key!r}: value", text)


def params_equal(a: Any, b: Any) -> bool:
    """True when two param values are the same value of the same type (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with '.', e.g. ``{"model": {"depth": 6}}`` → ``{"model.depth": 6}``."""
    if not isinstance(params, Mapping):
        raise ValidationError(f"params must be a mapping, not {type(params).__name__}")
    out: dict[str, Any] = {}
    for k, v in params.items():
        if not isinstance(k, str):
            raise ValidationError(f"param key {k!r} must be a string")
        full = f"{prefix}.{k}" if prefix else k
        if isinstance(v, Mapping):
            if not v:
                out[full] = None
            out.update(flatten_params(v, full))
        else:
            out[full] = v
    return out


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten and validate a params mapping; return key → normalized value."""
    flat = flatten_params(params)
    return {validate_key(k, "param key"): normalize_param_value(k, v) for k, v in flat.items()}


def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    """Return ``(key, str(value))`` if valid as a tag."""
    validate_key(key, "tag key")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise ValidationError(
            f"tag {key!r}: value is {len(text)} characters; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    if "\x00" in text:
        raise ValidationError(f"tag {key!r}: value contains a NUL character")
    return key, check_text(f"tag {key!r}: value", text)


def validate_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Validate a tags mapping; return key → string value."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationError(f"tags must be a mapping, not {type(tags).__name__}")
    return dict(validate_tag(k, v) for k, v in tags.items())


def validate_run_name(name: Any) -> str:
    """Return ``name`` if it is a usable run name (non-empty, one line, limited length)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"run name {name!r} must be a non-empty string")
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise ValidationError(
            f"run name is {len(name)} characters; the limit is {MAX_RUN_NAME_LENGTH}"
        )
    if any(c in name for c in "\n\r\t\x00"):
        raise ValidationError(f"run name {name!r} must be one line without tabs")
    if name.startswith("@") or "~" in name or ":" in name:
        raise ValidationError(
            f"run name {name!r} must not start with '@' or contain '~' or ':' (run spec syntax)"
        )
    return check_text("run name", name)


def validate_experiment_name(name: Any) -> str:
    """Return ``name`` if it is a usable experiment name."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"experiment name {name!r} must be a non-empty string")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ValidationError(
            f"experiment name is {len(name)} characters; the limit is {MAX_EXPERIMENT_NAME_LENGTH}"
        )
    if any(c in name for c in "\n\r\t\x00@"):
        raise ValidationError(f"experiment name {name!r} must be one line without tabs or '@'")
    return check_text("experiment name", name)


def validate_description(text: Any) -> str | None:
    """Return a run description (or None)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValidationError(f"description must be a string, not {type(text).__name__}")
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise ValidationError(
            f"description is {len(text)} characters; the limit is {MAX_DESCRIPTION_LENGTH}"
        )
    return check_text("description", text)


def validate_run_id(run_id: Any) -> str:
    """Return ``run_id`` if it is 32 lowercase hex characters."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise ValidationError(f"run id {run_id!r} must be 32 lowercase hex characters")
    return run_id


def validate_experiment_id(exp_id: Any) -> str:
    """Return ``exp_id`` if it is a well-formed experiment id."""
    if isinstance(exp_id, int) and not isinstance(exp_id, bool):
        exp_id = str(exp_id)
    if not isinstance(exp_id, str) or not _EXP_ID_RE.fullmatch(exp_id):
        raise ValidationError(f"experiment id {exp_id!r} is not a valid experiment id")
    return exp_id
