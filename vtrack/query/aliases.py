"""Filter strings over other entities than runs (experiments, logged models), rewritten
into the run grammar so that one parser and one evaluator serve them all.

:func:`rename_fields` rewrites bare (or ``attributes.``-prefixed) field names outside
quoted strings, e.g. an experiment's ``name`` into ``attributes.run_name``; the caller
then evaluates the parsed clauses on a :data:`~vtrack.query.evaluate.RunView` that holds
the entity's values under those attribute names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["rename_fields"]

_QUOTED = re.compile(r"'(?:[^'\\]|\\[\s\S]|'')*'|\"(?:[^\"\\]|\\[\s\S]|\"\")*\"|`[^`]*`")


def rename_fields(filter_string: str, fields: Mapping[str, str]) -> str:
    """``filter_string`` with each field named in ``fields`` replaced by ``attributes.<new>``.

    A field matches as a whole word, bare or after ``attributes.``/``attribute.``/``attr.``,
    when it is not part of a longer key (``params.name`` stays) and not inside quotes.
    """
    if not fields:
        return filter_string
    names = "|".join(sorted((re.escape(k) for k in fields), key=len, reverse=True))
    word = re.compile(
        rf"(?<![\w.`\"'])(?:(?:attributes|attribute|attr)\.)?({names})(?![\w.])", re.I
    )

    def sub(m: re.Match[str]) -> str:
        key = next(k for k in fields if k.lower() == m.group(1).lower())
        return f"attributes.{fields[key]}"

    out, pos = [], 0
    for q in _QUOTED.finditer(filter_string):
        out.append(word.sub(sub, filter_string[pos : q.start()]))
        out.append(q.group(0))
        pos = q.end()
    out.append(word.sub(sub, filter_string[pos:]))
    return "".join(out)
