"""System metrics: real readings checked against /proc, missing libraries, one sampler per machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import vtrack
from tests.conftest import run_script, wait_for_line
from vtrack import sysmetrics

MLFLOW_NAMES = {  # the names MLflow 3.17's monitors log without a GPU
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}


@pytest.fixture(autouse=True)
def _switches():
    yield
    sysmetrics.disable_system_metrics_logging()
    sysmetrics._enabled = None
    sysmetrics.set_system_metrics_sampling_interval(None)
    sysmetrics.set_system_metrics_node_id(None)


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _proc_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise AssertionError("no VmRSS")


def _nvml_gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # noqa: BLE001 - no library or no driver: no GPU here
        return 0


def _meminfo_used_mb() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, _, rest = line.partition(":")
        info[k] = int(rest.split()[0]) * 1024
    return (info["MemTotal"] - info["MemAvailable"]) / 1e6


def test_readings_are_plausible_against_proc(repo: Path) -> None:
    sysmetrics.set_system_metrics_sampling_interval(3600)
    with vtrack.start_run(log_system_metrics=True) as run:
        mon = sysmetrics.monitor_of(run.info.run_id)
        assert mon is not None
        _wait(lambda: mon.sampling)
        _ = [i * i for i in range(200_000)]  # some CPU time between the baseline and the sample
        rss, used = _proc_rss_mb(), _meminfo_used_mb()
        got = mon.sample_and_log()
    assert MLFLOW_NAMES <= set(got), MLFLOW_NAMES - set(got)
    assert got["system/process_count"] == 1
    assert got["system/process_memory_usage_megabytes"] == pytest.approx(rss, rel=0.15)
    assert got["system/system_memory_usage_megabytes"] == pytest.approx(used, rel=0.2)
    du = shutil.disk_usage(os.sep)
    assert got["system/disk_usage_megabytes"] == pytest.approx(du.used / 1e6, rel=0.05)
    assert 0.0 <= got["system/cpu_utilization_percentage"] <= 100.0
    gpus = _nvml_gpu_count()
    if gpus:  # a machine with an NVIDIA driver: one set of readings per GPU
        for i in range(gpus):
            assert 0 <= got[f"system/gpu_{i}_utilization_percentage"] <= 100
            assert 0 <= got[f"system/gpu_{i}_memory_usage_percentage"] <= 100
    else:  # nvidia-ml-py is installed, but without a driver NVML cannot start
        assert not any(k.startswith("system/gpu_") for k in got)
    hist = vtrack.get_metric_history(run.info.run_id, "system/process_memory_usage_megabytes")
    assert [m.step for m in hist][0] == 0


def test_short_run_gets_one_sample_at_its_end_and_leaves_no_lock(repo: Path) -> None:
    sysmetrics.set_system_metrics_sampling_interval(3600)
    with vtrack.start_run(log_system_metrics=True) as run:
        mon = sysmetrics.monitor_of(run.info.run_id)
        _wait(lambda: mon.sampling)
        lock = sysmetrics.node_lock_path(vtrack.fluent.tracking_client().repo, run.info.run_id)
        assert lock.exists()
        time.sleep(1.1)
    hist = vtrack.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert [m.step for m in hist] == [0]
    assert not lock.exists() and not lock.parent.exists()
    assert sysmetrics.monitor_of(run.info.run_id) is None


def test_a_resumed_run_continues_the_system_step_count(repo: Path) -> None:
    # Regression: histories read back from a commit know their latest step only on
    # demand, and the sampler took them for empty: a resumed run logged step 0 again.
    sysmetrics.set_system_metrics_sampling_interval(3600)
    with vtrack.start_run(log_system_metrics=True) as run:
        pass
    with vtrack.start_run(run_id=run.info.run_id, log_system_metrics=True):
        pass
    # (disk usage: CPU utilisation needs a clock tick between two readings)
    hist = vtrack.get_metric_history(run.info.run_id, "system/disk_usage_megabytes")
    assert sorted(m.step for m in hist) == [0, 1]


def test_off_unless_asked_and_the_switches_decide(repo: Path) -> None:
    sysmetrics.set_system_metrics_sampling_interval(3600)
    with vtrack.start_run() as run:
        assert sysmetrics.monitor_of(run.info.run_id) is None
    vtrack.enable_system_metrics_logging()
    with vtrack.start_run() as run:
        assert sysmetrics.monitor_of(run.info.run_id) is not None
    with vtrack.start_run(log_system_metrics=False) as run:
        assert sysmetrics.monitor_of(run.info.run_id) is None
    vtrack.disable_system_metrics_logging()
    with vtrack.start_run() as run:
        assert sysmetrics.monitor_of(run.info.run_id) is None


def test_bad_switch_values_are_refused_by_name(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(vtrack.VtrackError, match="positive"):
        vtrack.set_system_metrics_sampling_interval(0)
    with pytest.raises(vtrack.VtrackError, match="node id"):
        vtrack.set_system_metrics_node_id("a/b")
    monkeypatch.setenv("VTRACK_ENABLE_SYSTEM_METRICS_LOGGING", "maybe")
    with pytest.raises(vtrack.VtrackError, match="VTRACK_ENABLE_SYSTEM_METRICS_LOGGING"):
        vtrack.start_run()


def test_node_id_names_the_machine_in_metric_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sysmetrics.node_id() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two machines
    assert sysmetrics.node_id() == sysmetrics._safe(os.uname().nodename)
    monkeypatch.setenv("VTRACK_SYSTEM_METRICS_NODE_ID", "node0")
    assert sysmetrics.node_id() == "node0"
    vtrack.set_system_metrics_node_id("rack-1")
    assert sysmetrics.node_id() == "rack-1"


_SCRIPT = """
import sys, time, json
{block}
import vtrack
with vtrack.start_run() as run:
    time.sleep(1.6)
print(json.dumps(sorted(vtrack.get_run(run.info.run_id).data.metrics)))
"""


@pytest.mark.parametrize(
    ("block", "absent", "present"),
    [
        ("sys.modules['psutil'] = None", "system/cpu_utilization_percentage",
         "system/system_memory_usage_megabytes"),
        ("sys.modules['pynvml'] = None", "system/gpu_0_utilization_percentage",
         "system/cpu_utilization_percentage"),
    ],
    ids=["without-psutil", "without-nvidia-ml-py"],
)  # fmt: skip
def test_missing_library_means_fewer_metrics_never_an_error(
    repo: Path, block: str, absent: str, present: str
) -> None:
    env = {"VTRACK_ENABLE_SYSTEM_METRICS_LOGGING": "1",
           "VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.3"}  # fmt: skip
    res = run_script(_SCRIPT.format(block=block), cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ""
    names = set(json.loads(res.stdout.strip().splitlines()[-1]))
    assert present in names and absent not in names
    assert "system/process_memory_usage_megabytes" in names  # read from /proc without psutil
    if "psutil" in block:
        assert names == {
            "system/system_memory_usage_megabytes", "system/system_memory_usage_percentage",
            "system/disk_usage_percentage", "system/disk_usage_megabytes",
            "system/disk_available_megabytes", "system/process_memory_usage_megabytes",
            "system/process_count",
        }  # fmt: skip


_RANK = """
import os, sys, time
import vtrack
from vtrack import sysmetrics
with vtrack.start_run(run_id=os.environ["RUN_ID"], log_system_metrics=True) as run:
    mon = sysmetrics.monitor_of(run.info.run_id)
    deadline = time.monotonic() + float(os.environ["SECONDS"])
    said = None
    while time.monotonic() < deadline:
        if mon.sampling != said:
            said = mon.sampling
            print("SAMPLING" if said else "WAITING", os.getpid(), flush=True)
        time.sleep(0.05)
print("DONE", flush=True)
"""


def _shared_run(repo: Path) -> str:
    client = vtrack.TrackingClient()
    run_id = client.create_run().info.run_id
    client.detach(run_id)  # the ranks alone write it from now on
    return run_id


def _system_steps(run_id: str) -> list[int]:
    # in step order: a recovered rank's points are committed after the survivor's
    hist = vtrack.get_metric_history(run_id, "system/disk_usage_megabytes")  # in every sample
    return sorted(m.step for m in hist)


@pytest.mark.processes
def test_ranks_on_one_machine_sample_it_once(repo: Path) -> None:
    run_id = _shared_run(repo)
    env = {"RUN_ID": run_id, "SECONDS": "3", "VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.3"}
    t0 = time.monotonic()
    procs = [run_script(_RANK, cwd=repo, env=env, wait=False) for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    elapsed = time.monotonic() - t0
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    steps = _system_steps(run_id)
    assert steps == list(range(len(steps))), steps  # one count, no step logged twice
    assert 3 <= len(steps) <= elapsed / 0.3 + 3  # once per interval, not once per rank
    counts = vtrack.get_metric_history(run_id, "system/process_count")
    assert max(m.value for m in counts) == 3  # the sampler saw every rank of its machine
    assert vtrack.get_run(run_id).info.status == "FINISHED"
    live = repo / ".git" / "vtrack" / "live" / run_id
    assert not live.exists()


@pytest.mark.processes
def test_another_rank_takes_over_when_the_sampler_is_killed(repo: Path) -> None:
    run_id = _shared_run(repo)
    env = {"RUN_ID": run_id, "VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.2"}
    first = run_script(_RANK, cwd=repo, env={**env, "SECONDS": "60"}, wait=False)
    assert wait_for_line(first, "SAMPLING", timeout=120)
    second = run_script(_RANK, cwd=repo, env={**env, "SECONDS": "4"}, wait=False)
    assert wait_for_line(second, "WAITING", timeout=120)
    before = None

    def sampled_some() -> bool:
        nonlocal before
        before = _system_steps(run_id)
        return len(before) >= 2

    _wait(sampled_some, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert wait_for_line(second, "SAMPLING", timeout=60)  # the dead holder's lock is taken over
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    vtrack.TrackingClient().recover()
    steps = _system_steps(run_id)
    assert steps == list(range(len(steps))), steps  # the survivor continued the count
    assert len(steps) > len(before)
    assert not (repo / ".git" / "vtrack" / "live" / run_id).exists()


@pytest.mark.processes
def test_killed_run_with_system_metrics_leaves_no_live_folder(repo: Path) -> None:
    # Regression: the dead sampler's node lock kept the live folder of a recovered run.
    code = _RANK.replace('start_run(run_id=os.environ["RUN_ID"], ', "start_run(")
    proc = run_script(code, cwd=repo, env={"SECONDS": "60",
                                           "VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.2"},
                      wait=False)  # fmt: skip
    assert wait_for_line(proc, "SAMPLING", timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    [run_id] = os.listdir(repo / ".git" / "vtrack" / "live")
    vtrack.TrackingClient().recover()
    assert vtrack.get_run(run_id).info.status == "KILLED"
    assert not (repo / ".git" / "vtrack" / "live" / run_id).exists()
    res = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True)
    assert res.stdout == ""
