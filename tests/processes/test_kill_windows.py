"""Kills at exact instructions, SIGTERM in tight loops, ranks ending together, torn writes.

Where a kill must land at one exact instruction, the child installs a Python audit hook
that sends itself a real SIGKILL when vtrack calls ``os.remove``/``os.rename`` on a given
file: nothing is patched, the process really dies there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import vtrack
from tests.conftest import ROOT, assert_fsck_clean, git, reap, wait_for_line

pytestmark = pytest.mark.processes

FAST = {"VTRACK_FLUSH_SECONDS": "0.05", "VTRACK_CHECKPOINT_SECONDS": "3600"}

#: Prepended to a child's code: ``arm(event, fragment)`` makes the next matching call die.
KILL_HOOK = """
import os, signal, sys
_armed = []
def arm(event, fragment, nth=1):
    _armed[:] = [event, fragment, nth]
def _hook(event, args):
    if _armed and event == _armed[0] and any(_armed[1] in str(a) for a in args[:2]):
        _armed[2] -= 1
        if _armed[2] == 0:
            os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(_hook)
"""


def _child(
    code: str, repo: Path, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **FAST, **(env or {})}
    args = [sys.executable, "-c", KILL_HOOK + textwrap.dedent(code)]
    if kw.pop("wait", True):
        return subprocess.run(args, cwd=repo, env=full, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    return subprocess.Popen(args, cwd=repo, env=full, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def _run_id(res: subprocess.CompletedProcess[str]) -> str:
    return res.stdout.split("RUN ")[1].split()[0]


def test_kill_between_checkpoint_and_segment_removal_applies_nothing_twice(repo: Path) -> None:
    """The ref moved, then SIGKILL before the committed segment was removed: recovery
    applied it again (100 points logged, 200 recorded)."""
    res = _child(
        """
        import vtrack
        from vtrack.client import TrackingClient
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        vtrack.log_params({"lr": 0.1})
        for i in range(100):
            vtrack.log_metric("loss", 1.0 / (i + 1), step=i)
        vtrack.set_tag("phase", "train")
        arm("os.remove", ".journal")
        TrackingClient().checkpoint(run.info.run_id)
        print("SURVIVED", flush=True)
        """,
        repo,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    run_id = _run_id(res)
    # the checkpoint reached the ref; its segment is still on disk
    assert list((repo / ".git/vtrack/live" / run_id).glob("*.journal"))
    run = vtrack.get_run(run_id)  # reading recovers
    assert run.info.status == "KILLED"
    steps = [m.step for m in vtrack.get_metric_history(run_id, "loss")]
    assert steps == list(range(100))
    assert run.data.params == {"lr": 0.1} and run.data.tags == {"phase": "train"}
    assert_fsck_clean(repo)


def test_kill_in_end_run_after_the_final_checkpoint_keeps_every_point_once(repo: Path) -> None:
    res = _child(
        """
        import vtrack
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        for i in range(100):
            vtrack.log_metric("loss", float(i), step=i)
        arm("os.remove", ".journal")
        vtrack.end_run()
        print("SURVIVED", flush=True)
        """,
        repo,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    run_id = _run_id(res)
    run = vtrack.get_run(run_id)
    assert run.info.status == "FINISHED"  # the final commit said so before the kill
    assert [m.step for m in vtrack.get_metric_history(run_id, "loss")] == list(range(100))


def test_recovery_killed_after_its_ref_update_applies_nothing_twice(repo: Path) -> None:
    proc = _child(
        """
        import time, vtrack
        run = vtrack.start_run()
        for i in range(100):
            vtrack.log_metric("loss", float(i), step=i)
        vtrack.log_metric("loss", 100.0, step=100, synchronous=True)
        print("RUN", run.info.run_id, flush=True)
        time.sleep(600)
        """,
        repo,
        wait=False,
    )
    run_id = wait_for_line(proc, "RUN").split()[1]  # type: ignore[arg-type]
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    reap(proc)  # type: ignore[arg-type]
    # a recovering process dies right after its ref update, before removing the journal
    res = _child(
        """
        arm("os.remove", ".journal")
        from vtrack.cli import main
        main(["recover"])
        """,
        repo,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert "status: KILLED" in git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    out = subprocess.run(["vtrack", "recover"], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [m.step for m in vtrack.get_metric_history(run_id, "loss")] == list(range(101))
    assert not (repo / ".git/vtrack/live" / run_id).exists()


def test_sigterm_in_a_tight_logging_loop_always_ends_the_process_killed(repo: Path) -> None:
    """The SIGTERM handler took the writers' non-reentrant lock that the interrupted
    log_metric held: 7 of 80 tight-loop processes hung forever."""
    code = """
        import vtrack
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        i = 0
        while True:
            vtrack.log_metric("m", float(i), step=i)
            i += 1
            if i % 3000 == 0:
                vtrack.log_param(f"p{i}", i)
        """
    env = {"VTRACK_FLUSH_SECONDS": "0.02", "VTRACK_CHECKPOINT_SECONDS": "0.1"}
    results = []
    for batch in range(10):
        procs = [_child(code, repo, env, wait=False) for _ in range(4)]
        ids = [wait_for_line(p, "RUN").split()[1] for p in procs]  # type: ignore[arg-type]
        for k, p in enumerate(procs):
            time.sleep(0.03 * ((batch * 4 + k) % 7))  # land at many different moments
            p.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for p, run_id in zip(procs, ids, strict=True):
            try:
                code_ = reap(p, timeout=30)  # type: ignore[arg-type]
            except subprocess.TimeoutExpired:
                p.kill()  # type: ignore[union-attr]
                reap(p)  # type: ignore[arg-type]
                code_ = None
            results.append((run_id, code_))
    hung = [r for r, c in results if c is None]
    assert not hung, f"{len(hung)} of {len(results)} processes hung after SIGTERM"
    assert {c for _, c in results} == {-signal.SIGTERM}
    for run_id, _ in results:
        run = vtrack.get_run(run_id)
        assert run.info.status == "KILLED"
        assert not (repo / ".git/vtrack/live" / run_id).exists()


def test_ranks_that_end_together_always_finish_the_run(repo: Path) -> None:
    """Each rank recorded FINISHED only if no other writer was alive; ranks that ended
    together each saw the others and nobody finished the run (3 of 16)."""
    rank = """
        import sys, time, vtrack
        from pathlib import Path
        run_id, go = sys.argv[1], Path(sys.argv[2])
        with vtrack.start_run(run_id=run_id):
            vtrack.log_metric(f"rank{sys.argv[3]}", 1.0)
            print("READY", flush=True)
            while not go.exists():
                time.sleep(0.001)
        """
    client = vtrack.TrackingClient()
    run_ids = []
    for n in range(8):
        run_id = client.create_run(run_name=f"dist-{n}").info.run_id
        client.detach(run_id)  # still RUNNING; the ranks join it
        run_ids.append(run_id)
    for n, run_id in enumerate(run_ids):
        go = repo / f"go-{n}"
        full = dict(os.environ, PYTHONPATH=str(ROOT), **FAST)
        procs = [
            subprocess.Popen([sys.executable, "-c", textwrap.dedent(rank), run_id, str(go),
                              str(k)], cwd=repo, env=full, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
            for k in range(3)
        ]  # fmt: skip
        for p in procs:
            wait_for_line(p, "READY")
        go.touch()
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    for run_id in run_ids:
        run = vtrack.get_run(run_id)
        assert run.info.status == "FINISHED", run_id
        assert set(run.data.metrics) == {"rank0", "rank1", "rank2"}
        assert not (repo / ".git/vtrack/live" / run_id).exists()


def test_a_dead_writers_ref_lock_is_reported_fast_and_cleared_by_recover(repo: Path) -> None:
    """A kill between writing refs/vtrack/runs/<id>.lock and its rename: every command
    waited 10 s and swallowed the error, git held the run RUNNING with no metrics while
    vtrack showed FINISHED, and `vtrack recover` said there was nothing to recover."""
    res = _child(
        """
        import vtrack
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        for i in range(50):
            vtrack.log_metric("loss", float(i), step=i)
        arm("os.rename", "refs/vtrack/runs/" + run.info.run_id)
        vtrack.end_run()
        """,
        repo,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    run_id = _run_id(res)
    lock = repo / ".git/refs/vtrack/runs" / f"{run_id}.lock"
    assert lock.exists()
    t0 = time.monotonic()
    show = subprocess.run(["vtrack", "show", run_id], cwd=repo, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    assert "stale" in show.stderr and "vtrack recover" in show.stderr, show.stderr
    assert elapsed < 8, f"a dead owner's lock must not be waited for ({elapsed:.1f} s)"
    rec = subprocess.run(["vtrack", "recover", "--json"], cwd=repo, capture_output=True, text=True)
    assert rec.returncode == 0, rec.stderr
    assert run_id in rec.stdout
    assert not lock.exists()
    run_yaml = git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml")
    assert "status: FINISHED" in run_yaml
    assert [m.step for m in vtrack.get_metric_history(run_id, "loss")] == list(range(50))
    assert_fsck_clean(repo)


def test_a_torn_journal_write_never_eats_the_next_point(repo: Path) -> None:
    """After a full disk, the first point whose synchronous call then succeeded was lost
    on a later SIGKILL (the partial line was not repaired); the failing call raised a raw
    OSError. RLIMIT_FSIZE makes the kernel fail the write part-way, for real."""
    res = _child(
        """
        import os, resource, signal, vtrack
        from vtrack.errors import VtrackError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
        run = vtrack.start_run()
        print("RUN", run.info.run_id, flush=True)
        vtrack.log_metric("loss", 0.0, step=0, synchronous=True)
        seg = next(p for p in os.scandir(f".git/vtrack/live/{run.info.run_id}")
                   if p.name.endswith(".journal"))
        size = os.stat(seg.path).st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 5, hard))
        try:
            vtrack.log_metric("loss", 1.0, step=1, synchronous=True)
            print("NO ERROR", flush=True)
        except VtrackError as exc:
            print("ERROR", type(exc).__name__, exc, flush=True)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        vtrack.log_metric("loss", 2.0, step=2, synchronous=True)   # the disk has room again
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        repo,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert "ERROR JournalWriteError" in res.stdout, res.stdout + res.stderr
    run_id = _run_id(res)
    hist = vtrack.get_metric_history(run_id, "loss")
    # the failed point is kept too: it went back to the buffer and the next flush wrote it
    assert [(m.step, m.value) for m in hist] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_start_run_on_a_read_only_store_is_a_vtrack_error(repo: Path) -> None:
    import shutil

    # vtrack's own folder read-only (a store someone else set up): start_run raised a
    # raw PermissionError from making its temp folder
    (repo / ".git/vtrack").mkdir()
    (repo / ".git/vtrack").chmod(0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to test EACCES as root"
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    code = """
        import vtrack
        from vtrack.errors import VtrackError
        try:
            vtrack.start_run()
        except VtrackError as exc:
            print("ERROR", type(exc).__name__, exc)
        """
    try:
        res = subprocess.run(
            [*prefix, sys.executable, "-c", textwrap.dedent(code)], cwd=repo,
            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        (repo / ".git/vtrack").chmod(0o755)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ERROR StoreError"), res.stdout + res.stderr
    assert "Permission denied" in res.stdout and "Traceback" not in res.stderr
    assert not git(repo, "for-each-ref", "refs/vtrack/runs/")
