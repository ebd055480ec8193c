"""The names of vtrack's refs: where runs, the trash, experiments, archive batches, live
writers and the registry live, and where a clone remembers each remote.

Only :mod:`vtrack.store.refs` and its sharing half (:mod:`vtrack.store.refs_sharing`)
import these; every other module reaches refs through :class:`~vtrack.store.refs.RefStore`
(which re-exports the names), so the layout can change in one place.
"""

from __future__ import annotations

RUNS = "refs/vtrack/runs/"
EXPERIMENTS = "refs/vtrack/experiments/"
TRASH = "refs/vtrack/trash/"
#: Per-writer refs that keep a live run's not-yet-committed objects reachable.
LIVE = "refs/vtrack/live/"
#: Archive batches (docs/scale.md): one commit per batch of finished runs, its parents the
#: run commits, its tree a table of them (:mod:`vtrack.store.archive_table`).
ARCHIVE = "refs/vtrack/archive/"
ROOT = "refs/vtrack/"
ZERO = "0" * 40
#: Where a clone remembers each remote: what its shared refs were at the last push or pull
#: (one table ref, ``refs/vtrack-remotes/<remote>/shared``: :mod:`vtrack.store.tracking`),
#: its registry, and unresolved conflicts (``.../conflicts/<kind>/<id>``, one ref each).
#: Outside ``refs/vtrack/`` so that no listing of local runs sees them.
REMOTES = "refs/vtrack-remotes/"
#: The name of a remote's tracking table ref under its ``REMOTES`` folder.
TRACKING_TABLE = "shared"
#: The kinds of ref that sharing moves, in push order (an archive batch before the deletion
#: of the run refs it holds, a run's trash copy before the run ref's deletion).
SHARED = (ARCHIVE, TRASH, RUNS, EXPERIMENTS)
#: The model registry's event log (DESIGN.md §16): one linear chain of event commits.
REGISTRY = "refs/vtrack/registry"


def run_ref(run_id: str) -> str:
    """Ref name of a live (not deleted) run."""
    return RUNS + run_id


def trash_ref(run_id: str) -> str:
    """Ref name of a deleted run."""
    return TRASH + run_id


def live_ref(run_id: str, writer_id: str) -> str:
    """Ref name that keeps the pending objects of one writer of a live run reachable."""
    return f"{LIVE}{run_id}/{writer_id}"


def archive_ref(batch_id: str) -> str:
    """Ref name of an archive batch."""
    return ARCHIVE + batch_id


def experiment_ref(exp_id: str) -> str:
    """Ref name of an experiment."""
    return EXPERIMENTS + exp_id


#: Lifecycle labels of the run listing (as the index stores them).
ACTIVE = "active"
DELETED = "deleted"


def parse_listing(raw: bytes) -> dict[str, str]:
    """``{ref name: sha}`` of ``git for-each-ref --format='%(objectname) %(refname)'`` output."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition(" ")
        out[name] = sha
    return out
