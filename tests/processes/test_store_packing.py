"""The store packing itself next to a live run in another process (issue 15, point 1):
vtrack's geometric repacks and ref packing at run end, then the user's `git gc --prune=now`,
must leave the live run whole."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vtrack
from tests.conftest import ROOT, assert_fsck_clean, git, wait_for_line
from vtrack.store import maintain

pytestmark = pytest.mark.processes


def test_compaction_and_prune_now_next_to_a_live_run(repo: Path) -> None:
    code = """
        import sys, vtrack
        from vtrack.client import TrackingClient
        run = vtrack.start_run(run_name="live")
        vtrack.log_params({"p": 1})
        vtrack.log_text("kept words", "notes/a.txt")
        for i in range(500):
            vtrack.log_metric("loss", 1 / (i + 1), step=i)
        TrackingClient().checkpoint(run.info.run_id)
        vtrack.log_text("journal only", "notes/b.txt")  # a held pack, no commit yet
        print("RUN", run.info.run_id, flush=True)
        sys.stdin.readline()
        for i in range(500, 1000):
            vtrack.log_metric("loss", 1 / (i + 1), step=i)
        vtrack.end_run()
        print("DONE", flush=True)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), VTRACK_FLUSH_SECONDS="0.05",
               VTRACK_CHECKPOINT_SECONDS="3600")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=repo, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    live_id = wait_for_line(proc, "RUN").split()[1]
    ids = []
    for i in range(maintain.PACKS_AT + 2):  # enough run ends to roll packs up at least once
        with vtrack.start_run() as run:
            vtrack.log_metrics({"acc": i / 10, "loss": 1 - i / 10})
            vtrack.log_text(f"note {i}", "n.txt")
            ids.append(run.info.run_id)
    assert maintain.loose_run_refs(repo / ".git") < len(ids)  # refs were packed meanwhile
    git(repo, "gc", "-q", "--prune=now")
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "DONE" in out
    assert_fsck_clean(repo)
    assert vtrack.load_text(f"runs:/{live_id}/notes/a.txt") == "kept words"
    assert vtrack.load_text(f"runs:/{live_id}/notes/b.txt") == "journal only"
    assert len(vtrack.get_metric_history(live_id, "loss")) == 1000
    for i, rid in enumerate(ids):
        assert vtrack.load_text(f"runs:/{rid}/n.txt") == f"note {i}"
    assert maintain.unkept_packs(repo / ".git") <= maintain.PACKS_AT
