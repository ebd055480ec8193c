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

from vtrack.sharing.objects import fetch_missing
from vtrack.sharing.pull import PullReport, pull
from vtrack.sharing.push import Conflict, PushReport, SecretsFoundError, push
from vtrack.sharing.remotes import Remote, resolve, set_objects
from vtrack.sharing.scrub import scrub
from vtrack.sharing.setup import clone, remote_runs_hint

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
