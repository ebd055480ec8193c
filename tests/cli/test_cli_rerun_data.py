"""The data comes along: gitignored and outside inputs in reruns and checkouts (issue 12).

Regression: with ``data/`` in .gitignore the rerun failed with FileNotFoundError and was
called "diverged"; ``checkout --into`` did not bring the data either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import new_repo, only_the_kept_rerun_worktree, subprocess_env, vt
from tests.conftest import git

WINE = textwrap.dedent(
    """\
    import vtrack

    with vtrack.start_run(run_name="wine"):
        vtrack.log_input("data", name="wine", context="train")
        vtrack.log_input("../shared/labels.csv", name="labels", context="train")
        rows = open("data/wine.csv").read().splitlines()
        labels = open("../shared/labels.csv").read().splitlines()
        vtrack.log_metric("rows", len(rows))
        vtrack.log_metric("labels", len(labels))
    """
)


def wine_repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose run read a gitignored folder and a file outside the repository."""
    path = new_repo(tmp_path)
    (path / ".gitignore").write_text("*.log\ndata/\n")
    (path / "data").mkdir()
    (path / "data" / "wine.csv").write_text("a,b\n1,2\n3,4\n")
    (path / "data" / "extra.csv").write_text("x\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "labels.csv").write_text("l\n0\n1\n")
    (path / "wine.py").write_text(WINE)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "wine")
    res = subprocess.run(
        [sys.executable, "wine.py"], cwd=path, env=subprocess_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    listed = vt(path, "ls", "--json").json()
    return path, listed[0]["run_id"]


def test_gitignored_and_outside_inputs_are_present_in_the_rerun(tmp_path: Path) -> None:
    path, rid = wine_repo(tmp_path)
    res = vt(path, "rerun", rid, "--yes", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    report = res.json()
    assert report["verdict"] == "reproduced"
    data = {d["name"]: d for d in report["data"]}
    assert data["wine"]["at"] == "data" and data["wine"]["status"] == "unchanged"
    assert data["wine"]["how"] in ("reflink", "hard link", "symlink", "copy")
    assert report["data_modified"] == []
    assert data["labels"]["at"] == "../shared/labels.csv"
    # the originals are untouched and nothing is left behind
    assert (path / "data" / "wine.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert only_the_kept_rerun_worktree(path)  # no temporary worktree, no leftovers


def test_a_rerun_of_a_rerun_finds_the_data_the_first_rerun_read(tmp_path: Path) -> None:
    """The rerun's own run records its inputs where the data lives, not at its links.

    Regression: the rerun's run recorded the links under ``.git/vtrack/rerun/tree/…`` (and
    no repository path), which the rerun removes, so ``vtrack rerun @`` right after a
    rerun failed with "input 'wine' … is missing".
    """
    path, rid = wine_repo(tmp_path)
    first = vt(path, "rerun", rid, "--yes", "--json")
    assert first.exit_code == 0, first.stdout + first.stderr
    rerun_id = first.json()["rerun_id"]
    shown = vt(path, "show", rerun_id, "--json").json()
    inputs = {d["name"]: d for d in shown["datasets"]}
    assert inputs["wine"]["path"] == str(path / "data")
    assert inputs["wine"]["repo_path"] == "data"
    assert inputs["labels"]["path"] == str(tmp_path / "shared" / "labels.csv")
    second = vt(path, "rerun", rerun_id, "--yes", "--json")
    assert second.exit_code == 0, second.stdout + second.stderr
    assert second.json()["verdict"] == "reproduced"


def test_checkout_into_links_the_gitignored_data_without_copying(tmp_path: Path) -> None:
    path, rid = wine_repo(tmp_path)
    target = tmp_path / "co"
    res = vt(path, "checkout", rid, "--into", str(target))
    assert res.exit_code == 0, res.stdout + res.stderr
    linked = target / "data" / "wine.csv"
    assert linked.read_text() == "a,b\n1,2\n3,4\n"
    orig = path / "data" / "wine.csv"
    same = os.stat(linked).st_ino == os.stat(orig).st_ino or linked.is_symlink()
    assert same, "the data was copied instead of linked"
    assert "data: wine at data (" in res.stdout
    assert "data: labels at ../shared/labels.csv (at recorded path)" in res.stdout
    assert not (tmp_path / "shared" / "co").exists()  # nothing written outside DIR
    # the link is not part of the code: git sees it as ignored
    assert git(target, "status", "--porcelain") == ""
    git(path, "worktree", "remove", "--force", str(target))
    assert orig.read_text() == "a,b\n1,2\n3,4\n"


def test_drifted_data_is_refused_before_anything_runs_and_allowed_on_request(
    tmp_path: Path,
) -> None:
    path, rid = wine_repo(tmp_path)
    (path / "data" / "wine.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    before = vt(path, "ls", "--json").json()
    res = vt(path, "rerun", rid, "--yes")
    assert res.exit_code == 1, res.stdout + res.stderr
    assert "changed since it ran" in res.stderr and "wine.csv" in res.stderr
    assert "--allow-drift" in res.stderr
    assert vt(path, "ls", "--json").json() == before  # nothing ran
    co = vt(path, "checkout", rid, "--into", str(tmp_path / "co"))
    assert co.exit_code == 1 and "changed since it ran" in co.stderr
    allowed = vt(path, "rerun", rid, "--yes", "--allow-drift")
    assert allowed.exit_code == 1, allowed.stdout + allowed.stderr  # rows went 3 -> 4
    assert "data differed from the original run: wine" in allowed.stdout
    assert "diverged on drifted data" in allowed.stdout
    js = vt(path, "rerun", rid, "--yes", "--allow-drift", "--json", "--ignore", "rows")
    assert js.exit_code == 0 and js.json()["data_differed"] == ["wine"]


def test_missing_data_is_a_clear_error_not_a_launch_failure(tmp_path: Path) -> None:
    path, rid = wine_repo(tmp_path)
    (tmp_path / "shared" / "labels.csv").unlink()
    res = vt(path, "rerun", rid, "--yes")
    assert res.exit_code == 3, res.stdout + res.stderr
    assert "input 'labels'" in res.stderr and "is missing" in res.stderr
    assert "recorded source " in res.stderr and "shared/labels.csv" in res.stderr
    assert "failed to run" not in res.stdout and "diverged" not in res.stdout


def test_a_rerun_that_writes_to_its_linked_input_is_named(tmp_path: Path) -> None:
    """Links share the original's bytes: a rerun writing its input must not go unnoticed.

    Regression (issue 12, "read-only"): the rerun linked the originals and a script that
    appended to its input changed the user's data without a word.
    """
    path = new_repo(tmp_path)
    (path / ".gitignore").write_text("data/\n")
    (path / "data").mkdir()
    (path / "data" / "rows.csv").write_text("a\n1\n")
    (path / "train.py").write_text(
        textwrap.dedent(
            """\
            import os
            import vtrack

            with vtrack.start_run(run_name="append"):
                vtrack.log_input("data/rows.csv", name="rows")
                vtrack.log_metric("rows", len(open("data/rows.csv").read().splitlines()))
                if os.environ.get("VTRACK_RERUN_OF"):  # only the rerun writes its input
                    with open("data/rows.csv", "a") as f:
                        f.write("2\\n")
            """
        )
    )
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "append")
    res = subprocess.run(
        [sys.executable, "train.py"], cwd=path, env=subprocess_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rid = vt(path, "ls", "--json").json()[0]["run_id"]
    shown = vt(path, "rerun", rid, "--yes")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    if (path / "data" / "rows.csv").read_text() == "a\n1\n":
        # a reflink: its own read-only inode, so the write failed and the original is intact
        assert "reflink" in vt(path, "rerun", rid, "--yes", "--json").json()["data"][0]["how"]
        return
    out = shown.stdout + shown.stderr
    assert "the rerun wrote to its input data" in out and "rows changed on disk" in out
    # the second rerun sees the drift (refused unless allowed) and names the write again
    report = vt(path, "rerun", rid, "--yes", "--json", "--allow-drift")
    assert report.exit_code == 1 and report.json()["verdict"] == "diverged"  # 3 rows, not 2
    assert report.json()["data_modified"] == ["rows"]
    assert report.json()["data_differed"] == ["rows"]
