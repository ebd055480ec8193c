"""diff, compare and metrics: in-process and as real processes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

from tests.cli.conftest import BIN, RunsRepo, invoke, subprocess_env, vt
from vtrack.errors import EXIT_USAGE


def test_diff_shows_params_metrics_and_code_stat(runs_repo: RunsRepo) -> None:
    ids = runs_repo.ids
    res = invoke("--store", str(runs_repo.path), "diff", ids["base"], ids["edited"])
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "params" in out and "lr" in out and "0.1" in out and "0.2" in out
    assert "metrics" in out and "acc" in out and "%" in out
    assert "train.py" in out and "notes.txt" in out and "2 files changed" in out
    assert "dirty" in out
    assert "# tuned by hand" not in out  # the patch only with --code


def test_diff_code_flag_prints_the_patch(runs_repo: RunsRepo) -> None:
    ids = runs_repo.ids
    res = invoke(
        "--store",
        str(runs_repo.path),
        "diff",
        ids["base"],
        ids["edited"],
        "--code",
        "--only",
        "code",
    )
    assert res.exit_code == 0, res.stderr
    assert "+# tuned by hand" in res.stdout and "+untracked but captured" in res.stdout
    assert ".vtrack" not in res.stdout.replace("--- a", "")
    assert "params" not in res.stdout


def test_diff_json_sections_and_only(runs_repo: RunsRepo) -> None:
    ids = runs_repo.ids
    res = invoke("--store", str(runs_repo.path), "diff", ids["base"], ids["fast"], "--json")
    data = res.json()
    assert data["a"]["run_id"] == ids["base"] and data["b"]["run_id"] == ids["fast"]
    params = {p["key"]: p for p in data["params"]}
    assert params["lr"]["old"] == 0.1 and params["lr"]["new"] == 0.5
    assert params["epochs"]["kind"] == "changed"
    acc = next(m for m in data["metrics"] if m["key"] == "acc")
    assert acc["improved"] is True and acc["delta"] > 0
    assert data["code"]["files"] == []  # same snapshot
    only = invoke(
        "--store",
        str(runs_repo.path),
        "diff",
        ids["base"],
        ids["fast"],
        "--json",
        "--only",
        "params,metrics",
    ).json()
    assert set(only) == {"a", "b", "params", "metrics", "identical"}
    assert (
        invoke(
            "--store", str(runs_repo.path), "diff", ids["base"], ids["fast"], "--only", "nope"
        ).exit_code
        == EXIT_USAGE
    )


def test_diff_identical_run_with_itself_and_exit_code(runs_repo: RunsRepo) -> None:
    rid = runs_repo.ids["base"]
    res = invoke("--store", str(runs_repo.path), "diff", rid, rid, "--exit-code")
    assert res.exit_code == 0 and "no differences" in res.stdout
    res = vt(runs_repo.path, "diff", rid, runs_repo.ids["fast"], "--exit-code")
    assert res.exit_code == 1


def test_diff_as_real_process_with_at_specs(runs_repo: RunsRepo) -> None:
    res = vt(runs_repo.path, "diff", "@~1", "@", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["a"]["run_name"] == "fast" and data["b"]["run_name"] == "edited"
    paths = {f["path"] for f in data["code"]["files"]}
    assert paths == {"train.py", "notes.txt"}
    res = vt(runs_repo.path, "diff", "@~1", "@", git_sub=True)
    assert res.exit_code == 0 and "train.py" in res.stdout


def test_compare_marks_best_and_hides_equal_rows(runs_repo: RunsRepo) -> None:
    ids = runs_repo.ids
    res = invoke("--store", str(runs_repo.path), "compare", "base", "fast", "edited")
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "params.lr" in out and "params.model" not in out
    assert "*" in out
    data = invoke(
        "--store", str(runs_repo.path), "compare", "base", "fast", "edited", "--json"
    ).json()
    rows = {(r["section"], r["key"]): r for r in data["rows"]}
    assert rows[("metrics", "acc")]["best"] == [1]  # fast: lr 0.5, 3 epochs
    assert rows[("metrics", "loss")]["best"] == [1]
    assert [r["run_id"] for r in data["runs"]] == [ids["base"], ids["fast"], ids["edited"]]
    every = invoke(
        "--store", str(runs_repo.path), "compare", "base", "fast", "--all", "--json"
    ).json()
    assert any(r["key"] == "model" for r in every["rows"])


def test_compare_csv_and_subprocess_and_needs_two_runs(runs_repo: RunsRepo) -> None:
    res = invoke(
        "--store", str(runs_repo.path), "compare", "base", "fast", "--csv", "--only", "params"
    )
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0][:2] == ["section", "key"]
    assert ["params", "lr", "0.1", "0.5"] in rows
    assert invoke("--store", str(runs_repo.path), "compare", "base").exit_code == EXIT_USAGE
    res = vt(runs_repo.path, "compare", "@", "@~1", "@~2")
    assert res.exit_code == 0, res.stderr
    assert "lr" in res.stdout


def test_metrics_chart_csv_json(runs_repo: RunsRepo) -> None:
    store = str(runs_repo.path)
    res = invoke("--store", store, "metrics", "base", "loss")
    assert res.exit_code == 0, res.stderr
    assert "●" in res.stdout and "step 0" in res.stdout and "(5 points)" in res.stdout
    rows = list(
        csv.reader(io.StringIO(invoke("--store", store, "metrics", "base", "loss", "--csv").stdout))
    )
    assert rows[0] == ["key", "step", "timestamp", "value"]
    assert [r[1] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert float(rows[1][3]) == 0.9
    data = invoke("--store", store, "metrics", "base", "--json").json()
    assert set(data["metrics"]) == {"acc", "loss"}
    assert invoke("--store", store, "metrics", "base", "nope").exit_code == EXIT_USAGE
    res = vt(runs_repo.path, "metrics", "@", "loss", "acc")
    assert res.exit_code == 0, res.stderr
    assert "loss" in res.stdout and "acc" in res.stdout


def test_a_long_csv_comes_out_whole_and_in_order(repo) -> None:
    import vtrack

    with vtrack.start_run(run_name="long") as run:
        for step in range(2500):  # more rows than one chunk of output
            vtrack.log_metric("loss", step / 4, step=step)
    res = invoke("metrics", run.info.run_id, "loss", "--csv")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["key", "step", "timestamp", "value"] and len(rows) == 2501
    assert [int(r[1]) for r in rows[1:]] == list(range(2500))
    assert [float(r[3]) for r in rows[1:]] == [step / 4 for step in range(2500)]


def test_no_color_when_piped_even_with_force_free_env(runs_repo: RunsRepo) -> None:
    res = vt(runs_repo.path, "diff", "@~2", "@", "--code")
    assert res.exit_code == 0
    assert "\x1b[" not in res.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
def test_colours_on_a_terminal_and_off_with_no_color(runs_repo: RunsRepo) -> None:
    cmd = f"{BIN / 'vtrack'} log -n 1"

    def through_tty(extra: dict[str, str]) -> str:
        # stdin stays open until vtrack is done: script(1) may stop copying output at EOF
        with subprocess.Popen(
            ["script", "-qec", cmd, "/dev/null"],
            cwd=runs_repo.path,
            env=subprocess_env(runs_repo.path.parent, extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:  # closes the pipes
            assert proc.stdout is not None and proc.stdin is not None
            out = proc.stdout.read()
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
            proc.stdin.close()
        return out

    assert "\x1b[" in through_tty({"TERM": "xterm"})
    plain = through_tty({"TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[" not in plain and "FINISHED" in plain
