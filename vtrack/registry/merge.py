"""Two clones' registry logs: merging them on pull, and moving the registry on push.

**The merge rule** (docs/design-decisions.md). Both logs are linear chains that share
a prefix (possibly empty). The merged log is the remote's log, then this clone's events
that the remote lacks (recognised by event id), replayed in their order on top — a
rebase, so the log stays one linear chain that both clones then agree on:

- a ``register`` replayed on top gets the next free number of its model in the merged
  log when its own number was taken there (deterministic: remote's versions keep their
  numbers, ours are renumbered in our order); later replayed events of ours that name
  that version are renumbered with it, and the mapping is reported;
- alias moves apply in merged order, so where both clones moved one alias, ours (made
  here, replayed last) holds it — and both moves are in the alias's history;
- an event that no longer applies (an alias set on a version the remote deleted) is
  kept in the log and ignored by the fold (``ignored`` in ``models history``).

Versions registered here but never pushed can thus change number once; pushed ones never
do. ``vtrack push`` sends the registry under a lease; when the remote moved, it pulls
(merges) and pushes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vtrack import gitcmd
from vtrack.errors import RefConflictError, StoreError
from vtrack.registry.fold import ModelFold, apply
from vtrack.registry.log import read_log, write_events
from vtrack.store.refs import REGISTRY, registry_fetch_refspec, registry_tip, registry_tracking_ref
from vtrack.store.runs import RunRepository

#: Rounds of fetch, merge and push when the remote's registry keeps moving.
ATTEMPTS = 5


@dataclass
class RegistrySync:
    """What a pull or push did to the registry."""

    action: str = "none"  # none, fast-forward, merged, pushed, up to date
    remote_events: int = 0
    replayed: int = 0
    renumbered: dict[str, dict[int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "remote_events": self.remote_events,
                "replayed": self.replayed,
                "renumbered": {m: {str(a): b for a, b in r.items()}
                               for m, r in self.renumbered.items()}}  # fmt: skip


def _merge_base(repo: RunRepository, a: str, b: str) -> str | None:
    res = gitcmd.run(["merge-base", a, b], git_dir=repo.store.location.git_dir, check=False)
    out = res.stdout.decode().strip()
    return out or None


def rebase_onto(repo: RunRepository, ours: str, theirs: str) -> tuple[str, RegistrySync]:
    """The tip of the merged log of ``ours`` replayed on ``theirs`` (not yet published)."""
    store = repo.store
    report = RegistrySync(action="merged")
    base = _merge_base(repo, ours, theirs)
    if base == theirs:
        return ours, RegistrySync(action="none")
    if base == ours:
        return theirs, RegistrySync(action="fast-forward")
    remote_log = read_log(store, theirs)
    local_new = read_log(store, ours, since=base)
    report.remote_events = len(read_log(store, theirs, since=base)) if base else len(remote_log)
    folds: dict[str, ModelFold] = {}
    seen = set()
    for seq, (commit, _p, event) in enumerate(remote_log, 1):
        seen.add(event["id"])
        fold = folds.setdefault(event["model"], ModelFold.empty(event["model"]))
        apply(fold, event, seq, commit)
    seq = len(remote_log)
    mapping: dict[tuple[str, int], int] = {}
    replay = []
    for _commit, _p, event in local_new:
        if event["id"] in seen:
            continue
        e = dict(event)
        name = e["model"]
        fold = folds.setdefault(name, ModelFold.empty(name))
        if e["type"] == "register":
            old = int(e["version"])
            top = int(fold.doc["max_version"])
            new = top + 1 if old <= top else old
            if new != old:
                mapping[(name, old)] = new
                report.renumbered.setdefault(name, {})[old] = new
                e["version"] = new
        elif "version" in e and (name, int(e["version"])) in mapping:
            e["version"] = mapping[(name, int(e["version"]))]
        if "alias" in e:
            e["previous"] = fold.doc["aliases"].get(e["alias"])
        seq += 1
        apply(fold, e, seq, "")
        replay.append(e)
    report.replayed = len(replay)
    if not replay:
        return theirs, RegistrySync(action="fast-forward", remote_events=report.remote_events)
    return write_events(store, theirs, replay), report


def merge_remote(repo: RunRepository, remote_name: str) -> RegistrySync:
    """Merge the fetched registry of ``remote_name`` (its tracking ref) into ours."""
    store = repo.store
    theirs = store.refs.read(registry_tracking_ref(remote_name))
    if theirs is None:
        return RegistrySync()
    for _ in range(ATTEMPTS):
        ours = registry_tip(store.refs)
        if ours is None:
            new, report = theirs, RegistrySync(action="fast-forward")
        else:
            new, report = rebase_onto(repo, ours, theirs)
        if new == ours:
            return report
        try:
            store.refs.cas(REGISTRY, ours, new)
            return report
        except RefConflictError:
            continue
    raise StoreError("the local registry kept moving during the merge; pull again")


def pull_registry(repo: RunRepository, remote: Any) -> RegistrySync:
    """Fetch ``remote``'s registry into its tracking ref and merge it (see the module doc)."""
    from vtrack.sharing.remotes import git

    store = repo.store
    listing = git(store, ["ls-remote", "--refs", remote.url, REGISTRY], network=True)
    if not listing.strip():
        return RegistrySync()
    git(store, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote.url,
                registry_fetch_refspec(remote.name)], network=True)  # fmt: skip
    return merge_remote(repo, remote.name)


def push_registry(repo: RunRepository, remote: Any) -> RegistrySync:
    """Send our registry to ``remote`` under a lease, merging the remote's first if it moved."""
    from vtrack.sharing.remotes import run_git

    store = repo.store
    report = RegistrySync()
    for _ in range(ATTEMPTS):
        ours = registry_tip(store.refs)
        if ours is None:
            return report
        known = store.refs.read(registry_tracking_ref(remote.name))
        if known == ours:
            report.action = "up to date"
            return report
        res = run_git(store, ["push", "--porcelain", "--no-verify", remote.url,
                              f"--force-with-lease={REGISTRY}:{known or ''}",
                              f"{ours}:{REGISTRY}"], check=False, network=True)  # fmt: skip
        if res.returncode == 0:
            store.refs.apply([(registry_tracking_ref(remote.name), None, ours)], force=True)
            report.action = "pushed"
            _push_tags(repo, remote)
            return report
        merged = pull_registry(repo, remote)
        report.renumbered.update(merged.renumbered)
        report.remote_events += merged.remote_events
    raise StoreError(f"remote {remote.name!r}'s registry kept moving; push again")


def _push_tags(repo: RunRepository, remote: Any) -> None:
    """Send the GTO-compatible mirror tags when the mirror is on (vtrack.registry.gto)."""
    from vtrack.registry import gto
    from vtrack.registry.service import ModelRegistry
    from vtrack.sharing.remotes import run_git

    if not gto.enabled(repo.store):
        return
    specs = gto.push_refspecs(ModelRegistry(repo))
    if specs:
        run_git(repo.store, ["push", "--quiet", "--no-verify", remote.url, *specs],
                check=False, network=True)  # fmt: skip
