"""Sharing runs through git remotes and object storage (DESIGN.md §14, docs/sharing.md).

A service over a :class:`~vtrack.store.runs.RunRepository`:

- :func:`push` / :func:`pull` — shared refs over the git CLI with explicit refspecs and
  leases, large objects through the remote's object store (:mod:`vtrack.sharing.push`,
  :mod:`vtrack.sharing.pull`);
- :func:`clone` — ``git clone`` plus a pull of every run;
- :func:`fetch_missing` — the lazy fetch of a large object on first read;
- :func:`remote_runs_hint` — the "no runs here, but the remote has some" hint;
- :func:`scrub` — rewrite a run without some paths (:mod:`vtrack.sharing.scrub`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.sharing.objects import fetch_missing
    from vtrack.sharing.pull import PullReport, pull
    from vtrack.sharing.push import Conflict, PushReport, SecretsFoundError, push
    from vtrack.sharing.remotes import Remote, resolve, set_objects
    from vtrack.sharing.scrub import scrub
    from vtrack.sharing.setup import clone, remote_runs_hint

#: Where each public name lives: imported on first use, so that ``vtrack push`` does not
#: import pull, clone and scrub (and their dependencies) to start.
_HOMES = {
    "fetch_missing": "objects", "PullReport": "pull", "pull": "pull", "Conflict": "push",
    "PushReport": "push", "SecretsFoundError": "push", "push": "push", "Remote": "remotes",
    "resolve": "remotes", "set_objects": "remotes", "scrub": "scrub", "clone": "setup",
    "remote_runs_hint": "setup",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'vtrack.sharing' has no attribute {name!r}")
    value = getattr(import_module(f"vtrack.sharing.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Conflict",
    "PullReport",
    "PushReport",
    "Remote",
    "SecretsFoundError",
    "clone",
    "fetch_missing",
    "pull",
    "push",
    "remote_runs_hint",
    "resolve",
    "scrub",
    "set_objects",
]
