"""Run diffs and compare tables for people: titled sections, +/-/~ marks, a code stat.

The model is :mod:`vtrack.diff` (shared with the web UI); this module only prints it,
with the primitives of :mod:`vtrack.cli._term`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from vtrack.cli._term import Styled, Table, emit, section_title, styled, table
from vtrack.views import fmt_bytes, fmt_delta, fmt_param, fmt_value, short_digest, short_id

if TYPE_CHECKING:
    from vtrack.cli._term import Cell
    from vtrack.diff import CompareTable, RunDiff

KIND_MARKS = {
    "added": ("+", "green"),
    "removed": ("-", "red"),
    "changed": ("~", "yellow"),
    "unchanged": (" ", "dim"),
}
#: Changed files listed per folder input before "… and N more".
MAX_FILES_SHOWN = 20
#: Marks of a folder's file lists, as ``vtrack audit`` and ``vtrack diff`` print them.
FILE_MARKS = (("added", "+", "green"), ("removed", "-", "red"), ("modified", "~", "yellow"))


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
                    short_digest(d.old_digest),
                    short_digest(d.new_digest),
                )
            _titled(f"datasets ({len(diff.datasets)})", t)
            for d in diff.datasets:
                if d.files is not None:
                    title = d.name if d.context is None else f"{d.name} ({d.context})"
                    print_file_changes(title, d.files.added, d.files.removed, d.files.modified)
        elif s == "artifacts":
            t = table("", "artifact", "a digest", "b digest", "size")
            for a in diff.artifacts:
                size = f"{fmt_bytes(a.old_size)} → {fmt_bytes(a.new_size)}"
                t.add_row(
                    _mark(a.kind),
                    a.path,
                    short_digest(a.old_digest),
                    short_digest(a.new_digest),
                    size,
                )
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


def file_change_summary(
    added: Sequence[str], removed: Sequence[str], modified: Sequence[str]
) -> str:
    """``+2 added, -1 removed, ~3 modified`` (the kinds that occur)."""
    lists = {"added": added, "removed": removed, "modified": modified}
    return ", ".join(f"{mark}{len(lists[key])} {key}" for key, mark, _ in FILE_MARKS if lists[key])


def print_file_changes(
    title: str,
    added: Sequence[str],
    removed: Sequence[str],
    modified: Sequence[str],
    limit: int = MAX_FILES_SHOWN,
) -> None:
    """Print the files of a folder input that changed, by path, at most ``limit`` of them.

    Nothing is printed when no file changed.
    """
    lists = {"added": added, "removed": removed, "modified": modified}
    changes = [(mark, style, path) for key, mark, style in FILE_MARKS for path in lists[key]]
    if not changes:
        return
    changes.sort(key=lambda c: c[2])
    emit()
    emit(styled(f"{title}:", "bold"), f" {file_change_summary(added, removed, modified)}")
    for mark, style, path in changes[:limit]:
        emit("  ", styled(mark, style), " ", path)
    if len(changes) > limit:
        emit(f"  … and {len(changes) - limit} more (--json lists them all)")


def _titled(title: str, t: Table) -> None:
    section_title(title)
    t.print()


def _cell(value: Any, present: bool, fmt: Any = fmt_value) -> str:
    return fmt(value) if present else ""


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
