"""The value rules every diff and compare shares: equality, change kinds, metric direction,
JSON numbers and dataset keys. Pure."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from vtrack.entities import ArtifactEntry, DatasetInput

#: Section names, in the order they are shown.
SECTIONS = ("params", "metrics", "datasets", "artifacts", "code", "environment")
#: Sections of a compare table (``info`` first: name, status, duration).
COMPARE_SECTIONS = ("info", "params", "metrics", "datasets", "artifacts", "environment", "tags")

Kind = Literal["added", "removed", "changed", "unchanged"]
#: A dataset input across runs: (name, context), see :func:`dataset_key`.
DatasetKey = tuple[str, str | None]
Direction = Literal["max", "min"]

# Words are matched with non-letters (or the ends) on both sides, so ``val_acc``,
# ``top1acc`` and ``f1_macro`` match while ``layer2`` (r2) and ``accel`` do not.
_MAX_WORDS = r"acc|accuracy|f1|auc|precision|recall|scores?|r2"
_MIN_WORDS = r"loss(?:es)?|errors?|err|mse|mae|rmse"
_WORD_RE = re.compile(rf"(?<![a-z])(?:(?P<max>{_MAX_WORDS})|(?P<min>{_MIN_WORDS}))(?![a-z])")


def metric_direction(key: str) -> Direction | None:
    """Whether a bigger (``"max"``) or smaller (``"min"``) value of metric ``key`` is better.

    Decided by name: accuracy, f1, auc, precision, recall, score and r2 are maximised;
    loss, error, mse, mae and rmse minimised. When several words appear the last one
    wins (``precision_loss`` is a loss). System metrics (``system/...``) and other
    names have no direction (None).
    """
    low = key.lower()
    if low.startswith("system/"):
        return None
    found: Direction | None = None
    for m in _WORD_RE.finditer(low):
        found = "max" if m.group("max") else "min"
    return found


def same_value(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same value of the same type (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def change_kind(in_a: bool, in_b: bool, equal: bool) -> Kind:
    if not in_a:
        return "added"
    if not in_b:
        return "removed"
    return "unchanged" if equal else "changed"


def json_number(x: Any) -> Any:
    """Floats that JSON cannot hold (NaN, ±inf) become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


def dataset_key(entry: DatasetInput) -> DatasetKey:
    """What identifies a dataset input across runs: its name (else source) and context."""
    return str(entry.name or entry.source or "?"), entry.context


def digest_text(entry: DatasetInput | ArtifactEntry | None) -> str | None:
    """An entry's digest in its record form (None when there is no entry or digest)."""
    return None if entry is None or entry.digest is None else str(entry.digest)
