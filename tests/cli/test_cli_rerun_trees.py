"""vtrack rerun on run trees and on failed launches: real sweeps, real processes (issue 12).

Each test here is a regression test for a defect found by trying rerun as a new user:
rerunning a sweep child compared it with the new *parent*; a parent whose noisy child
changed still "reproduced"; a script that crashed or made no run was "diverged".
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import new_repo, subprocess_env, vt
from tests.conftest import git

SWEEP = textwrap.dedent(
    """\
    import argparse
    import os
    import random
    import sys
    import vtrack

    p = argparse.ArgumentParser()
    p.add_argument("--noisy", action="store_true")
    a = p.parse_args()
    if os.environ.get("SWEEP_FAIL"):
        print("boom: the GPU caught fire", file=sys.stderr)
        sys.exit(1)
    if os.environ.get("SWEEP_NO_RUN"):
        sys.exit(0)
    with vtrack.start_run(run_name="sweep"):
        vtrack.log_param("children", 3)
        for i, lr in enumerate([0.1, 0.2, 0.3]):
            with vtrack.start_run(run_name=f"lr-{lr}", nested=True):
                vtrack.log_params({"lr": lr})
                acc = random.random() if a.noisy and i == 1 else 1 - lr / 2
                vtrack.log_metric("acc", acc)
                vtrack.log_metric("train_seconds", random.random())
        vtrack.log_metric("done", 1.0)
    """
)


def sweep_repo(tmp_path: Path, *args: str) -> tuple[Path, dict[str, str]]:
    """A repository with one sweep run (a parent and three children); name -> run id."""
    path = new_repo(tmp_path)
    (path / "sweep.py").write_text(SWEEP)
    git(path, "add", "sweep.py")
    git(path, "commit", "-q", "-m", "sweep")
    res = subprocess.run(
        [sys.executable, "sweep.py", *args], cwd=path, env=subprocess_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return path, names(path)


def names(path: Path) -> dict[str, str]:
    listed = vt(path, "ls", "--json")
    assert listed.exit_code == 0, listed.stderr
    return {r["run_name"]: r["run_id"] for r in listed.json()}


def test_rerunning_a_sweep_child_reruns_the_tree_and_reports_on_that_child(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path)
    res = vt(path, "rerun", ids["lr-0.2"], "--yes", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    report = res.json()
    assert report["verdict"] == "reproduced" and report["tree_verdict"] == "reproduced"
    assert report["whole_tree"] is True and report["root_id"] == ids["sweep"]
    assert report["run_id"] == ids["lr-0.2"]
    assert [r["original_name"] for r in report["runs"]] == ["sweep", "lr-0.1", "lr-0.2", "lr-0.3"]
    assert [r["rerun_name"] for r in report["runs"]] == [
        "sweep (rerun 1)", "lr-0.1 (rerun 1)", "lr-0.2 (rerun 1)", "lr-0.3 (rerun 1)",
    ]  # fmt: skip
    assert report["rerun_name"] == "lr-0.2 (rerun 1)"
    assert "metrics.train_seconds" in report["ignored"]  # a duration: ignored and listed
    # in words: the child's verdict, and that the whole tree was rerun
    text = vt(path, "rerun", ids["lr-0.2"], "--yes")
    assert text.exit_code == 0, text.stdout + text.stderr
    assert "is a nested run: its whole run tree is rerun from its root" in text.stderr
    assert "the whole tree of" in text.stdout and "lr-0.2 (rerun 2)" in text.stdout


def test_a_noisy_child_makes_the_tree_diverge(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path, "--noisy")
    res = vt(path, "rerun", ids["sweep"], "--yes", "--json")
    assert res.exit_code == 1, res.stdout + res.stderr
    report = res.json()
    assert report["verdict"] == "diverged" and report["tree_verdict"] == "diverged"
    by_name = {r["original_name"]: r for r in report["runs"]}
    assert by_name["sweep"]["verdict"] == "reproduced"
    assert by_name["lr-0.1"]["verdict"] == "reproduced"
    noisy = by_name["lr-0.2"]
    assert noisy["verdict"] == "diverged" and noisy["matched_by"] == "name and params"
    assert [m["key"] for m in noisy["metrics"] if not m["within_tolerance"]] == ["acc"]
    text = vt(path, "rerun", ids["sweep"], "--yes")
    assert text.exit_code == 1
    assert "diverged (metrics.acc)" in text.stdout
    # the noisy child alone: ignoring its metric reproduces the tree
    ok = vt(path, "rerun", ids["sweep"], "--yes", "--ignore", "acc")
    assert ok.exit_code == 0, ok.stdout + ok.stderr


def test_a_script_that_exits_1_failed_to_run_with_its_stderr(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path)
    before = names(path)
    res = vt(path, "rerun", ids["sweep"], "--yes", env={"SWEEP_FAIL": "1"})
    assert res.exit_code == 6, res.stdout + res.stderr
    assert "failed to run" in res.stdout and "diverged" not in res.stdout
    assert "it exited with code 1" in res.stdout
    assert "| boom: the GPU caught fire" in res.stdout
    assert "command: cd " in res.stdout and "sweep.py" in res.stdout
    assert names(path) == before
    js = vt(path, "rerun", ids["sweep"], "--yes", "--json", env={"SWEEP_FAIL": "1"})
    assert js.exit_code == 6
    assert js.json()["verdict"] == "failed to run" and js.json()["returncode"] == 1
    assert js.json()["stderr_tail"] == ["boom: the GPU caught fire"]


def test_a_script_that_logs_no_run_failed_to_run(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path)
    res = vt(path, "rerun", ids["sweep"], "--yes", env={"SWEEP_NO_RUN": "1"})
    assert res.exit_code == 6, res.stdout + res.stderr
    assert "failed to run" in res.stdout and "recorded no run" in res.stdout
    js = vt(path, "rerun", ids["sweep"], "--yes", "--json", env={"SWEEP_NO_RUN": "1"})
    assert js.exit_code == 6 and js.json()["verdict"] == "failed to run"
    assert js.json()["returncode"] == 0 and js.json()["rerun_id"] is None


def test_tolerances_per_metric_relative_and_absolute(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path, "--noisy")
    loose = vt(path, "rerun", ids["lr-0.2"], "--yes", "-t", "acc=abs:1.0", "--json")
    assert loose.exit_code == 0, loose.stdout + loose.stderr
    assert loose.json()["tolerance"] == {"default": "1e-06", "metrics": {"acc": "abs:1"}}
    bad = vt(path, "rerun", ids["lr-0.2"], "--yes", "-t", "acc=lots")
    assert bad.exit_code == 2 and "bad tolerance 'acc=lots'" in bad.stderr
    assert json.loads(vt(path, "ls", "--json").stdout)  # nothing broke the store


def test_sweeps_are_navigable_in_ls_log_show_and_filters(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path)
    env = {"COLUMNS": "200"}
    lines = vt(path, "ls", env=env).stdout.splitlines()[2:]
    assert [line.split()[0] for line in lines] == [
        ids[n][:8] for n in ("sweep", "lr-0.1", "lr-0.2", "lr-0.3")
    ]
    assert all("└ lr-" in line for line in lines[1:]) and "└" not in lines[0]
    flat = vt(path, "ls", "--flat", env=env).stdout
    assert "└" not in flat and all(ids[n][:8] in flat for n in ids)
    log = vt(path, "log").stdout.splitlines()
    assert "└ lr-0.1" in log[1] and "└" not in log[0]
    assert "└" not in vt(path, "log", "--flat").stdout
    shown = vt(path, "show", "sweep")
    assert "child runs (3" in shown.stdout and ids["lr-0.3"][:8] in shown.stdout
    assert vt(path, "show", "sweep", "--json").json()["children"] == [
        ids["lr-0.1"],
        ids["lr-0.2"],
        ids["lr-0.3"],
    ]
    kids = vt(path, "ls", "-f", f"attributes.parent_run_id = '{ids['sweep']}'", "--json")
    assert kids.exit_code == 0, kids.stderr
    assert sorted(r["run_id"] for r in kids.json()) == sorted(
        ids[n] for n in ("lr-0.1", "lr-0.2", "lr-0.3")
    )
    tops = vt(path, "ls", "-f", "attributes.parent_run_id IS NULL", "--json").json()
    assert [r["run_id"] for r in tops] == [ids["sweep"]]
