"""Uploads killed halfway: the store stays consistent and gc finds nothing it must keep."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import vtrack
from tests.conftest import assert_fsck_clean, reap, run_script, wait_for_line
from vtrack.gc import collect_garbage
from vtrack.hashing import hash_file

pytestmark = pytest.mark.processes

FAST = {"VTRACK_FLUSH_SECONDS": "0.1", "VTRACK_CHECKPOINT_SECONDS": "3600"}
MiB = 1024 * 1024


def _finished_objects(repo: Path) -> list[Path]:
    root = repo / ".git" / "vtrack" / "objects"
    return sorted(p for p in root.glob("??/*") if p.is_file()) if root.exists() else []


def _temp_files(repo: Path) -> list[Path]:
    tmp = repo / ".git" / "vtrack" / "objects" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def _big_file(path: Path, size: int) -> str:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)
    return hash_file(path)[0]


def test_upload_killed_halfway_leaves_no_object_no_entry_and_a_clean_store(
    repo: Path, tmp_path: Path
) -> None:
    src = tmp_path / "weights.bin"
    _big_file(src, 64 * MiB)
    # A slow disk (10 ms per 1 MiB chunk) so the kill lands in the middle of the copy.
    proc = run_script(
        f"""
        import time, vtrack
        import os
        from vtrack.store import fs
        real = fs._LocalWriter.write
        def slow(self, data):
            time.sleep(0.01)
            return real(self, data)
        fs._LocalWriter.write = slow
        os.copy_file_range = None  # no kernel-side copy: the slow writes are the copy
        run = vtrack.start_run()
        vtrack.log_text("before the crash", "notes.txt")
        print("RUN", run.info.run_id, flush=True)
        vtrack.log_artifact({str(src)!r}, artifact_path="model")
        print("DONE", flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        temps = _temp_files(repo)
        if temps and temps[0].stat().st_size >= 8 * MiB:
            break
        time.sleep(0.005)
    else:
        raise AssertionError("the upload never started")
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    partial = _temp_files(repo)
    assert partial and partial[0].stat().st_size < 64 * MiB  # it really was cut short

    run = vtrack.get_run(run_id)  # recovers the run from its journal
    assert run.info.status == "KILLED"
    assert sorted(run.inputs.artifacts) == ["notes.txt"]  # logged before: kept; the upload: absent
    assert _finished_objects(repo) == []  # no partial object under a final name
    assert vtrack.load_text(f"runs:/{run_id}/notes.txt") == "before the crash"
    assert_fsck_clean(repo)

    report = collect_garbage(vtrack.TrackingClient().repo, grace_seconds=0)
    assert report.objects_removed == [] and report.objects_referenced == 0
    assert report.temp_files_removed == 1
    assert _temp_files(repo) == []
    # and the same file logs fine afterwards
    with vtrack.start_run() as again:
        vtrack.log_artifact(src, artifact_path="model")
    assert (
        vtrack.get_run(again.info.run_id).inputs.artifacts["model/weights.bin"]["size"] == 64 * MiB
    )
    assert_fsck_clean(repo)


def test_kill_between_stored_object_and_manifest_entry_leaves_an_orphan_gc_removes(
    repo: Path, tmp_path: Path
) -> None:
    src = tmp_path / "weights.bin"
    digest = _big_file(src, 16 * MiB)
    proc = run_script(
        f"""
        import os, signal, vtrack
        from vtrack.store import writer
        def die(self, *a, **kw):
            os.kill(os.getpid(), signal.SIGKILL)
        writer.RunWriter.add_artifact = die
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        vtrack.log_artifact({str(src)!r})
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    reap(proc, timeout=60)  # type: ignore[arg-type]
    assert proc.returncode == -signal.SIGKILL  # type: ignore[union-attr]
    run = vtrack.get_run(run_id)
    assert run.info.status == "KILLED" and run.inputs.artifacts == {}
    [obj] = _finished_objects(repo)
    assert obj.parent.name + obj.name == digest.split(":")[1]
    assert_fsck_clean(repo)

    client = vtrack.TrackingClient()
    kept = collect_garbage(client.repo)  # the default grace period covers an upload in progress
    assert kept.objects_removed == [] and kept.objects_kept_young == 1
    removed = collect_garbage(client.repo, grace_seconds=0)
    assert removed.objects_removed == [digest] and removed.bytes_freed == 16 * MiB
    assert _finished_objects(repo) == []
    assert_fsck_clean(repo)


def test_gc_in_another_process_keeps_what_a_live_run_journaled(repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "live.bin"
    digest = _big_file(src, 9 * MiB)
    proc = run_script(
        f"""
        import time, vtrack
        run = vtrack.start_run()
        vtrack.log_artifact({str(src)!r})
        print("RUN", run.info.run_id, flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    try:
        run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
        # only the journal knows the artifact: the run's commit does not list it yet
        res = subprocess.run(
            ["git", "show", f"refs/vtrack/runs/{run_id}:.vtrack/artifacts.yaml"],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        assert res.returncode != 0
        report = collect_garbage(vtrack.TrackingClient().repo, grace_seconds=0)
        assert report.objects_referenced == 1 and report.objects_removed == []
        assert [p.parent.name + p.name for p in _finished_objects(repo)] == [digest.split(":")[1]]
    finally:
        proc.kill()  # type: ignore[union-attr]
        reap(proc)  # type: ignore[arg-type]
    # the dead writer's journal still counts until recovery commits it
    report = collect_garbage(vtrack.TrackingClient().repo, grace_seconds=0)
    assert report.objects_removed == []
    assert vtrack.get_run(run_id).inputs.artifacts["live.bin"]["digest"] == digest
