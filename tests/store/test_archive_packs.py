"""Compaction leaves git's automatic gc nothing to do: its batches' packs are rolled up.

A real repository, real git (``gc --auto``, ``fsck``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import assert_fsck_clean, git
from tests.store.test_archive import _bulk
from vtrack.client import TrackingClient
from vtrack.store import archive, maintain
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


def test_compacting_that_leaves_many_loose_refs_does_not_wait_for_itself(repo: Path) -> None:
    """Before: the roll-up at the end of a compaction also ran the automatic compaction,
    which waited for the archive lock the compaction itself held (600 s, then gave up)
    whenever 1,000 or more runs kept their refs and they outnumbered
    ``vtrack.archive.auto``."""
    c = TrackingClient(str(repo))
    _bulk(c, 1300)
    for line in git(repo, "for-each-ref", "--format=%(objectname) %(refname)",
                    "refs/vtrack/runs/").splitlines():  # fmt: skip
        sha, name = line.split()  # each run ref loose too, as a pull leaves them
        (repo / ".git" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / ".git" / name).write_text(sha + "\n")
    assert maintain.loose_run_refs(repo / ".git") == 1300
    git(repo, "config", "vtrack.archive.auto", "100")
    git(repo, "config", "vtrack.archive.keep", "50")
    lock = repo / ".git" / "vtrack" / archive.ARCHIVE_LOCK
    waits: list[float] = []
    real = archive.lock_file

    def recording(path: Path, *, timeout: float, stale_seconds: float) -> Any:
        waits.append(timeout)
        assert len(waits) == 1 or not lock.exists(), "a compaction waited for its own lock"
        return real(path, timeout=timeout, stale_seconds=stale_seconds)

    archive.lock_file = recording  # type: ignore[assignment]
    try:
        report = archive.compact(c.repo.store, keep=1200, batch_size=50)
    finally:
        archive.lock_file = real  # type: ignore[assignment]
    assert len(report.archived) == 100 and len(waits) == 1
    assert len(c.repo.store.refs.list_loose_runs()) == 1200  # the kept runs' own refs
