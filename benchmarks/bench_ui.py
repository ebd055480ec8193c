"""Benchmark the web UI (issue 10, "Figures") on a real ``vtrack ui`` server.

Measures, over HTTP against ``vtrack ui --port 0`` (uvicorn in its own process):

- the runs table of one experiment at each size of ``--runs`` (default 10,000 and
  100,000): the first page (HTML, 50 rows), the same page as JSON (``/api/runs``), a sort
  change (``sort=-metrics.acc``), a filter change (``q=metrics.acc > 0.9 and params.model
  = 'xgb'``), filter + sort, and a sort by an aggregate (``metrics.loss:min``: its first
  request computes the summaries of every run, later ones reuse them), target <= 300 ms
  each; anchored by the index search behind them measured in the same run
  (``TrackingClient.search_runs`` of the same filter, order and 50 rows, in process) and
  by ``vtrack ls`` of the same filter (a process, as a user runs it);
- with ``--mlflow N``, ``mlflow server``'s search API on its sqlite store with the same
  N runs (``bench_ui_mlflow.py``, runs made through MLflow's client), measured in the same
  run, and vtrack's ``/api/runs`` at N runs beside it as the ratio;
- a metric history of 1,000,000 points: ``/api/history`` on a server that never saw it
  (parsed from git), on a restarted server (sealed chunks read from the columnar cache),
  and warm; its payload (target <= 200 KB); with ``--browser`` the run page in headless
  chromium: navigation start to the chart drawn (the SVG sketch, target <= 500 ms) and
  to the interactive Plotly chart;
- ``vtrack ui`` start to the first page answered (target <= 2 s).

Runs are bulk-written (``bench_search.BulkWriter``: the API's record format, one pack per
thousand runs), and one bulk run is checked against the same run made through the API
before anything is timed. Every figure is repeated (``--repeat``, default 15) and printed
as min / median / max.

Usage::

    PYTHONPATH=. nice -n 10 python benchmarks/bench_ui.py [--runs 10000,100000] [--repeat 15]
        [--browser] [--mlflow 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_search import FILTER, BulkWriter, make_repo  # noqa: E402

from vtrack.client import TrackingClient  # noqa: E402
from vtrack.entities import Metric  # noqa: E402

TARGET_PAGE_S = 0.300
TARGET_CHART_S = 0.500
TARGET_PAYLOAD = 200 * 1024
TARGET_START_S = 2.0


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{min(ms):.1f} / {statistics.median(ms):.1f} / {max(ms):.1f} ms"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=1800) as r:  # a first aggregate at 100k: minutes
        assert r.status == 200, (url, r.status)
        return r.read()  # type: ignore[no-any-return]


def start(repo: Path) -> tuple[subprocess.Popen[str], str, float]:
    """Start ``vtrack ui``; return it, its URL and the seconds until ``/`` answered."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vtrack", "ui", "--port", "0"], cwd=repo, env=env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.split()[3]
    deadline = time.monotonic() + 120
    while True:
        try:
            get(url)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    return proc, url, time.perf_counter() - t0


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    for s in (proc.stdout, proc.stderr):
        if s is not None:
            s.close()


class Rows(list[tuple[str, str, str]]):
    """The figures, printed to stderr as they are measured (a late failure keeps them)."""

    def append(self, row: tuple[str, str, str]) -> None:
        print(" | ".join(row), file=sys.stderr, flush=True)
        super().append(row)


def check_bulk_against_api(client: TrackingClient, exp: str, i: int) -> None:
    """The bulk-written run ``i`` reads back exactly as the same run made through the API."""
    from bench_search import run_content

    c = run_content(i)
    (bulk,) = client.search_runs([exp], f"attributes.run_name = '{c['name']}'")
    api = client.create_run(exp, run_name=c["name"] + "-api")
    rid = api.info.run_id
    start = bulk.info.start_time
    client.log_batch(rid, [Metric(k, float(v), start + s, s)
                           for k, vs in c["metrics"].items() for s, v in enumerate(vs)])  # fmt: skip
    client.log_params(rid, c["params"])
    for k, v in c["tags"].items():
        client.set_tag(rid, k, v)
    client.set_terminated(rid)
    made = client.get_run(rid)
    assert made.data.params == bulk.data.params, (made.data.params, bulk.data.params)
    assert made.data.metrics == bulk.data.metrics
    assert {k: v for k, v in made.data.tags.items() if k in c["tags"]} == bulk.data.tags
    for key in c["metrics"]:
        a = [(m.step, m.value) for m in client.get_metric_history(rid, key)]
        b = [(m.step, m.value) for m in client.get_metric_history(bulk.info.run_id, key)]
        assert a == b, key
    client.delete_run(rid)


def start_figure(repo: Path, n: int, rows: Rows, missed: list[str]) -> None:
    """`vtrack ui` start to the first page answered, five starts."""
    starts = []
    for _ in range(5):
        proc, _url, took = start(repo)
        starts.append(took)
        stop(proc)
    rows.append((f"`vtrack ui` start to first page ({n:,} runs)", fmt(starts), "≤ 2 s"))
    if statistics.median(starts) > TARGET_START_S:
        missed.append("start")


def table_figures(
    url: str, exp: str, n: int, repeat: int, rows: Rows, missed: list[str], agg: str = "loss"
) -> dict[str, float]:
    """The runs-table figures at ``n`` runs; returns the medians by name (``agg``: the
    metric whose ``:min`` aggregate the last figure sorts by)."""
    q = urllib.parse.urlencode
    pages = {
        "first page (HTML, 50 rows)": f"{url}?exp={exp}",
        "first page as JSON (`/api/runs`)": f"{url}api/runs?exp={exp}",
        "sort change (`-metrics.acc`), HTML": f"{url}?" + q({"exp": exp, "sort": "-metrics.acc"}),
        "filter change, HTML": f"{url}?" + q({"exp": exp, "q": FILTER}),
        "filter + sort, JSON": f"{url}api/runs?" + q({"exp": exp, "q": FILTER, "sort": "-metrics.acc"}),
        f"sort by `metrics.{agg}:min`, HTML": f"{url}?" + q({
            "exp": exp, "sort": f"metrics.{agg}:min", "cols": f"name,metrics.{agg},metrics.{agg}:min"}),
    }  # fmt: skip
    medians = {}
    for name, u in pages.items():
        t0 = time.perf_counter()
        get(u)  # the first request after start (for the aggregate: computes the summaries)
        first = time.perf_counter() - t0
        if f"{agg}:min" in name:
            rows.append((f"{n:,} runs: {name}, first (summaries of every run computed)",
                         f"{first * 1000:.0f} ms", ""))  # fmt: skip
            name += ", later"
        times = timed(lambda u=u: get(u), repeat)
        rows.append((f"{n:,} runs: {name}", fmt(times), "≤ 300 ms"))
        medians[name] = statistics.median(times)
        if medians[name] > TARGET_PAGE_S:
            missed.append(f"{n:,} runs: {name}")
    return medians


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="10000,100000", help="table sizes, comma-separated")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--browser", action="store_true", help="time the chart in chromium too")
    ap.add_argument("--mlflow", type=int, default=0, metavar="N",
                    help="also time mlflow server at N runs (and vtrack at N) in this run")  # fmt: skip
    ap.add_argument(
        "--store",
        type=Path,
        default=None,
        help="time only the runs table, `vtrack ui` start and the anchors on this "
        "existing repository (its largest experiment; e.g. a scale_build.py store)",
    )
    ap.add_argument("--aggregate-key", default="loss", help="metric of the :min sort figure")
    args = ap.parse_args()
    if args.store is not None:
        return existing_store(args.store.resolve(), args.repeat, args.aggregate_key)
    sizes = sorted({int(x) for x in args.runs.split(",") if x.strip()} | ({args.mlflow} - {0}))
    rows = Rows()
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        os.chdir(repo)
        client = TrackingClient(str(repo))
        exp = "0"
        t0 = time.perf_counter()
        long = client.create_run(exp, run_name="long")
        rid = long.info.run_id
        for s0 in range(0, args.points, 100_000):
            client.log_batch(rid, [
                Metric("loss", math.sin(s / 997) + s / args.points, 1_700_000_000_000 + s, s)
                for s in range(s0, min(args.points, s0 + 100_000))
            ])  # fmt: skip
        client.set_terminated(rid)
        cache = repo / ".git" / "vtrack" / "cache"

        # -- the long history: never seen, after a restart, warm ---------------------------
        hist = f"api/history/{rid}/loss?budget=2000"
        shutil.rmtree(cache, ignore_errors=True)
        proc, url, _ = start(repo)
        try:
            t0 = time.perf_counter()
            body = get(url + hist)
            rows.append((f"{args.points:,}-point history, never seen (parsed from git)",
                         f"{(time.perf_counter() - t0) * 1000:.0f} ms", ""))  # fmt: skip
        finally:
            stop(proc)
        restarts = []
        for _ in range(3):
            proc, url, _ = start(repo)
            try:
                t0 = time.perf_counter()
                body = get(url + hist)
                restarts.append(time.perf_counter() - t0)
            finally:
                stop(proc)
        rows.append((f"{args.points:,}-point history, first request after a restart "
                     "(columnar cache)", fmt(restarts), ""))  # fmt: skip
        proc, url, _ = start(repo)
        try:
            doc = json.loads(get(url + hist))
            warm = timed(lambda: get(url + hist), args.repeat)
            rows.append((f"{args.points:,}-point history, warm (reduced to {len(doc['x']):,})",
                         fmt(warm), ""))  # fmt: skip
            rows.append(("its payload", f"{len(body) / 1024:.0f} KB", "≤ 200 KB"))
            if len(body) > TARGET_PAYLOAD:
                missed.append("payload")
            zoom = f"{url}api/history/{rid}/loss?budget=2000&lo=500000&hi=501000"
            rows.append(("zoomed to 1,001 steps (exact points)",
                         fmt(timed(lambda: get(zoom), args.repeat)), ""))  # fmt: skip
            if args.browser:
                painted, drawn = browser_chart(f"{url}runs/{rid}", args.repeat)
                rows.append(("run page: navigation to the chart drawn (sketch; chromium, warm server)",
                             fmt(painted), "≤ 500 ms"))  # fmt: skip
                rows.append(("run page: navigation to the interactive Plotly chart",
                             fmt(drawn), ""))  # fmt: skip
                if statistics.median(painted) > TARGET_CHART_S:
                    missed.append("chart")
        finally:
            stop(proc)

        # -- the runs table at each size -------------------------------------------------------
        bulk = BulkWriter(client)
        made = 0
        vtrack_at: dict[int, dict[str, float]] = {}
        for n in sizes:
            t0 = time.perf_counter()
            bulk.write(made, n - made)
            made = n
            subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True)
            wrote = time.perf_counter() - t0
            t0 = time.perf_counter()
            client.search_runs(max_results=1)  # build the index once, as a first `vtrack ls` does
            print(f"{n:,} runs: written in {wrote:.0f} s, indexed in "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
            if n == sizes[0]:
                check_bulk_against_api(client, exp, 7)
            if n == sizes[-1]:
                start_figure(repo, n, rows, missed)
            proc, url, _ = start(repo)
            try:
                vtrack_at[n] = table_figures(url, exp, n, args.repeat, rows, missed)
            finally:
                stop(proc)
            anchor = timed(lambda: client.search_runs([exp], FILTER, max_results=50,
                                                      order_by=["metrics.acc DESC"]), args.repeat)  # fmt: skip
            rows.append((f"{n:,} runs, anchor: `search_runs` of the same filter + sort, 50 rows "
                         "(in process)", fmt(anchor), ""))  # fmt: skip
            if n == sizes[-1]:
                ls = timed(lambda: subprocess.run(
                    [sys.executable, "-m", "vtrack", "ls", "-f", FILTER, "-s", "-metrics.acc"],
                    cwd=repo, env=env(), check=True, capture_output=True), max(3, args.repeat // 3))  # fmt: skip
                rows.append((f"{n:,} runs, anchor: `vtrack ls -f FILTER -s -metrics.acc` (a process)",
                             fmt(ls), ""))  # fmt: skip
    if args.mlflow:
        mlflow_anchor(args.mlflow, args.repeat, vtrack_at.get(args.mlflow, {}), rows)
    return print_table(rows, missed)


def existing_store(repo: Path, repeat: int, agg: str) -> int:
    """The table figures, `vtrack ui` start and the anchors on an existing repository."""
    rows = Rows()
    missed: list[str] = []
    os.chdir(repo)
    client = TrackingClient(str(repo))
    t0 = time.perf_counter()
    client.search_runs(max_results=1)
    print(f"index synced in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    counts = {e.experiment_id: len(client.search_runs([e.experiment_id], max_results=None))
              for e in client.search_experiments()}  # fmt: skip
    exp = max(counts, key=lambda e: counts[e])
    n = counts[exp]
    start_figure(repo, n, rows, missed)
    proc, url, _ = start(repo)
    try:
        table_figures(url, exp, n, repeat, rows, missed, agg)
    finally:
        stop(proc)
    anchor = timed(lambda: client.search_runs([exp], FILTER, max_results=50,
                                              order_by=["metrics.acc DESC"]), repeat)  # fmt: skip
    rows.append((f"{n:,} runs, anchor: `search_runs` of the same filter + sort, 50 rows "
                 "(in process)", fmt(anchor), ""))  # fmt: skip
    ls = timed(lambda: subprocess.run(
        [sys.executable, "-m", "vtrack", "ls", "-f", FILTER, "-s", "-metrics.acc"],
        cwd=repo, env=env(), check=True, capture_output=True), max(3, repeat // 3))  # fmt: skip
    rows.append((f"{n:,} runs, anchor: `vtrack ls -f FILTER -s -metrics.acc` (a process)",
                 fmt(ls), ""))  # fmt: skip
    return print_table(rows, missed)


def print_table(rows: Rows, missed: list[str]) -> int:
    """Print the figures as a markdown table; 1 when a target was missed."""
    print("| figure | min / median / max | target |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if missed:
        print("missed: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


def mlflow_anchor(n: int, repeat: int, ours: dict[str, float], rows: Rows) -> None:
    """``bench_ui_mlflow.py --runs n`` in this run, and the ratio to vtrack's JSON at n runs."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_ui_mlflow.py"), "--runs", str(n),
         "--repeat", str(repeat)], capture_output=True, text=True, env=env(), cwd=ROOT,
    )  # fmt: skip
    if res.returncode:
        print(res.stderr[-3000:], file=sys.stderr)
        raise SystemExit("bench_ui_mlflow.py failed")
    pairs = {"first page (50 rows)": "first page as JSON (`/api/runs`)",
             "filter + sort": "filter + sort, JSON"}  # fmt: skip
    for line in res.stdout.splitlines():
        if not line.startswith("| mlflow server"):
            continue
        name, figure = line.strip("| ").split(" | ")[:2]
        med = float(figure.split(" / ")[1])
        ratio = ""
        for theirs, mine in pairs.items():
            if name.endswith(theirs) and mine in ours:
                ratio = f"vtrack `/api/runs` {ours[mine] * 1000:.0f} ms: {med / (ours[mine] * 1000):.1f}× faster"
        rows.append((name, figure, ratio))


def browser_chart(url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation start to the chart drawn and to the Plotly chart, in chromium.

    Read from the page itself (``data-painted-ms``, ``data-drawn-ms``: ``performance.now()``
    when each happened), so the figures do not include Playwright's own round trips.
    """
    from playwright.sync_api import sync_playwright

    painted, drawn = [], []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = b.new_page()
        page.goto(url)  # caches plotly.min.js, as a second visit would
        page.locator("#chart[data-draws]").wait_for(timeout=120_000)
        for _ in range(repeat):
            page.goto(url)
            page.locator("#chart[data-draws]").wait_for(timeout=120_000)
            painted.append(int(page.get_attribute("#chart", "data-painted-ms") or 0) / 1000)
            drawn.append(int(page.get_attribute("#chart", "data-drawn-ms") or 0) / 1000)
        b.close()
    return painted, drawn


if __name__ == "__main__":
    raise SystemExit(main())
