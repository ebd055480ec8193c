"""The reproduction service over a RunRepository, used without the command line."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.cli.conftest import new_repo, train
from tests.conftest import git
from tests.test_diff import make_run
from vtrack import repro
from vtrack.client import TrackingClient
from vtrack.errors import ValidationError

SECRETIVE = "import vtrack\nwith vtrack.start_run(run_name='secretive'):\n    pass\n"


def _runs(path: Path) -> dict[str, str]:
    client = TrackingClient(str(path))
    return {r.info.run_name: r.info.run_id for r in client.search_runs(max_results=None)}


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, TrackingClient, dict[str, str]]:
    path = new_repo(tmp_path)
    train(path, "--name", "base")
    with open(path / "train.py", "a") as f:
        f.write("# tuned by hand\n")
    train(path, "--name", "edited")
    return path, TrackingClient(str(path)), _runs(path)


def test_code_diff_between_two_runs_and_against_the_working_tree(two_runs) -> None:
    path, client, ids = two_runs
    repo = client.repo
    base, edited = repo.get(ids["base"]), repo.get(ids["edited"])
    assert [f.path for f in repro.code_files(repo, base, edited)] == ["train.py"]
    code = repro.run_code_diff(repo, base, edited, patch=True)
    assert code.patch is not None and "+# tuned by hand" in code.patch
    assert code.files[0].added == 1 and "\x1b[" not in code.patch
    assert repro.run_code_diff(repo, base, base).files == ()
    # the working tree holds the edit: against base it shows, against edited it does not
    wd = repro.worktree_diff(repo, base)
    assert wd.available and any(line == "-# tuned by hand" for line in wd.lines)
    same = repro.worktree_diff(repo, edited)
    assert same.lines == [] and same.note == "the run's code is your working tree's code"


def test_checkout_into_a_folder_and_in_place_over_a_dirty_tree(two_runs, tmp_path) -> None:
    path, client, ids = two_runs
    repo = client.repo
    base = repo.get(ids["base"])
    target = repro.checkout_run(repo, base, tmp_path / "co")
    assert "# tuned by hand" not in (target / "train.py").read_text()
    assert (target / ".vtrack" / "params.yaml").is_file()
    line = repro.again_line(repo, base, target)
    assert line is not None and line.endswith("&& python train.py --name base")
    assert repro.dirty_files(repo) == ["train.py"]
    with pytest.raises(Exception, match="uncommitted changes .*: train.py \\("):
        repro.checkout_run(repo, base, None)
    repro.remove_worktree(repo, target)
    assert not target.exists() and git(path, "worktree", "list").count("\n") == 0


def test_a_plan_leaves_nothing_when_discarded(two_runs) -> None:
    _, client, ids = two_runs
    run = client.repo.get(ids["base"])
    plan = repro.plan_rerun(client.repo, run, environ={"GIT_DIR": "/x", "HOME": "/h"})
    assert plan.scratch is not None and plan.scratch.is_dir()
    assert plan.scratch in plan.workdir.parents and not plan.workdir.exists()
    assert plan.workdir.as_posix().endswith(str(client.repo.store.location.worktree))
    assert plan.command[0] == sys.executable and plan.command[1:] == [
        str(plan.workdir / "train.py"), "--name", "base",
    ]  # fmt: skip
    assert plan.unsets == ["GIT_DIR"] and plan.sets["VTRACK_RERUN_OF"] == ids["base"]
    assert plan.runnable and plan.to_dict()["runnable"] is True
    repro.discard(plan)
    assert not plan.scratch.exists()


def test_execute_rerun_reproduces_and_tags_the_new_run(two_runs) -> None:
    path, client, ids = two_runs
    original = client.repo.get(ids["edited"])
    plan = repro.plan_rerun(client.repo, original)
    seen: list[str] = []
    report = repro.execute_rerun(client.repo, original, plan, on_output=seen.append)
    assert report.reproduced and report.returncode == 0, report
    assert report.rerun_id is not None and report.rerun_id != ids["edited"]
    assert [m.key for m in report.metrics] == ["acc", "loss"]
    assert all(m.within_tolerance for m in report.metrics) and report.params == ()
    tags = client.get_run(report.rerun_id).data.tags
    assert tags["vtrack.rerun_of"] == ids["edited"] and tags["vtrack.rerun_verdict"] == "reproduced"
    assert plan.scratch is not None and not plan.scratch.exists()
    assert git(path, "worktree", "list").count("\n") == 0
    assert list(report.to_dict())[:3] == ["verdict", "metrics", "params"]


def test_the_service_itself_refuses_a_plan_with_masked_arguments(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    (path / "secretive.py").write_text(SECRETIVE)
    train(path, "--token", "ghp_abcdef", script="secretive.py")
    client = TrackingClient(str(path))
    run = client.repo.get(_runs(path)["secretive"])
    plan = repro.plan_rerun(client.repo, run)
    assert not plan.runnable and plan.masked == [(1, "***")]
    before = _runs(path)
    with pytest.raises(ValidationError, match="masked arguments"):
        repro.execute_rerun(client.repo, run, plan)
    assert _runs(path) == before and not plan.workdir.exists()
    repro.discard(plan)


def test_a_python_c_run_cannot_be_planned_and_leaves_no_temp_folder(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    subprocess.run(
        [sys.executable, "-c", "import vtrack\nwith vtrack.start_run(run_name='inline'): pass"],
        cwd=path, check=True, capture_output=True,
    )  # fmt: skip
    client = TrackingClient(str(path))
    run = client.repo.get(_runs(path)["inline"])
    with pytest.raises(ValidationError, match="python -c"):
        repro.plan_rerun(client.repo, run)
    left = Path(tempfile.gettempdir()).glob(f"vtrack-rerun-{run.info.run_id[:8]}-*")
    assert list(left) == []


def test_verdict_rules() -> None:
    a = make_run(params={"lr": 0.1, "n": 1}, metrics={"acc": 0.9, "nan": math.nan, "inf": math.inf,
                                                      "system/cpu": 1.0, "noise": 0.5})  # fmt: skip
    close = make_run(params={"lr": 0.1, "n": 1}, metrics={"acc": 0.9 + 1e-9, "nan": math.nan,
                                                          "inf": math.inf, "noise": 0.7})  # fmt: skip
    v = repro.compare_rerun(a, close, 1e-6, ignore=("noi*",))
    assert v.verdict == "reproduced" and [m.key for m in v.metrics] == ["acc", "inf", "nan"]
    v = repro.compare_rerun(a, close, 1e-6)
    assert v.verdict == "diverged"
    assert [m.key for m in v.metrics if not m.within_tolerance] == ["noise"]
    typed = make_run(params={"lr": 0.1, "n": 1.0}, metrics=dict(a.data.metrics))
    v = repro.compare_rerun(a, typed, 1e-6)
    assert v.verdict == "diverged" and [(p.key, p.original, p.rerun) for p in v.params] == [
        ("n", 1, 1.0),
    ]  # fmt: skip


def test_a_rerun_never_takes_an_earlier_reruns_run_for_its_own(tmp_path: Path) -> None:
    """Regression: with two seconds of clock slack, a rerun started within two seconds of
    the previous rerun's run took that run as its own result (and compared the wrong run:
    "reproduced" for a rerun that read different data)."""
    import time

    from vtrack.entities import RERUN_OF_TAG

    client = TrackingClient(str(new_repo(tmp_path)))
    original = client.create_run(run_name="orig").info.run_id
    client.set_terminated(original)
    earlier = client.create_run(run_name="orig (rerun 1)", tags={RERUN_OF_TAG: original})
    client.set_terminated(earlier.info.run_id)
    repo = client.repo
    now = int(time.time() * 1000)
    known = repro.rerun_ids(repo, original)
    assert known == {earlier.info.run_id}
    assert repro.find_rerun(repo, original, now, known=known) is None  # not this rerun's
    found = repro.find_rerun(repo, original, now)
    assert found is not None and found.info.run_id == earlier.info.run_id  # the slack
    later = client.create_run(run_name="orig (rerun 2)", tags={RERUN_OF_TAG: original})
    found = repro.find_rerun(repo, original, now, known=known)
    assert found is not None and found.info.run_id == later.info.run_id
