"""Issue 12 figure: what ``vtrack rerun`` adds beyond the script's own run time.

    PYTHONPATH=. python benchmarks/bench_rerun.py [--quick] [--repeat N]

A repository of 5,000 tracked files with a 1 GiB input in a gitignored ``data/`` folder;
the script logs the input (``log_input``), reads its first MiB and logs a metric. The
anchor is the same script run directly (``python train.py`` in the repository), measured
side by side with ``vtrack rerun RUN --yes`` in alternating pairs, so both see the same
machine load. The overhead is rerun minus direct, per pair: the plan (code diff, digest
check of the data through the stat cache), the temporary worktree of 5,000 files, linking
the data (symlinks, not copies), finding and comparing the new run, tagging and renaming
it, and removing the worktree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, make_repo, python_with_vtrack, write_random  # noqa: E402

SCRIPT = """\
import vtrack

with vtrack.start_run(run_name="bench"):
    vtrack.log_input("data/big.bin", name="big", context="train")
    with open("data/big.bin", "rb") as f:
        head = f.read(1 << 20)
    vtrack.log_metric("head_sum", float(sum(head[:4096])))
"""

TARGET_S = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 MiB input, 3 pairs")
    ap.add_argument("--repeat", type=int, default=None, help="pairs to time (default 7)")
    args = ap.parse_args()
    size = (64 if args.quick else 1024) * 1024 * 1024
    pairs = args.repeat or (3 if args.quick else 7)
    env = python_with_vtrack()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps bytecode caches
    env = {k: v for k, v in env.items() if not k.startswith("VTRACK_")}
    before = set(Path(tempfile.gettempdir()).glob("vtrack-rerun-*"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        repo = make_repo(Path(d) / "repo", 5000)
        (repo / ".gitignore").write_text("data/\n")
        (repo / "train.py").write_text(SCRIPT)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench script")
        (repo / "data").mkdir()
        write_random(repo / "data" / "big.bin", size)
        py = sys.executable

        def direct() -> float:
            t = time.perf_counter()
            subprocess.run([py, "train.py"], cwd=repo, env=env, check=True, capture_output=True)
            return time.perf_counter() - t

        direct()  # the original run: hashes the input once and warms the stat cache
        direct()
        listed = subprocess.run(
            [py, "-m", "vtrack", "ls", "-n", "0", "--csv", "-c", "id"], cwd=repo, env=env,
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        original = listed[-1]

        def rerun() -> float:
            t = time.perf_counter()
            res = subprocess.run(
                [py, "-m", "vtrack", "rerun", original, "--yes"], cwd=repo, env=env,
                capture_output=True, text=True,
            )  # fmt: skip
            elapsed = time.perf_counter() - t
            if res.returncode != 0:
                raise SystemExit(f"rerun failed ({res.returncode}): {res.stdout}{res.stderr}")
            if "data/big.bin" not in res.stderr or "reproduced" not in res.stdout:
                raise SystemExit(f"unexpected rerun output: {res.stdout}{res.stderr}")
            return elapsed

        rerun()  # warm-up: first worktree of this repository
        d_times, r_times = [], []
        for _ in range(pairs):
            d_times.append(direct())
            r_times.append(rerun())
        over = [r - d for r, d in zip(r_times, d_times, strict=True)]
        left = set(Path(tempfile.gettempdir()).glob("vtrack-rerun-*")) - before

    def mmm(xs: list[float]) -> str:
        return (f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f} s "
                f"(mean {statistics.mean(xs):.2f})")  # fmt: skip

    print(f"5,000 tracked files, {size / 2**30:g} GiB gitignored input (symlinked), {pairs} pairs")
    print("| figure | min / median / max (mean) | target |")
    print("|---|---|---|")
    print(f"| script run directly (anchor) | {mmm(d_times)} | |")
    print(f"| `vtrack rerun RUN --yes` (whole process) | {mmm(r_times)} | |")
    print(f"| overhead: rerun − direct, per pair | {mmm(over)} | ≤ {TARGET_S:g} s |")
    print(f"| ratio rerun / direct (medians) | "
          f"{statistics.median(r_times) / statistics.median(d_times):.2f}× | |")  # fmt: skip
    print(f"temporary rerun folders left behind: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
