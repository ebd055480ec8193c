"""Random SIGKILLs of a logging process, checked after every kill.

A few dozen trials run in CI; ``VTRACK_KILL_TRIALS=500`` runs hundreds on demand. Each
trial kills the writer either after a random delay or at the Nth file operation vtrack
makes (an audit hook sending a real SIGKILL), so kills land inside checkpoints, ref
updates, journal rotations and pack publication as often as between them. After every
kill: the run is KILLED, its history has no duplicate and loses no point that a
synchronous call had confirmed, ``git fsck --full`` is clean, no lock is left, and the
next run works.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vtrack
from tests.conftest import ROOT, assert_fsck_clean

pytestmark = [pytest.mark.processes, pytest.mark.slow]

TRIALS = int(os.environ.get("VTRACK_KILL_TRIALS", "16"))

CHILD = """
import os, signal, sys, vtrack
target_event, nth = sys.argv[1], int(sys.argv[2])
seen = [0]
def hook(event, args):
    if event == target_event and ".git" in str(args[0]):
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
run = vtrack.start_run(run_name="victim")
print("RUN", run.info.run_id, flush=True)
if nth:
    sys.addaudithook(hook)
for i in range(10**9):
    vtrack.log_metric("m", float(i), step=i)
    if i % 97 == 0:
        vtrack.log_param(f"p{i}", i)
        vtrack.set_tag("last", str(i))
    if i % 400 == 0:
        vtrack.log_text(f"note {i}", f"notes/{i}.txt")
    if i % 50 == 49:
        vtrack.log_metric("m", float(i) + 0.5, step=i, synchronous=True)
        print("SYNC", i, flush=True)
"""


def _trial(repo: Path, rng: random.Random) -> None:
    mode = rng.choice(["time", "os.rename", "os.remove", "open"])
    nth = 0 if mode == "time" else rng.randint(1, 250)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VTRACK_FLUSH_SECONDS": "0.02",
           "VTRACK_CHECKPOINT_SECONDS": str(rng.choice([0.05, 0.2, 1.0]))}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), mode, str(nth)], cwd=repo, env=env,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().split()[1]
    synced = -1
    if mode == "time":
        deadline = rng.uniform(0.05, 1.5)
        import threading

        timer = threading.Timer(deadline, lambda: proc.send_signal(signal.SIGKILL))
        timer.start()
    for line in proc.stdout:
        if line.startswith("SYNC ") and line.endswith("\n"):  # a kill may cut a line short
            synced = int(line.split()[1])
        if mode != "time" and synced > 4000:
            proc.send_signal(signal.SIGKILL)  # the Nth event never came: stop anyway
    _, err = proc.communicate(timeout=60)  # also closes the pipes
    if mode == "time":
        timer.cancel()
    assert proc.returncode == -signal.SIGKILL, err
    run = vtrack.get_run(run_id)  # recovers
    if run.info.status == "RUNNING":
        # killed inside a ref update: its lock names a dead owner; reading commands say so
        # and `vtrack recover` (what they tell the user to run) removes it and finalizes
        res = subprocess.run(["vtrack", "recover"], cwd=repo, capture_output=True, text=True)
        assert res.returncode == 0 and "stale lock" in res.stderr, (mode, nth, res.stderr)
        run = vtrack.get_run(run_id)
    assert run.info.status == "KILLED", (mode, nth)
    hist = vtrack.get_metric_history(run_id, "m")
    keys = [(m.step, m.value) for m in hist]
    assert len(keys) == len(set(keys)), f"duplicate points after a kill ({mode} #{nth})"
    steps = sorted({m.step for m in hist})
    assert steps == list(range(len(steps))), f"a gap in the history ({mode} #{nth})"
    assert len(steps) > synced, f"lost confirmed points: {len(steps)} <= {synced} ({mode} #{nth})"
    for i in range(49, synced + 1, 50):
        assert (i, float(i) + 0.5) in set(keys), f"synchronous point {i} lost ({mode} #{nth})"
    for name in (
        os.listdir(repo / ".git/vtrack/live") if (repo / ".git/vtrack/live").exists() else []
    ):
        assert name != run_id, "the dead run's journal was not finalized"
    locks = [p for p in (repo / ".git/refs").rglob("*.lock")]
    assert not locks, f"locks left behind: {locks}"
    keeps = {k.name: k.read_bytes() for k in (repo / ".git/objects/pack").glob("*.keep")}
    assert not keeps, f".keep files left behind ({mode} #{nth}): {keeps}"


@pytest.mark.timeout(120 + 15 * TRIALS)  # hundreds of trials on demand take a while
def test_random_kills_lose_nothing_confirmed_and_leave_git_clean(repo: Path) -> None:
    rng = random.Random(int(os.environ.get("VTRACK_KILL_SEED", "20261201")))
    for _ in range(TRIALS):
        _trial(repo, rng)
    assert_fsck_clean(repo)
    with vtrack.start_run(run_name="after") as run:  # the next run works
        vtrack.log_metric("ok", 1.0)
    assert vtrack.get_run(run.info.run_id).info.status == "FINISHED"
    res = subprocess.run(["git", "gc", "-q", "--prune=now"], cwd=repo, capture_output=True,
                         text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_fsck_clean(repo)
