"""Helpers shared by the benchmark scripts: timing, temporary repositories, tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def median_us(fn: Callable[[], object], n: int) -> float:
    """Median wall time of ``fn`` in microseconds over ``n`` calls."""
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1000


def in_forked_workers(work: Callable[[range], object], first: int, stop: int, workers: int) -> None:
    """Run ``work(range(first + w, stop, workers))`` for each of ``workers`` forked
    processes at once; a child that fails prints its traceback, and then this raises
    SystemExit. Children leave with ``os._exit`` (no cleanup of the parent's state)."""
    workers = max(1, workers)
    pids = []
    for w in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                work(range(first + w, stop, workers))
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise SystemExit("a bulk writer process failed")


def git(cwd: Path, *args: str) -> str:
    """Run git quietly and return stdout."""
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@b",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@b",
    )
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def make_repo(path: Path, n_files: int) -> Path:
    """A git repository with ``n_files`` small tracked files in nested folders, committed."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(n_files):
        d = path / f"pkg{i % 50:02d}" / f"mod{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}.py").write_text(f"# file {i}\nVALUE = {i}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    return path


def python_with_vtrack() -> dict[str, str]:
    """Environment for subprocesses that import vtrack from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def have_mlflow() -> bool:
    """True when mlflow can be imported by this interpreter."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def table(rows: list[tuple[str, ...]], headers: tuple[str, ...] | None = None) -> str:
    """Format rows as a Markdown table (default columns: figure, vtrack, anchor, ratio, target)."""
    head = headers or ("figure", "vtrack", "MLflow 3.17 (same run)", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def interpreter() -> str:
    """The running interpreter (benchmarks run their subprocesses with it)."""
    return sys.executable


def write_random(path: Path, size: int) -> None:
    """Write ``size`` incompressible bytes (one random MiB repeated) to ``path``."""
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def disk_usage(root: Path) -> int:
    """Bytes allocated on disk under ``root`` (st_blocks; hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
