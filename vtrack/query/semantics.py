"""The coercions of the filter language, shared by every evaluator of it.

The SQL compiler of the run index (:mod:`vtrack.store.index_sql`), the index's record
flattening (:mod:`vtrack.store.index_records`) and the reference evaluator
(:mod:`vtrack.query.evaluate`) must agree on every run; they agree because they take
these rules from here:

* A value is *missing* when it is ``None`` or a float NaN (:func:`is_present`); an absent
  key is missing too. A missing value satisfies ``IS NULL`` and nothing else.
* Numbers are ints and floats, never bools (:func:`is_number`); they compare numerically.
* The text of a value (:func:`as_text`) is the string itself, ``'True'``/``'False'`` for a
  bool, and Python's ``str()`` for an int or float (``0.01`` → ``'0.01'``). Text compares
  by code point (SQLite's BINARY collation).
* A param comparison is numeric when the stored value is a number and the filter value is
  a number or a string written exactly like a number literal (:func:`filter_number`);
  it is a text comparison otherwise. So ``params.lr = '0.01'`` matches the float param
  ``0.01`` and the string param ``'0.01'``, but not the string param ``'0.010'``.

Pure functions of their arguments; nothing here imports lark.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "NUMBER_PATTERN",
    "Scalar",
    "as_text",
    "filter_number",
    "is_number",
    "is_present",
    "number_literal",
]

#: A filter value: a quoted string or a number literal.
Scalar = str | int | float

#: A number literal of the filter language (``3``, ``-0.5``, ``1e-3``), as a regex source.
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)


def is_number(value: object) -> bool:
    """True for an int or a float; a bool is not a number in the filter language."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_present(value: Any) -> bool:
    """False for a missing value (``None`` or a float NaN), True for anything else."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def as_text(value: Any) -> str:
    """The text a value compares, matches and sorts as when it is not compared as a number."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else str(value)


def number_literal(token: str) -> int | float:
    """The value of a number literal: a float if written with ``.`` or an exponent, else an int.

    ``token`` must match :data:`NUMBER_PATTERN` (ValueError otherwise).
    """
    if any(c in token for c in ".eE"):
        return float(token)
    return int(token)


def filter_number(value: Scalar) -> int | float | None:
    """The number a filter value stands for when compared with a numeric param, or None.

    A number stands for itself, a string written exactly like a number literal for that
    number (``'0.01'`` → ``0.01``); any other string is compared as text (None).
    """
    if is_number(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return number_literal(value)
    return None
