"""The filter / order-by grammar (vtrack.query): parsing, errors, evaluation and sorting."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from vtrack.errors import EXIT_USAGE, QuerySyntaxError, ValidationError
from vtrack.query import (
    Comparison,
    OrderKey,
    evaluate,
    parse_filter,
    parse_order_by,
    sort_runs,
)

ROOT = Path(__file__).resolve().parent.parent

C = Comparison


# --- parsing -----------------------------------------------------------------------------

PARSE_CASES = [
    # each operator
    ("metrics.acc = 1", C("metrics", "acc", "=", 1)),
    ("metrics.acc != 1", C("metrics", "acc", "!=", 1)),
    ("metrics.acc < 1", C("metrics", "acc", "<", 1)),
    ("metrics.acc <= 1", C("metrics", "acc", "<=", 1)),
    ("metrics.acc > 1", C("metrics", "acc", ">", 1)),
    ("metrics.acc >= 1", C("metrics", "acc", ">=", 1)),
    ("tags.team LIKE 'nlp%'", C("tags", "team", "LIKE", "nlp%")),
    ("tags.team ILIKE '%NLP_'", C("tags", "team", "ILIKE", "%NLP_")),
    ("tags.team IN ('a', 'b')", C("tags", "team", "IN", ("a", "b"))),
    ("tags.team NOT IN ('a')", C("tags", "team", "NOT IN", ("a",))),
    ("tags.team IS NULL", C("tags", "team", "IS NULL", None)),
    ("tags.team IS NOT NULL", C("tags", "team", "IS NOT NULL", None)),
    ("metrics.acc IN (1, 2.5)", C("metrics", "acc", "IN", (1, 2.5))),
    ("params.p IN ('a', 3, \"c\",)", C("params", "p", "IN", ("a", 3, "c"))),
    # keywords are case-insensitive
    ("tags.t like 'x'", C("tags", "t", "LIKE", "x")),
    ("tags.t iLike 'x'", C("tags", "t", "ILIKE", "x")),
    ("tags.t not   In ('x')", C("tags", "t", "NOT IN", ("x",))),
    ("tags.t is not null", C("tags", "t", "IS NOT NULL", None)),
    ("tags.t Is Null", C("tags", "t", "IS NULL", None)),
    # prefixes and their aliases
    ("metric.acc > 0", C("metrics", "acc", ">", 0)),
    ("param.lr = '1'", C("params", "lr", "=", "1")),
    ("tag.team = 'x'", C("tags", "team", "=", "x")),
    ("attribute.status = 'RUNNING'", C("attributes", "status", "=", "RUNNING")),
    ("attr.status = 'RUNNING'", C("attributes", "status", "=", "RUNNING")),
    ("run.status = 'RUNNING'", C("attributes", "status", "=", "RUNNING")),
    ("dataset.name = 'mnist'", C("datasets", "name", "=", "mnist")),
    ("METRICS.acc > 0", C("metrics", "acc", ">", 0)),
    ("Attributes.Status = 'x'", C("attributes", "status", "=", "x")),
    ("datasets.DIGEST = 'x'", C("datasets", "digest", "=", "x")),
    # attributes, with and without prefix
    ("run_name = 'fox'", C("attributes", "run_name", "=", "fox")),
    ("status != 'FAILED'", C("attributes", "status", "!=", "FAILED")),
    ("start_time >= 1700000000000", C("attributes", "start_time", ">=", 1700000000000)),
    ("end_time IS NULL", C("attributes", "end_time", "IS NULL", None)),
    ("run_id IN ('a1', 'b2')", C("attributes", "run_id", "IN", ("a1", "b2"))),
    ("attributes.run_name LIKE 'f%'", C("attributes", "run_name", "LIKE", "f%")),
    ("attributes.experiment_id = '0'", C("attributes", "experiment_id", "=", "0")),
    ("attributes.user_id = 'alice'", C("attributes", "user_id", "=", "alice")),
    ("datasets.context IN ('train', 'eval')", C("datasets", "context", "IN", ("train", "eval"))),
    # key spellings
    ("metrics.val/loss < 1", C("metrics", "val/loss", "<", 1)),
    ("params.model.depth = '3'", C("params", "model.depth", "=", "3")),
    ("metrics.f1-score > 0", C("metrics", "f1-score", ">", 0)),
    ("metrics.1st > 0", C("metrics", "1st", ">", 0)),
    ("metrics.`my metric` > 0", C("metrics", "my metric", ">", 0)),
    ("params.\"a b\" = 'x'", C("params", "a b", "=", "x")),
    ('params."say ""hi""" = \'x\'', C("params", 'say "hi"', "=", "x")),
    ('params."q\\"x" = \'x\'', C("params", 'q"x', "=", "x")),
    ("tags.`it's` = 'x'", C("tags", "it's", "=", "x")),
    ("metrics.and > 1", C("metrics", "and", ">", 1)),
    ("tags.in IN ('in')", C("tags", "in", "IN", ("in",))),
    # numbers
    ("metrics.m = -3", C("metrics", "m", "=", -3)),
    ("metrics.m = +2", C("metrics", "m", "=", 2)),
    ("metrics.m = 1.5", C("metrics", "m", "=", 1.5)),
    ("metrics.m = .5", C("metrics", "m", "=", 0.5)),
    ("metrics.m = 1.", C("metrics", "m", "=", 1.0)),
    ("metrics.m = 1e3", C("metrics", "m", "=", 1000.0)),
    ("metrics.m = -1.5E-3", C("metrics", "m", "=", -0.0015)),
    ("metrics.m = 123456789012345678901", C("metrics", "m", "=", 123456789012345678901)),
    ("params.p = 3", C("params", "p", "=", 3)),
    # strings
    ("tags.t = ''", C("tags", "t", "=", "")),
    ("tags.t = 'it''s'", C("tags", "t", "=", "it's")),
    ("tags.t = 'it\\'s'", C("tags", "t", "=", "it's")),
    ('tags.t = "say ""hi"""', C("tags", "t", "=", 'say "hi"')),
    ('tags.t = "say \\"hi\\""', C("tags", "t", "=", 'say "hi"')),
    ("tags.t = 'back\\\\slash'", C("tags", "t", "=", "back\\slash")),
    ("tags.t = 'C:\\data'", C("tags", "t", "=", "C:\\data")),
    ("tags.t = 'a and b = c'", C("tags", "t", "=", "a and b = c")),
    ("tags.t = 'line\nbreak'", C("tags", "t", "=", "line\nbreak")),
    ("tags.t = 'ünïcødé ✓'", C("tags", "t", "=", "ünïcødé ✓")),
    # spacing
    ("metrics.a>=1", C("metrics", "a", ">=", 1)),
    ("metrics.a!=-1", C("metrics", "a", "!=", -1)),
    ("\t metrics.a \n <  2 ", C("metrics", "a", "<", 2)),
    ("tags.t IN('x')", C("tags", "t", "IN", ("x",))),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_single_clause_parses_to_expected_comparison(text: str, expected: Comparison) -> None:
    (clause,) = parse_filter(text)
    assert clause == expected
    assert type(clause.value) is type(expected.value)


def test_number_literals_keep_int_or_float() -> None:
    values = [
        c.value for c in parse_filter("metrics.a = 3 and metrics.b = 3.0 and metrics.c = 3e0")
    ]
    assert [type(v) for v in values] == [int, float, float]


def test_clauses_joined_by_and_in_written_order() -> None:
    text = "metrics.acc > 0.9 and params.lr = '0.01' AND tags.team LIKE 'nlp%' And status = 'X'"
    assert parse_filter(text) == (
        C("metrics", "acc", ">", 0.9),
        C("params", "lr", "=", "0.01"),
        C("tags", "team", "LIKE", "nlp%"),
        C("attributes", "status", "=", "X"),
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_filter_has_no_clauses(text: str) -> None:
    assert parse_filter(text) == ()


# --- parse errors ------------------------------------------------------------------------

ERROR_CASES = [
    ("metrics.acc >> 0.9", 14, "unexpected '>'"),
    ("metrics.acc LIKE 'x'", 13, "LIKE cannot be used on metrics.acc"),
    ("metrics.acc = 'x'", 15, "compares with numbers"),
    ("metrics.acc IN (1, 'x')", 16, "compares with numbers"),
    ("tags.t = 1", 10, "compares with quoted strings"),
    ("tags.t < 'a'", 8, "< cannot be used on tags.t"),
    ("status < 'x'", 8, "< cannot be used on attributes.status"),
    ("start_time = '2024'", 14, "compares with numbers"),
    ("params.p IN 'a'", 13, "IN needs a non-empty tuple"),
    ("params.p = ('a',)", 12, "not a tuple"),
    ("params.p LIKE 3", 15, "LIKE needs a quoted string"),
    ("params.p IN ()", 14, "unexpected ')'"),
    ("acc > 1", 1, "unknown identifier 'acc'"),
    ("metrics > 1", 1, "unknown identifier 'metrics'"),
    ("foo.bar = 1", 1, "unknown entity 'foo'"),
    ("attributes.color = 'x'", 1, "unknown attribute 'color'"),
    ("datasets.size = 'x'", 1, "unknown dataset field 'size'"),
    ("metrics.`` > 1", 1, "non-empty key"),
    ("metrics.a > 1 and", 18, "unexpected end"),
    ("metrics.a", 10, "unexpected end"),
    ("metrics.a > 1 or metrics.b > 2", 15, "only AND"),
    ("metrics.a > 1 metrics.b > 2", 15, "unexpected 'metrics.b'"),
    ("tags.a = 'abc", 10, "unterminated quote"),
    ('tags.a = "abc', 10, "unterminated quote"),
    ("tags.a ~ 'x'", 8, "unexpected '~'"),
    ("tags.x is 'a'", 11, "expected NOT or NULL"),
    ("tags.x not like 'a'", 12, "expected IN"),
    ("= 1", 1, "expected a key"),
    ("metrics.a = 1 2", 15, "expected AND or the end"),
]


@pytest.mark.parametrize(
    ("text", "column", "fragment"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_bad_filter_raises_with_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert err.column == column
    assert err.text == text
    assert fragment in err.message
    assert f"column {column}" in err.message


def test_error_message_has_caret_under_offending_character() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter("metrics.acc >> 0.9")
    lines = str(info.value).splitlines()
    assert "unexpected '>' at column 14" in lines[0]
    assert lines[1].strip() == "metrics.acc >> 0.9"
    caret_at = lines[2].index("^")
    assert caret_at == lines[1].index("metrics") + 13
    assert lines[1][caret_at] == ">"
    assert lines[2].strip() == "^"


def test_error_on_second_line_reports_line_and_column() -> None:
    text = "metrics.a > 1 and\n  tags.b ~ 'x'"
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter(text)
    assert info.value.column == 10
    assert info.value.fields["line"] == 2
    assert "line 2, column 10" in info.value.message
    source, caret = info.value.message.splitlines()[1:3]
    assert source[caret.index("^")] == "~"


def test_query_errors_are_usage_validation_errors() -> None:
    with pytest.raises(ValidationError) as info:
        parse_filter("metrics.a >")
    assert info.value.exit_code == EXIT_USAGE


def test_non_string_filter_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_filter(None)  # type: ignore[arg-type]


# --- Comparison and OrderKey construction ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "x", "=", 1),
        ("metrics", "", "=", 1),
        ("metrics", "a", "==", 1),
        ("metrics", "a", "LIKE", "x"),
        ("metrics", "a", "=", "1"),
        ("metrics", "a", "=", math.nan),
        ("metrics", "a", "=", True),
        ("metrics", "a", "IN", ()),
        ("metrics", "a", "IN", 1),
        ("metrics", "a", "IS NULL", 1),
        ("tags", "t", "=", 1),
        ("tags", "t", ">", "a"),
        ("params", "p", "=", None),
        ("params", "p", "=", ("a",)),
        ("attributes", "colour", "=", "x"),
        ("attributes", "start_time", "LIKE", "1%"),
        ("datasets", "size", "=", "x"),
    ],
)
def test_invalid_comparison_cannot_be_constructed(args: tuple) -> None:
    with pytest.raises(ValidationError):
        Comparison(*args)


def test_comparison_stores_list_value_as_tuple() -> None:
    clause = Comparison("tags", "t", "IN", ["a", "b"])  # type: ignore[arg-type]
    assert clause.value == ("a", "b")
    assert hash(clause) == hash(Comparison("tags", "t", "IN", ("a", "b")))


def test_order_key_rejects_datasets_and_unknown_attributes() -> None:
    with pytest.raises(ValidationError):
        OrderKey("datasets", "name", True)
    with pytest.raises(ValidationError):
        OrderKey("attributes", "colour", True)
    assert OrderKey("metrics", "acc").ascending is True


# --- order_by ----------------------------------------------------------------------------

ORDER_CASES = [
    ("metrics.acc DESC", OrderKey("metrics", "acc", False)),
    ("metrics.acc desc", OrderKey("metrics", "acc", False)),
    ("params.lr", OrderKey("params", "lr", True)),
    ("attributes.start_time ASC", OrderKey("attributes", "start_time", True)),
    ("-metrics.acc", OrderKey("metrics", "acc", False)),
    ("- metrics.acc", OrderKey("metrics", "acc", False)),
    ("start_time", OrderKey("attributes", "start_time", True)),
    ("-run_name", OrderKey("attributes", "run_name", False)),
    ("tags.`a b` Asc", OrderKey("tags", "a b", True)),
    ("metric.val/loss", OrderKey("metrics", "val/loss", True)),
    ("  attr.END_TIME  DESC ", OrderKey("attributes", "end_time", False)),
]


@pytest.mark.parametrize(("item", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order_by_item_parses(item: str, expected: OrderKey) -> None:
    assert parse_order_by([item]) == (expected,)


def test_order_by_none_or_empty_is_empty() -> None:
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()


def test_order_by_keeps_item_order() -> None:
    assert parse_order_by(["metrics.a DESC", "params.b"]) == (
        OrderKey("metrics", "a", False),
        OrderKey("params", "b", True),
    )


@pytest.mark.parametrize(
    ("item", "column", "fragment"),
    [
        ("metrics.acc up", 13, "expected ASC or DESC"),
        ("-metrics.acc DESC", 14, "cannot be combined"),
        ("datasets.name", 1, "cannot order by datasets"),
        ("attributes.colour", 1, "unknown attribute"),
        ("metrics.acc DESC ASC", 18, "unexpected 'ASC'"),
        ("acc", 1, "unknown identifier"),
        ("", 1, "empty item"),
        ("--metrics.a", 2, "unexpected '-'"),
        ("metrics.a, metrics.b", 10, "unexpected ','"),
    ],
)
def test_bad_order_by_item_raises_with_column(item: str, column: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_order_by(["metrics.ok", item])
    assert info.value.column == column
    assert info.value.text == item
    assert fragment in info.value.message


def test_order_by_single_string_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_order_by("metrics.acc")  # type: ignore[arg-type]


# --- evaluation --------------------------------------------------------------------------

RUN = {
    "metrics": {"acc": 0.95, "loss": 0.1, "nan": math.nan, "steps": 100},
    "params": {
        "lr": 0.01,
        "depth": 3,
        "opt": "adam",
        "flag": True,
        "lr_text": "0.01",
        "big": 10**20 + 1,
        "nothing": None,
        "ver": "10",
    },
    "tags": {"team": "nlp-core", "mixed": "AbC", "pct": "100%"},
    "attributes": {
        "run_id": "abc123",
        "run_name": "bright-fox",
        "status": "FINISHED",
        "start_time": 1000,
        "end_time": None,
        "experiment_id": "0",
        "user_id": "alice",
    },
    "datasets": [
        {"name": "mnist", "digest": "d1", "context": "train"},
        {"name": "cifar", "digest": "d2", "context": None},
    ],
}

EVAL_CASES = [
    # metrics
    ("metrics.acc > 0.9", True),
    ("metrics.acc > 0.95", False),
    ("metrics.acc >= 0.95", True),
    ("metrics.acc = 0.95", True),
    ("metrics.steps = 100.0", True),
    ("metrics.acc != 0.5", True),
    ("metrics.acc IN (0.5, 0.95)", True),
    ("metrics.acc NOT IN (0.5, 0.95)", False),
    ("metrics.missing < 1", False),
    ("metrics.missing != 1", False),
    ("metrics.missing NOT IN (1)", False),
    ("metrics.missing IS NULL", True),
    ("metrics.missing IS NOT NULL", False),
    ("metrics.acc IS NULL", False),
    ("metrics.nan IS NULL", True),
    ("metrics.nan != 1", False),
    ("metrics.nan < 1", False),
    # params: numeric when both sides are numbers
    ("params.lr = '0.01'", True),
    ("params.lr = '1e-2'", True),
    ("params.lr = 0.01", True),
    ("params.lr < '0.1'", True),
    ("params.lr > '0.001'", True),
    ("params.depth = '3'", True),
    ("params.depth = '3.0'", True),
    ("params.depth < '10'", True),
    ("params.big = '100000000000000000001'", True),
    ("params.big = '100000000000000000000'", False),
    # params: text otherwise
    ("params.lr_text = '0.01'", True),
    ("params.lr_text = '1e-2'", False),
    ("params.lr = 'abc'", False),
    ("params.lr != 'abc'", True),
    ("params.ver < '9'", True),
    ("params.ver < 9", True),
    ("params.opt = 'adam'", True),
    ("params.opt = 'Adam'", False),
    ("params.opt > 'a'", True),
    ("params.flag = 'True'", True),
    ("params.flag = 'true'", False),
    ("params.lr LIKE '0.0%'", True),
    ("params.depth LIKE '3'", True),
    ("params.opt IN ('sgd', 'adam')", True),
    ("params.depth IN ('1', 3)", True),
    ("params.depth NOT IN ('1', '2')", True),
    ("params.nothing IS NULL", True),
    ("params.nothing = 'None'", False),
    ("params.absent != 'x'", False),
    ("params.absent IS NULL", True),
    # tags, LIKE and ILIKE
    ("tags.team = 'nlp-core'", True),
    ("tags.team LIKE 'nlp%'", True),
    ("tags.team LIKE 'NLP%'", False),
    ("tags.team ILIKE 'NLP%'", True),
    ("tags.team LIKE 'nlp_core'", True),
    ("tags.team LIKE 'nlp_'", False),
    ("tags.team LIKE '%'", True),
    ("tags.team LIKE 'nlp-core_'", False),
    ("tags.mixed ILIKE 'abc'", True),
    ("tags.mixed LIKE 'abc'", False),
    ("tags.pct LIKE '100%'", True),
    ("tags.team LIKE '.*'", False),
    ("tags.team NOT IN ('a', 'b')", True),
    ("tags.absent NOT IN ('a')", False),
    ("tags.absent LIKE '%'", False),
    # attributes
    ("status = 'FINISHED'", True),
    ("attributes.status = 'finished'", False),
    ("run_name LIKE 'bright%'", True),
    ("run_id IN ('abc123', 'zzz')", True),
    ("start_time > 999", True),
    ("start_time >= 1000 and start_time <= 1000", True),
    ("end_time IS NULL", True),
    ("end_time > 0", False),
    ("attributes.experiment_id = '0'", True),
    ("attributes.user_id != 'bob'", True),
    # datasets: any input matches
    ("datasets.name = 'cifar'", True),
    ("datasets.name = 'imagenet'", False),
    ("datasets.name != 'mnist'", True),
    ("datasets.context = 'train'", True),
    ("datasets.context != 'train'", False),
    ("datasets.context IS NULL", False),
    ("datasets.context IS NOT NULL", True),
    ("datasets.digest IN ('d2', 'd9')", True),
    ("datasets.name LIKE 'm%'", True),
    # conjunction
    ("metrics.acc > 0.9 and tags.team LIKE 'nlp%' and params.lr = '0.01'", True),
    ("metrics.acc > 0.9 and tags.team LIKE 'cv%'", False),
    ("", True),
]


@pytest.mark.parametrize(
    ("text", "expected"), EVAL_CASES, ids=[c[0] or "<empty>" for c in EVAL_CASES]
)
def test_evaluate_matches_documented_semantics(text: str, expected: bool) -> None:
    assert evaluate(parse_filter(text), RUN) is expected


def test_run_without_datasets() -> None:
    run = {"attributes": {"run_id": "x"}}
    assert evaluate(parse_filter("datasets.name IS NULL"), run) is True
    assert evaluate(parse_filter("datasets.name != 'x'"), run) is False
    assert evaluate(parse_filter("datasets.name IS NOT NULL"), run) is False


def test_missing_sections_count_as_empty() -> None:
    assert evaluate(parse_filter("metrics.a IS NULL and tags.t IS NULL"), {}) is True
    assert evaluate(parse_filter("metrics.a != 1"), {}) is False


def test_dataset_with_only_null_field_counts_as_null() -> None:
    run = {"datasets": [{"name": "a", "digest": "d", "context": None}]}
    assert evaluate(parse_filter("datasets.context IS NULL"), run) is True


def test_like_wildcards_span_newlines() -> None:
    run = {"tags": {"note": "line1\nline2"}}
    assert evaluate(parse_filter("tags.note LIKE 'line1%2'"), run) is True
    assert evaluate(parse_filter("tags.note LIKE 'line1_line2'"), run) is True


# --- sorting -----------------------------------------------------------------------------


def _run(run_id: str, start: int | None = 0, **metrics: float | None) -> dict:
    return {
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "params": {},
        "tags": {},
        "attributes": {"run_id": run_id, "start_time": start},
    }


def _ids(runs: list) -> list[str]:
    return [r["attributes"]["run_id"] for r in runs]


def test_sort_by_metric_descending_puts_missing_last() -> None:
    runs = [_run("a", acc=0.5), _run("b"), _run("c", acc=0.9), _run("d", acc=math.nan)]
    order = parse_order_by(["metrics.acc DESC"])
    # NaN sorts after numbers and before absent values, as in MLflow (issue 13's parity test)
    assert _ids(sort_runs(runs, order)) == ["c", "a", "d", "b"]


def test_sort_by_metric_ascending_puts_missing_last() -> None:
    runs = [_run("b"), _run("a", acc=0.5), _run("c", acc=0.1)]
    assert _ids(sort_runs(runs, parse_order_by(["metrics.acc"]))) == ["c", "a", "b"]


def test_sort_ties_fall_back_to_start_time_desc_then_run_id() -> None:
    runs = [
        _run("d", start=5, acc=1.0),
        _run("b", start=9, acc=1.0),
        _run("a", start=9, acc=1.0),
        _run("c", start=None, acc=1.0),
        _run("e", start=1, acc=0.0),
    ]
    assert _ids(sort_runs(runs, parse_order_by(["-metrics.acc"]))) == ["a", "b", "d", "c", "e"]


def test_sort_without_keys_is_newest_first() -> None:
    runs = [_run("x", start=1), _run("y", start=3), _run("z", start=2)]
    assert _ids(sort_runs(runs, ())) == ["y", "z", "x"]


def test_sort_secondary_key_breaks_ties_of_first() -> None:
    runs = [_run("a", x=1, y=2), _run("b", x=1, y=3), _run("c", x=0, y=1)]
    order = parse_order_by(["metrics.x DESC", "metrics.y ASC"])
    assert _ids(sort_runs(runs, order)) == ["a", "b", "c"]


def test_sort_mixed_params_numbers_before_text() -> None:
    runs = []
    for run_id, value in [("t", "zeta"), ("n", 10), ("f", 2.5), ("s", "alpha"), ("b", True)]:
        run = _run(run_id)
        run["params"] = {"p": value}
        runs.append(run)
    runs.append(_run("m"))
    assert _ids(sort_runs(runs, parse_order_by(["params.p"]))) == ["f", "n", "b", "s", "t", "m"]
    assert _ids(sort_runs(runs, parse_order_by(["-params.p"]))) == ["t", "s", "b", "n", "f", "m"]


def test_sort_returns_new_list_and_leaves_input_alone() -> None:
    runs = [_run("b", start=1), _run("a", start=2)]
    before = list(runs)
    result = sort_runs(runs, ())
    assert runs == before
    assert result is not runs


# --- import cost -------------------------------------------------------------------------


def test_importing_query_does_not_load_lark() -> None:
    code = "import sys, vtrack.query; assert 'lark' not in sys.modules, 'lark imported eagerly'"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_evaluate_stays_the_function_after_its_submodule_is_imported() -> None:
    # vtrack.query.evaluate is both a submodule and the function re-exported under its name
    code = (
        "import vtrack.query.evaluate, vtrack.query.parse, vtrack.query.semantics\n"
        "from vtrack import query\n"
        "assert callable(query.evaluate) and query.evaluate.__name__ == 'evaluate'\n"
        "from vtrack.query import evaluate, parse_filter\n"
        "assert evaluate(parse_filter('metrics.m > 1'), {'metrics': {'m': 2}})"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
