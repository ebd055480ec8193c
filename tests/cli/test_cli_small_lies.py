"""Small lies: an absurd @~N is a usage error, a failed checkout --into leaves no worktree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import train, vt
from tests.conftest import git
from vtrack.errors import EXIT_NOT_FOUND, EXIT_USAGE


@pytest.mark.parametrize(
    "spec",
    ["@~99999999999999999999", "@~9223372036854775808", "Default@~99999999999999999999",
     "@~" + "9" * 5000],
    ids=["20-digits", "2**63", "experiment", "5000-digits"],
)  # fmt: skip
def test_an_offset_too_large_for_any_store_is_a_one_line_usage_error(fresh_repo, spec: str) -> None:
    rr = fresh_repo(("--name", "only"))
    res = vt(rr.path, "show", spec)
    assert res.exit_code == EXIT_USAGE, res.stderr
    assert "Traceback" not in res.stderr and "OverflowError" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vtrack: error: bad run spec")
    assert spec[:20] in lines[0] and "9223372036854775807" in lines[0]
    # the largest offset SQLite can hold is an ordinary "past the oldest run"
    res = vt(rr.path, "show", "@~9223372036854775807")
    assert res.exit_code == EXIT_NOT_FOUND and "past the oldest run" in res.stderr


def _large_artifact_run(rr_path: Path, tmp_path: Path) -> Path:
    """A run with one large artifact whose object is then lost; returns the object file."""
    (tmp_path / "model.bin").write_bytes(os.urandom(5000))
    (rr_path / "arts.py").write_text(
        "import vtrack\n"
        "with vtrack.start_run(run_name='arts'):\n"
        f"    vtrack.log_artifact({str(tmp_path / 'model.bin')!r})\n"
    )
    git(rr_path, "add", "arts.py")
    git(rr_path, "commit", "-q", "-m", "arts")
    train(rr_path, script="arts.py", env={"VTRACK_LARGE_FILE_THRESHOLD": "1000"})
    (obj,) = [p for p in (rr_path / ".git" / "vtrack" / "objects").glob("??/*") if p.is_file()]
    return obj


@pytest.mark.parametrize("pre_existing", [False, True])
def test_a_checkout_into_that_fails_part_way_removes_its_worktree(
    fresh_repo, tmp_path: Path, pre_existing: bool
) -> None:
    rr = fresh_repo()
    obj = _large_artifact_run(rr.path, tmp_path)
    os.chmod(obj, 0o644)
    obj.unlink()  # this clone lost the object: materialising the artifact must fail
    target = tmp_path / "co"
    if pre_existing:
        target.mkdir()
    res = vt(rr.path, "checkout", "arts", "--into", str(target))
    assert res.exit_code == EXIT_NOT_FOUND, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "not in the object store of this clone" in res.stderr
    assert "vtrack remote set-objects" in res.stderr  # where the bytes can come from
    assert git(rr.path, "worktree", "list").count("\n") == 0, git(rr.path, "worktree", "list")
    worktrees = rr.path / ".git" / "worktrees"
    assert not worktrees.exists() or os.listdir(worktrees) == []
    if pre_existing:
        assert target.is_dir() and os.listdir(target) == []
    else:
        assert not target.exists()
    assert git(rr.path, "status", "--porcelain") == ""


def test_checkout_over_a_dirty_tree_names_the_files_exactly(repo: Path) -> None:
    """The refusal named `rain.py` for `train.py`: the first status line lost its leading
    space to a strip, then three characters were cut off."""
    import vtrack

    with vtrack.start_run() as run:
        pass
    (repo / "train.py").write_text("print('edited')\n")
    res = subprocess.run(["vtrack", "checkout", run.info.run_id], cwd=repo, capture_output=True,
                         text=True)  # fmt: skip
    assert res.returncode == 4, res.stderr
    assert "train.py" in res.stderr and "rain.py" not in res.stderr.replace("train.py", "")
