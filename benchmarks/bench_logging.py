"""Issue 2 figures: log_metric cost, memory for 1M points, run lifecycle, snapshot,
checkpoint and import time — side by side with MLflow's default local stores.

Run with an interpreter that has mlflow==3.17.2 installed (the anchor), e.g.::

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/bench_logging.py [--quick]
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
from _common import git, have_mlflow, make_repo, median_us, python_with_vtrack, table  # noqa: E402


def bench_log_metric(tmp: Path, n: int) -> float:
    import vtrack
    from vtrack import fluent

    repo = make_repo(tmp / "lm", 10)
    os.chdir(repo)
    fluent._reset_for_tests()
    with vtrack.start_run():
        i = iter(range(10**9))
        us = median_us(lambda: vtrack.log_metric("loss", 0.5, step=next(i)), n)
    return us


def mlflow_log_metric(tmp: Path, uri: str, n: int) -> float:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3.17's file store is opt-in
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        i = iter(range(10**9))
        us = median_us(lambda: mlflow.log_metric("loss", 0.5, step=next(i)), n)
    return us


def rss_for_points(tmp: Path, points: int) -> float:
    """Peak RSS of a process logging ``points`` metric points minus one logging none (MB)."""
    repo = make_repo(tmp / "rss", 10)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at fork, so a
    # child of a big benchmark process would report the parent's peak
    code = """
import sys, vtrack
n = int(sys.argv[1])
with vtrack.start_run():
    for i in range(n):
        vtrack.log_metric("loss", i * 0.5, step=i)
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]))
"""
    peaks = []
    for n in (0, points):
        out = subprocess.run(
            [sys.executable, "-c", code, str(n)],
            cwd=repo,
            env=python_with_vtrack(),
            capture_output=True,
            text=True,
            check=True,
        )
        peaks.append(int(out.stdout.strip().splitlines()[-1]))
    return (peaks[1] - peaks[0]) / 1024


def lifecycle_once() -> None:
    import vtrack

    with vtrack.start_run():
        vtrack.log_params({f"p{i}": i for i in range(10)})
        for i in range(10):
            vtrack.log_metric(f"m{i}", i * 0.1)
        vtrack.set_tags({"a": "1", "b": "2"})


def mlflow_lifecycle_once() -> None:
    import mlflow

    with mlflow.start_run():
        mlflow.log_params({f"p{i}": i for i in range(10)})
        for i in range(10):
            mlflow.log_metric(f"m{i}", i * 0.1)
        mlflow.set_tags({"a": "1", "b": "2"})


def bench_lifecycle(repo: Path, n: int) -> float:
    from vtrack import fluent

    os.chdir(repo)
    fluent._reset_for_tests()
    lifecycle_once()  # first run pays for the snapshot; measured separately
    return median_us(lifecycle_once, n) / 1000


def bench_first_snapshot(repo: Path, n: int) -> float:
    from vtrack.client import TrackingClient
    from vtrack.store import snapshot

    os.chdir(repo)
    st = TrackingClient().store
    times = []
    for _ in range(n):
        snapshot.clear_cache()
        t = time.perf_counter()
        snapshot.capture(st.location, st.objects, st.refs, max_file_bytes=5 << 20)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_checkpoint(tmp: Path, points: int, new: int) -> float:
    import vtrack
    from vtrack import fluent
    from vtrack.store.writer import live_writers

    repo = make_repo(tmp / "ckpt", 10)
    os.chdir(repo)
    fluent._reset_for_tests()
    times = []
    with vtrack.start_run() as run:
        for i in range(points):
            vtrack.log_metric("loss", i * 0.5, step=i)
        w = next(w for w in live_writers() if w.run_id == run.info.run_id)
        w.checkpoint()
        step = points
        for _ in range(5):
            for _ in range(new):
                vtrack.log_metric("loss", 0.1, step=step)
                step += 1
            w.flush()
            t = time.perf_counter()
            w.checkpoint()
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def import_time(module: str, n: int) -> float:
    times = []
    env = python_with_vtrack()
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    args = ap.parse_args()
    q = args.quick
    n_calls = 20_000 if q else 200_000
    points = 200_000 if q else 1_000_000
    n_files = 1000 if q else 5000
    reps = 10 if q else 40
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mlf = have_mlflow()

        v_lm = bench_log_metric(tmp, n_calls)
        if mlf:
            m_sql = mlflow_log_metric(tmp, f"sqlite:///{tmp}/mlflow.db", 300 if q else 1000)
            m_file = mlflow_log_metric(tmp, f"file://{tmp}/mlruns", 300 if q else 1000)
            rows.append(
                (
                    "log_metric median (µs/call)",
                    f"{v_lm:.2f}",
                    f"sqlite {m_sql:.0f}",
                    f"{m_sql / v_lm:.0f}× faster",
                    "≤ 5",
                )
            )
            rows.append(
                (
                    "log_metric median (µs/call)",
                    f"{v_lm:.2f}",
                    f"file {m_file:.0f}",
                    f"{m_file / v_lm:.0f}× faster",
                    "≤ 5",
                )
            )
        else:
            rows.append(("log_metric median (µs/call)", f"{v_lm:.2f}", "n/a", "", "≤ 5"))

        rss = rss_for_points(tmp, points)
        rows.append((f"peak RSS growth, {points:,} points (MB)", f"{rss:.1f}", "", "", "< 100"))

        big = make_repo(tmp / "big", n_files)
        (big / "pkg00" / "mod0" / "file0.py").write_text("# dirty edit\n")
        snap = bench_first_snapshot(big, 5)
        rows.append((f"first snapshot, {n_files} files (ms)", f"{snap:.1f}", "", "", "≤ 100"))
        life = bench_lifecycle(big, reps)
        if mlf:
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow-life.db")
            mlflow.set_experiment("life")
            mlflow_lifecycle_once()
            m_life = median_us(mlflow_lifecycle_once, max(5, reps // 4)) / 1000
            rows.append(
                (
                    f"run lifecycle, {n_files}-file repo (ms)",
                    f"{life:.1f}",
                    f"sqlite {m_life:.0f}",
                    f"{m_life / life:.1f}× faster",
                    "≤ 15",
                )
            )
        else:
            rows.append(
                (f"run lifecycle, {n_files}-file repo (ms)", f"{life:.1f}", "n/a", "", "≤ 15")
            )

        ck = bench_checkpoint(tmp, points, 1000)
        rows.append(
            (
                f"checkpoint of {points:,}-point run after 1,000 new (ms)",
                f"{ck:.1f}",
                "",
                "",
                "≤ 50",
            )
        )

        imp = import_time("vtrack", 7)
        if mlf:
            m_imp = import_time("mlflow", 3)
            rows.append(
                (
                    "python -c 'import X' wall (ms)",
                    f"{imp:.0f}",
                    f"{m_imp:.0f}",
                    f"{m_imp / imp:.1f}× faster",
                    "≤ 150",
                )
            )
        else:
            rows.append(("python -c 'import X' wall (ms)", f"{imp:.0f}", "n/a", "", "≤ 150"))
    print(table(rows))
    _ = git


if __name__ == "__main__":
    main()
