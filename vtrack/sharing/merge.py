"""Experiments made on two clones under one name merge into one experiment.

Experiment ids are derived from names (:func:`vtrack.store.experiments.experiment_id_for`),
so two clones that create ``churn`` independently give it the same id and their runs
already point at one experiment; only the two experiment records differ. They merge
into a commit whose parents are both records:

- the fields of the record updated last win (name, lifecycle stage), ties broken by the
  commit id so that every clone computes the same merge;
- tags are the union; where both set a tag, the record updated last wins;
- ``creation_time`` is the earliest, ``last_update_time`` the latest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vtrack.errors import RefConflictError
from vtrack.store import Store
from vtrack.store.gitobj import BLOB_MODE
from vtrack.store.record import dump_yaml, load_yaml


def read_record(store: Store, sha: str) -> dict[str, Any]:
    """The experiment record held by commit ``sha``."""
    commit = store.objects.read_commit(sha)
    found = store.objects.tree_lookup(commit["tree"], "experiment.yaml")
    if found is None:
        return {}
    return dict(load_yaml(store.objects.read_blob(found[1])) or {})


def merged_record(ours: dict[str, Any], theirs: dict[str, Any], tie: bool) -> dict[str, Any]:
    """The merge of two records of one experiment (rules in the module docstring).

    ``tie`` says which wins when both were updated at the same millisecond (True: ours).
    """
    ours_time, theirs_time = (
        int(ours.get("last_update_time") or 0),
        int(theirs.get("last_update_time") or 0),
    )
    ours_wins = ours_time > theirs_time or (ours_time == theirs_time and tie)
    first, last = (theirs, ours) if ours_wins else (ours, theirs)
    out = dict(first)
    out.update(last)
    out["tags"] = {**dict(first.get("tags") or {}), **dict(last.get("tags") or {})}
    times = [int(r["creation_time"]) for r in (ours, theirs) if r.get("creation_time")]
    if times:
        out["creation_time"] = min(times)
    out["last_update_time"] = max(ours_time, theirs_time)
    return out


def merge_commit(store: Store, ours: str, theirs: str, publish: Callable[[str], None]) -> str:
    """Write the merge of two experiment commits (parents: both), hand its sha to
    ``publish`` (which moves the ref; the objects stay kept until then); return it."""
    record = merged_record(read_record(store, ours), read_record(store, theirs), ours > theirs)
    with store.objects.batch() as batch:
        blob = store.objects.write_blob(dump_yaml(record))
        tree = store.objects.write_tree([(BLOB_MODE, b"experiment.yaml", blob)])
        sha = store.write_commit(
            tree, [ours, theirs], f"vtrack experiment {record.get('name')} (merged)\n"
        )
    try:
        publish(sha)
    finally:
        if batch.handle is not None:
            batch.handle.release()
    return sha


def merge_into_ref(store: Store, name: str, ours: str, theirs: str, attempts: int) -> str | None:
    """Merge experiment commit ``theirs`` into the local ref ``name`` (read at ``ours``) and
    move the ref there; return the merge's sha, or None when the ref already holds ``theirs``.

    Another process of this clone (a twin push, a pull, a tag set) may move the ref
    meanwhile: the merge is then redone on what the ref holds now, never forced over it,
    up to ``attempts`` times (then RefConflictError).
    """
    for _attempt in range(attempts):
        if ours == theirs:
            return None

        def publish(sha: str, old: str = ours) -> None:
            store.refs.cas(name, old, sha)

        try:
            return merge_commit(store, ours, theirs, publish)
        except RefConflictError:
            now = store.refs.read(name)
            if now is None:
                raise
            ours = now
    raise RefConflictError(f"ref {name} kept moving while merging the remote's version", ref=name)
