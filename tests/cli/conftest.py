"""Fixtures for command tests: a repository with real runs, in-process and subprocess runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import GIT_ENV, ROOT, git
from vtrack.errors import VtrackError

BIN = Path(sys.executable).parent

TRAIN = textwrap.dedent(
    """\
    import argparse
    import vtrack

    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    with vtrack.start_run(run_name=a.name):
        vtrack.log_params({"lr": a.lr, "epochs": a.epochs, "model": "linear"})
        loss = 1.0
        for epoch in range(a.epochs):
            loss *= 1 - a.lr
            vtrack.log_metric("loss", loss, step=epoch)
        vtrack.log_metric("acc", 1 - loss)
    """
)

NOISY = textwrap.dedent(
    """\
    import os
    import random
    import time
    import vtrack

    seed = int(os.environ.get("SEED") or time.time_ns())
    random.seed(seed)
    with vtrack.start_run(run_name="noisy"):
        vtrack.log_metric("acc", random.random())
    """
)


def subprocess_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a real user's shell: no VTRACK_/GIT_ leftovers, vtrack on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VTRACK_", "GIT_"))}
    env.update(GIT_ENV)
    env["HOME"] = str(home)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    env.update(extra or {})
    return env


def train(
    repo: Path, *args: str, script: str = "train.py", env: dict[str, str] | None = None
) -> None:
    """Run a training script in ``repo`` as a real process; fail the test if it fails."""
    res = subprocess.run(
        [sys.executable, script, *args],
        cwd=repo,
        env=subprocess_env(repo.parent, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr


@dataclass
class Result:
    """What a command printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(*args: str) -> Result:
    """Run ``vtrack ARGS`` in-process through click's CliRunner (exit codes as main() maps them)."""
    from vtrack.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, list(args), catch_exceptions=True)
    code, stderr = res.exit_code, res.stderr
    if isinstance(res.exception, VtrackError):
        code = res.exception.exit_code
        stderr += f"vtrack: error: {res.exception}\n"  # what main() prints
    elif res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Result(code, res.stdout, stderr)


def vt(
    cwd: Path,
    *args: str,
    git_sub: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run ``vtrack ARGS`` (or ``git vtrack ARGS``) as a real process in ``cwd``."""
    cmd = ["git", "vtrack", *args] if git_sub else [str(BIN / "vtrack"), *args]
    res = subprocess.run(
        cmd,
        cwd=cwd,
        env=subprocess_env(cwd.parent, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(res.returncode, res.stdout, res.stderr)


def new_repo(base: Path, name: str = "repo") -> Path:
    """A git repository with train.py and noisy.py committed."""
    repo = base / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(TRAIN)
    (repo / "noisy.py").write_text(NOISY)
    (repo / ".gitignore").write_text("*.log\n")
    env = subprocess_env(base)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=repo, env=env, check=True)
    return repo


@dataclass
class RunsRepo:
    """A repository with three real runs: base, fast (lr 0.5) and edited (dirty code)."""

    path: Path
    ids: dict[str, str]


def _ids_by_name(repo: Path) -> dict[str, str]:
    out = {}
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/runs/").splitlines()
    for ref in refs:
        text = git(repo, "show", f"{ref}:.vtrack/run.yaml")
        for line in text.splitlines():
            if line.startswith("name: "):
                out[line[6:].strip()] = ref.rsplit("/", 1)[1]
    return out


@pytest.fixture(scope="module")
def runs_repo(tmp_path_factory: pytest.TempPathFactory) -> RunsRepo:
    """Shared, read-mostly: do not delete or retag its runs (use ``fresh_repo`` for that)."""
    base = tmp_path_factory.mktemp("runs")
    repo = new_repo(base)
    train(repo, "--lr", "0.1", "--name", "base")
    train(repo, "--lr", "0.5", "--epochs", "3", "--name", "fast")
    with open(repo / "train.py", "a") as f:
        f.write("# tuned by hand\n")
    (repo / "notes.txt").write_text("untracked but captured\n")
    train(repo, "--lr", "0.2", "--name", "edited")
    return RunsRepo(repo, _ids_by_name(repo))


@pytest.fixture
def fresh_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., RunsRepo]:
    """Factory: a private repository with runs made by ``train.py`` (cwd set to it)."""

    def make(*runs: tuple[str, ...]) -> RunsRepo:
        repo = new_repo(tmp_path)
        for args in runs:
            train(repo, *args)
        monkeypatch.chdir(repo)
        return RunsRepo(repo, _ids_by_name(repo))

    return make


def only_the_kept_rerun_worktree(repo: Path) -> bool:
    """True when every linked worktree is the kept rerun worktree, holding nothing extra."""
    lines = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    others = [b.splitlines()[0].split(" ", 1)[1] for b in lines[1:] if b.strip()]
    kept = str(repo / ".git" / "vtrack" / "rerun")
    return all(p.startswith(kept) and git(Path(p), "status", "--porcelain", "--ignored") == ""
               for p in others)  # fmt: skip
