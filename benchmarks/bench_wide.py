"""Issue 15 point 5, wide runs: ``show``, ``diff``, ``compare`` and search of runs with
10,000 metric keys, 1,000 params and a 100,000-point metric, beside the same commands on
narrow runs (10 params, 10 metrics) in the same repository and the same run.

    PYTHONPATH=. python benchmarks/bench_wide.py [--keys 10000] [--params 1000]
        [--points 100000] [-n 5]

Every run is made through the public API (``start_run``, ``log_params``, ``log_batch``);
each command is a whole process (bytecode cached), timed ``-n`` times after one warm-up.
A wide run's ``show`` prints every metric (10,000 lines), so its cost grows with what it
shows; the figure to read there is the time per metric shown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, table  # noqa: E402

MAKE = """\
import sys, time
import vtrack
from vtrack.entities import Metric
n_params, n_keys, n_points, name = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = time.perf_counter()
with vtrack.start_run(run_name=name) as run:
    c, rid = vtrack.TrackingClient(), run.info.run_id
    vtrack.log_params({f"p{i:04d}": i * 0.5 + len(name) for i in range(n_params)})
    ts = int(time.time() * 1000)
    batch = []
    for k in range(n_keys):
        for s in range(3):
            batch.append(Metric(f"m{k:05d}", float(k + s + len(name)), ts + s, s))
        if len(batch) >= 3000:
            c.log_batch(rid, batch)
            batch = []
    c.log_batch(rid, batch)
    for s0 in range(0, n_points, 5000):
        c.log_batch(rid, [Metric("long", float(s), ts + s, s)
                          for s in range(s0, min(n_points, s0 + 5000))])
print(rid, round(time.perf_counter() - t, 2))
"""

SEARCH = """\
import sys, time, vtrack
c = vtrack.TrackingClient()
flt, n = sys.argv[1], int(sys.argv[2])
c.search_runs(["0"], flt, order_by=["metrics.m00005 DESC"])  # warm
times = []
for _ in range(n):
    t = time.perf_counter()
    c.search_runs(["0"], flt, order_by=["metrics.m00005 DESC"])
    times.append((time.perf_counter() - t) * 1000)
print(" ".join(f"{x:.2f}" for x in times))
"""


def env() -> dict[str, str]:
    """A user's environment: bytecode caches on (sandboxes often turn them off)."""
    e = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    e.setdefault("PYTHONPYCACHEPREFIX", tempfile.mkdtemp(prefix="bench-wide-pycache-"))
    return e


def make_run(repo: Path, params: int, keys: int, points: int, name: str) -> tuple[str, float]:
    res = subprocess.run([sys.executable, "-c", MAKE, str(params), str(keys), str(points), name],
                         cwd=repo, env=env(), capture_output=True, text=True, check=True)  # fmt: skip
    rid, secs = res.stdout.split()
    return rid, float(secs)


def timed(repo: Path, args: list[str], n: int) -> list[float]:
    vtrack = shutil.which("vtrack")
    assert vtrack, "install vtrack first (pip install -e .)"
    out = []
    for i in range(n + 1):
        t = time.perf_counter()
        res = subprocess.run([vtrack, *args], cwd=repo, env=env(), capture_output=True, text=True)
        if res.returncode not in (0, 1):  # diff exits 1 when the runs differ
            raise SystemExit(f"vtrack {' '.join(args)} failed: {res.stderr[-2000:]}")
        if i:
            out.append((time.perf_counter() - t) * 1000)
    return out


def in_process_search(repo: Path, flt: str, n: int) -> list[float]:
    res = subprocess.run([sys.executable, "-c", SEARCH, flt, str(n)], cwd=repo, env=env(),
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [float(x) for x in res.stdout.split()]


def fmt(ms: list[float]) -> str:
    return (f"{min(ms):.0f} / {statistics.median(ms):.0f} / {max(ms):.0f} "
            f"(mean {statistics.fmean(ms):.0f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=1_000)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("-n", type=int, default=5)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="vtrack-bench-wide-"))
    repos = {}
    for kind in ("narrow", "wide"):
        repo = repos[kind] = base / kind
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "train.py").write_text("print('train')\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "init")
    narrow = [make_run(repos["narrow"], 10, 10, 100, f"narrow-{c}") for c in "ab"]
    wide = [make_run(repos["wide"], a.params, a.keys, a.points, f"wide-{c}") for c in "ab"]
    print(f"made 2 narrow runs ({narrow[0][1]:.2f}, {narrow[1][1]:.2f} s) and 2 wide runs "
          f"({a.keys} metrics x 3 points, {a.params} params, one {a.points}-point metric: "
          f"{wide[0][1]:.1f}, {wide[1][1]:.1f} s to log and end), each pair in its own repository")  # fmt: skip
    (n1, _), (n2, _) = narrow
    (w1, _), (w2, _) = wide
    rows = []
    anchor = timed(repos["narrow"], ["--help"], a.n)
    rows.append(("anchor: vtrack --help", fmt(anchor), "", ""))
    for label, nargs, wargs in [
        ("show", ["show", n1], ["show", w1]),
        ("show --json", ["show", n1, "--json"], ["show", w1, "--json"]),
        ("diff", ["diff", n1, n2], ["diff", w1, w2]),
        ("compare", ["compare", n1, n2], ["compare", w1, w2]),
        ("ls -f 'metrics.m00005 > 1'", ["ls", "-f", "metrics.m00005 > 1"],
         ["ls", "-f", "metrics.m00005 > 1"]),
    ]:  # fmt: skip
        tn, tw = timed(repos["narrow"], nargs, a.n), timed(repos["wide"], wargs, a.n)
        ratio = statistics.median(tw) / statistics.median(tn)
        rows.append((label, fmt(tn), fmt(tw), f"{ratio:.2f}x"))
    flt = "metrics.m00005 > 1 and params.p0005 != 'x'"
    sn = in_process_search(repos["narrow"], flt, max(a.n, 20))
    sw = in_process_search(repos["wide"], flt, max(a.n, 20))
    rows.append(("search_runs, 2 clauses + order, in process", fmt(sn), fmt(sw),
                 f"{statistics.median(sw) / statistics.median(sn):.2f}x"))  # fmt: skip
    print(table(rows, ("figure (ms: min / median / max)", "narrow", "wide", "wide / narrow")))


if __name__ == "__main__":
    main()
