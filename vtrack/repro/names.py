"""Names of rerun runs: ``mlp (rerun 1)``, so that a rerun never makes a name ambiguous.

A rerun's runs are renamed after the rerun ends to the original's name plus
`` (rerun N)``, N counting the reruns of the tree's root (1 for the first; every run of
one rerun shares it: ``sweep (rerun 2)`` and its ``lr-0.1 (rerun 2)``); the
``vtrack.rerun_of`` tag links each to its original. The original name stays searchable:
``run_name LIKE 'mlp%'`` finds the original and its reruns, and :func:`original_name`
strips the suffix (tree matching pairs children by it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vtrack.entities import RERUN_OF_TAG

if TYPE_CHECKING:
    from vtrack.store.runs import RunRepository

_SUFFIX = re.compile(r" \(rerun [0-9]+\)$")


def original_name(name: str) -> str:
    """``name`` without a `` (rerun N)`` suffix."""
    return _SUFFIX.sub("", name)


def rerun_name(name: str, n: int) -> str:
    """The name of the ``n``-th rerun of a run called ``name``."""
    return f"{original_name(name)} (rerun {n})"


def rerun_ids(repo: RunRepository, run_id: str) -> frozenset[str]:
    """Ids of every run tagged as a rerun of ``run_id`` so far (deleted ones included)."""
    from vtrack.query import Comparison

    found = repo.index().search(
        (Comparison("tags", RERUN_OF_TAG, "=", run_id),),  # built, not parsed: no grammar
        experiment_ids=None,
        lifecycles=("active", "deleted"),
        max_results=None,
    )
    return frozenset(r.info.run_id for r in found)


def reruns_of(repo: RunRepository, run_id: str, *, excluding: str | None = None) -> int:
    """How many runs are tagged as reruns of ``run_id`` (deleted ones included)."""
    return len(rerun_ids(repo, run_id) - {excluding})
