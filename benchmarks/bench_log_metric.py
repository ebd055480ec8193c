"""Issue 9 figure: ``log_metric`` amortized over 1,000,000 points, every flush included.

Three loops over the same points, in the same process, repeated:

- **anchor** — a bare ``list.append`` of the point tuple (what the issue compares with);
- **floor** — the least any tracker that keeps the run record's history format must do
  per point: one Python call that type-checks the key and value and appends the tuple,
  then formatting every point as a history line (``step<TAB>ts<TAB>repr(value)``) and
  writing them to a journal file. No validation rules, no run state, no threads;
- **vtrack** — ``vtrack.log_metric(key, value, step=i)`` through the fluent API, timed to
  the return of ``end_run`` (so the background flushes, the inline flushes and the final
  checkpoint are all inside the mean).

Mean = total wall time / points. Median = the median of per-call times sampled with
``perf_counter_ns`` (timer cost subtracted); it hides the flushes, the mean does not.

    PYTHONPATH=. python benchmarks/bench_log_metric.py [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_repo, table  # noqa: E402


def anchor(n: int) -> float:
    buf: list[tuple[str, float, int, int]] = []
    ts = time.time_ns() // 1_000_000
    t0 = time.perf_counter_ns()
    for i in range(n):
        buf.append(("loss", 0.5, i, ts))
    return (time.perf_counter_ns() - t0) / n


def floor(n: int, journal: Path) -> float:
    buf: list[tuple[str, float, int, int]] = []
    ok = {"loss"}
    append = buf.append
    time_ns = time.time_ns

    def log(key: str, value: float, step: int) -> None:
        if key in ok and type(value) is float:
            append((key, value, step, time_ns() // 1_000_000))

    t0 = time.perf_counter_ns()
    with open(journal, "w") as f:
        for i in range(n):
            log("loss", 0.5, i)
            if len(buf) >= 20_000:
                f.write("".join([f"m\t{k}\t{s}\t{t}\t{v!r}\n" for k, v, s, t in buf]))
                buf.clear()
        f.write("".join([f"m\t{k}\t{s}\t{t}\t{v!r}\n" for k, v, s, t in buf]))
    return (time.perf_counter_ns() - t0) / n


def vtrack_mean(n: int) -> float:
    import vtrack

    vtrack.start_run()
    log = vtrack.log_metric
    t0 = time.perf_counter_ns()
    for i in range(n):
        log("loss", 0.5, step=i)
    vtrack.end_run()
    return (time.perf_counter_ns() - t0) / n


def vtrack_median(n: int) -> float:
    import vtrack

    clock = time.perf_counter_ns
    overhead = statistics.median([-(clock() - clock()) for _ in range(10_000)])
    vtrack.start_run()
    log = vtrack.log_metric
    samples = []
    for i in range(n):
        t0 = clock()
        log("loss", 0.5, step=i)
        samples.append(clock() - t0)
    vtrack.end_run()
    return max(0.0, statistics.median(samples) - overhead)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.points
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        repo = make_repo(tmp / "repo", 10)
        os.chdir(repo)
        rows: dict[str, list[float]] = {"anchor": [], "floor": [], "vtrack": [], "median": []}
        for _ in range(args.repeat):
            rows["anchor"].append(anchor(n))
            rows["floor"].append(floor(n, tmp / "journal"))
            rows["vtrack"].append(vtrack_mean(n))
            rows["median"].append(vtrack_median(min(n, 200_000)))

    def mmm(xs: list[float]) -> str:
        return f"{min(xs):.0f} / {statistics.median(xs):.0f} / {max(xs):.0f}"

    ratio = [v / a for v, a in zip(rows["vtrack"], rows["anchor"], strict=True)]
    floor_ratio = [f / a for f, a in zip(rows["floor"], rows["anchor"], strict=True)]
    over_floor = [v / f for v, f in zip(rows["vtrack"], rows["floor"], strict=True)]
    print(
        table(
            [
                (
                    "list.append of the point tuple (ns/point, min/median/max)",
                    mmm(rows["anchor"]),
                    "",
                    "",
                ),
                (
                    "floor: check + append + format + journal write (ns/point)",
                    mmm(rows["floor"]),
                    f"{statistics.median(floor_ratio):.1f}× append",
                    "",
                ),
                (
                    f"vtrack.log_metric mean over {n:,} points, flushes included (ns/point)",
                    mmm(rows["vtrack"]),
                    f"{statistics.median(ratio):.1f}× append",
                    f"{statistics.median(over_floor):.1f}× floor",
                ),
                (
                    "vtrack.log_metric median per call (ns, flushes hidden)",
                    mmm(rows["median"]),
                    "",
                    "",
                ),
            ],
            headers=("figure", "min / median / max", "vs append", "vs floor"),
        )
    )


if __name__ == "__main__":
    main()
