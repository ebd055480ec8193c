"""Shared fixtures: a scrubbed environment, real temporary git repositories, subprocess helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# Property tests must not flake on a loaded machine: no deadline, no "too slow" health
# check; in CI (CI set) the examples are derandomized so every run checks the same ones.
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    """Run git in ``cwd`` and return stdout (stripped)."""
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr}")
    return res.stdout.strip()


@pytest.fixture(autouse=True)
def scrub_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test starts with no VTRACK_*/GIT_* variables, a private HOME and a fresh session.

    COLUMNS and LINES go too: pytest-xdist's workers set them (80x24), which would give
    the command line a narrower table than a pipe gets in one process.
    """
    for name in list(os.environ):
        if name.startswith(("VTRACK_", "GIT_")) or name in ("COLUMNS", "LINES"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    yield
    if "vtrack.fluent" in sys.modules:
        sys.modules["vtrack.fluent"]._reset_for_tests()


@pytest.fixture
def make_repo(tmp_path: Path):
    """Factory: a real git repository with one commit; returns its path."""

    def _make(name: str = "repo", files: dict[str, str] | None = None, commit: bool = True) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for rel, content in (files or {"train.py": "print('hello')\n"}).items():
            p = repo / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        if commit:
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", "initial")
        return repo

    return _make


@pytest.fixture
def repo(make_repo, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real git repository with one commit, made the current directory."""
    path = make_repo()
    monkeypatch.chdir(path)
    return path


class FastForwardClock:
    """A wall clock in ns that a test moves forward instead of sleeping (see vtrack.statcache).

    It reads real time plus an offset, so a stat cache built on it sees files as
    ``offset`` older than they are: ``advance(s)`` stands for ``time.sleep(s)``.
    """

    def __init__(self, seconds_ahead: float = 0.0) -> None:
        self.offset_ns = round(seconds_ahead * 1e9)

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.offset_ns += round(seconds * 1e9)


def past_racy_margin() -> FastForwardClock:
    """A clock for which files written so far have left the stat cache's racy window.

    Only what the cache believes moves; the filesystem does not. So a file is also
    waited past its timestamp tick (:func:`wait_past_timestamps`) when a test will edit
    it and expect the edit to show in its stat, which a real sleep would guarantee.
    """
    from vtrack.statcache import RACY_MARGIN_NS

    return FastForwardClock(RACY_MARGIN_NS / 1e9 + 1.0)


def wait_past_timestamps(*paths: Path) -> None:
    """Return once the filesystem stamps a new write later than every path's mtime and ctime.

    On a kernel with coarse timestamps two writes within one tick get the same stamp;
    after this, an edit of any of ``paths`` moves its ctime. Costs at most one tick.
    """
    newest = max(max(st.st_mtime_ns, st.st_ctime_ns) for st in (os.stat(p) for p in paths))
    probe = Path(paths[0]).parent / ".vtrack-tick-probe"  # beside, never inside, a folder
    try:
        while True:
            probe.write_bytes(b"")
            if os.stat(probe).st_ctime_ns > newest:
                return
            time.sleep(0.001)
    finally:
        probe.unlink(missing_ok=True)


def warm_store_stat_cache(repo: Path, *inputs: Path) -> None:
    """Hash ``inputs`` (files or folders) into ``repo``'s store stat cache, past the racy window.

    Afterwards the store trusts those entries, as it would had the files been left
    alone for the racy margin before vtrack first hashed them; and an edit of any of
    them moves its stat (:func:`wait_past_timestamps`).
    """
    from vtrack.datasets import describe_input
    from vtrack.provenance import STATCACHE_FILE
    from vtrack.statcache import StatCache

    files = [f for p in inputs for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    with StatCache(repo / ".git" / "vtrack" / STATCACHE_FILE, clock=past_racy_margin()) as cache:
        for p in inputs:
            describe_input(p, cache=cache)
    wait_past_timestamps(*(f for f in files if f.is_file()))


def run_script(
    code: str,
    cwd: Path | str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    wait: bool = True,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Run ``code`` (dedented) in a fresh Python subprocess in ``cwd``."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    args = [sys.executable, "-c", textwrap.dedent(code)]
    if not wait:
        return subprocess.Popen(
            args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(
        args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def reap(proc: subprocess.Popen[Any], timeout: float | None = None) -> int:
    """Wait for ``proc`` to end, close the pipes to it, and return its exit status.

    A child's pipe left open is a ResourceWarning when it is collected, and warnings
    are errors in this suite (reported against whichever test runs at that moment).
    On a timeout (``subprocess.TimeoutExpired``) the pipes stay open for a later reap.
    """
    code = proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code


def assert_fsck_clean(repo: Path | str) -> None:
    """Fail unless ``git fsck`` finds no error, missing or broken object (dangling is fine)."""
    res = subprocess.run(
        ["git", "fsck", "--full", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    words = ("error:", "missing", "broken", "bad")
    bad = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.split(" ")[0] in words]
    assert not bad, bad


def wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    """Read ``proc``'s stdout until a line starts with ``prefix``; return it stripped."""
    import time

    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            raise AssertionError(
                f"process ended early: {proc.stderr.read() if proc.stderr else ''}"
            )
    raise AssertionError(f"no line starting with {prefix!r}")
