"""``--json`` output: one JSON document equal to the data, whatever its size.

Small documents are indented; past ``JSON_INDENT_LIMIT`` each top-level element is on
its own line (json's C encoder instead of its pure-Python indenting one).
"""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from vtrack.cli._term import JSON_INDENT_LIMIT, json_text
from vtrack.views import jsonable

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=4)
    ),
    max_leaves=30,
)


def _expected(data: object) -> object:
    # what the indenting encoder always printed: jsonable() then json
    return json.loads(json.dumps(jsonable(data), allow_nan=False))


@given(values)
def test_small_documents_are_the_indented_json_of_the_data(data: object) -> None:
    text = json_text(data)
    assert json.loads(text) == _expected(data)
    compact = json.dumps(_expected(data), ensure_ascii=False)
    if len(compact) <= JSON_INDENT_LIMIT and isinstance(data, (list, dict)) and data:
        assert text.startswith(("[\n  ", "{\n  "))


@given(st.lists(values, min_size=1, max_size=3), st.integers(0, 1))
def test_large_documents_put_one_element_per_line(items: list[object], as_dict: int) -> None:
    pad = "x" * (JSON_INDENT_LIMIT // 100)
    rows = [{"pad": pad, "n": i, "v": items[i % len(items)]} for i in range(200)]
    data: object = {f"k{i}": r for i, r in enumerate(rows)} if as_dict else rows
    text = json_text(data)
    assert json.loads(text) == _expected(data)
    lines = text.split("\n")
    assert len(lines) == 202  # opening, 200 elements, closing
    assert all(json.loads(line.rstrip(",").split(": ", 1)[-1] if as_dict else line.rstrip(","))
               for line in lines[1:-1])  # fmt: skip


def test_nan_and_infinity_are_strings_and_unknown_objects_their_str() -> None:
    out = json.loads(json_text({"a": math.nan, "b": [math.inf, -math.inf], "c": object}))
    assert out == {"a": "NaN", "b": ["Infinity", "-Infinity"], "c": str(object)}
