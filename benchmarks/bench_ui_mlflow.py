"""The anchor of ``bench_ui.py``: ``mlflow server``'s search API behind its runs table.

Creates runs with the same content as ``bench_search.py`` (``run_content``) through
MLflow's client on its sqlite store, starts ``mlflow server`` on that store and times
``POST /api/2.0/mlflow/runs/search`` for the table's first page (50 rows, newest first),
a sort change (``metrics.acc DESC``) and a filter change (the ``bench_search`` filter),
each repeated and printed as min / median / max. MLflow runs are created through its
client (~60 ms each), so the default is 1,000 runs, and the figure is compared with
``bench_ui.py --runs 1000``.

Usage (MLflow lives in the benchmark venv)::

    /work/bench-venv/bin/python benchmarks/bench_ui_mlflow.py [--runs 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import FILTER, run_content  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(uri)
        exp = client.create_experiment("bench")
        t0 = time.perf_counter()
        for i in range(args.runs):
            c = run_content(i)
            run = client.create_run(exp, run_name=c["name"])
            metrics = [
                Metric(k, v, 0, s) for k, vs in c["metrics"].items() for s, v in enumerate(vs)
            ]
            client.log_batch(run.info.run_id, metrics=metrics,
                             params=[Param(k, str(v)) for k, v in c["params"].items()],
                             tags=[RunTag(k, v) for k, v in c["tags"].items()])  # fmt: skip
            client.set_terminated(run.info.run_id)
        print(
            f"made {args.runs:,} MLflow runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr
        )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
            start_new_session=True,  # its workers and job consumers: one group to stop
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    post(url, {"experiment_ids": [exp], "max_results": 1})
                    break
                except OSError:
                    assert time.monotonic() < deadline, "mlflow server did not start"
                    time.sleep(0.2)
            asks = {
                "first page (50 rows)": {},
                "sort change (`metrics.acc DESC`)": {"order_by": ["metrics.acc DESC"]},
                "filter change": {"filter": FILTER},
                "filter + sort": {"filter": FILTER, "order_by": ["metrics.acc DESC"]},
            }
            print("| figure | min / median / max |\n|---|---|")
            for name, extra in asks.items():
                body = {"experiment_ids": [exp], "max_results": 50, **extra}
                post(url, body)
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    post(url, body)
                    times.append((time.perf_counter() - t) * 1000)
                print(f"| mlflow server, {args.runs:,} runs: {name} | "
                      f"{min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f} ms |")  # fmt: skip
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):  # consumers that outlived it
                os.killpg(server.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
