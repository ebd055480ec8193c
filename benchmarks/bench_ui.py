"""Benchmark the web UI (issue 10, "Figures") on a real ``vtrack ui`` server.

Measures, over HTTP against ``vtrack ui --port 0`` (uvicorn in its own process):

- the runs table of an experiment with 10,000 runs: the first page (HTML, 50 rows), the
  same page as JSON (``/api/runs``), a sort change (``sort=-metrics.acc``) and a filter
  change (``q=metrics.acc > 0.9 and params.model = 'xgb'``), target <= 300 ms each;
  anchored by the index search behind them measured in the same run
  (``TrackingClient.search_runs`` of the same filter, order and 50 rows, in process) and by
  ``vtrack ls`` of the same filter (a process, as a user runs it);
- a metric history of 1,000,000 points: ``/api/history`` cold (parsed from git) and warm,
  its payload (target <= 200 KB), and with ``--browser`` the run page loaded in headless
  chromium until its chart is drawn (target <= 500 ms);
- ``vtrack ui`` start to the first page answered (target <= 2 s).

Every figure is repeated (``--repeat``, default 15) and printed as min / median / max.
MLflow's own table is not measured here: creating 10,000 runs through its client takes
~10 minutes on this machine (see ``bench_search.py`` for its search API at 1,000-2,000
runs).

Usage::

    PYTHONPATH=. python benchmarks/bench_ui.py [--runs 10000] [--repeat 15] [--browser]
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
    with urllib.request.urlopen(url, timeout=120) as r:
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--browser", action="store_true", help="time the chart in chromium too")
    args = ap.parse_args()
    rows = Rows()
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        os.chdir(repo)
        client = TrackingClient(str(repo))
        t0 = time.perf_counter()
        BulkWriter(client).write(0, args.runs)
        subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True)
        exp = "0"
        long = client.create_run(exp, run_name="long")
        rid = long.info.run_id
        for s0 in range(0, args.points, 100_000):
            client.log_batch(rid, [
                Metric("loss", math.sin(s / 997) + s / args.points, 1_700_000_000_000 + s, s)
                for s in range(s0, min(args.points, s0 + 100_000))
            ])  # fmt: skip
        client.set_terminated(rid)
        client.search_runs(max_results=1)  # build the index once, as a first `vtrack ls` does
        print(f"made {args.runs:,} runs and a {args.points:,}-point history "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip

        starts = []
        for _ in range(3):
            proc, url, took = start(repo)
            starts.append(took)
            stop(proc)
        rows.append(("`vtrack ui` start to first page", fmt(starts), "≤ 2 s"))
        if statistics.median(starts) > TARGET_START_S:
            missed.append("start")

        proc, url, _ = start(repo)
        try:
            q = urllib.parse.urlencode
            pages = {
                "first page (HTML, 50 rows)": f"{url}?exp={exp}",
                "first page as JSON (`/api/runs`)": f"{url}api/runs?exp={exp}",
                "sort change (`-metrics.acc`), HTML": f"{url}?" + q({"exp": exp, "sort": "-metrics.acc"}),
                "filter change, HTML": f"{url}?" + q({"exp": exp, "q": FILTER}),
                "filter + sort, JSON": f"{url}api/runs?" + q({"exp": exp, "q": FILTER, "sort": "-metrics.acc"}),
            }  # fmt: skip
            for name, u in pages.items():
                get(u)  # warm (first request after start)
                times = timed(lambda u=u: get(u), args.repeat)
                rows.append((f"{args.runs:,} runs: {name}", fmt(times), "≤ 300 ms"))
                if statistics.median(times) > TARGET_PAGE_S:
                    missed.append(name)
            anchor = timed(lambda: client.search_runs([exp], FILTER, max_results=50,
                                                      order_by=["metrics.acc DESC"]), args.repeat)  # fmt: skip
            rows.append(("anchor: `search_runs` of the same filter + sort, 50 rows (in process)",
                         fmt(anchor), ""))  # fmt: skip
            ls = timed(lambda: subprocess.run(
                [sys.executable, "-m", "vtrack", "ls", "-f", FILTER, "-s", "-metrics.acc"],
                cwd=repo, env=env(), check=True, capture_output=True), max(3, args.repeat // 3))  # fmt: skip
            rows.append(("anchor: `vtrack ls -f FILTER -s -metrics.acc` (a process)", fmt(ls), ""))

            hist = f"{url}api/history/{rid}/loss?budget=2000"
            t0 = time.perf_counter()
            body = get(hist)
            cold = time.perf_counter() - t0
            doc = json.loads(body)
            rows.append((f"{args.points:,}-point history, cold (parsed from git)",
                         f"{cold * 1000:.0f} ms", ""))  # fmt: skip
            warm = timed(lambda: get(hist), args.repeat)
            rows.append((f"{args.points:,}-point history, warm (reduced to {len(doc['x']):,})",
                         fmt(warm), ""))  # fmt: skip
            rows.append(("its payload", f"{len(body) / 1024:.0f} KB", "≤ 200 KB"))
            if len(body) > TARGET_PAYLOAD:
                missed.append("payload")
            zoom = f"{url}api/history/{rid}/loss?budget=2000&lo=500000&hi=501000"
            rows.append(
                (
                    "zoomed to 1,001 steps (exact points)",
                    fmt(timed(lambda: get(zoom), args.repeat)),
                    "",
                )
            )
            if args.browser:
                chart = browser_chart(f"{url}runs/{rid}", args.repeat)
                rows.append(
                    ("run page to a drawn chart (chromium, warm server)", fmt(chart), "≤ 500 ms")
                )
                if statistics.median(chart) > TARGET_CHART_S:
                    missed.append("chart")
        finally:
            stop(proc)
    print("| figure | min / median / max | target |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if missed:
        print("missed: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


def browser_chart(url: str, repeat: int) -> list[float]:
    """Seconds from navigation to the first drawn chart in headless chromium."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = b.new_page()
        page.goto(url)  # caches plotly.min.js, as a second visit would
        page.locator("#chart[data-draws]").wait_for(timeout=120_000)
        for _ in range(repeat):
            t0 = time.perf_counter()
            page.goto(url)
            page.locator("#chart[data-draws]").wait_for(timeout=120_000)
            out.append(time.perf_counter() - t0)
        b.close()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
