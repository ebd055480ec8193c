"""The user's own git maintenance next to live runs: real `git gc`, real `git gc --prune=now`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import vtrack
from tests.conftest import assert_fsck_clean, git, wait_for_line

pytestmark = pytest.mark.processes

FAST = {"VTRACK_FLUSH_SECONDS": "0.05", "VTRACK_CHECKPOINT_SECONDS": "3600"}


def _step(proc: subprocess.Popen[str], word: str) -> None:
    """Tell a child waiting on stdin to go on."""
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def _spawn(code: str, repo: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os
    import sys
    import textwrap

    from tests.conftest import ROOT

    full = dict(os.environ, PYTHONPATH=str(ROOT), **FAST, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=repo, env=full, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_git_gc_removing_fanout_folders_does_not_break_the_next_writes(repo: Path) -> None:
    """git gc packs loose objects and removes the emptied objects/xx/ folders; the writer
    used to remember the folders it had made and failed with ENOENT on the next write."""
    for i in range(300):  # the user's own loose objects, in most fan-out folders
        (repo / "src" / f"m{i}.py").parent.mkdir(exist_ok=True)
        (repo / "src" / f"m{i}.py").write_text(f"X = {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "many files")
    proc = _spawn(
        """
        import sys, vtrack
        run = vtrack.start_run()
        # objects in most of the 256 fan-out folders, committed so that gc packs them
        vtrack.log_metrics({f"a{i}": float(i) for i in range(400)})
        vtrack.log_params({f"p{i}": i for i in range(200)})
        from vtrack.client import TrackingClient
        TrackingClient().checkpoint(run.info.run_id)
        print("RUN", run.info.run_id, flush=True)
        sys.stdin.readline()
        vtrack.log_metrics({f"b{i}": float(i) for i in range(400)})
        vtrack.log_params({f"q{i}": i for i in range(200)})
        TrackingClient().checkpoint(run.info.run_id)
        vtrack.end_run()
        print("DONE", flush=True)
        """,
        repo,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]
    before = {p.name for p in (repo / ".git/objects").iterdir() if len(p.name) == 2}
    git(repo, "gc", "-q")
    after = {p.name for p in (repo / ".git/objects").iterdir() if len(p.name) == 2}
    assert len(before - after) > 50, "git gc should have removed emptied fan-out folders"
    _step(proc, "go")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "DONE" in out
    run = vtrack.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(run.data.metrics) == 800 and len(run.data.params) == 400
    assert_fsck_clean(repo)


def test_prune_now_during_a_run_keeps_what_the_journal_references(repo: Path) -> None:
    """A small artifact's blob was referenced only by the journal until the next
    checkpoint, so `git gc --prune=now` deleted it: fsck reported a missing blob and
    every later `git gc` failed."""
    proc = _spawn(
        """
        import sys, vtrack
        run = vtrack.start_run()
        vtrack.log_text("precious words " * 40, "notes/words.txt")
        vtrack.log_dict({"layers": [64, 32]}, "config.yaml")
        for i in range(25_000):   # more than one full history chunk, journaled only
            vtrack.log_metric("loss", 1.0 / (i + 1), step=i)
        vtrack.log_metric("loss", 0.0, step=25_000, synchronous=True)
        print("RUN", run.info.run_id, flush=True)
        sys.stdin.readline()
        vtrack.end_run()
        print("DONE", flush=True)
        """,
        repo,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]
    git(repo, "gc", "-q", "--prune=now")
    _step(proc, "go")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert_fsck_clean(repo)
    assert vtrack.load_text(f"runs:/{run_id}/notes/words.txt") == "precious words " * 40
    assert vtrack.load_dict(f"runs:/{run_id}/config.yaml") == {"layers": [64, 32]}
    assert len(vtrack.get_metric_history(run_id, "loss")) == 25_001
    git(repo, "gc", "-q")  # the user's next gc still works
    git(repo, "gc", "-q", "--prune=now")
    assert_fsck_clean(repo)


@pytest.mark.slow
def test_gc_and_prune_now_looping_next_to_writers(repo: Path) -> None:
    """Four writer processes make runs with metrics, params and artifacts, checkpointing
    often, while `git gc` and `git gc --prune=now` run in a loop beside them."""
    env = {"VTRACK_CHECKPOINT_SECONDS": "0.1", "VTRACK_FLUSH_SECONDS": "0.02"}
    code = """
        import sys, time, vtrack
        tag = sys.argv[1]
        for r in range(4):
            with vtrack.start_run(run_name=f"{tag}-{r}") as run:
                vtrack.log_params({"writer": tag, "round": r})
                for i in range(300):
                    vtrack.log_metric("loss", i / 300, step=i)
                    if i % 60 == 0:
                        vtrack.log_text(f"{tag} {r} {i}", f"notes/{i}.txt")
                        time.sleep(0.05)
                print("RUN", run.info.run_id, flush=True)
        """
    import os
    import sys
    import textwrap

    from tests.conftest import ROOT

    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    writers = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), f"w{k}"], cwd=repo,
                         env=full, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for k in range(4)
    ]  # fmt: skip
    rounds = busy = 0
    while any(w.poll() is None for w in writers):
        for args in (["gc", "-q"], ["gc", "-q", "--prune=now"]):
            res = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
            if res.returncode != 0 and (
                "gc is already running" in res.stderr or "gc.pid.lock': File exists" in res.stderr
            ):
                busy += 1  # a writer merging its packs holds git's gc lock for a moment,
                continue  # as a second `git gc` would (git's own refusal, nothing lost)
            assert res.returncode == 0, res.stderr
            rounds += 1
        time.sleep(0.01)
    outs = [w.communicate(timeout=60) for w in writers]
    for w, (_out, err) in zip(writers, outs, strict=True):
        assert w.returncode == 0, err
    assert rounds >= 4 and busy <= rounds
    run_ids = [
        line.split()[1] for out, _ in outs for line in out.splitlines() if line.startswith("RUN")
    ]
    assert len(run_ids) == 16
    for run_id in run_ids:
        run = vtrack.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert [m.step for m in vtrack.get_metric_history(run_id, "loss")] == list(range(300))
        tag, r = run.data.params["writer"], run.data.params["round"]
        for i in range(0, 300, 60):
            assert vtrack.load_text(f"runs:/{run_id}/notes/{i}.txt") == f"{tag} {r} {i}"
    assert_fsck_clean(repo)
    git(repo, "gc", "-q")
    git(repo, "gc", "-q", "--prune=now")
    assert_fsck_clean(repo)


def test_a_run_ends_after_git_gc_removed_the_packs_its_checkpoints_published(
    repo: Path,
) -> None:
    """Regression: ending a run absorbs its earlier checkpoint packs into the last one;
    when the user's ``git gc`` had repacked and removed a published one (a ref reached it,
    so it is no longer kept), ``end_run`` failed with "could not read the pack …"."""
    from vtrack.fluent import tracking_client

    with vtrack.start_run() as run:
        rid = run.info.run_id
        for step in range(3):
            vtrack.log_metric("loss", 1.0 / (step + 1), step=step)
            tracking_client().checkpoint(rid)  # each checkpoint publishes a pack
        git(repo, "gc", "-q", "--prune=now")  # repacks the published packs and removes them
        vtrack.log_metric("loss", 0.1, step=3)
    run_after = vtrack.get_run(rid)
    assert run_after.info.status == "FINISHED"
    assert [m.value for m in vtrack.get_metric_history(rid, "loss")][-1] == 0.1
    assert_fsck_clean(repo)
