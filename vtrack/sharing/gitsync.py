"""Moving shared refs over git itself: the git CLI, explicit refspecs, batches, leases.

- Fetches ask for vtrack's ref prefixes only (``protocol.version=2`` sends them as
  ``ref-prefix``), never tags, and write into the remote's tracking refs
  (:meth:`~vtrack.store.refs.RefStore.fetch_refspecs`), never into the runs themselves.
- Pushes name every ref explicitly (``<sha>:refs/vtrack/runs/<id>``), in batches of
  :data:`BATCH` refs per ``git push``, each with ``--force-with-lease=<ref>:<what this
  clone last saw there>``: the remote's compare-and-swap. A ref that moved on the remote
  meanwhile is rejected, never overwritten; the caller fetches and decides.
- ``--no-verify``: vtrack's own pushes do not run the user's pre-push hook again.
"""

from __future__ import annotations

from dataclasses import dataclass

from vtrack.errors import GitError
from vtrack.sharing.remotes import Remote, git, run_git
from vtrack.store import Store

#: Refs per ``git push``/``git fetch`` command line (about 200 bytes each).
BATCH = 1000
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


def fetch(store: Store, remote: Remote, names: list[str] | None = None) -> None:
    """Fetch the remote's shared refs (all, or just ``names``) into its tracking refs.

    Fetching all also prunes tracking refs the remote no longer has. Batches of
    :data:`BATCH` names per ``git fetch``.
    """
    base = [*_V2, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc"]
    if names is None:
        git(store, [*base, "--prune", remote.url, *store.refs.fetch_refspecs(remote.name)],
            network=True)  # fmt: skip
        return
    for i in range(0, len(names), BATCH):
        chunk = names[i : i + BATCH]
        git(store, [*base, remote.url, *store.refs.fetch_refspecs(remote.name, chunk)],
            network=True)  # fmt: skip


def push(store: Store, remote: Remote, updates: list[RefUpdate]) -> dict[str, str]:
    """Push ``updates`` in batches; return ``{name: outcome}`` per ref.

    Outcomes: ``ok`` (created, updated, deleted or already so) or ``rejected: <why>``
    (the lease failed or the remote refused it). Raises GitError when git fails for
    another reason (network, authentication), with git's message.
    """
    results: dict[str, str] = {}
    for i in range(0, len(updates), BATCH):
        chunk = updates[i : i + BATCH]
        args = ["push", "--porcelain", "--no-verify", remote.url]
        args += [f"--force-with-lease={u.name}:{u.lease or ''}" for u in chunk]
        args += [f"{u.new or ''}:{u.name}" for u in chunk]
        res = run_git(store, args, check=False, network=True)
        parsed = _parse_porcelain(res.stdout)
        if res.returncode != 0 and not parsed:
            raise GitError(args, res.returncode, res.stderr.decode("utf-8", "replace"))
        results.update(parsed)
    for u in updates:
        results.setdefault(u.name, "rejected: git did not report this ref")
    return results


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
