"""vtrack gc and the temp files of uploads: dead uploads' files go, live uploads' files stay.

Real processes upload a "large" artifact (``VTRACK_LARGE_FILE_THRESHOLD`` makes 4 MiB
large). An audit hook in each child reacts to the moment its finished copy is opened
to be hashed (the temp file is complete, nothing is published yet): one child SIGKILLs
itself there, the other blocks there until the test lets it go. Nothing is patched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vtrack
from tests.cli.conftest import vt
from tests.conftest import ROOT, assert_fsck_clean, wait_for_line
from vtrack.artifacts import object_store
from vtrack.hashing import hash_file

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

MiB = 1024 * 1024
SIZE = 4 * MiB

UPLOAD = textwrap.dedent(
    """\
    import os, signal, sys, time
    import vtrack

    role, src, go = sys.argv[1:4]
    hit = []

    def hook(event, args):
        # the finished temp copy opened for hashing: complete, not yet published
        if hit or event != "open" or not isinstance(args[0], str):
            return
        path = args[0]
        if f"{os.sep}objects{os.sep}tmp{os.sep}" not in path or args[2] & os.O_CREAT:
            return
        hit.append(path)
        if role == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("BLOCKED", path, flush=True)
        while not os.path.exists(go):
            time.sleep(0.01)

    with vtrack.start_run(run_name=role) as run:
        print("RUN", run.info.run_id, flush=True)
        sys.addaudithook(hook)
        vtrack.log_artifact(src, "model")
    print("DONE", flush=True)
    """
)


def _upload(repo: Path, tmp_path: Path, role: str, src: Path) -> subprocess.Popen[str]:
    script = tmp_path / "upload.py"
    script.write_text(UPLOAD)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["VTRACK_LARGE_FILE_THRESHOLD"] = str(MiB)
    return subprocess.Popen(
        [sys.executable, str(script), role, str(src), str(tmp_path / "go")],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _temps(repo: Path) -> list[str]:
    tmp = repo / ".git" / "vtrack" / "objects" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


def test_gc_removes_a_killed_uploads_temp_and_spares_a_live_one_even_with_grace_0(
    repo: Path, tmp_path: Path
) -> None:
    dead_src, live_src = tmp_path / "dead.bin", tmp_path / "live.bin"
    dead_src.write_bytes(os.urandom(SIZE))
    live_src.write_bytes(os.urandom(SIZE))

    killed = _upload(repo, tmp_path, "kill", dead_src)
    _, err = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, err
    (dead_temp,) = _temps(repo)
    assert os.path.getsize(repo / ".git/vtrack/objects/tmp" / dead_temp) == SIZE

    live = _upload(repo, tmp_path, "block", live_src)
    live_run = wait_for_line(live, "RUN").split()[1]
    live_temp = Path(wait_for_line(live, "BLOCKED").split(" ", 1)[1]).name
    assert sorted(_temps(repo)) == sorted([dead_temp, live_temp])

    # a dry run reports the dead upload's temp file and its bytes, and removes nothing
    res = vt(repo, "gc", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert [t["name"] for t in report["temp_files"]] == [dead_temp]
    assert report["temp_files_removed"] == 1 and report["temp_bytes_freed"] == SIZE
    assert "gone" in report["temp_files"][0]["reason"]
    assert report["temp_files_kept"] == 1
    text = vt(repo, "gc", "--dry-run")
    assert "would remove 1 temp file(s) of interrupted uploads, 4.0 MiB freed" in text.stdout
    assert dead_temp in text.stdout and live_temp not in text.stdout
    assert sorted(_temps(repo)) == sorted([dead_temp, live_temp])

    # --grace 0 removes the dead upload's temp file, not the one still being written
    res = vt(repo, "gc", "--grace", "0", "--json")
    assert res.exit_code == 0, res.stderr
    assert [t["name"] for t in res.json()["temp_files"]] == [dead_temp]
    assert _temps(repo) == [live_temp]

    (tmp_path / "go").touch()
    out, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    assert "DONE" in out and "cannot write" not in err
    assert _temps(repo) == []

    entry = vtrack.get_run(live_run).inputs.artifacts["model/live.bin"]
    digest, _ = hash_file(live_src)
    assert entry["digest"] == digest and entry["size"] == SIZE
    objects = object_store(vtrack.TrackingClient().store)
    assert objects.verify(digest)
    with objects.open(digest) as f:
        assert f.read() == live_src.read_bytes()
    assert_fsck_clean(repo)
