"""Terminal charts: sparklines for tables and line charts of metric histories."""

from __future__ import annotations

import math
from collections.abc import Sequence

SPARK_CHARS = "▁▂▃▄▅▆▇█"


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
