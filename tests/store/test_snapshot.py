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


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An injected monotonic clock: ``clocks[0]`` is its time, advanced by hand."""
    from vtrack.store import snapshot

    now = [0]
    monkeypatch.setattr(snapshot, "clock", lambda: now[0])
    snapshot.clear_cache()
    return now


def _file(repo: Path, run: vtrack.ActiveRun, path: str) -> str:
    return git(repo, "show", f"refs/vtrack/runs/{run.info.run_id}:{path}")


def test_runs_started_back_to_back_reuse_the_snapshot_while_head_is_unchanged(
    repo: Path, clocks: list[int]
) -> None:
    with vtrack.start_run() as a:
        pass
    (repo / "train.py").write_text("print('changed at once')\n")
    with vtrack.start_run() as b:  # within REVALIDATE_AFTER_NS of the last check: reused
        pass
    assert _file(repo, a, "train.py") == _file(repo, b, "train.py") == "print('hello')"
    git(repo, "commit", "-qam", "second")
    with vtrack.start_run() as c:  # a new HEAD is always a new snapshot
        pass
    assert _file(repo, c, "train.py") == "print('changed at once')"
    assert git(repo, "rev-parse", f"refs/vtrack/runs/{c.info.run_id}^") == git(
        repo, "rev-parse", "HEAD"
    )


def test_a_notebook_editing_a_helper_between_runs_records_each_runs_own_code(
    repo: Path, clocks: list[int]
) -> None:
    """Regression: the snapshot was cached per process per HEAD, so a process (a notebook
    with %autoreload) that edited a helper between two runs recorded the first run's code
    for the second."""
    from vtrack.store.snapshot import REVALIDATE_AFTER_NS

    (repo / "helper.py").write_text("x = 1\n")
    with vtrack.start_run() as a:
        pass
    (repo / "helper.py").write_text("x = 2\n")  # edited in place
    clocks[0] += REVALIDATE_AFTER_NS
    with vtrack.start_run() as b:
        pass
    (repo / "extra.py").write_text("y = 3\n")  # a new file
    (repo / "train.py").unlink()  # a deleted file
    clocks[0] += REVALIDATE_AFTER_NS
    with vtrack.start_run() as c:
        pass
    assert _file(repo, a, "helper.py") == "x = 1" and _file(repo, b, "helper.py") == "x = 2"
    assert _file(repo, c, "extra.py") == "y = 3"
    files = git(repo, "ls-tree", "-r", "--name-only", f"refs/vtrack/runs/{c.info.run_id}")
    assert "train.py" not in files.splitlines()


def test_an_unchanged_tree_is_checked_by_git_and_reused(repo: Path, clocks: list[int]) -> None:
    from vtrack.capture import snapshot
    from vtrack.client import TrackingClient
    from vtrack.store.snapshot import REVALIDATE_AFTER_NS

    store = TrackingClient(str(repo)).store
    first = snapshot(store, top_level=True)
    clocks[0] += REVALIDATE_AFTER_NS
    assert snapshot(store, top_level=True) is first  # every stat equal: not re-read
    (repo / "train.py").write_text("print('edited')\n")
    assert snapshot(store, top_level=True) is first  # checked again only after the interval
    clocks[0] += REVALIDATE_AFTER_NS
    assert snapshot(store, top_level=True) is not first


def test_a_nested_run_reuses_its_parents_snapshot_after_edits(
    repo: Path, clocks: list[int]
) -> None:
    from vtrack.store.snapshot import REVALIDATE_AFTER_NS

    with vtrack.start_run() as parent:
        (repo / "train.py").write_text("print('written by the sweep')\n")
        clocks[0] += REVALIDATE_AFTER_NS
        with vtrack.start_run(nested=True) as child:
            pass
    assert _file(repo, child, "train.py") == _file(repo, parent, "train.py") == "print('hello')"


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
