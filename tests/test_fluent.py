"""The fluent API against a real git repository."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import vtrack
from tests.conftest import assert_fsck_clean, git
from vtrack.errors import ParamConflictError, RunStateError, ValidationError


def test_run_becomes_commit_readable_with_plain_git(repo: Path) -> None:
    vtrack.set_experiment("churn")
    with vtrack.start_run(run_name="baseline", tags={"team": "growth"}) as run:
        vtrack.log_params({"lr": 0.01, "epochs": 20, "model": {"depth": 6}})
        for epoch in range(20):
            vtrack.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        vtrack.log_metrics({"acc": 0.91, "f1": 0.88})
    run_id = run.info.run_id
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/")
    assert f"refs/vtrack/runs/{run_id}" in refs.splitlines()
    params = yaml.safe_load(git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/params.yaml"))
    assert params == {"lr": 0.01, "epochs": 20, "model.depth": 6}
    metrics = yaml.safe_load(git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/metrics.yaml"))
    assert metrics == {"loss": 1.0 / 20, "acc": 0.91, "f1": 0.88}
    history = git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/metrics/loss/000000.tsv")
    rows = [line.split("\t") for line in history.splitlines()]
    assert [int(r[0]) for r in rows] == list(range(20))
    info = yaml.safe_load(git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/run.yaml"))
    assert info["status"] == "FINISHED"
    assert info["name"] == "baseline"
    assert info["tags"] == {"team": "growth"}
    assert info["end_time"] >= info["start_time"]
    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", f"refs/vtrack/runs/{run_id}^") == head
    assert_fsck_clean(repo)


def test_git_diff_between_runs_shows_params_and_metrics(repo: Path) -> None:
    ids = []
    for lr in (0.1, 0.2):
        with vtrack.start_run() as run:
            vtrack.log_param("lr", lr)
            vtrack.log_metric("acc", lr * 2)
        ids.append(run.info.run_id)
    diff = git(repo, "diff", f"refs/vtrack/runs/{ids[0]}", f"refs/vtrack/runs/{ids[1]}")
    assert "-lr: 0.1" in diff and "+lr: 0.2" in diff
    assert "-acc: 0.2" in diff and "+acc: 0.4" in diff


def test_param_types_are_kept_and_nested_dicts_flattened(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_params(
            {"i": 3, "f": 0.5, "b": True, "s": "0.01", "n": None, "nested": {"a": {"b": 1}}}
        )
    got = vtrack.get_run(run.info.run_id).data.params
    assert got == {"i": 3, "f": 0.5, "b": True, "s": "0.01", "n": None, "nested.a.b": 1}
    assert type(got["i"]) is int and type(got["b"]) is bool and type(got["s"]) is str


def test_relogging_same_param_is_noop_and_different_value_raises_and_keeps_first(
    repo: Path,
) -> None:
    with vtrack.start_run() as run:
        vtrack.log_param("lr", 0.01)
        vtrack.log_param("lr", 0.01)
        with pytest.raises(ParamConflictError, match="lr"):
            vtrack.log_param("lr", 0.02)
        with pytest.raises(ParamConflictError):
            vtrack.log_params({"other": 1, "lr": 0.5})
    params = vtrack.get_run(run.info.run_id).data.params
    assert params == {"lr": 0.01}


def test_metric_latest_is_value_at_highest_step(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_metric("m", 5.0, step=10)
        vtrack.log_metric("m", 1.0, step=2)
        vtrack.log_metric("m", 7.0, step=10, timestamp=10**13)
    r = vtrack.get_run(run.info.run_id)
    assert r.data.metrics["m"] == 7.0
    hist = vtrack.get_metric_history(run.info.run_id, "m")
    assert [(h.step, h.value) for h in hist] == [(10, 5.0), (2, 1.0), (10, 7.0)]


def test_nan_and_infinities_round_trip(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_metric("nan", float("nan"))
        vtrack.log_metric("pinf", float("inf"))
        vtrack.log_metric("ninf", float("-inf"))
    m = vtrack.get_run(run.info.run_id).data.metrics
    assert math.isnan(m["nan"]) and m["pinf"] == math.inf and m["ninf"] == -math.inf
    assert math.isnan(vtrack.get_metric_history(run.info.run_id, "nan")[0].value)


def test_tags_set_and_delete(repo: Path) -> None:
    with vtrack.start_run(tags={"a": "1"}) as run:
        vtrack.set_tag("b", 2)
        vtrack.set_tags({"c": "x", "d": "y"})
        vtrack.delete_tag("c")
        with pytest.raises(ValidationError, match="no tag"):
            vtrack.delete_tag("zzz")
    assert vtrack.get_run(run.info.run_id).data.tags == {"a": "1", "b": "2", "d": "y"}


def test_context_manager_statuses(repo: Path) -> None:
    with vtrack.start_run() as ok:
        pass
    with pytest.raises(RuntimeError):
        with vtrack.start_run() as failed:
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with vtrack.start_run() as killed:
            raise KeyboardInterrupt
    assert vtrack.get_run(ok.info.run_id).info.status == "FINISHED"
    assert vtrack.get_run(failed.info.run_id).info.status == "FAILED"
    assert vtrack.get_run(killed.info.run_id).info.status == "KILLED"


def test_nested_runs_and_active_run_rules(repo: Path) -> None:
    with vtrack.start_run(run_name="parent") as parent:
        with pytest.raises(RunStateError, match="already active"):
            vtrack.start_run()
        with vtrack.start_run(run_name="fold-1", nested=True) as child:
            assert vtrack.active_run().info.run_id == child.info.run_id
            vtrack.log_metric("x", 1)
        assert vtrack.active_run().info.run_id == parent.info.run_id
    assert vtrack.active_run() is None
    assert vtrack.last_active_run().info.run_id == parent.info.run_id
    c = vtrack.get_run(child.info.run_id)
    assert c.info.parent_run_id == parent.info.run_id
    assert c.data.metrics == {"x": 1.0}


def test_end_run_with_status_and_no_active_run_errors(repo: Path) -> None:
    run = vtrack.start_run()
    vtrack.end_run("KILLED")
    assert vtrack.get_run(run.info.run_id).info.status == "KILLED"
    vtrack.log_metric("x", 1.0)  # MLflow's rule: logging with no active run starts one
    implicit = vtrack.active_run()
    assert implicit is not None and implicit.info.run_id != run.info.run_id
    vtrack.end_run()
    assert vtrack.get_run(implicit.info.run_id).data.metrics == {"x": 1.0}
    with pytest.raises(ValidationError):
        vtrack.end_run("RUNNING")


def test_generated_run_names_are_readable(repo: Path) -> None:
    with vtrack.start_run() as run:
        pass
    name = run.info.run_name
    assert len(name.split("-")) == 3 and name.split("-")[2].isdigit()


def test_resume_run_in_same_process_appends(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_metric("m", 1.0, step=0)
    with vtrack.start_run(run_id=run.info.run_id):
        vtrack.log_metric("m", 2.0, step=1)
        assert vtrack.get_run(run.info.run_id).info.status == "RUNNING"
    r = vtrack.get_run(run.info.run_id)
    assert r.info.status == "FINISHED"
    assert [m.value for m in vtrack.get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]


def test_synchronous_metric_reaches_the_journal_before_returning(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_metric("m", 3.5, step=4, synchronous=True)
        journals = list((repo / ".git/vtrack/live" / run.info.run_id).glob("*.journal"))
        text = "".join(p.read_text() for p in journals)
        assert "m\tm\t4\t" in text and "3.5" in text


def test_invalid_calls_record_nothing(repo: Path) -> None:
    with vtrack.start_run() as run:
        for bad in ("", "a..b", "/lead", "tab\tkey", "x" * 251, "a//b"):
            with pytest.raises(ValidationError):
                vtrack.log_metric(bad, 1.0)
            with pytest.raises(ValidationError):
                vtrack.log_param(bad, 1)
            with pytest.raises(ValidationError):
                vtrack.set_tag(bad, "v")
        with pytest.raises(ValidationError, match="6000"):
            vtrack.log_param("long", "x" * 6001)
        with pytest.raises(ValidationError, match="8000"):
            vtrack.set_tag("long", "x" * 8001)
        with pytest.raises(ValidationError, match="real number"):
            vtrack.log_metric("m", "0.5")
        with pytest.raises(ValidationError):
            vtrack.log_metrics({"ok": 1.0, "bad": "x"})
    r = vtrack.get_run(run.info.run_id)
    assert r.data.params == {} and r.data.metrics == {} and r.data.tags == {}


def test_experiments_lifecycle(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = vtrack.set_experiment("churn")
    assert vtrack.get_experiment_by_name("churn").experiment_id == exp.experiment_id
    assert vtrack.get_experiment_by_name("Default").experiment_id == "0"
    other = vtrack.create_experiment("other", tags={"k": "v"})
    names = {e.name for e in vtrack.search_experiments()}
    assert names == {"Default", "churn", "other"}
    vtrack.delete_experiment(other)
    assert {e.name for e in vtrack.search_experiments()} == {"Default", "churn"}
    assert {e.name for e in vtrack.search_experiments("DELETED_ONLY")} == {"other"}
    with pytest.raises(RunStateError, match="deleted"):
        vtrack.set_experiment("other")
    vtrack.restore_experiment(other)
    assert vtrack.get_experiment(other).tags == {"k": "v"}
    with vtrack.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    from vtrack.errors import ExperimentExistsError

    with pytest.raises(ExperimentExistsError):
        vtrack.create_experiment("churn")


def test_experiment_from_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTRACK_EXPERIMENT_NAME", "from-env")
    with vtrack.start_run() as run:
        pass
    assert vtrack.get_experiment(run.info.experiment_id).name == "from-env"


def test_default_experiment_when_none_set(repo: Path) -> None:
    with vtrack.start_run() as run:
        pass
    assert run.info.experiment_id == "0"
    assert vtrack.get_experiment("0").name == "Default"
