"""ls, log, show, rm, restore, tag and experiments: in-process and as real processes."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from tests.cli.conftest import RunsRepo, invoke, vt
from vtrack.errors import EXIT_NOT_FOUND, EXIT_USAGE


def test_ls_lists_runs_newest_first_with_varying_params_and_metrics(runs_repo: RunsRepo) -> None:
    res = invoke("--store", str(runs_repo.path), "ls")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    header = lines[0]
    for col in ("id", "name", "status", "lr", "acc", "loss"):
        assert col in header
    assert "model" not in header  # same in every run
    names = [n for line in lines[2:] for n in ("edited", "fast", "base") if f" {n} " in line]
    assert names == ["edited", "fast", "base"]
    assert "\x1b[" not in res.stdout  # no colours when not a terminal


def test_ls_json_parses_and_holds_full_runs(runs_repo: RunsRepo) -> None:
    res = invoke("--store", str(runs_repo.path), "ls", "--json")
    data = json.loads(res.stdout)
    assert [d["run_name"] for d in data] == ["edited", "fast", "base"]
    assert data[2]["params"] == {"lr": 0.1, "epochs": 5, "model": "linear"}
    assert data[2]["run_id"] == runs_repo.ids["base"]


def test_ls_filter_sort_columns_limit_csv(runs_repo: RunsRepo) -> None:
    res = invoke(
        "--store",
        str(runs_repo.path),
        "ls",
        "--filter",
        "params.lr >= 0.2",
        "--sort",
        "-metrics.acc",
        "--columns",
        "name,params.lr,metrics.acc",
        "--csv",
    )
    assert res.exit_code == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["name", "params.lr", "metrics.acc"]
    assert [r[0] for r in rows[1:]] == ["fast", "edited"]
    limited = invoke("--store", str(runs_repo.path), "ls", "-n", "1", "--json")
    assert [d["run_name"] for d in limited.json()] == ["edited"]


def test_ls_bad_filter_and_bad_column_are_usage_errors(runs_repo: RunsRepo) -> None:
    res = invoke("--store", str(runs_repo.path), "ls", "--filter", "metrics.acc >>> 1")
    assert res.exit_code == EXIT_USAGE
    res = invoke("--store", str(runs_repo.path), "ls", "--columns", "bogus")
    assert res.exit_code == EXIT_USAGE


def test_ls_as_real_process_and_as_git_subcommand(runs_repo: RunsRepo) -> None:
    res = vt(runs_repo.path, "ls", "--json")
    assert res.exit_code == 0, res.stderr
    assert {d["run_name"] for d in json.loads(res.stdout)} == {"base", "fast", "edited"}
    res = vt(runs_repo.path, "log", git_sub=True)
    assert res.exit_code == 0, res.stderr
    assert runs_repo.ids["base"][:8] in res.stdout


def test_log_one_line_per_run_with_status_duration_and_key_metrics(runs_repo: RunsRepo) -> None:
    res = invoke("--store", str(runs_repo.path), "log")
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(runs_repo.ids["edited"][:8])
    assert "FINISHED" in lines[0] and "acc=" in lines[0] and "loss=" in lines[0]
    data = invoke("--store", str(runs_repo.path), "log", "--json").json()
    assert data[0]["run_name"] == "edited" and set(data[0]["metrics"]) == {"acc", "loss"}


def test_show_prints_record_params_metrics_sparklines(runs_repo: RunsRepo) -> None:
    rid = runs_repo.ids["base"]
    res = invoke("--store", str(runs_repo.path), "show", rid)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert rid in out and "base" in out and "train.py --lr 0.1 --name base" in out
    assert "lr" in out and "0.1" in out and "linear" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")
    data = invoke("--store", str(runs_repo.path), "show", rid, "--json").json()
    assert data["metric_summaries"]["loss"]["points"] == 5
    assert data["metric_summaries"]["loss"]["min"] == pytest.approx(0.9**5)
    assert data["source"]["entry_point"] == "train.py"


def test_show_resolves_prefix_name_and_at(runs_repo: RunsRepo) -> None:
    store = str(runs_repo.path)
    rid = runs_repo.ids["fast"]
    for spec in (rid[:8], "fast"):
        assert invoke("--store", store, "show", spec, "--json").json()["run_id"] == rid
    assert invoke("--store", store, "show", "@", "--json").json()["run_name"] == "edited"
    assert invoke("--store", store, "show", "@~1", "--json").json()["run_name"] == "fast"


def test_show_unknown_run_exits_not_found(runs_repo: RunsRepo) -> None:
    res = invoke("--store", str(runs_repo.path), "show", "no-such-run")
    assert res.exit_code == EXIT_NOT_FOUND
    res = vt(runs_repo.path, "show", "ffffffffffff")
    assert res.exit_code == EXIT_NOT_FOUND
    assert "error" in res.stderr


def test_ambiguous_run_name_lists_candidates(fresh_repo) -> None:
    # a shared name means the newest for read-only commands; a destructive one refuses it
    rr = fresh_repo(("--name", "twin"), ("--name", "twin", "--lr", "0.3"))
    assert invoke("show", "twin").exit_code == 0
    res = invoke("tag", "twin", "k=v")
    assert res.exit_code == EXIT_USAGE
    lines = [line.split() for line in res.stderr.splitlines() if line.startswith("  ")]
    assert sorted(x[0] for x in lines) == sorted(i[:12] for i in rr.ids.values()) or len(lines) == 2
    assert all(x[1] == "twin" for x in lines)
    res = vt(rr.path, "rm", "twin")
    assert res.exit_code == EXIT_USAGE and "ambiguous" in res.stderr


def test_rm_and_restore_runs(fresh_repo) -> None:
    rr = fresh_repo(("--name", "keep"), ("--name", "drop"))
    drop = rr.ids["drop"]
    res = invoke("rm", "drop")
    assert res.exit_code == 0 and drop in res.stdout
    assert [d["run_name"] for d in invoke("ls", "--json").json()] == ["keep"]
    assert [d["run_name"] for d in invoke("ls", "--deleted", "--json").json()] == ["drop"]
    assert invoke("show", drop, "--json").json()["lifecycle_stage"] == "deleted"
    res = vt(rr.path, "restore", drop[:6], "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"restored": [drop]}
    assert {d["run_name"] for d in invoke("ls", "--json").json()} == {"keep", "drop"}
    res = vt(rr.path, "rm", "keep", drop)
    assert res.exit_code == 0
    assert vt(rr.path, "ls", "--json").stdout.strip() == "[]"


def test_tag_sets_and_deletes_tags_and_keeps_status(fresh_repo) -> None:
    rr = fresh_repo(
        (
            "--name",
            "t",
        )
    )
    rid = rr.ids["t"]
    before = invoke("show", rid, "--json").json()
    res = invoke("tag", "t", "team=nlp", "stage=prod")
    assert res.exit_code == 0, res.stderr
    after = invoke("show", rid, "--json").json()
    assert after["tags"]["team"] == "nlp" and after["status"] == "FINISHED"
    assert after["end_time"] == before["end_time"]
    res = vt(rr.path, "tag", rid, "--delete", "stage", "--json")
    assert res.exit_code == 0, res.stderr
    assert "stage" not in json.loads(res.stdout)["tags"]
    assert invoke("tag", "t", "novalue").exit_code == EXIT_USAGE
    assert invoke("tag", "t").exit_code == EXIT_USAGE
    filtered = invoke("ls", "--filter", "tags.team = 'nlp'", "--json").json()
    assert [d["run_id"] for d in filtered] == [rid]


def test_experiments_create_ls_rename_rm_restore(fresh_repo) -> None:
    rr = fresh_repo()
    res = invoke("experiments", "create", "churn")
    assert res.exit_code == 0, res.stderr
    assert invoke("experiments", "create", "churn").exit_code == 4
    names = [e["name"] for e in invoke("experiments", "ls", "--json").json()]
    assert names == ["Default", "churn"]
    assert invoke("experiments", "rename", "churn", "attrition").exit_code == 0
    res = vt(rr.path, "experiments", "rm", "attrition", "--json")
    assert res.exit_code == 0, res.stderr
    assert [e["name"] for e in invoke("experiments", "ls", "--json").json()] == ["Default"]
    every = invoke("experiments", "ls", "--all", "--json").json()
    assert {e["name"]: e["lifecycle_stage"] for e in every} == {
        "Default": "active",
        "attrition": "deleted",
    }
    assert invoke("experiments", "restore", "attrition").exit_code == 0
    assert invoke("experiments", "rm", "nope").exit_code == EXIT_NOT_FOUND
    assert "attrition" in vt(rr.path, "experiments", "ls").stdout


def test_ls_scopes_to_experiment_and_all_experiments(fresh_repo) -> None:
    rr = fresh_repo(
        (
            "--name",
            "in-default",
        )
    )
    from tests.cli.conftest import train

    train(rr.path, "--name", "in-churn", env={"VTRACK_EXPERIMENT_NAME": "churn"})
    churn = invoke("ls", "-e", "churn", "--json").json()
    assert [d["run_name"] for d in churn] == ["in-churn"]
    both = invoke("ls", "--all-experiments", "--json").json()
    assert {d["run_name"] for d in both} == {"in-default", "in-churn"}
    table = invoke("ls", "-A").stdout
    assert "experiment" in table.splitlines()[0] and "churn" in table
    assert invoke("ls", "-e", "nope").exit_code == EXIT_NOT_FOUND


def test_ls_reads_through_the_index_and_sees_deletion_while_stale(fresh_repo) -> None:
    rr = fresh_repo(
        (
            "--name",
            "a",
        ),
        (
            "--name",
            "b",
        ),
    )
    assert len(invoke("ls", "--json").json()) == 2
    from tests.conftest import git

    git(rr.path, "update-ref", "-d", f"refs/vtrack/runs/{rr.ids['a']}")
    time.sleep(0.01)
    assert [d["run_name"] for d in invoke("ls", "--json").json()] == ["b"]
    assert Path(rr.path, ".git", "vtrack", "index.sqlite").exists()


def test_a_run_name_equal_to_another_runs_id_prefix_wins(fresh_repo) -> None:
    from tests.cli.conftest import train

    rr = fresh_repo(
        ("--name", "first"),
    )
    prefix = rr.ids["first"][:6]
    train(rr.path, "--name", prefix)
    named = invoke("show", prefix, "--json").json()
    assert named["run_name"] == prefix and named["run_id"] != rr.ids["first"]
    longer = vt(rr.path, "show", rr.ids["first"][:10], "--json")
    assert json.loads(longer.stdout)["run_id"] == rr.ids["first"]
