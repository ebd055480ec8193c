"""Property tests for vtrack.query: render/parse round trips and the evaluator against oracles."""

from __future__ import annotations

import functools
import math
import operator
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from vtrack.errors import QuerySyntaxError
from vtrack.query import (
    BARE_ATTRIBUTES,
    DATASET_FIELDS,
    NUMERIC_ATTRIBUTES,
    TEXT_ATTRIBUTES,
    Comparison,
    OrderKey,
    evaluate,
    parse_filter,
    parse_order_by,
    sort_runs,
)

ALIASES = {
    "metrics": ["metrics", "metric"],
    "params": ["params", "param"],
    "tags": ["tags", "tag"],
    "attributes": ["attributes", "attribute", "attr", "run"],
    "datasets": ["datasets", "dataset"],
}
OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
SPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n "])
OPT_SPACE = st.sampled_from(["", " ", "\t"])


# --- rendering an AST back to text (written independently of the parser) ---------------


@st.composite
def random_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


@st.composite
def render_quoted(draw: st.DrawFn, value: str, quotes: str = "'\"") -> str:
    quote = draw(st.sampled_from(quotes))
    escaped = value.replace("\\", "\\\\")
    if draw(st.booleans()):
        escaped = escaped.replace(quote, quote + quote)
    else:
        escaped = escaped.replace(quote, "\\" + quote)
    return quote + escaped + quote


@st.composite
def render_column(draw: st.DrawFn, entity: str, key: str) -> str:
    if entity == "attributes" and key in BARE_ATTRIBUTES and draw(st.booleans()):
        return draw(random_case(key))
    prefix = draw(random_case(draw(st.sampled_from(ALIASES[entity]))))
    if entity in ("attributes", "datasets"):
        return f"{prefix}.{draw(random_case(key))}"
    styles = []
    if re.fullmatch(r"[\w./-]+", key):
        styles.append("bare")
    if "`" not in key:
        styles.append("backtick")
    styles.append("double")
    style = draw(st.sampled_from(styles))
    if style == "bare":
        return f"{prefix}.{key}"
    if style == "backtick":
        return f"{prefix}.`{key}`"
    return f"{prefix}.{draw(render_quoted(key, quotes=chr(34)))}"


@st.composite
def render_scalar(draw: st.DrawFn, value: str | int | float) -> str:
    if isinstance(value, str):
        return draw(render_quoted(value))
    return repr(value)


@st.composite
def render_clause(draw: st.DrawFn, c: Comparison) -> str:
    column = draw(render_column(c.entity, c.key))
    sp = lambda: draw(SPACE)  # noqa: E731
    if c.op in ("IS NULL", "IS NOT NULL"):
        words = [draw(random_case(w)) for w in c.op.split()]
        return column + sp() + sp().join(words)
    if c.op in ("IN", "NOT IN"):
        words = sp().join(draw(random_case(w)) for w in c.op.split())
        items = [draw(render_scalar(v)) for v in c.value]  # type: ignore[union-attr]
        trailing = "," if draw(st.booleans()) else ""
        body = ("," + draw(OPT_SPACE)).join(items)
        return f"{column}{sp()}{words}{draw(OPT_SPACE)}({draw(OPT_SPACE)}{body}{trailing})"
    if c.op in ("LIKE", "ILIKE"):
        return f"{column}{sp()}{draw(random_case(c.op))}{sp()}{draw(render_scalar(c.value))}"
    return f"{column}{draw(OPT_SPACE)}{c.op}{draw(OPT_SPACE)}{draw(render_scalar(c.value))}"


@st.composite
def render_filter(draw: st.DrawFn, clauses: tuple[Comparison, ...]) -> str:
    parts = [draw(render_clause(c)) for c in clauses]
    joined = ""
    for i, part in enumerate(parts):
        if i:
            joined += draw(SPACE) + draw(random_case("and")) + draw(SPACE)
        joined += part
    return draw(OPT_SPACE) + joined + draw(OPT_SPACE)


# --- random ASTs -------------------------------------------------------------------------

keys = st.one_of(
    st.from_regex(r"[A-Za-z0-9_./-]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=10),
)
texts = st.text(max_size=12)
numbers = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    entity = draw(st.sampled_from(list(ALIASES)))
    if entity == "attributes":
        key = draw(st.sampled_from(sorted(NUMERIC_ATTRIBUTES | TEXT_ATTRIBUTES)))
    elif entity == "datasets":
        key = draw(st.sampled_from(sorted(DATASET_FIELDS)))
    else:
        key = draw(keys)
    numeric = entity == "metrics" or key in NUMERIC_ATTRIBUTES and entity == "attributes"
    if numeric:
        ops = ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
        values = numbers
    elif entity == "params":
        ops = list(OPS) + ["LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
        values = st.one_of(texts, numbers)
    else:
        ops = ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
        values = texts
    op = draw(st.sampled_from(ops))
    if op in ("IS NULL", "IS NOT NULL"):
        value = None
    elif op in ("IN", "NOT IN"):
        value = tuple(draw(st.lists(values, min_size=1, max_size=4)))
    elif op in ("LIKE", "ILIKE"):
        value = draw(texts)
    else:
        value = draw(values)
    return Comparison(entity, key, op, value)


def _value_types(clauses: tuple[Comparison, ...]) -> list:
    out = []
    for c in clauses:
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        out.append([type(v) for v in values])
    return out


@settings(max_examples=400)
@given(data=st.data(), clauses=st.lists(comparisons(), max_size=5).map(tuple))
def test_rendered_filter_parses_back_to_same_ast(data: st.DataObject, clauses: tuple) -> None:
    text = data.draw(render_filter(clauses))
    parsed = parse_filter(text)
    assert parsed == clauses
    assert _value_types(parsed) == _value_types(clauses)


@settings(max_examples=200)
@given(data=st.data(), clauses=st.lists(comparisons(), min_size=1, max_size=3).map(tuple))
def test_junk_after_valid_filter_is_reported_at_its_column(
    data: st.DataObject, clauses: tuple
) -> None:
    text = data.draw(render_filter(clauses)).rstrip()
    junk = data.draw(st.sampled_from(["~", "@", ";", "#", "!"]))
    bad = text + " " + junk
    expected_column = len(bad) - (bad.rfind("\n") + 1)
    try:
        parse_filter(bad)
    except QuerySyntaxError as exc:
        assert exc.column == expected_column
        assert f"column {expected_column}" in exc.message
    else:
        raise AssertionError(f"{bad!r} parsed")


FRAGMENTS = [
    "metrics.a", "params.p", "tags.t", "status", "datasets.name", "attr.start_time", "foo.x",
    "=", "!=", "<", "<=", ">", ">=", "like", "ILIKE", "in", "not", "is", "null", "and", "or",
    "1", "-2.5e3", "'x'", '"y"', "'", "(", ")", ",", "`k`", "\n", "~",
]  # fmt: skip


@settings(max_examples=500)
@given(
    st.one_of(
        st.lists(st.sampled_from(FRAGMENTS), max_size=10).map(" ".join),
        st.text(max_size=30),
    )
)
def test_any_text_parses_or_raises_query_syntax_error_with_valid_column(text: str) -> None:
    try:
        clauses = parse_filter(text)
    except QuerySyntaxError as exc:
        line = text.split("\n")[exc.fields["line"] - 1]
        assert 1 <= exc.column <= len(line) + 1
        source, caret = exc.message.splitlines()[-2:]
        assert caret.rstrip().endswith("^")
        assert len(caret.rstrip()) - 4 == exc.column
    else:
        assert all(isinstance(c, Comparison) for c in clauses)


# --- order_by round trip -----------------------------------------------------------------


@st.composite
def order_keys(draw: st.DrawFn) -> OrderKey:
    entity = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    if entity == "attributes":
        key = draw(st.sampled_from(sorted(NUMERIC_ATTRIBUTES | TEXT_ATTRIBUTES)))
    else:
        key = draw(keys)
    return OrderKey(entity, key, draw(st.booleans()))


@st.composite
def render_order_key(draw: st.DrawFn, key: OrderKey) -> str:
    column = draw(render_column(key.entity, key.key))
    style = draw(st.sampled_from(["word", "none", "minus"]))
    if style == "minus" and not key.ascending:
        return draw(OPT_SPACE) + "-" + draw(OPT_SPACE) + column
    if style == "none" and key.ascending:
        return column + draw(OPT_SPACE)
    word = draw(random_case("asc" if key.ascending else "desc"))
    return column + draw(SPACE) + word


@given(data=st.data(), order=st.lists(order_keys(), max_size=4).map(tuple))
def test_rendered_order_by_parses_back(data: st.DataObject, order: tuple) -> None:
    items = [data.draw(render_order_key(k)) for k in order]
    assert parse_order_by(items) == order


# --- evaluate against straightforward oracles --------------------------------------------

METRIC_KEYS = ["a", "b", "c"]
metric_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 1]),
)


@st.composite
def metric_runs(draw: st.DrawFn) -> dict:
    values = {k: draw(metric_values) for k in METRIC_KEYS}
    return {"metrics": {k: v for k, v in values.items() if v is not None or draw(st.booleans())}}


small_numbers = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.0, 0.5, 1.0, -1.5, 1e300, -1e300]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def metric_clauses(draw: st.DrawFn) -> Comparison:
    key = draw(st.sampled_from(METRIC_KEYS))
    op = draw(st.sampled_from([*OPS, "IN", "NOT IN", "IS NULL", "IS NOT NULL"]))
    if op.startswith("IS"):
        return Comparison("metrics", key, op, None)
    if op.endswith("IN"):
        return Comparison(
            "metrics", key, op, tuple(draw(st.lists(small_numbers, min_size=1, max_size=3)))
        )
    return Comparison("metrics", key, op, draw(small_numbers))


def oracle_metric(c: Comparison, run: dict) -> bool:
    v = run["metrics"].get(c.key)
    missing = v is None or v != v
    if c.op == "IS NULL":
        return missing
    if c.op == "IS NOT NULL":
        return not missing
    if missing:
        return False
    if c.op == "IN":
        return any(v == x for x in c.value)
    if c.op == "NOT IN":
        return all(v != x for x in c.value)
    return OPS[c.op](v, c.value)


@settings(max_examples=400)
@given(data=st.data(), run=metric_runs(), clauses=st.lists(metric_clauses(), max_size=3).map(tuple))
def test_metric_filters_agree_with_oracle(data: st.DataObject, run: dict, clauses: tuple) -> None:
    expected = all(oracle_metric(c, run) for c in clauses)
    assert evaluate(clauses, run) is expected
    reparsed = parse_filter(data.draw(render_filter(clauses)))
    assert evaluate(reparsed, run) is expected


def like_oracle(text: str, pattern: str) -> bool:
    """SQL LIKE by dynamic programming over (text position, pattern position)."""

    @functools.cache
    def match(i: int, j: int) -> bool:
        if j == len(pattern):
            return i == len(text)
        p = pattern[j]
        if p == "%":
            return match(i, j + 1) or (i < len(text) and match(i + 1, j))
        if i < len(text) and (p == "_" or p == text[i]):
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


TAG_TEXT = st.text(alphabet="abAB_%\n.", max_size=6)


@settings(max_examples=400)
@given(
    value=st.one_of(st.none(), TAG_TEXT),
    pattern=st.text(alphabet="abAB_%.", max_size=6),
    op=st.sampled_from(["LIKE", "ILIKE"]),
)
def test_like_and_ilike_agree_with_dynamic_programming_oracle(
    value: str | None, pattern: str, op: str
) -> None:
    run = {"tags": {} if value is None else {"t": value}}
    clause = Comparison("tags", "t", op, pattern)
    if value is None:
        expected = False
    elif op == "LIKE":
        expected = like_oracle(value, pattern)
    else:
        expected = like_oracle(value.lower(), pattern.lower())
    assert evaluate((clause,), run) is expected


NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def param_oracle(stored: object, op: str, value: object) -> bool:
    """Params compare as numbers when both sides are numeric, else as their text."""
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return op == "IS NULL"
    if op == "IS NULL":
        return False
    if op == "IS NOT NULL":
        return True
    if op == "IN":
        return any(param_oracle(stored, "=", v) for v in value)  # type: ignore[union-attr]
    if op == "NOT IN":
        return not any(param_oracle(stored, "=", v) for v in value)  # type: ignore[union-attr]

    def text(x: object) -> str:
        return {True: "True", False: "False"}[x] if isinstance(x, bool) else str(x)

    if op in ("LIKE", "ILIKE"):
        s, p = text(stored), str(value)
        if op == "ILIKE":
            s, p = s.lower(), p.lower()
        return like_oracle(s, p)
    stored_is_number = type(stored) in (int, float)
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value):
        number = float(value) if re.search("[.eE]", value) else int(value)
    elif type(value) in (int, float):
        number = value
    else:
        number = None
    if stored_is_number and number is not None:
        return OPS[op](stored, number)
    return OPS[op](text(stored), text(value))


param_stored = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.sampled_from([0.01, 0.1, 1.0, 2.5, -0.0, 1e-5, 10**20, math.nan]),
    st.sampled_from(["0.01", "1e-2", "abc", "True", "10", "9", "", "0.010"]),
)
param_filter_values = st.one_of(
    st.integers(-20, 20),
    st.sampled_from([0.01, 2.5, 1e-5, 1.0]),
    st.sampled_from(
        ["0.01", "1e-2", "1E-5", "abc", "True", "10", "9", "", "-3", "3.", ".5", "1e", "0x1", " 1"]
    ),
)


@settings(max_examples=600)
@given(
    stored=param_stored,
    op=st.sampled_from([*OPS, "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]),
    data=st.data(),
)
def test_param_comparisons_agree_with_oracle(stored: object, op: str, data: st.DataObject) -> None:
    if op.startswith("IS"):
        value: object = None
    elif op.endswith("IN"):
        value = tuple(data.draw(st.lists(param_filter_values, min_size=1, max_size=3)))
    elif op.endswith("LIKE"):
        value = data.draw(st.sampled_from(["%", "0.0%", "_", "a%", "T%", "%0", "1_"]))
    else:
        value = data.draw(param_filter_values)
    run = {"params": {"p": stored}}
    clause = Comparison("params", "p", op, value)  # type: ignore[arg-type]
    assert evaluate((clause,), run) is param_oracle(stored, op, value)


@st.composite
def dataset_runs(draw: st.DrawFn) -> dict:
    inputs = draw(
        st.lists(
            st.fixed_dictionaries(
                {f: st.one_of(st.none(), st.sampled_from(["x", "y", "xy"])) for f in DATASET_FIELDS}
            ),
            max_size=3,
        )
    )
    return {"datasets": inputs}


@given(
    run=dataset_runs(),
    field=st.sampled_from(sorted(DATASET_FIELDS)),
    op=st.sampled_from(["=", "!=", "LIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]),
    value=st.sampled_from(["x", "y", "x%", "z"]),
)
def test_dataset_filters_match_when_any_input_matches(
    run: dict, field: str, op: str, value: str
) -> None:
    present = [d[field] for d in run["datasets"] if d[field] is not None]
    if op == "IS NULL":
        clause, expected = Comparison("datasets", field, op, None), not present
    elif op == "IS NOT NULL":
        clause, expected = Comparison("datasets", field, op, None), bool(present)
    elif op in ("IN", "NOT IN"):
        clause = Comparison("datasets", field, op, (value,))
        expected = any((v == value) == (op == "IN") for v in present)
    else:
        clause = Comparison("datasets", field, op, value)
        check = {"=": operator.eq, "!=": operator.ne, "LIKE": lambda v, p: like_oracle(v, p)}[op]
        expected = any(check(v, value) for v in present)
    assert evaluate((clause,), run) is expected


# --- sorting against a comparator-based oracle -------------------------------------------


@st.composite
def sortable_runs(draw: st.DrawFn) -> list[dict]:
    runs = []
    for i in range(draw(st.integers(0, 8))):
        run = {
            "metrics": {},
            "params": {},
            "attributes": {
                "run_id": draw(st.sampled_from(["r1", "r2", "r3", f"x{i}"])),
                "start_time": draw(st.one_of(st.none(), st.integers(0, 3))),
            },
        }
        m = draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0, math.nan, math.inf])))
        if m is not None:
            run["metrics"]["m"] = m
        p = draw(
            st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["a", "b", "1", True, 1.5]))
        )
        if p is not None:
            run["params"]["p"] = p
        runs.append(run)
    return runs


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _missing_rank(v: object, entity: str) -> int:
    """0 present; a NaN metric 1 (after numbers, before absent: MLflow); else missing 2."""
    if not _missing(v):
        return 0
    return 1 if entity == "metrics" and isinstance(v, float) else 2


def _sort_cmp(a: object, b: object) -> int:
    """Numbers (not bools) before text; bools as 'True'/'False'."""

    def rank(v: object) -> tuple:
        if type(v) in (int, float):
            return (0, v)
        return (1, str(v))

    ra, rb = rank(a), rank(b)
    return (ra > rb) - (ra < rb)


def oracle_sort(runs: list[dict], order: tuple[OrderKey, ...]) -> list[dict]:
    def get(run: dict, entity: str, key: str) -> object:
        return (run.get(entity) or {}).get(key)

    def compare(r1: dict, r2: dict) -> int:
        keys = [*((k.entity, k.key, k.ascending) for k in order)]
        keys += [("attributes", "start_time", False), ("attributes", "run_id", True)]
        for entity, key, ascending in keys:
            a, b = get(r1, entity, key), get(r2, entity, key)
            ma, mb = _missing_rank(a, entity), _missing_rank(b, entity)
            if ma or mb:
                if ma == mb:
                    continue
                return (ma > mb) - (ma < mb)
            c = _sort_cmp(a, b)
            if c:
                return c if ascending else -c
        return 0

    return sorted(runs, key=functools.cmp_to_key(compare))


@settings(max_examples=300)
@given(
    runs=sortable_runs(),
    order=st.lists(
        st.sampled_from(
            [
                OrderKey("metrics", "m", True),
                OrderKey("metrics", "m", False),
                OrderKey("params", "p", True),
                OrderKey("params", "p", False),
                OrderKey("attributes", "run_id", False),
            ]
        ),
        max_size=2,
    ).map(tuple),
)
def test_sort_runs_agrees_with_comparator_oracle(runs: list[dict], order: tuple) -> None:
    got = sort_runs(runs, order)
    expected = oracle_sort(runs, order)
    assert [id(r) for r in got] == [id(r) for r in expected]
