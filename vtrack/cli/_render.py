"""Output for people and programs: aligned tables, sparklines, terminal charts, JSON and CSV.

Tables are laid out here rather than with rich: importing rich and laying out a
50-row table costs about 170 ms, more than half of the 300 ms a whole ``vtrack ls``
may take. Colours (ANSI) are on for a terminal and off when the output is piped or
``NO_COLOR`` is set (or ``TERM=dumb``). Piped output has no trailing spaces. JSON output
never contains NaN or infinities (they become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vtrack.diff import CompareTable, RunDiff

#: Width assumed when stdout is not a terminal and ``COLUMNS`` is unset, so piped
#: output is not squeezed to 80 columns.
PIPE_WIDTH = 200
SPARK_CHARS = "▁▂▃▄▅▆▇█"
STATUS_STYLES = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "magenta"}
KIND_MARKS = {
    "added": ("+", "green"),
    "removed": ("-", "red"),
    "changed": ("~", "yellow"),
    "unchanged": (" ", "dim"),
}
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
#: Rows of CSV written per echo (bounds memory on long listings).
_CSV_CHUNK_ROWS = 1000
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


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by strings and unknown objects by ``str``."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(jsonable(data), indent=2, allow_nan=False, ensure_ascii=False))


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


def fmt_csv(value: Any) -> str:
    """A cell for CSV: full precision floats, YAML-style booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- values -----------------------------------------------------------------------------


def fmt_value(value: Any, missing: str = "—") -> str:
    """A param, metric or tag value for people: floats to 6 significant digits."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def fmt_param(value: Any) -> str:
    """A param value as YAML would show it (strings that look like numbers are quoted)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value if value not in ("", "true", "false", "null") else repr(value)
        return repr(value)
    if isinstance(value, float) and math.isfinite(value) and len(repr(value)) <= 12:
        return repr(value)  # 0.0 stays distinguishable from the int 0
    return fmt_value(value, missing="null")


def fmt_delta(delta: float | None, relative: float | None) -> str:
    """``+0.1 (+12.5%)`` style change."""
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    if relative is not None:
        text += f" ({relative * 100:+.1f}%)"
    return text


def fmt_time(ms: int | None) -> str:
    """A timestamp in ms as local ``YYYY-MM-DD HH:MM:SS``."""
    if not ms:
        return "—"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_seconds(seconds: float) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def fmt_duration(start_ms: int | None, end_ms: int | None) -> str:
    """Duration of a run; empty while it has no end time."""
    if not start_ms or not end_ms:
        return ""
    return fmt_seconds(max(0, int(end_ms) - int(start_ms)) / 1000)


def short_id(run_id: str) -> str:
    """The first 8 characters of a run id (what tables show)."""
    return run_id[:8]


# -- sparklines and charts ----------------------------------------------------------------


def _buckets(values: Sequence[float], width: int) -> list[float]:
    """Average ``values`` into at most ``width`` buckets (finite values only)."""
    vals = [v for v in values if math.isfinite(v)]
    if len(vals) <= width:
        return vals
    out = []
    for i in range(width):
        lo = i * len(vals) // width
        hi = max(lo + 1, (i + 1) * len(vals) // width)
        chunk = vals[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A one-line chart of ``values`` with block characters (empty for no finite value)."""
    vals = _buckets(values, width)
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return SPARK_CHARS[len(SPARK_CHARS) // 2] * len(vals)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - lo) / (hi - lo) * top)] for v in vals)


def line_chart(points: Sequence[tuple[int, float]], width: int = 60, height: int = 12) -> list[str]:
    """A terminal line chart of ``(step, value)`` points: y labels left, steps below.

    Columns average the points that fall into them; consecutive columns are joined
    with vertical strokes so the line reads as continuous.
    """
    pts = [(s, v) for s, v in points if math.isfinite(v)]
    if not pts:
        return ["(no finite values)"]
    pts.sort(key=lambda p: p[0])
    cols = _buckets([v for _, v in pts], width)
    lo, hi = min(cols), max(cols)
    span = hi - lo or 1.0
    rows = [[" "] * len(cols) for _ in range(height)]
    prev: int | None = None
    for x, v in enumerate(cols):
        y = round((v - lo) / span * (height - 1))
        if prev is not None and abs(y - prev) > 1:
            step = 1 if y > prev else -1
            for yy in range(prev + step, y, step):
                rows[yy][x] = "│"
        rows[y][x] = "●"
        prev = y
    digits = 4
    while digits < 12 and hi != lo and f"{hi:.{digits}g}" == f"{lo:.{digits}g}":
        digits += 1
    hi_label, lo_label = f"{hi:.{digits}g}", f"{lo:.{digits}g}"
    label_w = max(len(hi_label), len(lo_label))
    lines = []
    for i in range(height - 1, -1, -1):
        if i == height - 1:
            label = hi_label
        elif i == 0:
            label = lo_label
        else:
            label = ""
        lines.append(f"{label:>{label_w}} ┤{''.join(rows[i])}")
    first, last = pts[0][0], pts[-1][0]
    axis = " " * label_w + " └" + "─" * len(cols)
    steps = f"step {first}"
    end = f"{last}"
    pad = max(1, len(cols) - len(steps) - len(end))
    lines.append(axis)
    lines.append(" " * (label_w + 2) + steps + " " * pad + end)
    return lines


# -- diff and compare -------------------------------------------------------------------


def _mark(kind: str) -> Styled:
    sym, style = KIND_MARKS[kind]
    return Styled(sym, style)


def print_diff(diff: RunDiff, sections: Sequence[str], stat_width: int = 40) -> None:
    """Print a RunDiff for people: one titled block per section with differences."""
    emit(styled("--- a ", "red"), f"{short_id(diff.a.run_id)} {diff.a.run_name}")
    emit(styled("+++ b ", "green"), f"{short_id(diff.b.run_id)} {diff.b.run_name}")
    if all(diff.section_empty(s) for s in sections):
        emit("no differences")
        return
    for s in sections:
        if diff.section_empty(s):
            continue
        if s == "params":
            t = table("", "param", "a", "b")
            for c in diff.params:
                t.add_row(
                    _mark(c.kind),
                    c.key,
                    _cell(c.old, c.kind != "added", fmt_param),
                    _cell(c.new, c.kind != "removed", fmt_param),
                )
            _titled(f"params ({len(diff.params)})", t)
        elif s == "metrics":
            t = table("", "metric", "a", "b", "change")
            for m in diff.metrics:
                change: Cell = fmt_delta(m.delta, m.relative)
                if m.improved is not None:
                    change = styled(change, "green" if m.improved else "red")
                t.add_row(
                    _mark(m.kind),
                    m.key,
                    _cell(m.old, m.kind != "added"),
                    _cell(m.new, m.kind != "removed"),
                    change,
                )
            _titled(f"metrics ({len(diff.metrics)})", t)
        elif s == "datasets":
            t = table("", "dataset", "context", "a digest", "b digest")
            for d in diff.datasets:
                t.add_row(
                    _mark(d.kind),
                    d.name,
                    d.context or "",
                    _digest(d.old_digest),
                    _digest(d.new_digest),
                )
            _titled(f"datasets ({len(diff.datasets)})", t)
        elif s == "artifacts":
            t = table("", "artifact", "a digest", "b digest", "size")
            for a in diff.artifacts:
                size = f"{fmt_bytes(a.old_size)} → {fmt_bytes(a.new_size)}"
                t.add_row(_mark(a.kind), a.path, _digest(a.old_digest), _digest(a.new_digest), size)
            _titled(f"artifacts ({len(diff.artifacts)})", t)
        elif s == "environment":
            t = table("", "environment", "a", "b")
            for c in diff.environment:
                t.add_row(
                    _mark(c.kind),
                    c.key,
                    _cell(c.old, c.kind != "added"),
                    _cell(c.new, c.kind != "removed"),
                )
            _titled(f"environment ({len(diff.environment)})", t)
        elif s == "code" and diff.code is not None:
            _print_code(diff, stat_width)


def _titled(title: str, t: Table) -> None:
    section_title(title)
    t.print()


def _cell(value: Any, present: bool, fmt: Any = fmt_value) -> str:
    return fmt(value) if present else ""


def _digest(d: str | None) -> str:
    if not d:
        return ""
    algo, _, hexd = d.partition(":")
    return f"{algo}:{hexd[:12]}" if hexd else d[:16]


def fmt_bytes(n: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB`` (empty for None)."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _print_code(diff: RunDiff, stat_width: int) -> None:
    code = diff.code
    assert code is not None
    section_title("code")
    if not code.captured:
        emit("code snapshot not captured for one of the runs")
    for c in code.source:
        if c.kind == "unchanged":
            continue
        emit(
            _mark(c.kind),
            f" {c.key}: ",
            styled(fmt_value(c.old), "red"),
            " → ",
            styled(fmt_value(c.new), "green"),
        )
    if code.files:
        click.echo(stat_lines(code.files, stat_width))
    if code.patch:
        emit()
        click.echo(code.patch.rstrip("\n"))


def stat_lines(files: Sequence[Any], width: int = 40) -> str:
    """``git diff --stat`` style lines for FileStats, with the summary line."""
    if not files:
        return ""
    names = [f"{f.old_path} => {f.path}" if f.old_path else f.path for f in files]
    name_w = max(len(n) for n in names)
    totals = [(f.added or 0) + (f.deleted or 0) for f in files]
    most = max(totals) or 1
    num_w = len(str(most))
    lines = []
    for f, name, total in zip(files, names, totals, strict=True):
        if f.binary:
            lines.append(f" {name:<{name_w}} | Bin")
            continue
        scale = min(1.0, width / most)
        plus = round((f.added or 0) * scale)
        minus = round((f.deleted or 0) * scale)
        if f.added and not plus:
            plus = 1
        if f.deleted and not minus:
            minus = 1
        lines.append(f" {name:<{name_w}} | {total:>{num_w}} {'+' * plus}{'-' * minus}")
    ins = sum(f.added or 0 for f in files)
    dels = sum(f.deleted or 0 for f in files)
    n = len(files)
    summary = f" {n} file{'s' if n != 1 else ''} changed"
    if ins:
        summary += f", {ins} insertion{'s' if ins != 1 else ''}(+)"
    if dels:
        summary += f", {dels} deletion{'s' if dels != 1 else ''}(-)"
    lines.append(summary)
    return "\n".join(lines)


def print_compare(cmp: CompareTable) -> None:
    """Print a CompareTable: one column per run, best metric values bold green with ``*``."""
    t = table("", *[f"{short_id(r.run_id)}" for r in cmp.runs])
    t.right(*range(1, len(cmp.runs) + 1))
    section = None
    for row in cmp.rows:
        if row.section != section:
            if section is not None:
                t.add_section()
            section = row.section
        cells = []
        for i, v in enumerate(row.values):
            text = fmt_param(v) if row.section == "params" and v is not None else fmt_value(v)
            cells.append(styled(f"*{text}", "bold green") if i in row.best else text)
        t.add_row(
            styled(
                f"{row.section}.{row.key}" if row.section != "info" else row.key,
                "bold" if row.section == "info" else "",
            ),
            *cells,
        )
    t.print()
