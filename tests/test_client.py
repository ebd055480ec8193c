"""TrackingClient: explicit API by run id."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from vtrack import TrackingClient
from vtrack.entities import Metric, Param
from vtrack.errors import RunNotFoundError, ValidationError


def test_create_log_read_terminate(repo: Path) -> None:
    c = TrackingClient()
    run = c.create_run(run_name="explicit", tags={"t": "1"}, description="about it")
    rid = run.info.run_id
    assert len(rid) == 32 and run.info.status == "RUNNING"
    c.log_param(rid, "p", 1)
    c.log_metric(rid, "m", 0.5, step=3)
    c.log_batch(rid, metrics=[Metric("m", 0.7, 1, 4)], params=[Param("q", "x")], tags={"u": "v"})
    c.set_terminated(rid, "FINISHED")
    got = c.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.description == "about it"
    assert got.data.params == {"p": 1, "q": "x"}
    assert got.data.metrics == {"m": 0.7}
    assert got.data.tags == {"t": "1", "u": "v"}
    assert [(m.step, m.value, m.timestamp) for m in c.get_metric_history(rid, "m")][1] == (
        4,
        0.7,
        1,
    )


def test_delete_moves_run_to_trash_and_restore_brings_it_back(repo: Path) -> None:
    c = TrackingClient()
    rid = c.create_run().info.run_id
    c.set_terminated(rid)
    c.delete_run(rid)
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/").count(rid) == 1
    assert f"refs/vtrack/trash/{rid}" in git(
        repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/trash/"
    )
    assert rid not in [r.info.run_id for r in c.list_runs()]
    assert c.get_run(rid).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in c.list_runs(view_type="DELETED_ONLY")] == [rid]
    with pytest.raises(RunNotFoundError, match="deleted"):
        c.log_metric(rid, "m", 1.0)
    c.restore_run(rid)
    assert [r.info.run_id for r in c.list_runs()] == [rid]
    assert git(repo, "for-each-ref", "refs/vtrack/trash/") == ""
    with pytest.raises(RunNotFoundError, match="no deleted run"):
        c.restore_run(rid)


def test_list_runs_by_experiment_newest_first(repo: Path) -> None:
    c = TrackingClient()
    e1 = c.create_experiment("one")
    e2 = c.create_experiment("two")
    ids = []
    for exp in (e1, e2, e1):
        rid = c.create_run(experiment_id=exp).info.run_id
        c.set_terminated(rid)
        ids.append(rid)
    assert [r.info.run_id for r in c.list_runs(e1)] == [ids[2], ids[0]]
    assert [r.info.run_id for r in c.list_runs(e2)] == [ids[1]]
    assert len(c.list_runs()) == 3


def test_unknown_run_and_bad_ids_raise_named_errors(repo: Path) -> None:
    c = TrackingClient()
    with pytest.raises(RunNotFoundError, match="0" * 32):
        c.get_run("0" * 32)
    with pytest.raises(ValidationError, match="32 lowercase hex"):
        c.get_run("xyz")
    with pytest.raises(ValidationError, match="terminal"):
        c.set_terminated(c.create_run().info.run_id, "RUNNING")


def test_experiment_rename_and_tags(repo: Path) -> None:
    c = TrackingClient()
    e = c.create_experiment("old")
    c.rename_experiment(e, "new")
    assert c.get_experiment(e).name == "new"
    assert c.get_experiment_by_name("old") is None
    c.set_experiment_tag(e, "owner", "me")
    assert c.get_experiment(e).tags == {"owner": "me"}
    # the experiment's history is a chain of commits
    assert int(git(repo, "rev-list", "--count", f"refs/vtrack/experiments/{e}")) == 3
    with pytest.raises(ValidationError, match="Default"):
        c.delete_experiment("0")


def test_entry_point_records_scripts_relative_to_the_worktree_and_modules_by_name(
    repo: Path,
) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    (repo / "pkg").mkdir()
    (repo / "pkg" / "__init__.py").write_text("")
    code = "import vtrack\nwith vtrack.start_run() as r:\n    pass\nprint(r.info.run_id)\n"
    (repo / "pkg" / "train.py").write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    found = []
    for args in (["-m", "pkg.train", "--lr", "1"], ["pkg/train.py", "--lr", "1"]):
        res = subprocess.run(
            [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        src = TrackingClient().get_run(res.stdout.split()[0]).info.source
        found.append((src["entry_point"], src["argv"]))
    assert found == [("-m pkg.train", ["--lr", "1"]), ("pkg/train.py", ["--lr", "1"])]
