"""Auditing runs' inputs against the disk (``vtrack audit``): one plain dict per input."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from vtrack.entities import DatasetInput, RunInputs
from vtrack.store.gitobj import TREE_MODE

if TYPE_CHECKING:
    from vtrack.statcache import BaseStatCache
    from vtrack.store import Store
    from vtrack.store.record import RecordState
    from vtrack.store.runs import RunRepository

from vtrack.provenance.inputs import DRIFT_STATUSES, stat_cache


def read_manifest(store: Store, state: RecordState, entry: DatasetInput) -> str | None:
    """The manifest TSV of a folder entry from a run record, or None when it has none."""
    rel = entry.manifest
    if not isinstance(rel, str) or not rel:
        return None
    pending = state.pending_files.get(rel)
    if pending is not None:
        return store.objects.read_blob(pending[1]).decode("utf-8")
    top, _, rest = rel.partition("/")
    base = state.extra.get(top)
    if base is None or base[0] != TREE_MODE or not rest:
        return None
    found = store.objects.tree_lookup(base[1], rest)
    if found is None or found[0] == TREE_MODE:
        return None
    return store.objects.read_blob(found[1]).decode("utf-8")


def local_path(store: Store, entry: DatasetInput) -> str | None:
    """Where this clone keeps the input: ``<worktree>/<repo_path>`` when recorded, else None.

    None means "where the entry says" (its ``path``, else its ``source``).
    """
    rel = entry.repo_path
    worktree = store.location.worktree
    if not isinstance(rel, str) or not rel or worktree is None:
        return None
    return os.path.normpath(os.path.join(worktree, *rel.split("/")))


# --- audit ------------------------------------------------------------------------------------


def audit(
    repo: RunRepository, run: str, *, cache: BaseStatCache | None = None
) -> list[dict[str, Any]]:
    """Re-check every input of ``run`` (an id or any run spec) against the disk now.

    Returns one dict per input, in logged order: ``run_id``, ``run_name``, ``name``,
    ``context``, ``kind``, ``source``, ``path`` (where it was checked, None if nowhere),
    ``status`` (``unchanged``, ``changed``, ``missing`` or ``unverifiable``), ``added``,
    ``removed`` and ``modified`` (relative paths, for folders), ``expected_digest`` and
    ``actual_digest``. Never modifies anything. Raises RunNotFoundError for an unknown
    run, DatasetError naming a file that exists but cannot be read.
    """
    return audit_runs(repo, [run], cache=cache)


def audit_runs(
    repo: RunRepository, runs: Iterable[str], *, cache: BaseStatCache | None = None
) -> list[dict[str, Any]]:
    """:func:`audit` of several runs, in order, as one list.

    An input recorded identically by several runs (same kind, location, digest and
    excludes) is checked once.
    """
    from vtrack.resolve import resolve_run_id

    ids = [resolve_run_id(repo, r) for r in runs]
    own = cache is None
    the_cache = stat_cache(repo.store) if cache is None else cache
    memo: dict[Any, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    try:
        for run_id in ids:
            state = repo.state(run_id).record
            for entry in RunInputs.from_record(state.inputs, {}).datasets:
                out.append(_audit_entry(repo.store, run_id, state, entry, the_cache, memo))
    finally:
        if own:
            the_cache.close()
    return out


def _audit_entry(
    store: Store, run_id: str, state: RecordState, entry: DatasetInput,
    cache: BaseStatCache, memo: dict[Any, dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    from vtrack.provenance.drift import check_input

    where = local_path(store, entry)
    shown = where or entry.path or (entry.source if entry.kind in ("file", "folder") else None)
    key = (
        entry.kind, shown, entry.digest, entry.source_digest, entry.size, entry.exclude or (),
    )  # fmt: skip
    checked = memo.get(key)
    if checked is None:
        manifest = read_manifest(store, state, entry) if entry.kind == "folder" else None
        checked = check_input(entry, manifest, cache, path=where)
        memo[key] = checked
    verifiable = checked["status"] != "unverifiable"
    return {
        "run_id": run_id,
        "run_name": state.info.get("name"),
        "name": entry.name,
        "context": entry.context,
        "kind": entry.kind,
        "source": entry.source,
        "path": shown if verifiable else None,
        "status": checked["status"],
        "added": list(checked["added"]),
        "removed": list(checked["removed"]),
        "modified": list(checked["modified"]),
        "expected_digest": checked["expected_digest"],
        "actual_digest": checked["actual_digest"],
    }


def drifted(results: Iterable[Mapping[str, Any]]) -> bool:
    """True when any audited input is changed or missing."""
    return any(r.get("status") in DRIFT_STATUSES for r in results)


# --- lineage ----------------------------------------------------------------------------------
