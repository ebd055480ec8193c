"""Run trees as faces show them: each nested run under its parent, indented (pure).

:func:`nest` orders a list of runs so that every run whose parent is in the list comes
right after that parent (children in creation order, oldest first), with its depth; runs
whose parent is not listed keep their place at depth 0. ``vtrack ls`` and ``vtrack log``
render it (``--flat`` turns it off) and the web UI may too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtrack.entities import Run

#: Deepest nesting shown (a guard against a parent cycle in a hand-edited record).
MAX_DEPTH = 32
#: What marks a nested run's name.
BRANCH = "└ "


def nest(runs: Sequence[Run]) -> list[tuple[Run, int]]:
    """``(run, depth)`` of every run in ``runs``, children right under their parent."""
    ids = {r.info.run_id for r in runs}
    kids: dict[str, list[Run]] = {}
    for r in runs:
        parent = r.info.parent_run_id
        if parent and parent in ids and parent != r.info.run_id:
            kids.setdefault(parent, []).append(r)
    for group in kids.values():
        group.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    out: list[tuple[Run, int]] = []
    placed: set[str] = set()

    def place(run: Run, depth: int) -> None:
        if run.info.run_id in placed:
            return
        placed.add(run.info.run_id)
        out.append((run, depth))
        if depth < MAX_DEPTH:
            for child in kids.get(run.info.run_id, ()):
                place(child, depth + 1)

    for r in runs:
        parent = r.info.parent_run_id
        if not (parent and parent in ids and parent != r.info.run_id):
            place(r, 0)
    for r in runs:  # a parent cycle: nothing above it is a root; show what is left flat
        place(r, 0)
    return out


def indent(text: str, depth: int) -> str:
    """``text`` indented for a run at ``depth`` (``"  └ name"``)."""
    return text if depth == 0 else "  " * (depth - 1) + BRANCH + text
