"""``vtrack pull``: teammates' runs and experiments from a remote (records only).

The remote's shared refs are listed and their commits fetched (vtrack's prefixes only),
then each ref is merged three ways — this clone's ref, the remote's now, and what the
remote had at the last sync (its tracking table, :mod:`vtrack.store.tracking`), which is
rewritten once the local refs moved:

- the same on both sides: nothing to do;
- only the remote changed: take it (a new run, a newer checkpoint, a run the remote
  moved to its trash — the local run goes to the trash too);
- only this clone changed: keep it (``vtrack push`` sends it);
- both changed: an experiment merges (:mod:`vtrack.sharing.merge`); a run is a
  **conflict** — the local run is kept as it is, the remote's version stays reachable
  at its conflict ref, and the conflict is reported. ``theirs=True`` takes the remote's
  version instead (the local commit is reported so that it can be found again).

A remote that drops a run without trashing it (a purge) never removes a local run.
Large objects are not fetched: reads fetch them on first use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vtrack.errors import RunNotFoundError, ValidationError
from vtrack.sharing import gitsync, merge, remotes
from vtrack.sharing.push import Conflict
from vtrack.store.runs import RunRepository

#: Times an experiment merge is redone when another process moves the local ref meanwhile.
MERGE_ATTEMPTS = 5


@dataclass
class PullReport:
    """What a pull changed locally."""

    remote: str
    runs: list[str] = field(default_factory=list)
    trashed: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)
    #: archive batches that arrived (their runs are listed in ``runs``)
    archives: list[str] = field(default_factory=list)
    #: what happened to the model registry (vtrack.registry.merge.RegistrySync.to_dict)
    registry: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def remote_run_names(repo: RunRepository, remote: remotes.Remote, specs: list[str]) -> list[str]:
    """The remote's shared refs for runs named by full ids or unique id prefixes."""
    refs = repo.store.refs
    listing = gitsync.ls_remote(repo.store, remote)
    by_id: dict[str, list[str]] = {}
    for name in listing:
        kind = refs.run_of(name)
        if kind is not None and kind[0] in ("run", "trash"):
            by_id.setdefault(kind[1], []).append(name)
    names: list[str] = []
    batches = [n for n in listing if _is_batch(refs, n)]
    archived: dict[str, str] | None = None
    for spec in specs:
        text = spec.strip().lower()
        if len(text) < 4:
            raise ValidationError(f"run {spec!r}: give at least 4 characters of a run id to pull")
        matches = sorted(i for i in by_id if i.startswith(text))
        if not matches and batches:  # archived there: its batch comes (with its other runs)
            if archived is None:
                held = refs.archived_runs_in(gitsync.fetch(repo.store, remote, batches))
                archived = {}
                for run_name, (_sha, batch) in held.items():
                    kind = refs.run_of(run_name)
                    if kind is not None:
                        archived[kind[1]] = batch
            found = sorted(i for i in archived if i.startswith(text))
            if len(found) == 1:
                names.append(archived[found[0]])
                continue
            matches = found
        if not matches:
            raise RunNotFoundError(f"remote {remote.name!r} has no run {spec!r}")
        if len(matches) > 1:
            raise ValidationError(f"run {spec!r} is ambiguous on remote {remote.name!r}: "
                                  f"{', '.join(m[:12] for m in matches[:5])}")  # fmt: skip
        names += by_id[matches[0]]
    names += [n for n in listing if (refs.run_of(n) or ("", ""))[0] == "experiment"]
    return sorted(set(names))


def pull(
    repo: RunRepository,
    remote_spec: str | None = None,
    run_specs: list[str] | None = None,
    *,
    theirs: bool = False,
) -> PullReport:
    """Fetch and merge the remote's runs (``run_specs``, or all); see the module docstring."""
    store = repo.store
    refs = store.refs
    remote = remotes.resolve(store, remote_spec)
    report = PullReport(remote.name)
    base = refs.list_tracking(remote.name)
    names = remote_run_names(repo, remote, run_specs) if run_specs else None
    fetched = gitsync.fetch(store, remote, names)
    now = fetched if names is None else {**base, **fetched}
    for gone in set(names or ()) - set(fetched):
        now.pop(gone, None)  # listed, then deleted on the remote before the fetch
    real = refs.list_shared()
    # archived runs count as run refs at their archived commit on either side
    v_local = refs.archived_runs_in(real)
    v_now = refs.archived_runs_in(now)
    v_base = _archived_or_empty(refs, base)
    local = {**{n: sha for n, (sha, _) in v_local.items()}, **real}
    now_all = {**{n: sha for n, (sha, _) in v_now.items()}, **now}
    base_all = {**v_base, **base}
    marked = refs.list_conflicts(remote.name)
    markers: list[tuple[str, str | None, str | None]] = []
    if names is None:
        considered = set(now_all) | set(base_all)
    else:
        considered = set(names) | {n for n, (_, b) in v_now.items() if b in set(names)}
    batches_after = {n for n in set(real) | (set(now) & considered) if _is_batch(refs, n)}
    updates: list[tuple[str, str | None, str | None]] = []
    for name in sorted(considered):
        mine, was, theirs_now = local.get(name), base_all.get(name), now_all.get(name)
        real_mine = real.get(name)
        kind = refs.run_of(name)
        in_batch = name in v_now and name not in now  # the remote holds it archived
        if name in marked and (mine == theirs_now or theirs):
            markers.append((refs.conflict_ref(remote.name, name), None, None))
        if kind is None:
            continue
        if mine == theirs_now:
            if in_batch and real_mine == theirs_now and v_now[name][1] in batches_after:
                updates.append((name, real_mine, None))  # archived there: archived here too
            continue
        if theirs_now is None:
            twin = refs.trash_twin(name)
            if mine == was and twin is not None and twin in now and real_mine is not None:
                updates.append((name, real_mine, None))  # moved to the trash on the remote
            continue
        if mine == was or (mine is None and was is None):
            if not (in_batch and mine is None):  # else the batch brings it
                updates.append((name, real_mine, theirs_now))
            continue
        if theirs_now == was and name not in marked:
            continue  # only we changed it
        if kind[0] == "experiment" and mine is not None:
            merge.merge_into_ref(store, name, mine, theirs_now, MERGE_ATTEMPTS)
            report.experiments.append(kind[1])
            continue
        if theirs:
            updates.append((name, real_mine, theirs_now))
            if mine is not None:
                report.replaced[kind[1]] = mine
            continue
        markers.append((refs.conflict_ref(remote.name, name), None, theirs_now))
        if real_mine is None and mine is not None and in_batch:
            updates.append((name, None, mine))  # pin ours: the remote's batch holds theirs
        report.conflicts.append(Conflict(
            name, kind[0], kind[1], mine, theirs_now,
            f"this clone and remote {remote.name!r} hold different versions of this run; "
            f"the local one is kept, the remote's is at {refs.conflict_ref(remote.name, name)}",
        ))  # fmt: skip
    failed: set[str] = set(refs.apply(updates))
    refs.apply(markers, force=True)
    # what the remote holds, recorded once the local refs moved (one table commit)
    if names is None:
        refs.record_tracking(remote.name, dict(fetched), replace=True)
    else:
        refs.record_tracking(remote.name, {n: fetched.get(n) for n in names})
    for name, _old, new in updates:
        kind = refs.run_of(name)
        if name in failed or kind is None:
            continue
        if kind[0] == "experiment":
            report.experiments.append(kind[1])
        elif kind[0] == "trash" and new is not None:
            report.trashed.append(kind[1])
        elif kind[0] == "run" and new is not None and new != local.get(name):
            report.runs.append(kind[1])
        elif kind[0] == "archive" and new is not None:
            report.archives.append(kind[1])
    arrived = {refs.batch_name(b) for b in report.archives}
    for name, (_sha, batch) in sorted(v_now.items()):
        kind = refs.run_of(name)
        if batch in arrived and name not in local and name not in failed and kind:
            report.runs.append(kind[1])
    for name in sorted(failed):
        kind = refs.run_of(name)
        if kind is not None:
            report.conflicts.append(Conflict(name, kind[0], kind[1], None, now.get(name),
                                             "the local ref moved during the pull; pull again"))  # fmt: skip
    if run_specs is None:  # a full pull merges the remote's model registry too
        from vtrack.registry.merge import pull_registry

        report.registry = pull_registry(repo, remote).to_dict()
    repo.index()  # synced now, so the next command is fast
    return report


def _is_batch(refs: Any, name: str) -> bool:
    kind = refs.run_of(name)
    return kind is not None and kind[0] == "archive"


def _archived_or_empty(refs: Any, shared: dict[str, str]) -> dict[str, str]:
    """Archived runs of the remote as of the last sync (its batches may be gone by now)."""
    from vtrack.errors import StoreError

    try:
        return {n: sha for n, (sha, _) in refs.archived_runs_in(shared).items()}
    except StoreError:
        return {}
