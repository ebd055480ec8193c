"""Terminal output: styled text, aligned tables, JSON and CSV on stdout.

Tables are laid out here rather than with rich: importing rich and laying out a
50-row table costs about 170 ms, more than half of the 300 ms a whole ``vtrack ls``
may take. Colours (ANSI) are on for a terminal and off when the output is piped or
``NO_COLOR`` is set (or ``TERM=dumb``). Piped output has no trailing spaces. JSON output
never contains NaN or infinities (they become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``, see :func:`vtrack.views.jsonable`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from vtrack.views import fmt_csv, jsonable

#: Width assumed when stdout is not a terminal and ``COLUMNS`` is unset, so piped
#: output is not squeezed to 80 columns.
PIPE_WIDTH = 200
#: Rows of CSV written per echo (bounds memory on long listings).
_CSV_CHUNK_ROWS = 1000
STATUS_STYLES = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "magenta"}
_ANSI = {
    "bold": "1",
    "dim": "2",
    "underline": "4",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}
#: Spaces between table columns.
GAP = 3


@dataclass(frozen=True)
class Styled:
    """Text with a style: space-separated words from bold, dim, underline and colours."""

    text: str
    style: str = ""

    def __str__(self) -> str:
        return self.text


Cell = Any  # str | Styled | anything str() can show


def styled(text: Any, style: str) -> Styled:
    """``text`` shown with ``style`` when colours are on."""
    return Styled(str(text), style)


def color_enabled() -> bool:
    """True when stdout is a terminal, ``NO_COLOR`` is unset and ``TERM`` is not dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    out = sys.stdout  # what click.echo writes to (click 8.5 deprecates get_text_stream)
    try:
        return out is not None and out.isatty()
    except (AttributeError, ValueError):
        return False


def output_width() -> int:
    """Columns available: the terminal's, else ``COLUMNS``, else :data:`PIPE_WIDTH`."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    out = sys.stdout
    try:
        if out is not None and out.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError):
        pass
    return PIPE_WIDTH


def paint(cell: Cell, color: bool) -> str:
    """The cell as text, with ANSI codes for its style when ``color``."""
    if isinstance(cell, Styled):
        if color and cell.style:
            codes = ";".join(_ANSI[w] for w in cell.style.split() if w in _ANSI)
            if codes:
                return f"\x1b[{codes}m{cell.text}\x1b[0m"
        return cell.text
    return "" if cell is None else str(cell)


def line(*parts: Cell) -> str:
    """Parts joined into one line, painted when colours are on."""
    color = color_enabled()
    return "".join(paint(p, color) for p in parts)


def emit(*parts: Cell) -> None:
    """Print one line built from ``parts`` (or an empty line) on stdout."""
    click.echo(line(*parts).rstrip())


class Table:
    """Columns of text: a bold header, a rule, rows; sections separated by blank lines."""

    def __init__(self, *headers: str) -> None:
        self.headers = list(headers)
        self.justify = ["left"] * len(headers)
        self.styles = [""] * len(headers)
        self.rows: list[list[Cell] | None] = []  # None marks a section break

    def right(self, *indices: int) -> Table:
        """Right-align the given columns (numbers)."""
        for i in indices:
            self.justify[i] = "right"
        return self

    def add_row(self, *cells: Cell) -> None:
        """Append a row (missing cells are empty)."""
        row = list(cells) + [""] * (len(self.headers) - len(cells))
        self.rows.append(row)

    def add_section(self) -> None:
        """Start a new group of rows."""
        if self.rows and self.rows[-1] is not None:
            self.rows.append(None)

    def render(self, color: bool | None = None) -> str:
        """The table as text (no trailing spaces)."""
        color = color_enabled() if color is None else color
        rows = [r for r in self.rows]
        while rows and rows[-1] is None:
            rows.pop()
        n = len(self.headers)
        widths = [len(h) for h in self.headers]
        for row in rows:
            if row is not None:
                for i in range(n):
                    widths[i] = max(widths[i], len(str(row[i] if row[i] is not None else "")))
        out = []
        gap = " " * GAP

        def fmt(cells: Sequence[Cell], base: Sequence[str]) -> str:
            pieces = []
            for i in range(n):
                cell = cells[i]
                text = paint(cell, False)
                pad = widths[i] - len(text)
                if base[i] and not isinstance(cell, Styled):
                    cell = Styled(text, base[i])
                shown = paint(cell, color)
                pieces.append(
                    " " * pad + shown if self.justify[i] == "right" else shown + " " * pad
                )
            return gap.join(pieces).rstrip()

        out.append(fmt([Styled(h, "bold") for h in self.headers], [""] * n))
        out.append("─" * (sum(widths) + GAP * (n - 1)))
        for row in rows:
            out.append("" if row is None else fmt(row, self.styles))
        return "\n".join(out)

    def print(self) -> None:
        """Print the table on stdout."""
        click.echo(self.render())


def table(*headers: str) -> Table:
    """A new :class:`Table` with these column headers."""
    return Table(*headers)


def print_kv(pairs: Iterable[tuple[str, Any]]) -> None:
    """Print ``key  value`` lines aligned, skipping None and empty values."""
    items = [(k, v) for k, v in pairs if v is not None and v != ""]
    if not items:
        return
    width = max(len(k) for k, _ in items)
    for k, v in items:
        emit(styled(k.ljust(width), "bold"), "  ", v)


def section_title(text: str) -> None:
    """Print an empty line and a section heading."""
    emit()
    emit(styled(text, "bold underline"))


def status_text(status: str) -> Styled:
    """A status, coloured."""
    return Styled(status, STATUS_STYLES.get(status, ""))


# -- JSON and CSV -----------------------------------------------------------------------


#: Documents up to this many characters (compact) are printed indented; larger ones put
#: each top-level element on its own line, so a listing of 100,000 runs is encoded by
#: json's C encoder instead of its pure-Python indenting one (9x slower).
JSON_INDENT_LIMIT = 64 * 1024


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    as_record = getattr(obj, "as_record", None)  # record entries: their cached record form
    if as_record is not None:
        return as_record()
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)


def _dumps(data: Any, indent: int | None = None) -> str:
    return json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False,
                      default=_json_default)  # fmt: skip


def json_text(data: Any) -> str:
    """``data`` as JSON text: NaN/inf as strings, unknown objects as ``str``.

    Indented by 2 up to :data:`JSON_INDENT_LIMIT` characters; past it, one top-level
    element per line (still one JSON document).
    """
    try:
        compact = _dumps(data)
    except (ValueError, TypeError):  # NaN/inf, or keys json cannot take: convert first
        data = jsonable(data)
        compact = _dumps(data)
    if len(compact) <= JSON_INDENT_LIMIT:
        return _dumps(data, indent=2)
    if isinstance(data, Mapping):
        items = [f"  {_dumps(str(k))}: {_dumps(v)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n}"
    if isinstance(data, (list, tuple)):
        return "[\n" + ",\n".join(f"  {_dumps(v)}" for v in data) + "\n]"
    return compact


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (see :func:`json_text`)."""
    click.echo(json_text(data))


def echo_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a CSV table (header first) on stdout; None becomes an empty cell."""
    buf = io.StringIO()  # echoed in chunks: through click's stream, in order with click.echo
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow(["" if v is None else fmt_csv(v) for v in row])
        if n % _CSV_CHUNK_ROWS == 0:
            click.echo(buf.getvalue(), nl=False, color=True)
            buf.seek(0)
            buf.truncate()
    click.echo(buf.getvalue(), nl=False, color=True)  # color=True: escapes in values kept
