"""Run trees: the runs one process made (a root and its nested runs), and how two trees pair up.

A sweep script starts a parent run and, inside it, nested child runs; they all share the
root's process, and only the root's entry point says how to start it again. So a rerun
of any run of the tree reruns the root (:func:`tree_root`) and compares the whole tree
(:func:`match_trees`): the roots with each other, then each original child with its
counterpart among the new root's children — the one with the same name and params, else
the one with the same name, else the one at the same position in creation order — level
by level. Runs left without a counterpart on either side are reported as unmatched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vtrack.store.index import ACTIVE, DELETED

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

#: How deep a run tree is followed (a guard against a parent cycle in hand-edited records).
MAX_DEPTH = 32


def tree_root(repo: RunRepository, run: Run) -> Run:
    """The root of ``run``'s tree: its parent's parent's … top-level run (``run`` if it has none)."""
    index = repo.index()
    seen = {run.info.run_id}
    current = run
    for _ in range(MAX_DEPTH):
        parent = current.info.parent_run_id or None
        if parent is None or parent in seen:
            break
        try:
            current = repo.get(parent)
        except Exception:  # noqa: BLE001 - a parent gone from this clone ends the walk
            break
        seen.add(parent)
    del index
    return current


def tree_runs(repo: RunRepository, root: Run) -> list[tuple[Run, int]]:
    """``(run, depth)`` of every run of the tree under ``root``, depth first, oldest first."""
    index = repo.index()
    out: list[tuple[Run, int]] = []

    def walk(run: Run, depth: int) -> None:
        out.append((run, depth))
        if depth >= MAX_DEPTH:
            return
        for child in index.children(run.info.run_id, (ACTIVE, DELETED)):
            walk(repo.get(child.run_id), depth + 1)

    walk(root, 0)
    return out


def children_of(repo: RunRepository, run: Run) -> list[Run]:
    """The direct children of ``run`` in creation order (deleted ones included)."""
    return [repo.get(s.run_id) for s in repo.index().children(run.info.run_id, (ACTIVE, DELETED))]


@dataclass(frozen=True)
class Pair:
    """An original run and its counterpart in the rerun tree (either may be None: unmatched)."""

    original: Run | None
    rerun: Run | None
    depth: int
    how: str  # "root", "name and params", "name", "order", "unmatched"


def match_trees(repo: RunRepository, old_root: Run, new_root: Run | None) -> list[Pair]:
    """Pair every run of the original tree with its counterpart (module docstring)."""
    out: list[Pair] = []

    def walk(old: Run | None, new: Run | None, depth: int, how: str) -> None:
        out.append(Pair(old, new, depth, how))
        if depth >= MAX_DEPTH:
            return
        olds = children_of(repo, old) if old is not None else []
        news = children_of(repo, new) if new is not None else []
        for a, b, kind in _pair_children(olds, news):
            walk(a, b, depth + 1, kind)

    walk(old_root, new_root, 0, "root")
    return out


def _pair_children(
    olds: Sequence[Run], news: Sequence[Run]
) -> list[tuple[Run | None, Run | None, str]]:
    free = list(range(len(news)))
    chosen: dict[int, tuple[int, str]] = {}

    def take(i: int, pred: object, how: str) -> None:
        for j in free:
            if pred(olds[i], news[j]):  # type: ignore[operator]
                chosen[i] = (j, how)
                free.remove(j)
                return

    rules = (
        (lambda a, b: _name(a) == _name(b) and _params(a) == _params(b), "name and params"),
        (lambda a, b: _name(a) == _name(b), "name"),
    )
    for pred, how in rules:
        for i in range(len(olds)):
            if i not in chosen:
                take(i, pred, how)
    for i in range(len(olds)):  # then by creation order among what is left
        if i not in chosen and i < len(news) and i in free:
            chosen[i] = (i, "order")
            free.remove(i)
    out: list[tuple[Run | None, Run | None, str]] = []
    for i, a in enumerate(olds):
        if i in chosen:
            j, how = chosen[i]
            out.append((a, news[j], how))
        else:
            out.append((a, None, "unmatched"))
    out += [(None, news[j], "unmatched") for j in sorted(free)]
    return out


def _name(run: Run) -> str:
    from vtrack.repro.names import original_name

    return original_name(run.info.run_name or "")


def _params(run: Run) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, f"{type(v).__name__}:{v!r}") for k, v in run.data.params.items()))
