"""Garbage collection of the large-object store (``vtrack gc``).

An object in ``.git/vtrack/objects`` is removed only when all of these hold:

- no run references it: neither the newest commit of a run (``refs/vtrack/runs/``) nor
  of a deleted run still in the trash (``refs/vtrack/trash/``), nor any entry in a live
  journal (``.git/vtrack/live/``: runs being written, or whose writer died and which
  recovery will commit);
- it was last put or freshened before ``start - grace`` (one hour by default), where
  ``start`` is when the collection began. An upload stores its object first and
  journals the manifest entry right after, freshening the object in between, so an
  object that is young may be referenced a moment from now.

The references are read after the candidate objects are listed, journals before refs,
so an entry that moves from a journal into a commit meanwhile is seen in one or the
other; and each removal re-checks the object's time after renaming it away (see
:meth:`~vtrack.store.objects.ObjectStore.delete_if_older`). If any run record cannot
be read, nothing is removed.

Temp files of interrupted uploads (``objects/tmp/``) carry their writer's host, pid
and process start time in their names: one whose writer is provably gone is removed
whatever its age, one whose writer still runs never (not even with a grace of 0), one
without a recognisable owner only when older than the grace period (rules in
:mod:`vtrack.store.tempfiles`). A dry run reports them with the bytes they hold.

Git blobs of small artifacts are git's business: they become unreachable when their
runs are purged and ``git gc`` prunes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vtrack.artifacts import object_store
from vtrack.errors import StoreError
from vtrack.store.journal import list_writers
from vtrack.store.record import RECORD_DIR, load_yaml

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.runs import RunRepository

#: Objects (and temp files) younger than this many seconds are never removed.
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class GcReport:
    """What a collection found and did (or, with ``dry_run``, would do)."""

    dry_run: bool
    grace_seconds: float
    runs_scanned: int = 0
    objects_scanned: int = 0
    objects_referenced: int = 0
    objects_kept_young: int = 0
    objects_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    temp_files_removed: int = 0
    temp_bytes_freed: int = 0
    #: the temp files removed (or, in a dry run, that would be): name, size, owner, reason
    temp_files: list[dict[str, Any]] = field(default_factory=list)
    #: temp files kept: uploads in progress, or too young to judge
    temp_files_kept: int = 0
    trash_purged: list[str] = field(default_factory=list)
    #: deleted runs that were not purged because something still loads from them
    #: (registered model versions): run id -> what, e.g. ``["churn v3"]``
    trash_kept: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return asdict(self)


def referenced_digests(store: Store, *, skip_trash: Collection[str] = ()) -> tuple[set[str], int]:
    """Digests every run references; return ``(digests, runs scanned)``.

    Live journals are read first, then the refs of runs and of the trash (but for the
    deleted runs in ``skip_trash``). Raises StoreError if a run record cannot be read: a
    collection must not guess.
    """
    digests: set[str] = set()
    for run_id in store.live_run_ids():
        for writer in list_writers(store.run_live_dir(run_id)):
            digests.update(_journal_digests(writer.read_text()))
    tips = dict(store.list_run_tips())
    for run_id, sha in store.list_trash_tips().items():
        if run_id not in skip_trash:
            tips.setdefault(f"trash:{run_id}", sha)
    seen_manifests: set[str] = set()
    for run_id, sha in tips.items():
        try:
            tree = store.objects.read_commit(sha)["tree"]
            found = store.objects.tree_lookup(tree, f"{RECORD_DIR}/artifacts.yaml")
            if found is None or found[1] in seen_manifests:
                continue
            seen_manifests.add(found[1])
            manifest = load_yaml(store.objects.read_blob(found[1])) or {}
        except Exception as e:  # noqa: BLE001 - any unreadable record stops the collection
            raise StoreError(
                f"cannot read the artifacts of run {run_id.removeprefix('trash:')} "
                f"(commit {sha}): {e}; nothing was removed",
                hint="run 'git fsck' to find what is damaged",
            ) from e
        for entry in manifest.values():
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                digests.add(entry["digest"])
    return digests, len(tips)


def _journal_digests(text: str) -> set[str]:
    out: set[str] = set()
    for line in text.split("\n"):
        if not line.startswith("a\t"):
            continue
        try:
            entry = json.loads(line.split("\t", 2)[2])
        except (IndexError, ValueError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
            out.add(entry["digest"])
    return out


def purge_trash(
    store: Store, *, dry_run: bool = False, keep: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """Delete every run in the trash for good (its ref), except those in ``keep``; return
    ``(ids purged, ids kept)``, each sorted.

    The runs' git objects become unreachable (``git gc`` prunes them later); their large
    objects are no longer referenced by them. A kept run stays in the trash, restorable,
    with everything it references.
    """
    tips = dict(sorted(store.list_trash_tips().items()))
    kept = [r for r in tips if r in keep]
    doomed = {r: sha for r, sha in tips.items() if r not in keep}
    return (list(doomed) if dry_run else store.refs.purge_many(doomed)), kept


def collect_garbage(
    repo: RunRepository,
    *,
    dry_run: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    purge_trash_first: bool = False,
    keep_runs: Mapping[str, list[str]] | None = None,
) -> GcReport:
    """Remove large objects no run references, and stale temp files; return a report.

    ``dry_run`` changes nothing and reports what would be removed. ``purge_trash_first``
    deletes the runs in the trash for good first (their objects then count as
    unreferenced), except the runs in ``keep_runs`` (run id -> what still loads from it,
    e.g. registered model versions), which stay in the trash and are reported in
    ``trash_kept``. Rules and guarantees are in the module docstring.
    """
    if grace_seconds < 0:
        from vtrack.errors import ValidationError

        raise ValidationError(f"grace period {grace_seconds!r} must not be negative")
    store = repo.store
    start = time.time()
    cutoff = start - grace_seconds
    report = GcReport(dry_run=dry_run, grace_seconds=grace_seconds)
    if purge_trash_first:
        keep = keep_runs or {}
        report.trash_purged, kept = purge_trash(store, dry_run=dry_run, keep=keep)
        report.trash_kept = {r: list(keep[r]) for r in kept}
    objects = object_store(store)
    candidates = list(objects.iter_digests())
    report.objects_scanned = len(candidates)
    if candidates:
        # A dry run that "purges" the trash leaves it in place: skip the runs it would
        # purge instead (the kept ones still count). A real purge already happened, and a
        # run deleted since then still counts.
        referenced, report.runs_scanned = referenced_digests(
            store, skip_trash=report.trash_purged if dry_run else ()
        )
        for digest in candidates:
            if digest in referenced:
                report.objects_referenced += 1
                continue
            if dry_run:
                try:
                    young = objects.mtime(digest) > cutoff
                except FileNotFoundError:
                    continue
                freed = None if young else objects.size(digest)
            else:
                freed = objects.delete_if_older(digest, cutoff)
                young = freed is None and objects.exists(digest)
            if freed is None:
                report.objects_kept_young += int(young)
                continue
            report.objects_removed.append(digest)
            report.bytes_freed += freed
    if objects.fs.listdir(objects.root):
        for temp in objects.sweep_temp(grace_seconds, dry_run=dry_run):
            if not temp.remove:
                report.temp_files_kept += 1
                continue
            report.temp_files_removed += 1
            report.temp_bytes_freed += temp.size
            report.temp_files.append(temp.to_dict())
    return report
