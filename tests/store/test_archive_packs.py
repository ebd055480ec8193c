"""Compaction leaves git's automatic gc nothing to do: its batches' packs are rolled up.

A real repository, real git (``gc --auto``, ``fsck``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import assert_fsck_clean
from tests.store.test_archive import _bulk
from vtrack.client import TrackingClient
from vtrack.store import maintain
from vtrack.store.archive import compact


def test_compacting_into_many_batches_leaves_few_packs_and_git_gc_auto_silent(repo: Path) -> None:
    """Before: one pack per batch stayed (100,000 runs: 101 packs, past git's
    ``gc.autoPackLimit`` of 50, so the user's next commit repacked the whole store)."""
    c = TrackingClient(str(repo))
    ids = _bulk(c, 1500)
    report = compact(c.repo.store, batch_size=100)
    assert len(report.batches) == 15 and len(report.archived) == 1500
    git_dir = repo / ".git"
    assert maintain.unkept_packs(git_dir) < maintain.pack_threshold(git_dir)
    res = subprocess.run(["git", "-c", "gc.autoDetach=false", "-c", "gc.autoPackLimit=8", "gc",
                          "--auto"], cwd=repo, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0 and res.stdout + res.stderr == ""
    assert_fsck_clean(repo)
    fresh = TrackingClient(str(repo))
    assert [fresh.get_run(rid).data.params for rid in ids[::150]] == [
        {"i": i} for i in range(0, 1500, 150)
    ]
