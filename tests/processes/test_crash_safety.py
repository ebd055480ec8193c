"""Real processes: SIGKILL, SIGTERM, exit paths, concurrent writers, shared runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import vtrack
from tests.conftest import assert_fsck_clean, git, reap, run_script, wait_for_line

pytestmark = pytest.mark.processes

FAST = {"VTRACK_FLUSH_SECONDS": "0.1", "VTRACK_CHECKPOINT_SECONDS": "3600"}


def test_sigkilled_run_is_recovered_as_killed_with_every_flushed_metric(repo: Path) -> None:
    n = 500
    proc = run_script(
        f"""
        import sys, time, vtrack
        run = vtrack.start_run(run_name="doomed")
        vtrack.log_params({{"lr": 0.1}})
        for i in range({n}):
            vtrack.log_metric("loss", 1.0 / (i + 1), step=i)
        vtrack.set_tag("phase", "training")
        print("RUN", run.info.run_id, flush=True)
        time.sleep(0.5)   # past one flush interval
        print("FLUSHED", flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    wait_for_line(proc, "FLUSHED")  # type: ignore[arg-type]
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    assert proc.returncode == -signal.SIGKILL  # type: ignore[union-attr]
    # the committed ref still says RUNNING: only the journal has the data
    assert "status: RUNNING" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    run = vtrack.get_run(run_id)  # any reading call recovers
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.params == {"lr": 0.1}
    assert run.data.tags == {"phase": "training"}
    hist = vtrack.get_metric_history(run_id, "loss")
    assert len(hist) == n and [h.step for h in hist] == list(range(n))
    assert "status: KILLED" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    assert not (repo / ".git/vtrack/live" / run_id).exists()
    assert_fsck_clean(repo)


def test_vtrack_recover_command_finalizes_killed_run(repo: Path) -> None:
    proc = run_script(
        """
        import time, vtrack
        run = vtrack.start_run()
        vtrack.log_metric("m", 1.0, synchronous=True)
        print("RUN", run.info.run_id, flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    # while the writer lives, recovery leaves it alone
    out = subprocess.run(["vtrack", "recover", "--json"], cwd=repo, capture_output=True, text=True)
    assert json.loads(out.stdout) == {"recovered": []}
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    out = subprocess.run(["vtrack", "recover", "--json"], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"recovered": [run_id]}
    assert "status: KILLED" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    assert "m: 1.0" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/metrics.yaml")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("pass", "FINISHED", 0),
        ("raise ValueError('boom')", "FAILED", 1),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGTERM); import time; time.sleep(30)",
            "KILLED",
            -15,
        ),
    ],
)
def test_interpreter_exit_paths_end_the_active_run(
    repo: Path, body: str, status: str, code: int
) -> None:
    res = run_script(
        f"""
        import vtrack
        run = vtrack.start_run()
        vtrack.log_metric("m", 1.0)
        print(run.info.run_id, flush=True)
        {body}
        """,
        cwd=repo,
    )
    assert res.returncode == code, res.stderr  # type: ignore[union-attr]
    run_id = res.stdout.split()[0]  # type: ignore[union-attr]
    text = git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    assert f"status: {status}" in text
    assert "m: 1.0" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/metrics.yaml")
    assert not (repo / ".git/vtrack/live" / run_id).exists()


def test_four_processes_twenty_five_runs_each(repo: Path) -> None:
    code = """
        import vtrack
        vtrack.set_experiment("sweep")
        for i in range(25):
            with vtrack.start_run(run_name=f"p{WORKER}-{i}"):
                vtrack.log_params({"worker": WORKER, "i": i})
                for s in range(5):
                    vtrack.log_metric("loss", 1.0 / (s + 1), step=s)
        """
    procs = [run_script(code.replace("WORKER", str(w)), cwd=repo, wait=False) for w in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=240)  # type: ignore[union-attr]
        assert p.returncode == 0, err  # type: ignore[union-attr]
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/runs/").splitlines()
    assert len(refs) == 100
    runs = vtrack.TrackingClient().list_runs()
    assert len(runs) == 100
    assert {(r.data.params["worker"], r.data.params["i"]) for r in runs} == {
        (w, i) for w in range(4) for i in range(25)
    }
    assert all(r.info.status == "FINISHED" and r.data.metrics["loss"] == 0.2 for r in runs)
    assert_fsck_clean(repo)


def test_two_processes_log_into_one_run_and_nothing_is_lost(repo: Path) -> None:
    with vtrack.start_run(run_name="shared") as run:
        run_id = run.info.run_id
        env = {"VTRACK_FLUSH_SECONDS": "0.05", "VTRACK_CHECKPOINT_SECONDS": "0.2"}
        code = """
            import time, vtrack
            with vtrack.start_run(run_id="RUN_ID"):
                vtrack.log_param("rank_RANK", RANK)
                for i in range(300):
                    vtrack.log_metric("rank_RANK/loss", float(i), step=i)
                    vtrack.log_metric("shared", float(i), step=RANK * 1000 + i)
                    if i % 50 == 0:
                        time.sleep(0.1)
            """
        procs = [
            run_script(
                code.replace("RUN_ID", run_id).replace("RANK", str(r)),
                cwd=repo,
                env=env,
                wait=False,
            )
            for r in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)  # type: ignore[union-attr]
            assert p.returncode == 0, err  # type: ignore[union-attr]
        vtrack.log_metric("main", 1.0)
        # the other writers detached; the run is still ours and RUNNING
        assert vtrack.get_run(run_id).info.status == "RUNNING"
    r = vtrack.get_run(run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params == {"rank_0": 0, "rank_1": 1}
    for rank in range(2):
        hist = vtrack.get_metric_history(run_id, f"rank_{rank}/loss")
        assert [h.value for h in hist] == [float(i) for i in range(300)]
    shared = vtrack.get_metric_history(run_id, "shared")
    assert len(shared) == 600
    assert r.data.metrics["main"] == 1.0
    assert_fsck_clean(repo)


def test_reading_a_run_from_a_killed_process_while_its_journal_is_unrecovered(repo: Path) -> None:
    proc = run_script(
        """
        import time, vtrack
        run = vtrack.start_run(run_name="half")
        vtrack.log_params({"a": 1})
        for i in range(10):
            vtrack.log_metric("acc", i / 10, step=i)
        print("RUN", run.info.run_id, flush=True)
        time.sleep(0.5)
        print("FLUSHED", flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env=FAST,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    wait_for_line(proc, "FLUSHED")  # type: ignore[arg-type]
    # while alive, another process reads live data from the journal
    res = run_script(
        f"""
        import vtrack
        r = vtrack.get_run("{run_id}")
        print(r.info.status, r.data.params["a"], r.data.metrics["acc"])
        """,
        cwd=repo,
    )
    assert res.stdout.split() == ["RUNNING", "1", "0.9"], res.stderr  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    res = run_script(
        f"""
        import vtrack
        r = vtrack.get_run("{run_id}")
        print(r.info.status, len(vtrack.get_metric_history("{run_id}", "acc")))
        """,
        cwd=repo,
    )
    assert res.stdout.split() == ["KILLED", "10"], res.stderr  # type: ignore[union-attr]


def test_checkpoints_move_the_ref_while_the_run_is_live(repo: Path) -> None:
    proc = run_script(
        """
        import time, vtrack
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        for i in range(40):
            vtrack.log_metric("m", float(i), step=i)
            time.sleep(0.05)
        print("DONE", flush=True)
        time.sleep(600)
        """,
        cwd=repo,
        env={"VTRACK_FLUSH_SECONDS": "0.05", "VTRACK_CHECKPOINT_SECONDS": "0.3"},
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    wait_for_line(proc, "DONE")  # type: ignore[arg-type]
    time.sleep(0.8)
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    # without any recovery, the checkpointed commit already holds the points
    text = git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/metrics/m/000000.tsv")
    assert len(text.splitlines()) == 40
    assert "status: RUNNING" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    assert vtrack.get_run(run_id).info.status == "KILLED"
