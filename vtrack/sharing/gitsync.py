"""Moving shared refs over git itself: the git CLI, explicit refspecs, batches, leases.

- Fetches list vtrack's ref prefixes only (``protocol.version=2`` sends them as
  ``ref-prefix``), never tags, and fetch the listed commits by id: no ref is written
  (the caller records the remote's state in its tracking table and moves local refs).
- Pushes send exactly the refs asked for, in batches of :data:`PUSH_BATCH` refs per
  ``git push``, each with ``--force-with-lease=<ref>:<what this clone last saw there>``: the
  remote's compare-and-swap. A ref that moved on the remote meanwhile is rejected, never
  overwritten; the caller fetches and decides. A batch goes from a staging git directory
  that holds just its refs, by unforced wildcard refspecs (git matches each explicit
  refspec against every local ref: O(refs pushed x refs here)); deletions are explicit
  ``:<ref>``, after the batch.
- ``--no-verify``: vtrack's own pushes do not run the user's pre-push hook again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from vtrack import gitcmd
from vtrack.errors import GitError
from vtrack.sharing.remotes import Remote, git, run_git
from vtrack.store import Store
from vtrack.store.refs import RefStore

#: Rounds of listing and fetching when the remote moves in between.
FETCH_ATTEMPTS = 3
#: Refs per ``git push`` (a lease on the command line: about 80 bytes each, 400 KB in all,
#: well under Linux's 2 MB for arguments). A push costs a round of the remote's ref
#: advertisement, so fewer, larger batches are faster; 1,000 made a push of 1,001 refs
#: (1,000 runs and their experiment) two pushes.
PUSH_BATCH = 5000
_V2 = ["-c", "protocol.version=2"]


@dataclass(frozen=True)
class RefUpdate:
    """Make the remote's ``name`` point at ``new`` (None: delete) if it is at ``lease``."""

    name: str
    new: str | None
    lease: str | None


def ls_remote(store: Store, remote: Remote) -> dict[str, str]:
    """``{shared ref name: sha}`` on the remote now (vtrack's prefixes only)."""
    patterns = [f"{p}*" for p in store.refs.shared_prefixes()]
    out = git(store, [*_V2, "ls-remote", "--refs", remote.url, *patterns], network=True)
    refs: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        if store.refs.is_shared(name):
            refs[name] = sha
    return refs


def fetch(store: Store, remote: Remote, names: list[str] | None = None) -> dict[str, str]:
    """``{shared ref name: sha}`` of the remote now (all its shared refs, or those of
    ``names`` it has), with the objects of each sha fetched here. No ref is written: the
    caller records what it took (:meth:`RefStore.record_tracking
    <vtrack.store.refs.RefStore.record_tracking>`).

    One ``git ls-remote`` (protocol v2: vtrack's prefixes only), then one ``git fetch``
    of the shas this clone lacks, by id (``--stdin``): what is fetched is exactly what was
    listed even if the remote moves meanwhile. A ref that moved between the two (its old
    tip no longer on the remote, which a protocol v0 server refuses to send) is listed and
    fetched again, up to :data:`FETCH_ATTEMPTS` times.
    """
    for attempt in range(FETCH_ATTEMPTS):
        listing = ls_remote(store, remote)
        if names is not None:
            listing = {n: listing[n] for n in names if n in listing}
        missing = gitcmd.missing_objects(
            store.location.git_dir, list(dict.fromkeys(listing.values()))
        )
        if not missing:
            return listing
        res = run_git(store, [*_V2, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                              "--no-auto-gc", "--stdin", remote.url],
                      input="".join(f"{s}\n" for s in missing).encode(), check=False,
                      network=True)  # fmt: skip
        if res.returncode == 0:
            return listing
        if attempt == FETCH_ATTEMPTS - 1:
            raise GitError(["fetch", remote.url, f"... ({len(missing)} objects)"],
                           res.returncode, res.stderr.decode("utf-8", "replace"))  # fmt: skip
    raise AssertionError("unreachable")


def push(store: Store, remote: Remote, updates: list[RefUpdate]) -> dict[str, str]:
    """Push ``updates`` in batches; return ``{name: outcome}`` per ref.

    A batch's creations and updates are sent from a staging git directory that holds
    exactly them over this repository's objects (:meth:`RefStore.stage_for_push
    <vtrack.store.refs.RefStore.stage_for_push>`), by unforced wildcard refspecs. An
    update of a ref the remote had carries its lease (a non-fast-forward goes through only
    if the lease holds); a creation carries none, since the unforced push refuses it when
    the remote has the ref meanwhile, unless ours descends from theirs (nothing is lost).
    Its deletions follow in a second ``git push``, each under its lease, only once the
    refs before them (a run's trash copy) are on the remote.

    Outcomes: ``ok`` (created, updated, deleted or already so) or ``rejected: <why>``
    (the lease failed or the remote refused it). Raises GitError when git fails for
    another reason (network, authentication), with git's message.
    """
    results: dict[str, str] = {}
    for i in range(0, len(updates), PUSH_BATCH):
        chunk = updates[i : i + PUSH_BATCH]
        sets = [u for u in chunk if u.new is not None]
        if sets:
            with tempfile.TemporaryDirectory(prefix="vtrack-push-") as tmp:
                staging = Path(tmp)
                store.refs.stage_for_push(staging, {u.name: u.new for u in sets if u.new})
                # a ref the remote did not have needs no lease: the unforced refspec
                # refuses it if the remote has one now, unless ours descends from it
                leased = [u for u in sets if u.lease is not None]
                results.update(_git_push(store, remote, leased, store.refs.push_refspecs(),
                                         git_dir=staging))  # fmt: skip
        dels = [u for u in chunk if u.new is None and _twin_ok(u.name, results, chunk)]
        if dels:
            results.update(_git_push(store, remote, dels, [f":{u.name}" for u in dels]))
    for u in updates:
        results.setdefault(u.name, "rejected: git did not report this ref")
    return results


def _git_push(
    store: Store, remote: Remote, leased: list[RefUpdate], refspecs: list[str],
    git_dir: Path | None = None,
) -> dict[str, str]:  # fmt: skip
    args = ["push", "--porcelain", "--no-verify", remote.url]
    args += [f"--force-with-lease={u.name}:{u.lease or ''}" for u in leased]
    args += refspecs
    res = run_git(store, args, check=False, network=True, git_dir=git_dir)
    parsed = _parse_porcelain(res.stdout)
    if res.returncode != 0 and not parsed:
        shown = [*args[:4], f"... ({len(leased)} refs)"]
        raise GitError(shown, res.returncode, res.stderr.decode("utf-8", "replace"))
    return parsed


def _twin_ok(name: str, results: dict[str, str], chunk: list[RefUpdate]) -> bool:
    """A run ref is deleted on the remote only once its trash copy (if pushed) is there."""
    twin = RefStore.trash_twin(name)
    if twin is None or all(u.name != twin for u in chunk) or results.get(twin) == "ok":
        return True
    results[name] = f"rejected: its trash copy was not pushed ({results.get(twin, 'unknown')})"
    return False


def _parse_porcelain(out: bytes) -> dict[str, str]:
    """``{ref: outcome}`` from ``git push --porcelain`` lines ``<flag>\\t<from>:<to>\\t<summary>``."""
    results = {}
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or len(parts[0]) != 1 or ":" not in parts[1]:
            continue
        flag, spec, summary = parts[0], parts[1], parts[2]
        name = spec.rsplit(":", 1)[1]
        results[name] = "ok" if flag in " +-*=" else f"rejected: {summary.strip()}"
    return results
