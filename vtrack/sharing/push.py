"""``vtrack push``: runs and experiments made here, plus their large objects, to a remote.

Order of work, so that nothing is half-published:

1. choose the shared refs that differ from what the remote had at the last sync
   (its tracking refs); a deleted run goes as its trash copy plus the deletion of its
   run ref (never a purge: the remote keeps what it had in its trash);
2. scan what those runs carry beyond their parent commits for secrets and for blobs too
   large for git hosts (refused, with the list, unless ``allow_secrets``);
3. upload the large objects they reference that the remote's object store lacks,
   verified; a missing or corrupt object stops the push before any ref moves;
4. push the refs in batches, each under a lease (the remote's compare-and-swap);
5. for refs rejected because the remote moved: fetch them; an experiment is merged
   and pushed again; a run whose remote copy differs is a conflict, reported and
   never overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vtrack.errors import ArtifactError, ValidationError, VtrackError
from vtrack.sharing import gitsync, merge, objects, remotes, secretscan
from vtrack.sharing.gitsync import RefUpdate
from vtrack.store.runs import RunRepository

#: Rounds of fetch-and-retry for refs the remote rejected.
RETRIES = 5


class SecretsFoundError(ValidationError):
    """A push would send files that look like secrets (or are too large for git)."""


@dataclass
class Conflict:
    """A ref whose local and remote versions differ; both are kept."""

    ref: str
    kind: str
    id: str
    local: str | None
    remote: str | None
    reason: str


@dataclass
class PushReport:
    """What a push moved."""

    remote: str
    runs: list[str] = field(default_factory=list)
    trashed: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    #: archive batches pushed (their runs are listed in ``runs``)
    archives: list[str] = field(default_factory=list)
    #: the remote's run refs deleted because a pushed batch holds them (same commit)
    archived: int = 0
    #: what happened to the model registry (vtrack.registry.merge.RegistrySync.to_dict)
    registry: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def selected_names(repo: RunRepository, run_ids: list[str] | None) -> set[str] | None:
    """The shared refs of ``run_ids`` and their experiments (None: every shared ref)."""
    if run_ids is None:
        return None
    refs = repo.store.refs
    names: set[str] = set()
    for run_id in run_ids:
        names.update(refs.names_for_run(run_id))
        batch = refs.archive_name_of(run_id)
        if batch is not None:
            names.add(batch)
        try:
            exp = repo.state(run_id, deleted_ok=True).record.info.get("experiment_id")
        except VtrackError:
            continue
        if exp is not None:
            names.add(refs.experiment_name(str(exp)))
    return names


def push(
    repo: RunRepository,
    remote_spec: str | None = None,
    run_ids: list[str] | None = None,
    *,
    allow_secrets: bool = False,
) -> PushReport:
    """Push runs (``run_ids``, or every run and experiment) to a remote; see the module doc.

    Raises SecretsFoundError (nothing pushed), ArtifactError when a large object is
    missing or no object store is configured (nothing pushed), GitError when git fails.
    """
    store = repo.store
    refs = store.refs
    remote = remotes.resolve(store, remote_spec)
    report = PushReport(remote.name)
    for run_id in run_ids or []:
        repo.checkpoint(run_id)  # this process's live logging, into the latest checkpoint
    wanted = selected_names(repo, run_ids)
    local = refs.list_shared()
    base = refs.list_tracking(remote.name)
    names = set(local) | set(base)
    if wanted is not None:
        names &= wanted
    marked = refs.list_conflicts(remote.name)
    updates = []
    for name in sorted(names, key=_push_order()):
        new, old = local.get(name), base.get(name)
        if new == old:
            continue
        kind = refs.run_of(name)
        if name in marked and kind is not None:
            report.conflicts.append(Conflict(
                name, kind[0], kind[1], new, old,
                "unresolved since the last pull: this clone and the remote hold different "
                "versions (take the remote's with 'vtrack pull --theirs')",
            ))  # fmt: skip
            continue
        if new is None:
            twin = refs.trash_twin(name)
            if kind is not None and kind[0] == "archive":
                if kind[1] not in refs.archive.superseded_ids():
                    continue  # a batch goes only once a batch here replaced it (a purge)
            elif twin is None or twin not in local:
                continue  # only a move to the trash propagates; purges and losses never do
        updates.append(RefUpdate(name, new, old))
    if run_ids is None:  # a full push sends the model registry too (merged first if needed)
        from vtrack.registry.merge import push_registry

        report.registry = push_registry(repo, remote).to_dict()
    if not updates:
        _compact_remote(repo, remote, local, wanted, report)
        return report
    commits = {}
    for u in updates:
        kind = refs.run_of(u.name)
        if u.new is not None and kind is not None and kind[0] in ("run", "trash"):
            commits[kind[1]] = u.new
    batched = _batched_runs(refs, local, base, {u.name for u in updates if u.new is not None})
    for run_id, sha in batched.items():
        commits.setdefault(run_id, sha)
    needed = _scan_and_find_large(store, commits, allow_secrets)
    _upload(store, remote, needed, report)
    _push_refs(repo, remote, updates, report)
    pushed = {refs.batch_name(b) for b in report.archives}
    report.runs += sorted(rid for rid in _batched_runs(refs, local, base, pushed)
                          if rid not in report.runs)  # fmt: skip
    _compact_remote(repo, remote, local, wanted, report)
    return report


def _batched_runs(refs: Any, local: dict[str, str], base: dict[str, str],
                  batches: set[str]) -> dict[str, str]:  # fmt: skip
    """``{run id: commit}`` of the runs that ``batches`` (archive refs being pushed) hold
    and that the remote did not have at that commit."""
    out = {}
    for name, (sha, batch) in refs.archived_runs_in(local).items():
        kind = refs.run_of(name)
        if batch in batches and base.get(name) != sha and kind is not None:
            out[kind[1]] = sha
    return out


def _compact_remote(repo: RunRepository, remote: remotes.Remote, local: dict[str, str],
                    wanted: set[str] | None, report: PushReport) -> None:  # fmt: skip
    """Delete the remote's run refs of runs archived here, once the batch that holds them
    is on the remote: the remote is compacted too, and a run updated here before it was
    archived shows its new commit there (the batch's entry). Each deletion is leased on
    what this clone last saw there: a ref that moved there meanwhile stays (it shadows
    the batch entry; the next pull reports the conflict)."""
    refs = repo.store.refs
    base = refs.list_tracking(remote.name)
    held = refs.archived_runs_in(local)
    dels = [
        RefUpdate(name, None, base[name])
        for name, (_sha, batch) in sorted(held.items())
        if base.get(name) is not None and base.get(batch) is not None
        and (wanted is None or name in wanted or batch in wanted)
    ]  # fmt: skip
    if not dels:
        return
    results = gitsync.push(repo.store, remote, dels)
    done = [u for u in dels if results.get(u.name) == "ok"]
    if done:
        refs.record_tracking(remote.name, {u.name: None for u in done})
    report.archived = len(done)


def _push_order() -> Callable[[str], tuple[int, str]]:
    """The sort key that orders shared refs by their prefix's rank, then by name."""
    from vtrack.store.refs import RefStore

    prefixes = RefStore.shared_prefixes()

    def key(name: str) -> tuple[int, str]:
        return next(i for i, p in enumerate(prefixes) if name.startswith(p)), name

    return key


def _scan(store: Any, commits: dict[str, str], allow_secrets: bool) -> None:
    findings = secretscan.scan(store, commits)
    oversize = [f for f in findings if f.oversize]
    secrets = [f for f in findings if not f.oversize]
    if oversize:
        listed = "; ".join(f"run {f.run_id}: {f.path} {f.reason}" for f in oversize[:20])
        raise SecretsFoundError(
            f"refusing to push: {listed}; nothing was pushed",
            hint="lower VTRACK_LARGE_FILE_THRESHOLD / VTRACK_SNAPSHOT_MAX_FILE_BYTES, or remove "
                 "the file with 'vtrack scrub RUN PATH'",
            findings=[asdict(f) for f in oversize],
        )  # fmt: skip
    if secrets and not allow_secrets:
        listed = "; ".join(f"run {f.run_id}: {f.path} ({f.reason})" for f in secrets[:20])
        more = f" and {len(secrets) - 20} more" if len(secrets) > 20 else ""
        raise SecretsFoundError(
            f"refusing to push runs that carry likely secrets: {listed}{more}; nothing was pushed",
            hint="remove them with 'vtrack scrub RUN PATH...', or push anyway with --allow-secrets",
            findings=[asdict(f) for f in secrets],
        )  # fmt: skip


def _scan_and_find_large(
    store: Any, commits: dict[str, str], allow_secrets: bool
) -> dict[str, list[tuple[str, str]]]:
    """The secret scan (which raises first) and, at the same time in a thread, the large
    objects the runs need: two git processes on two cores instead of one after the other."""
    found: dict[str, Any] = {}

    def find() -> None:
        try:
            found["needed"] = objects.large_objects(store, commits)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once the scan passed
            found["error"] = exc

    worker = threading.Thread(target=find, name="vtrack-large-objects", daemon=True)
    worker.start()
    try:
        _scan(store, commits, allow_secrets)
    finally:
        worker.join()
    if "error" in found:
        raise found["error"]
    return dict(found["needed"])


def _upload(
    store: Any, remote: remotes.Remote, needed: dict[str, list[tuple[str, str]]],
    report: PushReport,
) -> None:  # fmt: skip
    if not needed:
        return
    target = remote.object_store(store)
    if target is None:
        run_id = next(iter(needed.values()))[0][0]
        raise ArtifactError(
            f"run {run_id} has large artifacts and remote {remote.name!r} has no object store; "
            "nothing was pushed",
            hint=f"configure one with 'vtrack remote set-objects {remote.name} s3://BUCKET/PREFIX' "
                 "(any fsspec URL or folder)",
        )  # fmt: skip
    from vtrack.artifacts.storage import object_store

    result = objects.upload(store, object_store(store), target, needed)
    report.objects, report.bytes = len(result.copied), result.bytes
    if not result.ok:
        bad = result.missing + list(result.corrupt) + list(result.failed)
        run_id, path = needed[bad[0]][0]
        why = ("missing from this clone" if bad[0] in result.missing
               else result.corrupt.get(bad[0]) or result.failed.get(bad[0]))  # fmt: skip
        raise ArtifactError(
            f"cannot push run {run_id}: the large object of artifact {path!r} ({bad[0]}) is {why}"
            f"{f' (and {len(bad) - 1} more objects)' if len(bad) > 1 else ''}; no ref was pushed "
            f"({len(result.copied)} objects uploaded, they will not be sent again)",
            hint="fetch it with vtrack.download_artifacts from a remote that has it, then push again",
            run_id=run_id, path=path, digest=bad[0],
        )  # fmt: skip


def _push_refs(repo: RunRepository, remote: remotes.Remote, updates: list[RefUpdate],
               report: PushReport) -> None:  # fmt: skip
    store = repo.store
    refs = store.refs
    pending = updates
    for _round in range(RETRIES):
        results = gitsync.push(store, remote, pending)
        done = [u for u in pending if results.get(u.name) == "ok"]
        if done:  # one table commit for the whole batch (docs/design-decisions.md)
            refs.record_tracking(remote.name, {u.name: u.new for u in done})
        for u in done:
            _count(refs, u, report)
        rejected = [u for u in pending if results.get(u.name) != "ok"]
        if not rejected:
            return
        fetched = gitsync.fetch(store, remote, [u.name for u in rejected])
        now = {u.name: fetched.get(u.name) for u in rejected}
        refs.record_tracking(remote.name, now)
        pending = []
        markers: list[tuple[str, str | None, str | None]] = []
        for u in rejected:
            theirs = now.get(u.name)
            kind = refs.run_of(u.name)
            if theirs == u.new:
                continue  # someone pushed the same thing
            if kind is not None and kind[0] == "experiment" and u.new is not None and theirs:
                merged = merge.merge_into_ref(store, u.name, u.new, theirs, RETRIES)
                if merged is not None:
                    pending.append(RefUpdate(u.name, merged, theirs))
                continue
            if theirs is not None and kind is not None:
                # marked as a pull marks it: the next push refuses it until it is resolved
                marker = refs.conflict_ref(remote.name, u.name)
                markers.append((marker, None, theirs))
                report.conflicts.append(Conflict(
                    u.name, kind[0], kind[1], u.new, theirs,
                    f"the remote holds another version of this run; both are kept (the "
                    f"remote's is at {marker}; take it with 'vtrack pull --theirs')",
                ))  # fmt: skip
            else:
                report.rejected[u.name] = results.get(u.name, "rejected")
        refs.apply(markers, force=True)
        if not pending:
            return
    for u in pending:
        report.rejected[u.name] = "the remote kept changing; try again"


def _count(refs: Any, u: RefUpdate, report: PushReport) -> None:
    kind = refs.run_of(u.name)
    if kind is None:
        return
    if kind[0] == "experiment":
        report.experiments.append(kind[1])
    elif kind[0] == "trash" and u.new is not None:
        report.trashed.append(kind[1])
    elif kind[0] == "run" and u.new is not None:
        report.runs.append(kind[1])
    elif kind[0] == "archive" and u.new is not None:
        report.archives.append(kind[1])
