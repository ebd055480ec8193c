"""Output for people and programs: rich tables, sparklines, terminal charts, JSON and CSV.

rich is imported inside the functions that draw, so command modules stay cheap to
import. Colours follow rich's rules: on for a terminal, off when the output is piped,
off whenever ``NO_COLOR`` is set. JSON output never contains NaN or infinities
(they become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from vtrack.diff import CompareTable, RunDiff

#: Width used for tables when stdout is not a terminal and ``COLUMNS`` is unset,
#: so piped output is not squeezed to 80 columns.
PIPE_WIDTH = 200
SPARK_CHARS = "▁▂▃▄▅▆▇█"
STATUS_STYLES = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "magenta"}
KIND_MARKS = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow"),
              "unchanged": (" ", "dim")}

_console: Console | None = None


def console() -> Console:
    """The stdout console (one per process; recreated when stdout changes, as in tests)."""
    global _console
    from rich.console import Console

    if _console is None or _console.file is not sys.stdout:
        width = None
        if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
            width = PIPE_WIDTH
        # markup off: names, keys and values are printed as written, brackets included
        _console = Console(file=sys.stdout, width=width, soft_wrap=False, highlight=False,
                           emoji=False, markup=False)
    return _console


def emit(renderable: Any = "", **kw: Any) -> None:
    """Print a rich renderable on stdout; piped output loses the padding at line ends."""
    con = console()
    if con.is_terminal:
        con.print(renderable, **kw)
        return
    with con.capture() as cap:
        con.print(renderable, **kw)
    text = "\n".join(line.rstrip() for line in cap.get().split("\n"))
    click.echo(text, nl=False)


def color_enabled() -> bool:
    """True when colours go to stdout (a terminal and no ``NO_COLOR``)."""
    return bool(console().is_terminal) and not os.environ.get("NO_COLOR")


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
    out = click.get_text_stream("stdout")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else fmt_csv(v) for v in row])


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


def status_text(status: str) -> Any:
    """A rich Text of a status, coloured."""
    from rich.text import Text

    return Text(status, style=STATUS_STYLES.get(status, ""))


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


def line_chart(
    points: Sequence[tuple[int, float]], width: int = 60, height: int = 12
) -> list[str]:
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


# -- tables -----------------------------------------------------------------------------


def table(*columns: str, title: str | None = None) -> Table:
    """A plain rich table with the given column headers (numbers right-aligned later)."""
    from rich import box
    from rich.table import Table

    t = Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left",
              show_edge=False, pad_edge=False, header_style="bold")
    return t


def print_kv(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """Print ``key value`` pairs aligned, skipping None values."""
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    for k, v in pairs:
        if v is None or v == "":
            continue
        t.add_row(k, v if not isinstance(v, str) else _plain(v))
    if title:
        emit(_plain(title, "bold underline"))
    emit(t)


def _plain(text: str, style: str = "") -> Any:
    from rich.text import Text

    return Text(text, style=style)


def section_title(text: str) -> None:
    """Print a section heading."""
    emit()
    emit(_plain(text, "bold underline"))


# -- diff and compare -------------------------------------------------------------------


def _mark(kind: str) -> Any:
    from rich.text import Text

    sym, style = KIND_MARKS[kind]
    return Text(sym, style=style)


def print_diff(diff: RunDiff, sections: Sequence[str], stat_width: int = 40) -> None:
    """Print a RunDiff for people: one titled block per section with differences."""
    from rich.text import Text

    emit(Text.assemble(("--- a ", "red"), f"{short_id(diff.a.run_id)} {diff.a.run_name}"))
    emit(Text.assemble(("+++ b ", "green"), f"{short_id(diff.b.run_id)} {diff.b.run_name}"))
    if all(diff.section_empty(s) for s in sections):
        emit("no differences")
        return
    for s in sections:
        if diff.section_empty(s):
            continue
        if s == "params":
            t = table("", "param", "a", "b")
            for c in diff.params:
                t.add_row(_mark(c.kind), c.key, _cell(c.old, c.kind != "added", fmt_param),
                          _cell(c.new, c.kind != "removed", fmt_param))
            _titled(f"params ({len(diff.params)})", t)
        elif s == "metrics":
            t = table("", "metric", "a", "b", "change")
            for m in diff.metrics:
                change = Text(fmt_delta(m.delta, m.relative))
                if m.improved is not None:
                    change.stylize("green" if m.improved else "red")
                t.add_row(_mark(m.kind), m.key, _cell(m.old, m.kind != "added"),
                          _cell(m.new, m.kind != "removed"), change)
            _titled(f"metrics ({len(diff.metrics)})", t)
        elif s == "datasets":
            t = table("", "dataset", "context", "a digest", "b digest")
            for d in diff.datasets:
                t.add_row(_mark(d.kind), d.name, d.context or "", _digest(d.old_digest),
                          _digest(d.new_digest))
            _titled(f"datasets ({len(diff.datasets)})", t)
        elif s == "artifacts":
            t = table("", "artifact", "a digest", "b digest", "size")
            for a in diff.artifacts:
                size = f"{fmt_bytes(a.old_size)} → {fmt_bytes(a.new_size)}"
                t.add_row(_mark(a.kind), a.path, _digest(a.old_digest), _digest(a.new_digest),
                          size)
            _titled(f"artifacts ({len(diff.artifacts)})", t)
        elif s == "environment":
            t = table("", "environment", "a", "b")
            for c in diff.environment:
                t.add_row(_mark(c.kind), c.key, _cell(c.old, c.kind != "added"),
                          _cell(c.new, c.kind != "removed"))
            _titled(f"environment ({len(diff.environment)})", t)
        elif s == "code" and diff.code is not None:
            _print_code(diff, stat_width)


def _titled(title: str, t: Table) -> None:
    section_title(title)
    emit(t)


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
    from rich.text import Text

    code = diff.code
    assert code is not None
    section_title("code")
    if not code.captured:
        emit("code snapshot not captured for one of the runs")
    for c in code.source:
        if c.kind == "unchanged":
            continue
        emit(Text.assemble(_mark(c.kind), f" {c.key}: ", (fmt_value(c.old), "red"), " → ",
                                (fmt_value(c.new), "green")))
    if code.files:
        emit(Text(stat_lines(code.files, stat_width), no_wrap=True))
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
    from rich.text import Text

    t = table("", *[f"{short_id(r.run_id)}" for r in cmp.runs])
    for col in t.columns[1:]:
        col.justify = "right"
    section = None
    for row in cmp.rows:
        if row.section != section:
            if section is not None:
                t.add_section()
            section = row.section
        cells = []
        for i, v in enumerate(row.values):
            text = fmt_param(v) if row.section == "params" and v is not None else fmt_value(v)
            if i in row.best:
                cells.append(Text(f"*{text}", style="bold green"))
            else:
                cells.append(Text(text))
        t.add_row(Text(f"{row.section}.{row.key}" if row.section != "info" else row.key,
                       style="bold" if row.section == "info" else ""), *cells)
    emit(t)
