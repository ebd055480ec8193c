"""Recovery: runs whose writer was SIGKILLed are finalized KILLED from their journals.

Every dead writer here is a real process that died (mostly by SIGKILL); git reads the
result (``git show``, ``git fsck``).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_fsck_clean, git, reap, run_script
from vtrack.store import Store
from vtrack.store.journal import list_writers
from vtrack.store.owner import Owner
from vtrack.store.packs import KEEP_PREFIX
from vtrack.store.recover import (
    clear_stale_locks,
    recover_all,
    recover_run,
    release_dead_keeps,
)

pytestmark = pytest.mark.processes

#: The background flusher and checkpoints stay out of the way: the script decides.
QUIET = {"VTRACK_FLUSH_SECONDS": "3600", "VTRACK_CHECKPOINT_SECONDS": "3600"}

KILLED_WRITER = """
import os, signal, sys, vtrack
from vtrack.store.writer import live_writers

n, checkpoint_after = {n}, {checkpoint_after}
run = vtrack.start_run(run_name="doomed")
vtrack.log_params({{"lr": 0.1}})
for i in range(n):
    if i == checkpoint_after:
        live_writers()[0].checkpoint()
    vtrack.log_metric("loss", 1.0 / (i + 1), step=i)
vtrack.set_tag("phase", "training")
vtrack.log_metric("loss", 0.0, step=n, synchronous=True)  # everything is in the journal
{before_kill}
print(run.info.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_run(repo: Path, n: int = 300, checkpoint_after: int = -1, before_kill: str = "") -> str:
    """Run a real writer that SIGKILLs itself with everything journaled; return the run id."""
    code = KILLED_WRITER.format(n=n, checkpoint_after=checkpoint_after, before_kill=before_kill)
    res = run_script(code, cwd=repo, env=QUIET)
    assert res.returncode == -signal.SIGKILL, res.stderr  # type: ignore[union-attr]
    return res.stdout.split()[0]  # type: ignore[union-attr]


def record_tree(repo: Path, sha: str) -> str:
    return git(repo, "rev-parse", f"{sha}:.vtrack")


def test_sigkilled_writer_is_finalized_killed_with_its_journal(repo: Path) -> None:
    run_id = killed_run(repo, n=300)
    store = Store.open(str(repo))
    before = store.run_tip(run_id)
    assert before is not None
    assert "status: RUNNING" in git(repo, "show", f"{before}:.vtrack/run.yaml")
    (writer,) = list_writers(store.run_live_dir(run_id))
    assert not writer.is_alive()
    last_write = max(os.stat(s).st_mtime for s in writer.segments)
    size = sum(os.path.getsize(s) for s in writer.segments)

    sha = recover_run(store, run_id)

    assert sha is not None and store.run_tip(run_id) == sha
    state, _, parent = store.read_run_commit(sha)
    assert state.info["status"] == "KILLED"
    assert state.info["end_time"] == int(last_write * 1000)
    assert state.params == {"lr": 0.1} and state.tags == {"phase": "training"}
    assert [r[0] for r in state.iter_history("loss")] == list(range(301))
    assert state.metrics == {"loss": 0.0}
    assert parent == git(repo, "rev-parse", "HEAD")  # still on the code commit
    message = git(repo, "log", "-1", "--format=%B", sha)
    assert f"journal: {writer.writer_id} 0 {size}" in message.splitlines()
    assert "status: KILLED" in git(repo, "show", f"{sha}:.vtrack/run.yaml")
    assert list_writers(store.run_live_dir(run_id)) == []  # journal and owner file removed
    assert_fsck_clean(repo)


def test_recovery_run_twice_changes_nothing_the_second_time(repo: Path) -> None:
    run_id = killed_run(repo, n=50)
    store = Store.open(str(repo))
    sha = recover_run(store, run_id)
    assert sha is not None
    assert recover_run(store, run_id) is None
    assert store.run_tip(run_id) == sha
    assert recover_all(store) == []
    assert store.run_tip(run_id) == sha


def test_recovery_killed_before_removing_the_journal_applies_nothing_twice(
    repo: Path, tmp_path: Path
) -> None:
    run_id = killed_run(repo, n=200)
    store = Store.open(str(repo))
    live = store.run_live_dir(run_id)
    saved = tmp_path / "saved-journal"
    shutil.copytree(live, saved)  # copy2: mtimes too
    first = recover_run(store, run_id)
    assert first is not None and list_writers(live) == []
    shutil.copytree(
        saved, live, dirs_exist_ok=True
    )  # as if recovery died right after its ref update
    second = recover_run(store, run_id)
    tip = store.run_tip(run_id)
    assert tip is not None
    assert record_tree(repo, tip) == record_tree(repo, first)  # the same record
    state, _, _ = store.read_run_commit(tip)
    assert [r[0] for r in state.iter_history("loss")] == list(range(201))
    assert second is None or second == tip
    assert list_writers(live) == []
    assert recover_run(store, run_id) is None


def test_recovery_after_a_checkpoint_replays_only_what_followed_it(repo: Path) -> None:
    run_id = killed_run(repo, n=400, checkpoint_after=150)
    store = Store.open(str(repo))
    committed, _, _ = store.read_run_commit(store.run_tip(run_id))  # type: ignore[arg-type]
    assert [r[0] for r in committed.iter_history("loss")] == list(range(150))
    sha = recover_run(store, run_id)
    assert sha is not None
    state, _, _ = store.read_run_commit(sha)
    assert [r[0] for r in state.iter_history("loss")] == list(range(401))
    assert state.info["status"] == "KILLED"
    assert_fsck_clean(repo)


def test_live_writer_is_left_alone_until_it_dies(repo: Path) -> None:
    code = (
        "import sys, vtrack\n"
        "run = vtrack.start_run()\n"
        "vtrack.log_metric('m', 1.0, synchronous=True)\n"
        "print(run.info.run_id, flush=True)\n"
        "sys.stdin.read()\n"  # alive until the test lets go
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), **QUIET)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=repo, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    store = Store.open(str(repo))
    tip = store.run_tip(run_id)
    try:
        assert recover_run(store, run_id) is None
        assert recover_all(store) == []
        assert store.run_tip(run_id) == tip
        (writer,) = list_writers(store.run_live_dir(run_id))
        assert writer.is_alive() and writer.segments[0].exists()
    finally:
        proc.kill()
        reap(proc)
    assert recover_all(store) == [run_id]
    state, _, _ = store.read_run_commit(store.run_tip(run_id))  # type: ignore[arg-type]
    assert state.info["status"] == "KILLED" and state.metrics == {"m": 1.0}


def test_ref_lock_left_by_a_killed_writer_blocks_recovery_until_cleared(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the writer dies holding its run ref's lock, as if killed inside a checkpoint
    run_id = killed_run(
        repo, n=20,
        before_kill=(
            "from pathlib import Path\n"
            "from vtrack.store.fileio import acquire_lock\n"
            "acquire_lock(Path('.git/refs/vtrack/runs') / (run.info.run_id + '.lock'), timeout=5)"
        ),
    )  # fmt: skip
    store = Store.open(str(repo))
    lock = repo / ".git/refs/vtrack/runs" / f"{run_id}.lock"
    assert lock.exists()
    tip = store.run_tip(run_id)
    with caplog.at_level(logging.WARNING, logger="vtrack"):
        assert recover_run(store, run_id) is None
    assert run_id in caplog.text and str(lock) in caplog.text
    assert store.run_tip(run_id) == tip and store.run_live_dir(run_id).exists()
    assert clear_stale_locks(store) == [lock]
    assert not lock.exists()
    assert recover_run(store, run_id) is not None
    assert "status: KILLED" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")


def test_clear_stale_locks_removes_only_locks_of_dead_vtrack_processes(
    repo: Path, dead_owner: Owner, live_owner: Owner
) -> None:
    store = Store.open(str(repo))
    runs = repo / ".git/refs/vtrack/runs"
    run_dir = store.run_live_dir("d" * 32)
    runs.mkdir(parents=True)
    run_dir.mkdir(parents=True)
    dead = [runs / "a.lock", run_dir / "end.lock"]
    kept = [runs / "b.lock", runs / "c.lock", run_dir / "recover.lock"]
    for path in dead:
        path.write_bytes(dead_owner.to_json())
    kept[0].write_bytes(live_owner.to_json())
    kept[1].write_bytes(b"")  # git's own
    kept[2].write_bytes(live_owner.to_json())
    assert sorted(clear_stale_locks(store)) == sorted(dead)
    assert [p.exists() for p in dead + kept] == [False, False, True, True, True]


PUBLISH_AND_EXIT = """
import sys
from pathlib import Path
from vtrack.store.gitobj import GitObjects
objects = GitObjects(Path(".git"))
with objects.batch() as batch:
    sha = objects.write_blob(b"written by a writer that then died")
print(sha, batch.handle.keep_path)
"""


def test_dead_writers_keep_is_released_and_git_then_collects_its_pack(repo: Path) -> None:
    res = run_script(PUBLISH_AND_EXIT, cwd=repo)
    assert res.returncode == 0, res.stderr  # type: ignore[union-attr]
    dead_sha, dead_keep = res.stdout.split()  # type: ignore[union-attr]
    store = Store.open(str(repo))
    with store.objects.batch() as mine:
        my_sha = store.objects.write_blob(b"written by this live process")
    assert mine.handle is not None
    foreign = store.objects.pack_dir / "pack-0000000000000000000000000000000000000000.keep"
    foreign.write_bytes(b"receive-pack 12345 on somewhere\n")
    assert Path(dead_keep).read_bytes().startswith(KEEP_PREFIX)

    assert release_dead_keeps(store) == 1

    assert not Path(dead_keep).exists()
    assert mine.handle.keep_path.exists() and foreign.exists()
    assert release_dead_keeps(store) == 0
    git(repo, "gc", "-q", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", dead_sha], cwd=repo).returncode != 0
    assert git(repo, "cat-file", "blob", my_sha) == "written by this live process"


def test_artifact_of_a_killed_writer_survives_until_recovery_commits_it(
    repo: Path, tmp_path: Path
) -> None:
    # recover_all releases dead writers' .keep files, then recovers their runs; a
    # `git gc --prune=now` may run in between (DESIGN.md section 6): the artifact
    # blob the journal names must still be there when recovery commits it
    artifact = tmp_path / "outside" / "weights.txt"  # not in the code snapshot
    artifact.parent.mkdir()
    artifact.write_text("trained weights\n")
    run_id = killed_run(repo, n=5, before_kill=f"vtrack.log_artifact({str(artifact)!r})")
    store = Store.open(str(repo))
    release_dead_keeps(store)
    git(repo, "gc", "-q", "--prune=now")
    sha = recover_run(store, run_id)
    assert sha is not None
    blob = git(repo, "rev-parse", f"{sha}:.vtrack/artifacts/weights.txt")
    assert git(repo, "cat-file", "blob", blob) == "trained weights"
    assert_fsck_clean(repo)


def test_dead_writer_of_a_deleted_run_leaves_nothing_behind(repo: Path) -> None:
    run_id = killed_run(repo, n=5)
    store = Store.open(str(repo))
    git(repo, "update-ref", "-d", f"refs/vtrack/runs/{run_id}")
    assert recover_run(store, run_id) is None
    assert list_writers(store.run_live_dir(run_id)) == []
    recover_all(store)
    assert not store.run_live_dir(run_id).exists()
