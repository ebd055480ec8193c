"""Archive batches: finished runs compacted behind a few refs (``vtrack archive``).

At 100,000 runs, one ref per run makes the user's own git slow (``git fetch``,
``git for-each-ref``, ``git branch -a``: issue 15). :func:`compact` moves finished runs
into immutable batches ``refs/vtrack/archive/<batch id>``: one commit per batch of at most
``batch_size`` runs, whose parents are the run commits (so ``git gc`` keeps every one)
and whose tree is the table of :mod:`vtrack.store.archive_table`. Then each run's own ref
is deleted by compare-and-swap — only if it still points at the archived commit; a run
that moved meanwhile keeps its ref, which shadows the (stale) archive entry.

Every archived run stays reachable individually through
:class:`~vtrack.store.refs.RefStore` (``run_tip``, ``list_runs``, ``run_listing``): a loose
or trash ref with the same id shadows the archive entry, a write to an archived run
gives it a loose ref again, a deletion gives it a trash ref, and a purge rewrites its
batch with a tombstone (:func:`forget`).

Rules that make two clones' archives a union when pushed and pulled:

- batch ids are ``<UTC time>-<16 hex of the batch commit>``: two clones never make the
  same id for different content;
- batches are never changed; a purge writes a new batch that names the old one in its
  ``supersedes`` and the purged ``(run, commit)`` in its tombstones; superseded batches
  and tombstoned entries are ignored wherever they come from;
- a run archived again at a newer commit (it was updated after an earlier archiving)
  tombstones its older ``(run, commit)`` entries, so no union of batches brings them back;
- never archived: runs that are RUNNING, runs with a live folder (journals) or
  ``refs/vtrack/live/`` refs, and deleted runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.errors import RefConflictError, StoreError
from vtrack.store import archive_summaries
from vtrack.store.archive_summaries import SUMMARIES_FILE
from vtrack.store.archive_table import (
    PARENTS_FILE,
    RUNS_FILE,
    SUPERSEDES_FILE,
    TOMBSTONES_FILE,
    ArchivedRun,
    BatchTable,
    encode_runs,
    encode_supersedes,
    encode_tombstones,
)
from vtrack.store.fileio import lock_file
from vtrack.store.gitobj import BLOB_MODE, GitObjects, serialize_commit
from vtrack.store.refs import LIVE, RUNS, RefStore, archive_ref, run_ref

if TYPE_CHECKING:
    from vtrack.store import Store

#: Runs per batch (an octopus commit of this many parents; git has no limit, tools may).
BATCH_SIZE = 1000
#: Statuses a run may be archived in.
ENDED = ("FINISHED", "FAILED", "KILLED")
_IDENTITY = b"vtrack <vtrack@vtrack>"
ARCHIVE_LOCK = "archive.lock"


@dataclass
class ArchiveReport:
    """What :func:`compact` or :func:`unarchive` did (or, dry, would do)."""

    archived: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    #: runs left with their own ref because it moved while they were archived
    kept: list[str] = field(default_factory=list)
    skipped_live: int = 0
    unarchived: list[str] = field(default_factory=list)
    removed_batches: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class ArchiveSettings:
    """``vtrack.archive.*`` in git config (docs/scale.md)."""

    #: run refs (loose and packed) at which a run's end compacts (0: never)
    auto: int = 5000
    #: newest runs left with their own ref by the automatic compaction
    keep: int = 1000
    #: the automatic compaction archives only runs older than this many days
    older_than_days: float = 0.0
    batch_size: int = BATCH_SIZE


def read_settings(git_dir: Any) -> ArchiveSettings:
    """The repository's ``vtrack.archive.*`` settings (defaults for what is unset or bad)."""
    res = gitcmd.run(
        ["config", "--get-regexp", r"^vtrack\.archive\."], git_dir=git_dir, check=False
    )
    values: dict[str, str] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        values[key.lower()] = value.strip()
    d = ArchiveSettings()

    def num(key: str, default: float) -> float:
        try:
            return max(0.0, float(values.get(key, default)))
        except ValueError:
            return default

    return ArchiveSettings(
        auto=int(num("vtrack.archive.auto", d.auto)),
        keep=int(num("vtrack.archive.keep", d.keep)),
        older_than_days=num("vtrack.archive.olderthan", d.older_than_days),
        batch_size=max(1, int(num("vtrack.archive.batchsize", d.batch_size))),
    )


# -- choosing runs ---------------------------------------------------------------------------
def _loose_runs(git_dir: Any) -> list[ArchivedRun]:
    """Every run with its own ref, read from its commit message in one git call."""
    res = gitcmd.run(
        ["for-each-ref", "--format=%(objectname) %(refname) %(committerdate:unix) %(parent)%00"
         "%(contents)%00", RUNS], git_dir=git_dir,
    )  # fmt: skip
    out = []
    for record in res.stdout.split(b"\x00\n"):
        head, sep, body = record.partition(b"\x00")
        if not sep:
            continue
        parts = head.decode("utf-8", "replace").split(" ")
        if len(parts) < 4 or not parts[1].startswith(RUNS):
            continue
        text = body.decode("utf-8", "replace")
        name = text.split("\n", 1)[0].removeprefix("vtrack run ")
        fields = {}
        for line in text.splitlines()[1:]:
            key, sep2, value = line.partition(": ")
            if sep2 and key in ("run", "experiment", "status"):
                fields[key] = value.strip()
        rid = parts[1][len(RUNS) :]
        if fields.get("run") != rid:
            continue  # not a vtrack run commit: leave it alone
        try:
            t = int(parts[2])
        except ValueError:
            t = 0
        out.append(ArchivedRun(rid, parts[0], parts[3], fields.get("experiment", ""),
                               fields.get("status", ""), t, name))  # fmt: skip
    return out


def _busy(store: Store) -> set[str]:
    """Runs being written: a non-empty live folder, or a ``refs/vtrack/live/`` ref."""
    busy = set()
    for run_id in store.live_run_ids():
        with contextlib.suppress(OSError):
            if os.listdir(store.run_live_dir(run_id)):
                busy.add(run_id)
    for name in store.refs.list(LIVE):
        busy.add(name[len(LIVE) :].split("/", 1)[0])
    return busy


def plan(store: Store, *, older_than_days: float | None = None, keep: int = 0
         ) -> tuple[list[ArchivedRun], int]:  # fmt: skip
    """``(runs to archive, runs skipped because they are live)``, oldest first."""
    runs = sorted(_loose_runs(store.location.git_dir), key=lambda r: (r.time, r.run_id))
    if keep > 0:
        runs = runs[: max(0, len(runs) - keep)]
    if older_than_days is not None and older_than_days > 0:
        cutoff = time.time() - older_than_days * 86400
        runs = [r for r in runs if r.time < cutoff]
    busy = _busy(store)
    chosen = [r for r in runs if r.status in ENDED and r.run_id not in busy]
    return chosen, sum(1 for r in runs if r.run_id in busy or r.status not in ENDED)


# -- writing batches -------------------------------------------------------------------------
def new_batch_id(commit: str) -> str:
    """A batch id no other clone makes for other content (module docstring)."""
    return time.strftime("%Y%m%dt%H%M%S", time.gmtime()) + "-" + commit[:16]


def write_batch(refs: RefStore, table: BatchTable, summaries: bytes | None = None) -> str:
    """Write the batch commit of ``table`` (with the summary table ``summaries`` of its
    runs, :mod:`vtrack.store.archive_summaries`) and create its ref; return the batch id."""
    objects = GitObjects(refs.git_dir, fsync=refs.fsync)
    try:
        with objects.batch() as b:
            entries = [(BLOB_MODE, RUNS_FILE.encode(),
                        objects.write_blob(encode_runs(table.runs)))]  # fmt: skip
            parents_of = sorted({r.parent for r in table.runs if r.parent})
            if parents_of:
                entries.append((BLOB_MODE, PARENTS_FILE.encode(),
                                objects.write_blob("".join(f"{p}\n" for p in parents_of).encode())))  # fmt: skip
            if table.tombstones:
                entries.append((BLOB_MODE, TOMBSTONES_FILE.encode(),
                                objects.write_blob(encode_tombstones(table.tombstones))))  # fmt: skip
            if table.supersedes:
                entries.append((BLOB_MODE, SUPERSEDES_FILE.encode(),
                                objects.write_blob(encode_supersedes(table.supersedes))))  # fmt: skip
            if summaries is not None:
                entries.append((BLOB_MODE, SUMMARIES_FILE.encode(), objects.write_blob(summaries)))
            tree = objects.write_tree(entries)
            # oldest run first, and the batch dated as its newest run: git's history walk
            # (git log --all, fetch's connectivity check) inserts each parent into a
            # date-sorted list, so this order keeps it linear; random order made
            # `git log --all` 5x slower than one ref per run at 10,000 runs
            ordered = sorted(table.runs, key=lambda r: (r.time, r.commit))
            parents = list(dict.fromkeys(r.commit for r in ordered))
            when = max((r.time for r in ordered), default=0) or int(time.time())
            message = (f"vtrack archive: {len(table.runs)} runs\n\n"
                       f"tombstones: {len(table.tombstones)}\n").encode()  # fmt: skip
            data = serialize_commit(tree, parents, _IDENTITY, _IDENTITY, when, b"+0000",
                                    message)  # fmt: skip
            commit = objects.write(b"commit", data)
        batch_id = new_batch_id(commit)
        try:
            refs.cas(archive_ref(batch_id), None, commit)
        finally:
            if b.handle is not None:
                b.handle.release()
    finally:
        objects.close()
    return batch_id


def compact(store: Store, *, older_than_days: float | None = None, keep: int = 0,
            batch_size: int = BATCH_SIZE, dry_run: bool = False) -> ArchiveReport:  # fmt: skip
    """Archive finished runs (module docstring); ``keep`` newest runs stay as they are.

    One compaction at a time per repository (``.git/vtrack/archive.lock``; a second one
    waits for the first, then finds nothing left to do)."""
    lock = store.location.git_dir / "vtrack" / ARCHIVE_LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock_file(lock, timeout=600.0, stale_seconds=3600.0):
        return _compact(store, older_than_days, keep, batch_size, dry_run)


def _compact(store: Store, older_than_days: float | None, keep: int, batch_size: int,
             dry_run: bool) -> ArchiveReport:  # fmt: skip
    refs = store.refs
    chosen, skipped = plan(store, older_than_days=older_than_days, keep=keep)
    report = ArchiveReport(skipped_live=skipped, dry_run=dry_run)
    if dry_run:
        report.archived = [r.run_id for r in chosen]
        return report
    held = _held_commits(refs)
    for at in range(0, len(chosen), batch_size):
        chunk = chosen[at : at + batch_size]
        # an older batch's entry for a run archived again at a newer commit dies here
        stale = {(r.run_id, c) for r in chunk for c in held.get(r.run_id, ()) if c != r.commit}
        summaries = archive_summaries.table_of(store, chunk)
        report.batches.append(
            write_batch(refs, BatchTable(runs=chunk, tombstones=stale), summaries)
        )
    # every batch is written: now the runs' own refs go, in one transaction (a kill before
    # this point leaves loose refs that shadow their identical batch entries: harmless)
    busy = _busy(store)  # a run resumed meanwhile keeps its ref (never needed, kinder)
    drop = [r for r in chosen if r.run_id not in busy]
    failed = set(refs.apply([(run_ref(r.run_id), r.commit, None) for r in drop]))
    for r in chosen:
        if r.run_id in busy or run_ref(r.run_id) in failed:
            report.kept.append(r.run_id)
        else:
            report.archived.append(r.run_id)
    # one pack per batch: past half of gc.autoPackLimit, the user's `git gc --auto` would
    # repack the whole store (100,000 runs left 101 packs); roll them up as a run's end
    # does (not its automatic compaction: this one holds the archive lock)
    from vtrack.store.maintain import fold

    fold(store)
    return report


def _held_commits(refs: RefStore) -> dict[str, set[str]]:
    """``{run id: commits}`` that the batches here hold (superseded batches left out)."""
    view = refs.archive
    batches = view.batches()
    if not batches:
        return {}
    superseded = view.superseded()
    out: dict[str, set[str]] = {}
    for b, sha in batches.items():
        if b not in superseded:
            for r in view.table(b, sha).runs:
                out.setdefault(r.run_id, set()).add(r.commit)
    return out


def auto_compact(store: Store) -> ArchiveReport | None:
    """The automatic compaction at a run's end: past ``vtrack.archive.auto`` run refs,
    archive all but the ``vtrack.archive.keep`` newest. None when there was nothing to do."""
    refs = store.refs
    if refs.count_run_refs() < min(ArchiveSettings().keep, 1000):
        return None  # cheaper than reading the config
    settings = read_settings(store.location.git_dir)
    if settings.auto <= 0 or refs.count_run_refs() < settings.auto:
        return None
    return compact(store, older_than_days=settings.older_than_days, keep=settings.keep,
                   batch_size=settings.batch_size)  # fmt: skip


# -- undoing, purging ------------------------------------------------------------------------
def unarchive(store: Store, run_ids: list[str] | None = None, *, dry_run: bool = False
              ) -> ArchiveReport:  # fmt: skip
    """Give archived runs (``run_ids``, or all) their own refs back.

    With every run unarchived, the batches are removed too — except that tombstones and
    superseded batch ids they carry are kept in one run-less batch, so a purged run
    stays purged.
    """
    refs = store.refs
    view = refs.archive
    entries = view.entries()
    loose, trash = refs.list_loose_runs(), refs.list_trash()
    ids = sorted(entries) if run_ids is None else run_ids
    report = ArchiveReport(dry_run=dry_run)
    todo = [(rid, entries[rid][0]) for rid in ids
            if rid in entries and rid not in loose and rid not in trash]  # fmt: skip
    report.unarchived = [rid for rid, _ in todo]
    if dry_run:
        return report
    failed = set(refs.apply([(run_ref(rid), None, sha) for rid, sha in todo]))
    report.kept = [rid for rid, _ in todo if run_ref(rid) in failed]
    report.unarchived = [rid for rid, _ in todo if run_ref(rid) not in failed]
    if run_ids is not None or failed:
        return report
    batches = dict(view.batches())
    trash_now = refs.list_trash()
    archived_deleted = [rid for rid, (_, _b) in entries.items() if rid in trash_now]
    if archived_deleted:
        return report  # deleted runs still live in the batches: keep them
    tables = {b: view.table(b, sha) for b, sha in batches.items()}
    tombstones: set[tuple[str, str]] = set()
    superseded: set[str] = set()
    for t in tables.values():
        tombstones |= t.tombstones
        superseded |= t.supersedes
    if tombstones:
        keeper = write_batch(refs, BatchTable([], tombstones, superseded | set(batches)))
        report.batches.append(keeper)
    for b, sha in batches.items():
        with contextlib.suppress(RefConflictError, StoreError):
            refs.delete(archive_ref(b), sha)
            report.removed_batches.append(b)
    return report


def forget(refs: RefStore, purged: dict[str, str]) -> list[str]:
    """Drop purged runs (``{run id: the commit purged}``) from the archive for good.

    Each batch holding one of them is rewritten without it (its tombstones and supersedes
    carried over, plus the purged ``(run, commit)`` pairs and the old batch's id), then
    the old batch's ref is deleted. Runs no batch holds get their tombstones in one
    run-less batch when this clone has an archive at all. Returns the new batch ids.
    """
    view = refs.archive
    batches = dict(view.batches())
    if not batches:
        return []
    created = []
    superseded = view.superseded()
    placed: set[str] = set()
    for b, sha in sorted(batches.items()):
        if b in superseded:
            continue
        table = view.table(b, sha)
        hit = {r.run_id for r in table.runs if r.run_id in purged}
        if not hit:
            continue
        placed |= hit
        gone = {(r.run_id, r.commit) for r in table.runs if r.run_id in hit}
        gone |= {(rid, purged[rid]) for rid in hit}
        new = BatchTable(
            runs=[r for r in table.runs if r.run_id not in hit],
            tombstones=table.tombstones | gone,
            supersedes=table.supersedes | {b},
        )
        summaries = archive_summaries.without(archive_summaries.read_table(refs.git_dir, sha), hit)
        created.append(write_batch(refs, new, summaries))
        with contextlib.suppress(RefConflictError, StoreError):
            refs.delete(archive_ref(b), sha)
    rest = {(rid, sha) for rid, sha in purged.items() if rid not in placed}
    if rest:
        created.append(write_batch(refs, BatchTable([], rest, set())))
    return created
