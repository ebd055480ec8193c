"""MLflow's run-filter and order-by grammar, parsed into a typed AST.

:func:`parse_filter` turns a filter string into a tuple of :class:`Comparison` clauses
(all joined by AND) and :func:`parse_order_by` turns order-by items into :class:`OrderKey`
values. What the clauses mean is :mod:`vtrack.query.evaluate`'s business (and the SQL
compiler's, which must agree with it). lark is imported on the first parse only; the
LALR tables are built once and cached on disk.

Grammar
-------
``clause (AND clause)*``; an empty or whitespace-only filter has no clauses and matches
every run. Keywords (``AND LIKE ILIKE IN NOT IS NULL ASC DESC``) and entity prefixes are
case-insensitive; keys are case-sensitive.

* Left side: ``metrics.<key>``, ``params.<key>``, ``tags.<key>``, ``attributes.<name>``,
  ``datasets.<field>``. Prefix aliases: ``metric``, ``param``, ``tag``, ``attribute`` /
  ``attr`` / ``run``, ``dataset``. The bare names ``run_name``, ``status``,
  ``start_time``, ``end_time`` and ``run_id`` mean the attribute.
* Keys are made of letters, digits and ``_ - . /`` (``metrics.val/loss``,
  ``params.model.depth``), or quoted with backticks (no backtick inside) or double quotes
  (``params."a b"``, escapes as for strings).
* Attribute names (case-insensitive): ``run_id run_name status experiment_id user_id
  parent_run_id``
  (text) and ``start_time end_time`` (numbers, milliseconds). Dataset fields: ``name
  digest context``.
* Operators: ``= != < <= > >= LIKE ILIKE IN NOT IN IS NULL IS NOT NULL``.
* Values: numbers (``3``, ``-0.5``, ``1e-3``; an int unless written with ``.`` or an
  exponent), strings in single or double quotes, and tuples ``('a', 'b', 3)`` for
  ``IN`` / ``NOT IN`` (at least one element, a trailing comma is allowed). Inside a string
  the quote is escaped by doubling it or by a backslash, ``\\\\`` is one backslash, and any
  other backslash is kept as written.

Types, checked at parse time (a :class:`Comparison` cannot hold anything else):

============================  =====================================  =====================
entity                        operators                              values
============================  =====================================  =====================
metrics, start/end_time       ``= != < <= > >= IN NOT IN IS [NOT]    numbers
                              NULL``
params                        all                                    strings or numbers
tags, text attributes,        ``= != LIKE ILIKE IN NOT IN IS [NOT]   strings
datasets                      NULL``
============================  =====================================  =====================

Beyond MLflow, params also take number literals and ``< <= > >=``, and every entity takes
``IN`` / ``NOT IN``. Errors are :class:`~vtrack.errors.QuerySyntaxError` with a 1-based
column (counted within its line when the filter spans several lines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vtrack.errors import QuerySyntaxError, ValidationError
from vtrack.query.semantics import NUMBER_PATTERN, Scalar, is_number, number_literal

__all__ = [
    "ATTRIBUTES",
    "BARE_ATTRIBUTES",
    "DATASET_FIELDS",
    "ENTITIES",
    "NUMERIC_ATTRIBUTES",
    "OPERATORS",
    "TEXT_ATTRIBUTES",
    "Comparison",
    "OrderKey",
    "allowed_operators",
    "parse_filter",
    "parse_order_by",
]

ENTITIES = ("metrics", "params", "tags", "attributes", "datasets")
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
TEXT_ATTRIBUTES = frozenset(
    {"run_id", "run_name", "status", "experiment_id", "user_id", "parent_run_id"}
)
ATTRIBUTES = NUMERIC_ATTRIBUTES | TEXT_ATTRIBUTES
DATASET_FIELDS = frozenset({"name", "digest", "context"})
#: Attribute names that may be written without the ``attributes.`` prefix.
BARE_ATTRIBUTES = frozenset({"run_name", "status", "start_time", "end_time", "run_id"})

#: MLflow's other spellings of attributes (``attributes.created``, ``attributes.`Run name```).
_ATTRIBUTE_ALIASES = {
    "created": "start_time", "Created": "start_time",
    "run name": "run_name", "Run name": "run_name", "Run Name": "run_name",
}  # fmt: skip
#: MLflow system tags that are vtrack attributes: a filter on the tag filters the attribute.
SYSTEM_TAG_ATTRIBUTES = {
    "mlflow.runName": "run_name",
    "mlflow.user": "user_id",
    "mlflow.parentRunId": "parent_run_id",
}

COMPARISON_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
PATTERN_OPS = frozenset({"LIKE", "ILIKE"})
LIST_OPS = frozenset({"IN", "NOT IN"})
NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
OPERATORS = COMPARISON_OPS | PATTERN_OPS | LIST_OPS | NULL_OPS

_PREFIXES = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params", "parameter": "params", "parameters": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes",
    "run": "attributes",
    "datasets": "datasets", "dataset": "datasets",
}  # fmt: skip

_GRAMMAR = r"""
filter: clause (AND clause)*
clause: COLUMN op value         -> compare
      | COLUMN IS NULL          -> is_null
      | COLUMN IS NOT NULL      -> is_not_null
op: EQ | NE | LT | LE | GT | GE | LIKE | ILIKE | IN | NOT IN
?value: scalar | tuple
tuple: LPAR scalar (COMMA scalar)* COMMA? RPAR
?scalar: NUMBER | STRING

order: MINUS? COLUMN DIRECTION?

EQ: "="
NE: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
LPAR: "("
RPAR: ")"
COMMA: ","
MINUS: "-"
AND: /and\b/i
LIKE: /like\b/i
ILIKE: /ilike\b/i
IN: /in\b/i
NOT: /not\b/i
IS: /is\b/i
NULL: /null\b/i
DIRECTION: /(asc|desc)\b/i
COLUMN: /([A-Za-z_]\w*|`[A-Za-z_]\w*`)(\.(`[^`]*`|"(?:[^"\\]|\\[\s\S]|"")*"|'(?:[^'\\]|\\[\s\S]|'')*'|[\w\-.\/]+))?/
NUMBER: /@NUMBER@/
STRING: /'(?:[^'\\]|\\[\s\S]|'')*'|"(?:[^"\\]|\\[\s\S]|"")*"/
%ignore /\s+/
""".replace("@NUMBER@", NUMBER_PATTERN)

_EXPECTED_NAMES = {
    "COLUMN": "a key such as metrics.acc",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "AND": "AND",
    "NOT": "NOT",
    "NULL": "NULL",
    "IN": "IN",
    "DIRECTION": "ASC or DESC",
    "$END": "the end",
}
_OPERATOR_TERMINALS = {"EQ", "NE", "LT", "LE", "GT", "GE", "LIKE", "ILIKE", "IN", "NOT", "IS"}

_parser: Any = None


@dataclass(frozen=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` clause.

    Construction checks the combination against the type table in the module docstring
    and raises :class:`~vtrack.errors.ValidationError` for anything else, so every
    ``Comparison`` is one :func:`~vtrack.query.evaluate.evaluate` and the SQL compiler
    can handle. ``value`` is a tuple for ``IN``/``NOT IN`` (a list is accepted and stored
    as a tuple), ``None`` for ``IS [NOT] NULL`` and a scalar otherwise.
    """

    entity: str
    key: str
    op: str
    value: str | int | float | tuple[str | int | float, ...] | None

    def __post_init__(self) -> None:
        if isinstance(self.value, list):  # callers building IN clauses by hand
            object.__setattr__(self, "value", tuple(self.value))
        _check_column(self.entity, self.key, ordering=False)
        kind = _kind(self.entity, self.key)
        allowed = allowed_operators(self.entity, self.key)
        if self.op not in OPERATORS:
            raise ValidationError(f"unknown operator {self.op!r}")
        if self.op not in allowed:
            raise ValidationError(
                f"operator {self.op} cannot be used on {self.entity}.{self.key}",
                hint=f"allowed: {', '.join(sorted(allowed))}",
            )
        if self.op in NULL_OPS:
            if self.value is not None:
                raise ValidationError(f"{self.op} takes no value")
            return
        if self.op in LIST_OPS:
            if not isinstance(self.value, tuple) or not self.value:
                raise ValidationError(f"{self.op} needs a non-empty tuple such as ('a', 'b')")
            for item in self.value:
                _check_value(kind, self.entity, self.key, item)
            return
        if isinstance(self.value, tuple):
            raise ValidationError(f"{self.op} needs a single value, not a tuple (use IN)")
        if self.op in PATTERN_OPS and not isinstance(self.value, str):
            raise ValidationError(f"{self.op} needs a quoted string pattern")
        _check_value(kind, self.entity, self.key, self.value)


@dataclass(frozen=True)
class OrderKey:
    """One order-by key; construction rejects datasets and unknown attributes."""

    entity: str
    key: str
    ascending: bool = True

    def __post_init__(self) -> None:
        _check_column(self.entity, self.key, ordering=True)


def allowed_operators(entity: str, key: str) -> frozenset[str]:
    """The operators a filter may apply to ``entity.key`` (the type table above)."""
    kind = _kind(entity, key)
    if kind == "number":
        return COMPARISON_OPS | LIST_OPS | NULL_OPS
    if kind == "param":
        return OPERATORS
    return frozenset({"=", "!="}) | PATTERN_OPS | LIST_OPS | NULL_OPS


def _kind(entity: str, key: str) -> str:
    if entity == "metrics" or (entity == "attributes" and key in NUMERIC_ATTRIBUTES):
        return "number"
    if entity == "params":
        return "param"
    return "text"


def _check_column(entity: str, key: str, *, ordering: bool) -> None:
    if entity not in ENTITIES:
        raise ValidationError(f"unknown entity {entity!r}", hint=f"use one of {ENTITIES}")
    if ordering and entity == "datasets":
        raise ValidationError("cannot order by datasets (a run may have several)")
    if not isinstance(key, str) or not key:
        raise ValidationError(f"{entity} needs a non-empty key")
    if entity == "attributes" and key not in ATTRIBUTES:
        raise ValidationError(
            f"unknown attribute {key!r}", hint=f"use one of {', '.join(sorted(ATTRIBUTES))}"
        )
    if entity == "datasets" and key not in DATASET_FIELDS:
        raise ValidationError(
            f"unknown dataset field {key!r}", hint=f"use one of {', '.join(sorted(DATASET_FIELDS))}"
        )


def _check_value(kind: str, entity: str, key: str, value: object) -> None:
    if is_number(value):
        if isinstance(value, float) and math.isnan(value):
            raise ValidationError(f"NaN cannot be compared with {entity}.{key}")
        if kind == "text":
            raise ValidationError(f"{entity}.{key} compares with quoted strings, got {value!r}")
    elif isinstance(value, str):
        if kind == "number":
            raise ValidationError(f"{entity}.{key} compares with numbers, got {value!r}")
    else:
        raise ValidationError(f"unsupported value {value!r} for {entity}.{key}")


# --- parsing -----------------------------------------------------------------------------


def _get_parser() -> Any:
    global _parser
    if _parser is None:
        import lark

        # cache=True keeps the built LALR tables in the temp folder (keyed by the grammar's
        # hash): building them costs ~50 ms, which every filtered `vtrack ls` would pay
        _parser = lark.Lark(_GRAMMAR, parser="lalr", start=["filter", "order"], cache=True)
    return _parser


def _error(
    text: str, pos: int, what: str, detail: str = "", *, kind: str = "filter"
) -> QuerySyntaxError:
    """A QuerySyntaxError for ``text`` pointing at 0-based offset ``pos``."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    column = pos - line_start + 1
    line_no = text.count("\n", 0, pos) + 1
    where = f"line {line_no}, column {column}" if "\n" in text else f"column {column}"
    # Keep one display character per source character so the caret lines up.
    line = "".join(c if c.isprintable() or c == "\t" else " " for c in line)
    caret = "".join(c if c == "\t" else " " for c in line[: column - 1]) + "^"
    message = f"Invalid {kind}: {what} at {where}"
    if detail:
        message += f"; {detail}"
    message += f"\n    {line}\n    {caret}"
    return QuerySyntaxError(message, text=text, column=column, line=line_no)


def _parse_tree(text: str, start: str, kind: str) -> Any:
    import lark

    try:
        return _get_parser().parse(text, start=start)
    except lark.exceptions.UnexpectedCharacters as exc:
        pos = exc.pos_in_stream if exc.pos_in_stream is not None else len(text) - 1
        char = text[pos]
        if char in "'\"`":
            raise _error(text, pos, "unterminated quote", kind=kind) from None
        raise _error(text, pos, f"unexpected {char!r}", _expected(exc), kind=kind) from None
    except lark.exceptions.UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            pos = len(text.rstrip())
            raise _error(text, pos, "unexpected end", _expected(exc), kind=kind) from None
        pos = tok.start_pos
        if str(tok).lower() == "or":
            raise _error(
                text, pos, "unexpected 'or'", "only AND joins clauses", kind=kind
            ) from None
        raise _error(text, pos, f"unexpected {str(tok)!r}", _expected(exc), kind=kind) from None
    except lark.exceptions.UnexpectedInput as exc:  # pragma: no cover - LALR raises the above
        raise _error(
            text, getattr(exc, "pos_in_stream", 0) or 0, "invalid syntax", kind=kind
        ) from None


def _expected(exc: Any) -> str:
    """What the parser could have taken at the error, in words."""
    try:
        names = set(exc.interactive_parser.accepts())
    except Exception:  # the precise set is a nicety; fall back to the lexer's guess
        names = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    parts = []
    if {"EQ", "IS"} <= names:
        parts.append("an operator (= != < <= > >= LIKE ILIKE IN NOT IN IS NULL IS NOT NULL)")
        names -= _OPERATOR_TERMINALS
    if {"NUMBER", "STRING", "LPAR"} <= names:
        parts.append("a value (a number, a quoted string or a tuple)")
        names -= {"NUMBER", "STRING", "LPAR"}
    parts += sorted(_EXPECTED_NAMES[n] for n in names if n in _EXPECTED_NAMES)
    return f"expected {' or '.join(parts)}" if parts else ""


def _unquote(token: str) -> str:
    quote, body = token[0], token[1:-1]
    if quote == "`":
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in (quote, "\\"):
            out.append(body[i + 1])
            i += 2
        elif c == quote:  # the grammar only admits doubled quotes here
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _column(text: str, token: Any, kind: str) -> tuple[str, str]:
    """Split a COLUMN token into ``(entity, key)``, checking prefix and names."""
    raw = str(token)
    if raw.startswith("`"):  # MLflow accepts a backticked entity: `metrics`.acc
        end = raw.index("`", 1)
        prefix, rest = raw[1:end], raw[end + 2 :]
        dot = raw[end + 1 : end + 2]
    else:
        prefix, dot, rest = raw.partition(".")
    if not dot:
        name = prefix.lower()
        if name in BARE_ATTRIBUTES:
            return "attributes", name
        lowered = prefix.lower()
        detail = (
            f"write {lowered}.<key>"
            if lowered in _PREFIXES
            else f"prefix it, e.g. metrics.{prefix}, params.{prefix} or tags.{prefix}"
        )
        raise _error(text, token.start_pos, f"unknown identifier {prefix!r}", detail, kind=kind)
    entity = _PREFIXES.get(prefix.lower())
    if entity is None:
        raise _error(
            text, token.start_pos, f"unknown entity {prefix!r}",
            "use metrics., params., tags., attributes. or datasets.", kind=kind,
        )  # fmt: skip
    key = _unquote(rest) if rest[:1] in ("`", '"', "'") else rest
    if entity == "attributes":
        key = _ATTRIBUTE_ALIASES.get(key, key.lower())
    elif entity == "datasets":
        key = key.lower()
    elif entity == "tags" and key in SYSTEM_TAG_ATTRIBUTES:
        entity, key = "attributes", SYSTEM_TAG_ATTRIBUTES[key]
    try:
        _check_column(entity, key, ordering=kind == "order_by item")
    except ValidationError as exc:
        raise _error(text, token.start_pos, exc.message, exc.hint or "", kind=kind) from None
    return entity, key


def _literal(token: Any) -> Scalar:
    if token.type == "NUMBER":
        return number_literal(str(token))
    return _unquote(str(token))


def parse_filter(text: str) -> tuple[Comparison, ...]:
    """Parse an MLflow filter string into its AND-ed clauses, in written order.

    An empty or whitespace-only string gives ``()``. Raises
    :class:`~vtrack.errors.QuerySyntaxError` (a :class:`~vtrack.errors.ValidationError`)
    whose message names the 1-based column and shows a caret under the offending
    character, for syntax errors and for type errors (``LIKE`` on a metric, a string
    compared with a metric, an unknown attribute …).
    """
    if not isinstance(text, str):
        raise ValidationError(f"filter must be a string, got {type(text).__name__}")
    if not text.strip():
        return ()
    tree = _parse_tree(text, "filter", "filter")
    clauses = []
    for node in tree.children:
        if not hasattr(node, "data"):  # an AND token
            continue
        col_tok = node.children[0]
        entity, key = _column(text, col_tok, "filter")
        value: Any
        if node.data in ("is_null", "is_not_null"):
            op = "IS NULL" if node.data == "is_null" else "IS NOT NULL"
            value, op_at, value_at = None, node.children[1], node.children[1]
        else:
            op_tokens = node.children[1].children
            op = " ".join(str(t).upper() for t in op_tokens)
            op_at, value_node = op_tokens[0], node.children[2]
            if hasattr(value_node, "data"):
                value = tuple(
                    _literal(t) for t in value_node.children if t.type in ("NUMBER", "STRING")
                )
                value_at = value_node.children[0]
            else:
                value, value_at = _literal(value_node), value_node
        # A forbidden operator is the operator's fault; any other mismatch is the value's.
        at = value_at if op in allowed_operators(entity, key) else op_at
        try:
            clauses.append(Comparison(entity, key, op, value))
        except ValidationError as exc:
            raise _error(text, at.start_pos, exc.message, exc.hint or "") from None
    return tuple(clauses)


def parse_order_by(items: Sequence[str] | None) -> tuple[OrderKey, ...]:
    """Parse order-by items such as ``"metrics.acc DESC"`` or ``"-metrics.acc"``.

    ``None`` or an empty sequence gives ``()``. A leading ``-`` means descending and may
    not be combined with ``ASC``/``DESC``; without either the key is ascending. Raises
    :class:`~vtrack.errors.QuerySyntaxError` for a bad item (column relative to the item).
    """
    if items is None:
        return ()
    if isinstance(items, str):
        raise ValidationError("order_by must be a list of strings, not a single string")
    keys = []
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(f"order_by items must be strings, got {item!r}")
        if not item.strip():
            raise _error(item, 0, "empty item", kind="order_by item")
        tree = _parse_tree(item, "order", "order_by item")
        tokens = {t.type: t for t in tree.children}
        entity, key = _column(item, tokens["COLUMN"], "order_by item")
        ascending = True
        if "DIRECTION" in tokens:
            if "MINUS" in tokens:
                raise _error(
                    item, tokens["DIRECTION"].start_pos, "a leading '-' cannot be combined with ASC/DESC",
                    kind="order_by item",
                )  # fmt: skip
            ascending = str(tokens["DIRECTION"]).upper() == "ASC"
        elif "MINUS" in tokens:
            ascending = False
        keys.append(OrderKey(entity, key, ascending))
    return tuple(keys)
