"""vtrack rerun shows what it will execute and asks first; scripts pass --yes; secrets stay out.

The interactive tests drive a real terminal (``os.openpty``): the command sees a tty on
stdin and the test answers the question by typing into it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import (
    BIN,
    RunsRepo,
    only_the_kept_rerun_worktree,
    subprocess_env,
    train,
    vt,
)
from tests.conftest import git
from vtrack.errors import EXIT_USAGE

pytestmark = pytest.mark.timeout(180)


def _runs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/runs/").splitlines()


def _no_rerun_left_behind(repo: Path) -> None:
    assert only_the_kept_rerun_worktree(repo), git(repo, "worktree", "list")


def _vt_no_tty(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vtrack ARGS`` with stdin that is not a terminal (as in CI or a cron job)."""
    return subprocess.run(
        [str(BIN / "vtrack"), *args], cwd=repo, env=subprocess_env(repo.parent),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _vt_on_terminal(repo: Path, answer: bytes, *args: str) -> tuple[int, str]:
    """Run ``vtrack ARGS`` on a pseudo-terminal, type ``answer`` at the question."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [str(BIN / "vtrack"), *args], cwd=repo, env=subprocess_env(repo.parent),
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    out = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and b"Run it? [y/N]" in out:
                    os.write(master, answer)
                    answered = True
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert answered, out.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace")


def test_without_a_terminal_and_without_yes_it_refuses_and_runs_nothing(fresh_repo) -> None:
    rr = fresh_repo(("--lr", "0.3", "--name", "det"))
    before = _runs(rr.path)
    res = _vt_no_tty(rr.path, "rerun", "det")
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "--yes" in res.stderr and "not a terminal" in res.stderr
    assert "train.py --lr 0.3 --name det" in res.stderr  # the plan was shown first
    assert _runs(rr.path) == before
    _no_rerun_left_behind(rr.path)


def test_dry_run_prints_the_plan_and_runs_nothing(fresh_repo) -> None:
    rr: RunsRepo = fresh_repo(("--lr", "0.3", "--name", "det"))
    with open(rr.path / "train.py", "a") as f:
        f.write("# edited after the run\n")
    before = _runs(rr.path)
    res = _vt_no_tty(rr.path, "rerun", "det", "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "command:" in out and "python train.py --lr 0.3 --name det" in out
    assert "directory:" in out and "VTRACK_RERUN_OF=" + rr.ids["det"] in out
    assert "-# edited after the run" in out  # the line the run's code does not have
    assert "train.py | 1 -" in out
    assert _runs(rr.path) == before
    _no_rerun_left_behind(rr.path)

    data = vt(rr.path, "rerun", "det", "--dry-run", "--json").json()
    assert data["runnable"] is True and data["command"][-4:] == ["--lr", "0.3", "--name", "det"]
    assert data["env"]["VTRACK_RERUN_OF"] == rr.ids["det"]
    assert "-# edited after the run" in data["code_diff"]["patch"]
    assert _runs(rr.path) == before


def test_a_long_diff_is_cut_with_a_note_saying_how_to_see_all_of_it(fresh_repo) -> None:
    rr = fresh_repo(("--name", "base"))
    (rr.path / "big.py").write_text("".join(f"x{i} = {i}\n" for i in range(1000)))
    res = _vt_no_tty(rr.path, "rerun", "base", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "more lines of diff not shown; see all of it with: git diff " in res.stdout
    assert res.stdout.count("\n-x") < 250
    assert _runs(rr.path) == [f"refs/vtrack/runs/{rr.ids['base']}"]


def test_on_a_terminal_no_runs_nothing_and_yes_runs_it(fresh_repo) -> None:
    rr = fresh_repo(("--lr", "0.3", "--name", "det"))
    before = _runs(rr.path)
    code, out = _vt_on_terminal(rr.path, b"n\n", "rerun", "det")
    assert code == EXIT_USAGE, out
    assert "train.py --lr 0.3 --name det" in out and "nothing was run" in out
    assert _runs(rr.path) == before
    _no_rerun_left_behind(rr.path)

    code, out = _vt_on_terminal(rr.path, b"y\n", "rerun", "det")
    assert code == 0, out
    assert "reproduced" in out
    new = set(_runs(rr.path)) - set(before)
    assert len(new) == 1
    record = yaml.safe_load(git(rr.path, "show", f"{new.pop()}:.vtrack/run.yaml"))
    assert record["tags"]["vtrack.rerun_of"] == rr.ids["det"]
    _no_rerun_left_behind(rr.path)


SECRETIVE = """\
import sys
import vtrack

with vtrack.start_run(run_name="secretive"):
    vtrack.log_param("n_args", len(sys.argv))
"""


def test_secret_arguments_are_masked_and_a_rerun_refuses_to_guess_them(fresh_repo) -> None:
    rr = fresh_repo()
    (rr.path / "secretive.py").write_text(SECRETIVE)
    args = ["--api-key=sk-live-0123", "--token", "ghp_abcdef", "--lr", "0.1",
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", "--db", "postgresql://bob:hunter2@db/x"]  # fmt: skip
    train(rr.path, *args, script="secretive.py")
    (ref,) = [r for r in _runs(rr.path)]
    text = git(rr.path, "show", f"{ref}:.vtrack/run.yaml")
    for secret in ("sk-live-0123", "ghp_abcdef", "wJalrXUtnFEMI", "hunter2"):
        assert secret not in text
    src = yaml.safe_load(text)["source"]
    assert src["argv"] == ["--api-key=***", "--token", "***", "--lr", "0.1",
                           "AWS_SECRET_ACCESS_KEY=***", "--db", "postgresql://***@db/x"]  # fmt: skip
    assert src["argv_masked"] == [0, 2, 5, 7]

    before = _runs(rr.path)
    res = _vt_no_tty(rr.path, "rerun", "secretive", "--yes")
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "masked" in res.stderr and "'--api-key=***'" in res.stderr
    assert "vtrack checkout" in res.stderr and "--api-key=<secret>" in res.stderr
    assert _runs(rr.path) == before
    _no_rerun_left_behind(rr.path)
