"""Benchmark search over the derived index, against MLflow's default store.

Measures, at 1,000 and 10,000 runs (issue 3, "Figures"):

- ``TrackingClient.search_runs`` with a two-clause filter and an order_by, warm
  (median of repeated calls): target <= 50 ms at 10,000 runs. Reported three ways: refs
  settled (sync sees by ``stat`` that no ref changed and skips listing them), with one
  live run (its journal re-read on every call), and with a ``git for-each-ref`` listing
  on every call (as while refs changed in the last 2 s);
- index catch-up after 1,000 new runs: target <= 2 s;
- a full rebuild of the index: target <= 15 s at 10,000 runs;
- resolving a run spec (id prefix, ``@~5``) through the index;
- side by side, MLflow's ``search_runs`` with the same filter and data on MLflow's
  default store (``sqlite:///mlflow.db`` in 3.17) at 1,000 and 2,000 runs. MLflow runs
  are created through its client (~60 ms each), so MLflow stops at 2,000.

vtrack runs are written in bulk through the real store code (``RecordState`` +
``Store.write_run_commit`` + a ref, what ``RunWriter`` does minus the journal), on top
of the code snapshot and run record of one run made through the normal API, so each
record is what the API writes. Refs are then packed, as ``git gc`` would.

Usage (MLflow lives in the benchmark venv)::

    PYTHONPATH=/work/main /work/bench-venv/bin/python benchmarks/bench_search.py [--quick]

``--quick``: 1,000 vtrack runs, catch-up of 200, MLflow at 200 and 400. ``--no-mlflow``
skips MLflow. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import in_forked_workers  # noqa: E402

from vtrack.client import TrackingClient  # noqa: E402
from vtrack.resolve import resolve_run_id  # noqa: E402
from vtrack.store import index as index_mod  # noqa: E402
from vtrack.store import refs as refnames  # noqa: E402
from vtrack.store.index import RunIndex  # noqa: E402
from vtrack.store.record import RecordState  # noqa: E402
from vtrack.store.writer import now_ms  # noqa: E402

FILTER = "metrics.acc > 0.9 and params.model = 'xgb'"
ORDER_BY = ["metrics.acc DESC"]
MODELS = ("xgb", "rf", "lgbm", "mlp")
TEAMS = ("nlp", "cv", "speech")
TARGET_SEARCH_S = 0.050
TARGET_CATCHUP_S = 2.0
TARGET_REBUILD_S = 15.0


def run_content(i: int) -> dict[str, Any]:
    """Params, metric histories and tags of benchmark run ``i`` (same for vtrack and MLflow).

    About 5 % of runs match ``FILTER`` (final acc > 0.9 in a fifth, model xgb in a quarter).
    """
    rng = random.Random(f"bench-{i}")
    final = rng.uniform(0.5, 1.0)
    acc = [round(final * (0.6 + 0.1 * s), 4) for s in range(5)]
    return {
        "name": f"run-{i:05d}",
        "params": {"lr": rng.choice([0.001, 0.003, 0.01, 0.03, 0.1]), "model": rng.choice(MODELS),
                   "depth": rng.randint(2, 12), "batch_size": rng.choice([32, 64, 128, 256]),
                   "optimizer": rng.choice(["adam", "sgd"]), "seed": rng.randint(0, 10**6)},
        "metrics": {"acc": acc, "loss": [round(1.0 - a, 4) for a in acc]},
        "tags": {"team": rng.choice(TEAMS), "purpose": "benchmark"},
    }  # fmt: skip


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, check=True, capture_output=True, text=True
    ).stdout


def make_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('train')\n")
    env_id = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    git(repo, "add", "-A")
    git(repo, *env_id, "commit", "-q", "-m", "code")
    return repo


class BulkWriter:
    """Writes finished runs the way the API does, minus journal and per-run snapshot."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.store = client.store
        template = client.create_run(run_name="template")
        client.log_params(template.info.run_id, {"lr": 0.1})
        client.set_terminated(template.info.run_id)
        tip = self.store.run_tip(template.info.run_id)
        assert tip is not None
        state, self.code, self.parent = self.store.read_run_commit(tip)
        self.info = dict(state.info)
        self.start = now_ms()

    def write(self, first: int, count: int, workers: int = os.cpu_count() or 1) -> None:
        """Write runs ``first`` .. ``first + count - 1``, in ``workers`` forked processes."""
        if workers <= 1 or count < 200:
            self._write(range(first, first + count))
            return
        in_forked_workers(self._write, first, first + count, workers)

    def _write(self, indexes: range, per_pack: int = 1000) -> None:
        """Write runs ``indexes``; each ``per_pack`` of them share one pack (as a live run's
        objects do), published before their refs move, released after."""
        items = list(indexes)
        for at in range(0, len(items), per_pack):
            with self.store.objects.batch() as batch:
                refs = self._write_runs(items[at : at + per_pack])
            for ref, sha in refs:
                self.store.refs.cas(ref, None, sha, fsync=False)
            if batch.handle is not None:
                batch.handle.release()

    def _write_runs(self, indexes: list[int]) -> list[tuple[str, str]]:
        import uuid

        out = []
        for i in indexes:
            content = run_content(i)
            state = RecordState(self.store.objects)
            start = self.start + i * 1000
            state.info = dict(self.info, id=uuid.uuid4().hex, name=content["name"],
                              start_time=start, end_time=start + 900, status="FINISHED")  # fmt: skip
            state.tags = dict(content["tags"])
            for k, v in content["params"].items():
                state.set_param(k, v)
            for key, values in content["metrics"].items():
                for step, value in enumerate(values):
                    state.add_metric(key, step, start + step, float(value))
            sha = self.store.write_run_commit(state, self.code, self.parent)
            out.append((refnames.run_ref(state.info["id"]), sha))
        return out


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- vtrack ---------------------------------------------------------------------------------


def bench_vtrack(
    base: Path, sizes: list[int], catchup: int, repeat: int
) -> dict[int, dict[str, Any]]:
    repo = make_repo(base / "vtrack")
    os.chdir(repo)
    client = TrackingClient(str(repo))
    bulk = BulkWriter(client)
    made = 0
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        res: dict[str, Any] = {}
        t0 = time.perf_counter()
        bulk.write(made, size - made)
        res["create_s"] = time.perf_counter() - t0
        res["create_n"] = size - made
        made = size
        git(repo, "pack-refs", "--all")
        t0 = time.perf_counter()
        first = client.search_runs(filter_string=FILTER, order_by=ORDER_BY)
        res["first_s"] = time.perf_counter() - t0
        res["matches"] = len(first)

        def search() -> list[Any]:
            return client.search_runs(filter_string=FILTER, order_by=ORDER_BY)

        saved = index_mod.SETTLED_SECONDS
        index_mod.SETTLED_SECONDS = 1e9  # never trust the fingerprint: list refs every call
        res["warm_listed_s"], _ = median_time(search, repeat)
        index_mod.SETTLED_SECONDS = saved
        time.sleep(saved + 0.2)
        search()  # this sync records the settled fingerprint
        res["warm_s"], runs = median_time(search, repeat)
        assert [r.info.run_id for r in runs] == [r.info.run_id for r in first]
        live = client.create_run(run_name="live-during-search").info.run_id
        client.log_metric(live, "acc", 0.5)
        time.sleep(saved + 0.2)
        search()
        res["warm_live_s"], _ = median_time(search, repeat)
        client.delete_run(live)  # keeps the benchmark's run count exact
        time.sleep(saved + 0.2)
        search()
        res["list_runs_s"], _ = median_time(client.list_runs, max(3, repeat // 5))
        prefix = runs[0].info.run_id[:6] if runs else "@"
        res["resolve_prefix_s"], _ = median_time(lambda p=prefix: resolve_run_id(client, p), repeat)
        res["resolve_at_s"], _ = median_time(lambda: resolve_run_id(client, "@~5"), repeat)
        t0 = time.perf_counter()
        RunIndex(client.store).rebuild()
        res["rebuild_s"] = time.perf_counter() - t0
        results[size] = res
    # catch-up: new runs on top of the largest size (loose refs, as fresh runs are)
    size = sizes[-1]
    idx = RunIndex(client.store)
    idx.sync()
    bulk.write(made, catchup)
    t0 = time.perf_counter()
    stats = idx.sync()
    results[size]["catchup_s"] = time.perf_counter() - t0
    results[size]["catchup_n"] = stats.read
    return results


# --- MLflow ---------------------------------------------------------------------------------


def bench_mlflow(
    base: Path, sizes: list[int], repeat: int
) -> tuple[str, dict[int, dict[str, Any]]]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    work = base / "mlflow"
    work.mkdir(parents=True)
    os.chdir(work)
    for name in list(os.environ):
        if name.startswith("MLFLOW_"):
            del os.environ[name]
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = mlflow.get_tracking_uri()
    client = MlflowClient()
    exp_id = client.create_experiment("bench")
    made = 0
    start0 = now_ms()
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        t0 = time.perf_counter()
        for i in range(made, size):
            content = run_content(i)
            start = start0 + i * 1000
            run = client.create_run(exp_id, start_time=start, run_name=content["name"])
            rid = run.info.run_id
            metrics = [Metric(k, float(v), start + s, s) for k, vals in content["metrics"].items()
                       for s, v in enumerate(vals)]  # fmt: skip
            params = [Param(k, str(v)) for k, v in content["params"].items()]
            tags = [RunTag(k, v) for k, v in content["tags"].items()]
            client.log_batch(rid, metrics=metrics, params=params, tags=tags)
            client.set_terminated(rid, "FINISHED", end_time=start + 900)
        create_s = time.perf_counter() - t0

        def search() -> list[Any]:
            return client.search_runs([exp_id], FILTER, order_by=ORDER_BY, max_results=1000)

        search()
        warm_s, runs = median_time(search, max(3, repeat // 4))
        results[size] = {"create_s": create_s, "create_n": size - made, "warm_s": warm_s,
                         "matches": len(runs)}  # fmt: skip
        made = size
    return uri, results


# --- report ---------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--repeat", type=int, default=21, help="timed repetitions per search")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = ap.parse_args()
    sizes = [1000] if args.quick else [1000, 10_000]
    catchup = 200 if args.quick else 1000
    ml_sizes = [200, 400] if args.quick else [1000, 2000]
    base = Path(tempfile.mkdtemp(prefix="vtrack-bench-search-", dir=args.dir))
    print(f"work folder: {base}", flush=True)
    print(f"filter: {FILTER!r}  order_by: {ORDER_BY}  max_results: 1000", flush=True)
    vt = bench_vtrack(base, sizes, catchup, args.repeat)
    ml_uri, ml = ("", {}) if args.no_mlflow else bench_mlflow(base, ml_sizes, args.repeat)

    cols = [f"{s:,} runs" for s in sizes]
    rows: list[tuple[str, list[str], str]] = [
        ("bulk-create runs (real store code)", [fmt_s(vt[s]["create_s"]) + f" ({vt[s]['create_n']:,})"
                                                for s in sizes], ""),
        ("search_runs matches", [str(vt[s]["matches"]) for s in sizes], ""),
        ("first search (builds the index)", [fmt_s(vt[s]["first_s"]) for s in sizes], ""),
        ("search_runs warm, refs settled", [fmt_s(vt[s]["warm_s"]) for s in sizes], "<= 50 ms"),
        ("  ... while a run is live (journal re-read)", [fmt_s(vt[s]["warm_live_s"]) for s in sizes], ""),
        ("  ... refs changed < 2 s ago (listed)", [fmt_s(vt[s]["warm_listed_s"]) for s in sizes], ""),
        ("list_runs (every run as Run)", [fmt_s(vt[s]["list_runs_s"]) for s in sizes], ""),
        ("resolve id prefix", [fmt_s(vt[s]["resolve_prefix_s"]) for s in sizes], ""),
        ("resolve @~5", [fmt_s(vt[s]["resolve_at_s"]) for s in sizes], ""),
        ("full index rebuild", [fmt_s(vt[s]["rebuild_s"]) for s in sizes], "<= 15 s at 10k"),
        (f"index catch-up after {catchup:,} new runs",
         [fmt_s(vt[s].get("catchup_s")) for s in sizes], "<= 2 s"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows) + 2
    print("\nvtrack (derived SQLite index)")
    print("".ljust(width) + "".join(c.rjust(20) for c in cols) + "   target")
    for label, vals, target in rows:
        print(label.ljust(width) + "".join(v.rjust(20) for v in vals) + f"   {target}")
    if ml:
        print(f"\nMLflow 3.17 default store ({ml_uri}); runs created through MlflowClient")
        for s, r in ml.items():
            print(f"  {s:>6,} runs: search_runs warm {fmt_s(r['warm_s'])} ({r['matches']} matches); "
                  f"creating them took {fmt_s(r['create_s'])} ({r['create_s'] / r['create_n'] * 1000:.0f} ms/run)")  # fmt: skip
        print("\nratios (MLflow time / vtrack time, warm search, refs settled)")
        small, big = ml_sizes[0], ml_sizes[-1]
        if small in vt:
            print(f"  at {small:,} runs each: {ml[small]['warm_s'] / vt[small]['warm_s']:.0f}x")
        print(
            f"  MLflow at {big:,} runs vs vtrack at {sizes[-1]:,} runs: "
            f"{ml[big]['warm_s'] / vt[sizes[-1]]['warm_s']:.0f}x"
        )
        print(f"  MLflow growth {small:,} -> {big:,} runs: {ml[big]['warm_s'] / ml[small]['warm_s']:.1f}x; "
              f"vtrack growth {sizes[0]:,} -> {sizes[-1]:,} runs: "
              f"{vt[sizes[-1]]['warm_s'] / vt[sizes[0]]['warm_s']:.1f}x")  # fmt: skip
        if small in vt and ml[small]["matches"] != vt[small]["matches"]:
            print(
                f"  WARNING: match counts differ at {small}: MLflow {ml[small]['matches']}, "
                f"vtrack {vt[small]['matches']}"
            )
    missed = []
    top = sizes[-1]
    if vt[top]["warm_s"] > TARGET_SEARCH_S:
        missed.append("warm search")
    if vt[top]["catchup_s"] > TARGET_CATCHUP_S:
        missed.append("catch-up")
    if vt[top]["rebuild_s"] > TARGET_REBUILD_S * top / 10_000:
        missed.append("rebuild")
    print("\nall targets met" if not missed else f"\nMISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
