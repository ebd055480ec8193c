"""``vtrack scrub RUN PATH...``: rewrite a run without some of the files it carries.

The run's newest commit is rewritten with the same parent, message and record, minus
the named paths (a path under ``.vtrack/artifacts/`` also leaves the artifact
manifest), and the run ref moves to it by compare-and-swap. The old commit becomes
unreachable here; a copy already pushed elsewhere keeps the old commit until that
remote is scrubbed too (push the scrubbed run: it replaces the remote's ref, and the
host's own garbage collection drops the old objects).
"""

from __future__ import annotations

from dataclasses import dataclass

from vtrack.errors import RunStateError, ValidationError
from vtrack.store.gitobj import TREE_MODE, GitObjects, TreeEntry
from vtrack.store.record import RECORD_DIR, dump_yaml, load_yaml
from vtrack.store.runs import RunRepository

_MANIFEST = f"{RECORD_DIR}/artifacts.yaml"
_ARTIFACTS = f"{RECORD_DIR}/artifacts/"


@dataclass(frozen=True)
class ScrubReport:
    """The run, its commit before and after, and the paths removed."""

    run_id: str
    old: str
    new: str
    removed: list[str]


def scrub(repo: RunRepository, run_id: str, paths: list[str]) -> ScrubReport:
    """Remove ``paths`` from run ``run_id``'s commit (see the module docstring).

    ValidationError for a path the run does not carry or a record file; RunStateError
    for a run still being written.
    """
    store = repo.store
    if not paths:
        raise ValidationError("name at least one path to scrub")
    if repo.own_writer(run_id) is not None or store.run_live_dir(run_id).exists():
        raise RunStateError(f"run {run_id} is still being written; scrub it once it has ended")
    tip = store.require_run(run_id)
    commit = store.objects.read_commit(tip)
    tree = commit["tree"]
    clean = sorted({p.strip("/") for p in paths})
    with store.objects.batch() as batch:
        for path in clean:
            if path.startswith(f"{RECORD_DIR}/") and not path.startswith(_ARTIFACTS):
                raise ValidationError(f"{path!r} is part of the run record; it cannot be scrubbed")
            if store.objects.tree_lookup(tree, path) is None:
                raise ValidationError(f"run {run_id} carries no file {path!r}", path=path)
            tree = _without(store.objects, tree, path.split("/"))
            if path.startswith(_ARTIFACTS):
                tree = _drop_manifest_entry(store.objects, tree, path[len(_ARTIFACTS) :])
        message = commit["message"].decode("utf-8", "replace")
        new = store.write_commit(tree, list(commit["parents"]), message)
    try:
        store.refs.update_run(run_id, tip, new)
    finally:
        if batch.handle is not None:
            batch.handle.release()
    return ScrubReport(run_id, tip, new, clean)


def _without(objects: GitObjects, tree: str, parts: list[str]) -> str:
    """``tree`` without the entry at ``parts`` (empty folders left out too)."""
    entries = objects.read_tree(tree)
    head = parts[0].encode("utf-8", "surrogateescape")
    out: list[TreeEntry] = []
    for mode, name, sha in entries:
        if name != head:
            out.append((mode, name, sha))
        elif len(parts) > 1 and mode == TREE_MODE:
            inner = _without(objects, sha, parts[1:])
            if objects.read_tree(inner):
                out.append((mode, name, inner))
    return objects.write_tree(out)


def _drop_manifest_entry(objects: GitObjects, tree: str, artifact: str) -> str:
    found = objects.tree_lookup(tree, _MANIFEST)
    if found is None:
        return tree
    manifest = load_yaml(objects.read_blob(found[1])) or {}
    if artifact not in manifest:
        return tree
    del manifest[artifact]
    blob = objects.write_blob(dump_yaml(manifest))
    return _replace(objects, tree, _MANIFEST.split("/"), found[0], blob)


def _replace(objects: GitObjects, tree: str, parts: list[str], mode: int, blob: str) -> str:
    head = parts[0].encode()
    out: list[TreeEntry] = []
    for m, name, sha in objects.read_tree(tree):
        if name == head:
            sha = _replace(objects, sha, parts[1:], mode, blob) if len(parts) > 1 else blob
        out.append((m, name, sha))
    return objects.write_tree(out)
