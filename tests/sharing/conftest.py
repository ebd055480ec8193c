"""A team: a bare remote and two clones (real git), runs made by real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import TRAIN, subprocess_env, vt
from tests.conftest import git, reap

BIG = 9 * 1024 * 1024  # over the 8 MiB threshold: a large object

ARTIFACT_RUN = """\
import os, sys, vtrack
with vtrack.start_run(run_name=sys.argv[1]):
    vtrack.log_param("size", int(sys.argv[2]))
    path = os.path.join(os.environ["OUT"], sys.argv[1] + ".bin")
    with open(path, "wb") as f:
        f.write(os.urandom(int(sys.argv[2])))
    vtrack.log_artifact(path, artifact_path="model")
    print(vtrack.active_run().info.run_id)
"""


@dataclass
class Team:
    remote: Path
    a: Path
    b: Path
    out: Path

    def run(
        self, clone: Path, name: str, size: int = BIG, env: dict[str, str] | None = None
    ) -> str:
        """A run with one large (or small) artifact, made by a real process; its id."""
        res = subprocess.run(
            [sys.executable, "art.py", name, str(size)], cwd=clone, capture_output=True, text=True,
            env=subprocess_env(clone.parent, {"OUT": str(self.out), **(env or {})}), timeout=120,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout.strip().splitlines()[-1]


def make_team(base: Path, remote_url: str | None = None) -> Team:
    env = subprocess_env(base)
    remote = base / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True, env=env)
    a = base / "a"
    a.mkdir()
    git(a, "init", "-q", "-b", "main")
    (a / "train.py").write_text(TRAIN)
    (a / "art.py").write_text(ARTIFACT_RUN)
    git(a, "add", "-A")
    git(a, "commit", "-q", "-m", "initial")
    git(a, "remote", "add", "origin", remote_url or str(remote))
    git(a, "push", "-q", "origin", "main")
    b = base / "b"
    git(base, "clone", "-q", remote_url or str(remote), str(b))
    out = base / "out"
    out.mkdir()
    return Team(remote, a, b, out)


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Poll until something listens on ``port``; fail with the server's ``log`` if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real ``git daemon`` on loopback serving (and accepting pushes to) a folder."""
    root = tmp_path / "served"
    root.mkdir()
    port = free_port()
    log = tmp_path / "git-daemon.log"
    with log.open("wb") as err:  # a file, not a pipe: nobody reads it while the server runs
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={root}", "--export-all",
             "--enable=receive-pack", "--listen=127.0.0.1", f"--port={port}", str(root)],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        wait_port(port, proc, log)
        yield root, f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        reap(proc, timeout=30)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port; returns a fresh bucket's URL.

    Its request log goes to a file: a pipe nobody reads would fill and stall the server,
    and an unclosed pipe is a ResourceWarning (an error in this suite).
    """
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        wait_port(port, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="team")
        yield "s3://team/vtrack-objects"
    finally:
        proc.terminate()
        reap(proc, timeout=30)


def refs(repo: Path, prefix: str = "refs/vtrack/") -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split() for line in out.splitlines())


def vts(cwd: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """``vtrack ARGS`` as a real process, passing the AWS_* settings of the test along."""
    extra = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return vt(cwd, *args, env={**extra, **(env or {})})
