"""checkout and rerun against real repositories and real processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.cli.conftest import RunsRepo, invoke, only_the_kept_rerun_worktree, train, vt
from tests.conftest import git
from vtrack.errors import EXIT_CONFLICT, EXIT_DRIFT, EXIT_USAGE


def tree_files(repo: Path, commit: str) -> dict[str, bytes]:
    """Every blob of a commit's tree: path -> bytes (symlinks as their target)."""
    out = {}
    listing = git(repo, "ls-tree", "-r", "-z", commit)
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        sha = meta.split()[2]
        out[path] = subprocess.run(
            ["git", "cat-file", "blob", sha], cwd=repo, capture_output=True, check=True
        ).stdout
    return out


def disk_files(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == ".git")]
        for name in filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if rel == ".git":
                continue
            out[rel] = p.read_bytes()
    return out


def test_checkout_into_equals_the_snapshot_byte_for_byte(
    runs_repo: RunsRepo, tmp_path: Path
) -> None:
    rid = runs_repo.ids["edited"]
    target = tmp_path / "repro"
    res = invoke("--store", str(runs_repo.path), "checkout", rid, "--into", str(target))
    assert res.exit_code == 0, res.stderr
    commit = git(runs_repo.path, "rev-parse", f"refs/vtrack/runs/{rid}")
    expected = tree_files(runs_repo.path, commit)
    assert disk_files(target) == expected
    assert b"# tuned by hand" in expected["train.py"]  # the uncommitted edit
    assert expected["notes.txt"] == b"untracked but captured\n"
    params = yaml.safe_load((target / ".vtrack" / "params.yaml").read_text())
    assert params == {"epochs": 5, "lr": 0.2, "model": "linear"}
    assert "run it again: cd " in res.stdout and "train.py --lr 0.2 --name edited" in res.stdout
    assert git(target, "rev-parse", "HEAD") == commit
    git(runs_repo.path, "worktree", "remove", "--force", str(target))


def test_checkout_materialises_small_and_large_artifacts(fresh_repo, tmp_path: Path) -> None:
    rr = fresh_repo()
    big = bytes(range(256)) * 64
    (tmp_path / "model.bin").write_bytes(big)
    (tmp_path / "notes.md").write_text("small\n")
    code = (
        "import vtrack\n"
        "with vtrack.start_run(run_name='arts'):\n"
        f"    vtrack.log_artifact({str(tmp_path / 'model.bin')!r})\n"
        f"    vtrack.log_artifact({str(tmp_path / 'notes.md')!r}, 'docs')\n"
    )
    (rr.path / "arts.py").write_text(code)
    train(rr.path, script="arts.py", env={"VTRACK_LARGE_FILE_THRESHOLD": "1000"})
    target = tmp_path / "co"
    res = vt(rr.path, "checkout", "arts", "--into", str(target))
    assert res.exit_code == 0, res.stderr
    arts = target / ".vtrack" / "artifacts"
    assert (arts / "model.bin").read_bytes() == big
    assert (arts / "docs" / "notes.md").read_text() == "small\n"
    assert (target / "arts.py").read_text() == code


def test_checkout_as_real_process_refuses_non_empty_target(
    runs_repo: RunsRepo, tmp_path: Path
) -> None:
    target = tmp_path / "t"
    res = vt(runs_repo.path, "checkout", "base", "--into", str(target), "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["path"] == str(target.resolve())
    assert (target / "train.py").read_text() == (runs_repo.path / "train.py").read_text().replace(
        "# tuned by hand\n", ""
    )
    res = vt(runs_repo.path, "checkout", "fast", "--into", str(target))
    assert res.exit_code == EXIT_USAGE
    git(runs_repo.path, "worktree", "remove", "--force", str(target))


def test_checkout_in_place_refuses_a_dirty_tree_then_switches(fresh_repo) -> None:
    rr = fresh_repo(
        ("--name", "one"),
    )
    (rr.path / "train.py").write_text("# changed\n")
    res = invoke("checkout", "one")
    assert res.exit_code == EXIT_CONFLICT
    assert (rr.path / "train.py").read_text() == "# changed\n"
    git(rr.path, "checkout", "--", "train.py")
    res = vt(rr.path, "checkout", "one")
    assert res.exit_code == 0, res.stderr
    commit = git(rr.path, "rev-parse", f"refs/vtrack/runs/{rr.ids['one']}")
    assert git(rr.path, "rev-parse", "HEAD") == commit
    assert disk_files(rr.path) == tree_files(rr.path, commit)
    assert "git checkout main" in res.stdout


def test_rerun_of_a_deterministic_run_reproduces(fresh_repo) -> None:
    rr = fresh_repo(
        ("--lr", "0.3", "--name", "det"),
    )
    rid = rr.ids["det"]
    res = vt(rr.path, "rerun", "--yes", "det", "--json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["verdict"] == "reproduced" and report["run_id"] == rid
    assert {m["key"] for m in report["metrics"]} == {"acc", "loss"}
    new = invoke("show", report["rerun_id"], "--json").json()
    assert new["tags"]["vtrack.rerun_of"] == rid
    assert new["tags"]["vtrack.rerun_verdict"] == "reproduced"
    assert new["source"]["argv"] == ["--lr", "0.3", "--name", "det"]
    assert new["source"]["entry_point"] == "train.py"
    original_tree = git(rr.path, "rev-parse", f"refs/vtrack/runs/{rid}^{{tree}}")
    diff = git(
        rr.path,
        "diff",
        "--stat",
        rid and f"refs/vtrack/runs/{rid}",
        f"refs/vtrack/runs/{report['rerun_id']}",
        "--",
        ".",
        ":(exclude).vtrack",
    )
    assert diff == "" and original_tree
    assert only_the_kept_rerun_worktree(rr.path)  # no temporary worktree, no leftovers


def test_rerun_of_a_seeded_random_run_diverges(fresh_repo) -> None:
    rr = fresh_repo()
    train(rr.path, script="noisy.py")
    res = invoke("rerun", "--yes", "noisy")
    assert res.exit_code == EXIT_DRIFT
    assert "diverged" in res.stdout
    res = vt(rr.path, "rerun", "--yes", "@~1", "--json")  # the rerun is named "noisy" too
    assert res.exit_code == EXIT_DRIFT
    report = json.loads(res.stdout)
    assert report["verdict"] == "diverged"
    assert report["metrics"][0]["within_tolerance"] is False


def test_rerun_restores_recorded_env_variables(fresh_repo) -> None:
    rr = fresh_repo()
    (rr.path / "hashy.py").write_text(
        "import vtrack\n"
        "with vtrack.start_run(run_name='hashy'):\n"
        "    vtrack.log_metric('h', hash('vtrack') % 1_000_003)\n"
    )
    train(rr.path, script="hashy.py", env={"PYTHONHASHSEED": "3"})
    res = invoke("rerun", "--yes", "hashy", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert res.json()["verdict"] == "reproduced"


def test_rerun_tolerance_and_ignore(fresh_repo) -> None:
    rr = fresh_repo()
    train(rr.path, script="noisy.py", env={"SEED": "7"})
    # SEED is not a recorded variable: without it the rerun diverges ...
    assert invoke("rerun", "--yes", "noisy").exit_code == EXIT_DRIFT
    # ... and an unbounded tolerance, or ignoring the metric, makes it pass
    assert invoke("rerun", "--yes", "@~1", "--tolerance", "1e9").exit_code == 0
    assert invoke("rerun", "--yes", "@~2", "--ignore", "acc").exit_code == 0


def test_rerun_of_python_c_run_is_refused(fresh_repo) -> None:
    from tests.conftest import run_script

    rr = fresh_repo()
    res = run_script("import vtrack\nwith vtrack.start_run(run_name='inline'): pass", rr.path)
    assert res.returncode == 0, res.stderr
    out = invoke("rerun", "--yes", "inline")
    assert out.exit_code == EXIT_USAGE
    assert "python -c" in out.stderr or "python -c" in out.stdout
