"""Store discovery: environment, explicit URIs, GIT_DIR, worktrees, bare repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

import vtrack
from tests.conftest import git
from vtrack.config import locate_store
from vtrack.errors import StoreNotFoundError, ValidationError


def test_default_is_the_enclosing_repository_from_a_subdirectory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    loc = locate_store()
    assert loc.git_dir == repo / ".git" and loc.worktree == repo


def test_tracking_uri_env_and_setter(
    make_repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_repo("a")
    b = make_repo("b")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VTRACK_TRACKING_URI", str(a))
    with vtrack.start_run() as r1:
        pass
    assert git(a, "for-each-ref", "refs/vtrack/runs/") != ""
    vtrack.set_tracking_uri("file://" + str(b))
    assert vtrack.get_tracking_uri() == "file://" + str(b / ".git")
    with vtrack.start_run() as r2:
        pass
    assert r2.info.run_id in git(b, "for-each-ref", "refs/vtrack/runs/")
    assert r1.info.run_id not in git(b, "for-each-ref", "refs/vtrack/runs/")


def test_git_dir_environment_is_honoured(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    loc = locate_store()
    assert loc.git_dir == repo / ".git"


def test_linked_worktree_writes_into_the_common_repository(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    (wt / "train.py").write_text("print('worktree edit')\n")
    monkeypatch.chdir(wt)
    with vtrack.start_run() as run:
        pass
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    assert git(repo, "show", f"{ref}:train.py") == "print('worktree edit')"
    assert vtrack.get_run(run.info.run_id).info.source["branch"] == "feature"
    assert git(wt, "status", "--porcelain") == "M train.py"


def test_bare_repository_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = tmp_path / "store.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    monkeypatch.chdir(tmp_path)
    vtrack.set_tracking_uri(str(bare))
    with vtrack.start_run() as run:
        vtrack.log_metric("m", 1)
    assert run.info.run_id in git(bare, "for-each-ref", "refs/vtrack/runs/")
    assert locate_store(str(bare)).worktree is None


def test_new_path_becomes_a_bare_store_and_non_store_path_is_an_error(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    loc = locate_store(str(fresh))
    assert (fresh / "HEAD").is_file() and loc.worktree is None
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "file.txt").write_text("not a repo")
    with pytest.raises(StoreNotFoundError, match="not a vtrack store"):
        locate_store(str(junk))
    with pytest.raises(ValidationError, match="scheme"):
        locate_store("s3://bucket/path")


def test_outside_repository_store_is_created_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / ".vtrack").exists()
    with pytest.raises(StoreNotFoundError):
        locate_store(create=False)
    loc = locate_store()
    assert loc.git_dir == tmp_path / ".vtrack"
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert locate_store().git_dir == tmp_path / ".vtrack"  # found walking up
