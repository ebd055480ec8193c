"""Issue 14 figures: scikit-learn autolog overhead on a 1-second fit, and the CPU cost of
system-metrics sampling at the default interval — each beside MLflow 3.17 in the same run.

    python benchmarks/bench_integrations.py [--rounds 3] [--pairs 4] [--seconds 60]

1. **Autolog overhead.** A ``GradientBoostingClassifier`` fit on generated data, sized in
   this run to take about one second, is timed in pairs inside one process: a plain fit
   and an autologged one (autolog switched on and off between them, the order
   alternating), inside an active vtrack run with ``vtrack.sklearn.autolog()`` and, in
   another process, inside an active MLflow run (sqlite store) with
   ``mlflow.sklearn.autolog()``. Pairs cancel the drift of a shared machine. Each process
   warms up with one pair, then times ``--pairs``; ``--rounds`` processes per library. The
   overhead is the autologged ``fit`` call's time over the plain one's, minus 1, all
   logging included (params, training metrics, dataset, model with signature and example).
2. **System-metrics sampling.** A vtrack run and an MLflow run, each in its own process,
   both with system metrics on at the default interval (10 s), stay open for
   ``--seconds``; the sampler thread's CPU time (utime + stime from
   ``/proc/self/task/<tid>/stat``, and for vtrack also ``time.thread_time`` in the
   thread) is divided by the wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, have_mlflow, python_with_vtrack, table  # noqa: E402

FIT = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
mode, n_est, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X, y = make_classification(n_samples=3000, n_features=20, random_state=0)
if mode == "vtrack":
    import vtrack
    on = lambda: vtrack.sklearn.autolog()
    off = lambda: vtrack.sklearn.autolog(disable=True)
    run = vtrack.start_run()
elif mode == "mlflow":
    import mlflow
    mlflow.set_tracking_uri(os.environ["MLFLOW_URI"])
    on = lambda: mlflow.sklearn.autolog()
    off = lambda: mlflow.sklearn.autolog(disable=True)
    run = mlflow.start_run()
else:
    on = off = lambda: None
def fit(seed, logged):
    (on if logged else off)()
    model = GradientBoostingClassifier(n_estimators=n_est, random_state=seed)
    t = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - t
fit(0, False), fit(0, True)  # warm-up: imports, first model file, caches
out = []
for i in range(pairs):  # alternate the order, so that drift cancels
    first = i % 2 == 0
    a = fit(i + 1, first)
    b = fit(i + 1, not first)
    plain, logged = (b, a) if first else (a, b)
    out.append([plain, logged])
print(json.dumps(out))
"""

SAMPLE = r"""
import json, os, sys, threading, time
seconds, who = float(sys.argv[1]), sys.argv[2]
name = "vtrack-sysmetrics" if who == "vtrack" else "SystemMetricsMonitor"
if who == "vtrack":
    import vtrack
    from vtrack import sysmetrics
    run = vtrack.start_run(log_system_metrics=True)
else:
    import mlflow
    mlflow.set_tracking_uri(os.environ["MLFLOW_URI"])
    run = mlflow.start_run(log_system_metrics=True)
t0 = time.monotonic()
thread = None
while thread is None and time.monotonic() - t0 < 30:
    thread = next((t for t in threading.enumerate() if t.name == name), None)
    time.sleep(0.01)
time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
ticks = os.sysconf("SC_CLK_TCK")
stat = open(f"/proc/self/task/{thread.native_id}/stat").read()
fields = stat[stat.rindex(")") + 2:].split()
proc_cpu = (int(fields[11]) + int(fields[12])) / ticks
wall = time.monotonic() - t0
out = {"wall": wall, "proc_cpu": proc_cpu}
if who == "vtrack":
    mon = sysmetrics.monitor_of(run.info.run_id)
    vtrack.end_run()
    out["thread_time"] = mon.thread_cpu_seconds
    out["samples"] = mon.samples
else:
    mlflow.end_run()
print(json.dumps(out))
"""


def _fresh_repo(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("# benchmark\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    return path


def _run(code: str, args: list[str], cwd: Path, env: dict[str, str]) -> object:
    res = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=1800)  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def calibrate(cwd: Path, env: dict[str, str]) -> int:
    """Trees for a plain fit of about one second on this machine, now."""
    pairs = _run(FIT, ["plain", "20", "1"], cwd, env)
    return max(5, round(20 * 1.0 / pairs[0][0]))  # type: ignore[index]


def spread(xs: list[float], fmt: str = "{:+.1%}") -> str:
    return f"{fmt.format(min(xs))} / {fmt.format(statistics.median(xs))} / {fmt.format(max(xs))}"


def bench_autolog(tmp: Path, rounds: int, pairs: int) -> list[tuple[str, str, str, str, str]]:
    env = {**python_with_vtrack(), "MLFLOW_URI": f"sqlite:///{tmp}/mlflow.db"}
    cwd = _fresh_repo(tmp, "autolog")
    n_est = calibrate(cwd, env)
    modes = ["vtrack"] + (["mlflow"] if have_mlflow() else [])
    got: dict[str, list[list[float]]] = {m: [] for m in modes}
    for _ in range(rounds):
        for mode in modes:
            got[mode] += _run(FIT, [mode, str(n_est), str(pairs)], cwd, env)  # type: ignore[arg-type]
    print(f"fit: GradientBoostingClassifier(n_estimators={n_est}) on 3000x20; per library "
          f"{rounds} processes x {pairs} pairs (plain fit, autologged fit), order alternating")  # fmt: skip
    over, over_mean, per_pair = {}, {}, {}
    for mode in modes:
        plain = [p for p, _ in got[mode]]
        logged = [q for _, q in got[mode]]
        per_pair[mode] = [q / p - 1 for p, q in got[mode]]
        over[mode] = statistics.median(per_pair[mode])
        over_mean[mode] = statistics.mean(logged) / statistics.mean(plain) - 1
        print(f"  {mode:7s} plain {statistics.median(plain):.3f} s, autologged "
              f"{statistics.median(logged):.3f} s (medians); overhead per pair "
              f"min/median/max {spread(per_pair[mode])}")  # fmt: skip
    plain_all = statistics.median(p for m in modes for p, _ in got[m])
    has = "mlflow" in over
    return [
        (f"autolog overhead on a {plain_all:.2f} s fit: median of pairs (ratio of means)",
         f"{over['vtrack']:+.1%} ({over_mean['vtrack']:+.1%})",
         f"{over['mlflow']:+.1%} ({over_mean['mlflow']:+.1%})" if has else "n/a",
         f"{(1 + over['vtrack']) / (1 + over['mlflow']):.2f}× MLflow's fit time" if has else "",
         "≤ 5%"),
        ("  per pair, min / median / max", spread(per_pair["vtrack"]),
         spread(per_pair["mlflow"]) if has else "n/a", "", ""),
    ]  # fmt: skip


def bench_sampling(tmp: Path, seconds: float) -> list[tuple[str, str, str, str, str]]:
    env = {**python_with_vtrack(), "MLFLOW_URI": f"sqlite:///{tmp}/mlflow-sm.db"}
    cwd = _fresh_repo(tmp, "sampling")
    who = ["vtrack"] + (["mlflow"] if have_mlflow() else [])
    procs = {w: subprocess.Popen([sys.executable, "-c", SAMPLE, str(seconds), w], cwd=cwd, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in who}  # fmt: skip
    got = {}
    for w, p in procs.items():
        out, err = p.communicate(timeout=seconds + 600)
        if p.returncode != 0:
            raise SystemExit(f"{w} sampler failed:\n{err[-3000:]}")
        got[w] = json.loads(out.strip().splitlines()[-1])
    v = got["vtrack"]
    print(f"sampling over {v['wall']:.1f} s at the default interval: vtrack {v['samples']} samples, "
          f"thread CPU {v['proc_cpu']:.3f} s (/proc), {v['thread_time']:.4f} s (thread_time)")  # fmt: skip
    m = got.get("mlflow")
    if m:
        print(f"  MLflow thread CPU {m['proc_cpu']:.3f} s (/proc) over {m['wall']:.1f} s")
    mine = v["proc_cpu"] / v["wall"]
    anchor = f"{m['proc_cpu'] / m['wall']:.3%}" if m else "n/a"
    ratio = f"{mine / (m['proc_cpu'] / m['wall']):.2f}×" if m and m["proc_cpu"] else ""
    return [
        (f"sampler CPU / wall, {seconds:.0f} s run, 10 s interval (/proc)", f"{mine:.3%}", anchor,
         ratio, "≤ 1% of a core"),
        ("  same, vtrack thread_time (exact)", f"{v['thread_time'] / v['wall']:.4%}", "", "", ""),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    if not have_mlflow():
        print("mlflow is not installed: the MLflow columns are empty (pip install mlflow==3.17.2)")
    with tempfile.TemporaryDirectory(prefix="vtrack-bench-int-") as tmp:
        t0 = time.monotonic()
        rows = bench_autolog(Path(tmp), args.rounds, args.pairs)
        rows += bench_sampling(Path(tmp), args.seconds)
        print()
        print(table(rows))
        print(f"\n(total {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
