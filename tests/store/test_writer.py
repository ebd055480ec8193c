"""Run writers: chunked histories and incremental checkpoints."""

from __future__ import annotations

from pathlib import Path

import vtrack
from tests.conftest import assert_fsck_clean, git
from vtrack.limits import HISTORY_CHUNK_ROWS
from vtrack.store.writer import live_writers


def test_history_is_split_into_fixed_size_chunks(repo: Path) -> None:
    n = HISTORY_CHUNK_ROWS * 2 + 123
    with vtrack.start_run() as run:
        for i in range(n):
            vtrack.log_metric("loss", float(i), step=i)
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    names = git(repo, "ls-tree", "--name-only", f"{ref}:.vtrack/metrics/loss").splitlines()
    assert names == ["000000.tsv", "000001.tsv", "000002.tsv"]
    sizes = [len(git(repo, "show", f"{ref}:.vtrack/metrics/loss/{n}").splitlines()) for n in names]
    assert sizes == [HISTORY_CHUNK_ROWS, HISTORY_CHUNK_ROWS, 123]
    hist = vtrack.get_metric_history(run.info.run_id, "loss")
    assert [h.value for h in hist] == [float(i) for i in range(n)]
    assert_fsck_clean(repo)


def test_checkpoint_reuses_committed_chunks(repo: Path) -> None:
    with vtrack.start_run() as run:
        for i in range(HISTORY_CHUNK_ROWS + 10):
            vtrack.log_metric("m", float(i), step=i)
        w = next(w for w in live_writers() if w.run_id == run.info.run_id)
        first = w.checkpoint()
        vtrack.log_metric("m", -1.0, step=10**6)
        second = w.checkpoint()
        assert first and second and first != second
        # looked at while live: the end of the run drops superseded checkpoints
        ref_a = f"{first}:.vtrack/metrics/m/000000.tsv"
        ref_b = f"{second}:.vtrack/metrics/m/000000.tsv"
        assert git(repo, "rev-parse", ref_a) == git(repo, "rev-parse", ref_b)
        assert git(repo, "rev-parse", f"{first}:.vtrack/metrics/m/000001.tsv") != git(
            repo, "rev-parse", f"{second}:.vtrack/metrics/m/000001.tsv"
        )
        # every checkpoint has the code commit as parent, not the previous checkpoint
        assert git(repo, "rev-parse", f"{first}^") == git(repo, "rev-parse", f"{second}^")


def test_metric_keys_with_slashes_become_folders(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_metric("val/loss", 1.0)
        vtrack.log_metric("val", 2.0)
        vtrack.log_metric("system/cpu percent", 3.0)
    r = vtrack.get_run(run.info.run_id)
    assert r.data.metrics == {"val/loss": 1.0, "val": 2.0, "system/cpu percent": 3.0}
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    assert git(repo, "show", f"{ref}:.vtrack/metrics/val/loss/000000.tsv").endswith("\t1.0")
    assert vtrack.get_metric_history(run.info.run_id, "val")[0].value == 2.0
