"""``vtrack import-mlflow`` of 1,000 MLflow runs with 100-step histories vs MLflow's client.

An MLflow 3.17 sqlite store is built once (cached under the temp folder) with MLflow's
own store code (:func:`build_store`): 1,000 runs in one experiment, each with 5 params,
2 tags and 3 metrics of 100 steps. Then, REPEATS
times, interleaved, each in a fresh process:

- **vtrack**: ``vtrack import-mlflow <db>`` into a new git repository (reading through
  MLflow's client and its bulk history query, writing every run with its histories);
- **anchor**: reading the same runs through ``MlflowClient`` alone: ``search_runs``
  pages, then ``get_metric_history`` for every run and key (what a script migrating
  runs by hand does), writing nothing.

Both include starting Python and importing mlflow. Prints min/median/max wall seconds
per side and the ratio of medians (target: import ≤ 60 s and ≥ 5× faster than the
anchor).

    PYTHONPATH=. nice -n 10 python benchmarks/bench_mlflow_import.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, have_mlflow, python_with_vtrack, table  # noqa: E402

T0 = 1_700_000_000_000

ANCHOR = """
import sys, mlflow
client = mlflow.MlflowClient(sys.argv[1])
exps = [e.experiment_id for e in client.search_experiments()]
points, token, runs = 0, None, 0
while True:
    page = client.search_runs(exps, max_results=1000, page_token=token)
    for r in page:
        runs += 1
        for key in r.data.metrics:
            points += len(client.get_metric_history(r.info.run_id, key))
    token = page.token
    if not token:
        break
print("READ", runs, points)
"""


def build_store(path: Path, n_runs: int, keys: int, steps: int) -> None:
    """The MLflow sqlite store of the module docstring, through MLflow's own store code.

    Runs are created with ``SqlAlchemyStore.create_run`` (tags, run name, artifact
    location as MLflow sets them); their metric points, latest values, params and tags
    go in as bulk inserts into MLflow's own table models (``log_batch`` per run costs
    about a second on a loaded machine: 1,000 runs would take a quarter of an hour), and
    each run is ended by MLflow's ``update_run_info``.
    """
    from mlflow.entities import RunStatus
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{tmp}", str(path.parent / "bench-artifacts"))
    exp = store.create_experiment("bench-import")
    started = time.perf_counter()
    metrics: list[dict[str, object]] = []
    latest: list[dict[str, object]] = []
    params: list[dict[str, object]] = []
    tags: list[dict[str, object]] = []
    for i in range(n_runs):
        run = store.create_run(exp, user_id="bench", start_time=T0 + i * 1000, tags=[],
                               run_name=f"run-{i:04d}")  # fmt: skip
        rid = run.info.run_id
        for k in range(keys):
            for s in range(steps):
                metrics.append({"key": f"m{k}", "value": 1.0 / (s + 1) + k, "step": s,
                                "timestamp": T0 + i * 1000 + s, "is_nan": False,
                                "run_uuid": rid})  # fmt: skip
            latest.append({**metrics[-1]})
        for key, value in (("lr", str(0.001 * (i % 10 + 1))), ("depth", str(i % 8)),
                           ("opt", "adam"), ("seed", str(i)), ("flag", "True")):  # fmt: skip
            params.append({"key": key, "value": value, "run_uuid": rid})
        tags += [{"key": "team", "value": "vision", "run_uuid": rid},
                 {"key": "sweep", "value": str(i // 100), "run_uuid": rid}]  # fmt: skip
        store.update_run_info(rid, RunStatus.from_string("FINISHED"), T0 + i * 1000 + steps,
                              None)  # fmt: skip
    with store.engine.begin() as conn:
        for model, rows in ((SqlMetric, metrics), (SqlLatestMetric, latest), (SqlParam, params),
                            (SqlTag, tags)):  # fmt: skip
            for j in range(0, len(rows), 5000):
                conn.execute(insert(model), rows[j : j + 5000])
    print(f"  {n_runs} runs, {len(metrics):,} points in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)  # fmt: skip
    store.engine.dispose()
    tmp.rename(path)


def time_import(db: Path, work: Path, n: int) -> tuple[float, str]:
    repo = work / f"repo-{n}"
    repo.mkdir()
    git(repo, "init", "-q")
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "vtrack", "import-mlflow", str(db), "--json"],
                         cwd=repo, env=python_with_vtrack(), capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"import failed: {res.stderr}")
    return seconds, res.stdout


def time_anchor(db: Path, work: Path) -> tuple[float, str]:
    script = work / "anchor.py"
    script.write_text(ANCHOR)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, str(script), f"sqlite:///{db}"], cwd=work,
                         capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"anchor failed: {res.stderr}")
    return seconds, res.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 runs, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not have_mlflow():
        raise SystemExit("this benchmark needs mlflow (pip install -e .[dev])")
    n_runs, keys, steps = (100, 3, 100) if args.quick else (1000, 3, 100)
    repeats = 1 if args.quick else args.repeats
    cache = Path(tempfile.gettempdir()) / f"vtrack-bench-mlflow-{n_runs}x{keys}x{steps}.db"
    if not cache.exists():
        print(f"building the MLflow store {cache} (once) ...", file=sys.stderr)
        t = time.perf_counter()
        build_store(cache, n_runs, keys, steps)
        print(f"built in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    ours, anchor = [], []
    with tempfile.TemporaryDirectory(prefix="vtrack-bench-import-") as tmp:
        work = Path(tmp)
        for n in range(repeats):
            s, report = time_import(cache, work, n)
            ours.append(s)
            a, read = time_anchor(cache, work)
            anchor.append(a)
            print(f"  repeat {n + 1}: import {s:.1f} s, MLflow client read {a:.1f} s ({read})",
                  file=sys.stderr)  # fmt: skip
        assert '"imported": ' in report

    def mmm(xs: list[float]) -> str:
        return f"{min(xs):.1f} / {statistics.median(xs):.1f} / {max(xs):.1f} s"

    ratio = statistics.median(anchor) / statistics.median(ours)
    print(
        f"{n_runs} runs x {keys} metrics x {steps} steps; {repeats} repeat(s), min / median / max"
    )
    print(table([("import-mlflow (vtrack) vs MlflowClient read", mmm(ours), mmm(anchor),
                  f"{ratio:.1f}x faster", "<= 60 s and >= 5x")]))  # fmt: skip


if __name__ == "__main__":
    main()
