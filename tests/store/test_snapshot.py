"""Code snapshots: uncommitted edits captured without touching the user's index or files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vtrack
from tests.conftest import assert_fsck_clean, git


def _status_and_index(repo: Path) -> tuple[str, bytes, str]:
    return (
        git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
        (repo / ".git" / "index").read_bytes(),
        git(repo, "diff"),
    )


def test_dirty_and_untracked_files_are_in_the_tree_and_the_index_is_untouched(repo: Path) -> None:
    (repo / "train.py").write_text("print('edited')\n")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / ".gitignore").write_text("ignored.log\n")
    (repo / "ignored.log").write_text("noise\n")
    git(repo, "add", ".gitignore")  # staged change must stay staged, nothing more
    before = _status_and_index(repo)
    with vtrack.start_run() as run:
        pass
    after = _status_and_index(repo)
    assert before == after
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    assert git(repo, "show", f"{ref}:train.py") == "print('edited')"
    assert git(repo, "show", f"{ref}:notes.txt") == "untracked"
    files = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    assert "ignored.log" not in files
    assert ".gitignore" in files
    src = vtrack.get_run(run.info.run_id).info.source
    assert src["dirty"] is True and src["code_captured"] is True
    assert src["commit"] == git(repo, "rev-parse", "HEAD") and src["branch"] == "main"
    assert_fsck_clean(repo)


def test_clean_tree_is_not_dirty_and_equals_head(repo: Path) -> None:
    with vtrack.start_run() as run:
        pass
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    assert vtrack.get_run(run.info.run_id).info.source["dirty"] is False
    assert git(repo, "diff", "--stat", "HEAD", ref, "--", ".", ":!.vtrack") == ""


def test_large_untracked_files_are_skipped_and_listed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTRACK_SNAPSHOT_MAX_FILE_BYTES", "1000")
    (repo / "big.bin").write_bytes(os.urandom(5000))
    (repo / "small.txt").write_text("ok")
    with vtrack.start_run() as run:
        pass
    files = git(
        repo, "ls-tree", "-r", "--name-only", f"refs/vtrack/runs/{run.info.run_id}"
    ).splitlines()
    assert "small.txt" in files and "big.bin" not in files
    skipped = vtrack.get_run(run.info.run_id).info.source["skipped_files"]
    assert skipped == [{"path": "big.bin", "size": 5000}]


def test_snapshot_is_reused_within_a_process_while_head_is_unchanged(repo: Path) -> None:
    with vtrack.start_run() as a:
        pass
    (repo / "train.py").write_text("print('changed later')\n")
    with vtrack.start_run() as b:
        pass
    tree = lambda r: git(repo, "rev-parse", f"refs/vtrack/runs/{r.info.run_id}:train.py")  # noqa: E731
    assert tree(a) == tree(b)  # the code this process runs was read when it started
    git(repo, "commit", "-qam", "second")
    with vtrack.start_run() as c:
        pass
    assert (
        git(repo, "show", f"refs/vtrack/runs/{c.info.run_id}:train.py") == "print('changed later')"
    )
    assert git(repo, "rev-parse", f"refs/vtrack/runs/{c.info.run_id}^") == git(
        repo, "rev-parse", "HEAD"
    )


def test_repository_without_commits_gives_parentless_run(
    make_repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo("empty", commit=False)
    monkeypatch.chdir(repo)
    with vtrack.start_run() as run:
        pass
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    assert git(repo, "rev-list", "--count", ref) == "1"
    assert git(repo, "show", f"{ref}:train.py") == "print('hello')"


def test_outside_any_repository_tree_holds_only_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "plain"
    work.mkdir()
    (work / "script.py").write_text("x")
    monkeypatch.chdir(work)
    with vtrack.start_run() as run:
        vtrack.log_param("a", 1)
    store = work / ".vtrack"
    assert (store / "HEAD").is_file()
    ref = f"refs/vtrack/runs/{run.info.run_id}"
    names = git(store, "ls-tree", "-r", "--name-only", ref).splitlines()
    assert names and all(n.startswith(".vtrack/") for n in names)
    src = vtrack.get_run(run.info.run_id).info.source
    assert src["code_captured"] is False


def test_unreadable_untracked_file_is_left_out_and_listed(repo: Path) -> None:
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    (repo / "secret.txt").write_text("no access")
    (repo / "secret.txt").chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads any file unless DAC override is dropped
        setpriv = shutil.which("setpriv")
        assert setpriv is not None
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    code = "import vtrack\nwith vtrack.start_run() as r:\n    pass\nprint(r.info.run_id)\n"
    try:
        res = subprocess.run(
            [*prefix, sys.executable, "-c", code],
            cwd=repo,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            timeout=120,
        )
    finally:
        (repo / "secret.txt").chmod(0o644)
    assert res.returncode == 0, res.stderr
    run_id = res.stdout.split()[0]
    files = git(repo, "ls-tree", "-r", "--name-only", f"refs/vtrack/runs/{run_id}").splitlines()
    assert "secret.txt" not in files and "train.py" in files
    skipped = vtrack.get_run(run_id).info.source["skipped_files"]
    assert skipped == [{"path": "secret.txt", "reason": "unreadable"}]
