"""The derived index at scale (issue 15 points 3-4): a fresh clone's first command, warm
queries and a 100,000-point metric history, each beside an anchor measured in the same run.

For a store built by ``scale_build.py`` it makes a fresh clone (``git clone`` + fetching
``refs/vtrack/*``) and measures:

- the first ``vtrack ls -n 20`` (it builds the index): wall time and peak RSS, beside
  the floors under it: ``git cat-file --batch`` streaming every run's ``summary.json``
  (git alone), parsing those blobs in Python (json / orjson), and a bare SQLite insert of
  one row and one body per run;
- the first filtered search after the build (it writes the value rows of the keys it
  names), then warm: ``search_runs`` with 2 clauses + order (default 1,000 results and
  100), ``search_runs_page`` (50 rows + total), ``keys()``, beside the SQL alone;
- whole processes: ``vtrack ls``, ``vtrack lineage data/d7.csv``, anchor ``vtrack --help``;
- with ``--history``: one metric of 100,000 points through ``get_metric_history`` (first
  read writes the columnar cache; then warm), beside parsing the TSV chunks alone;
- with ``--archived`` (STORE compacted by ``vtrack archive``, its batches carrying summary
  tables): only the build, on one local clone (``git clone`` + ``refs/vtrack/*``, its
  ``.git/vtrack`` removed before each build) — git alone streaming every batch's
  ``summaries.tsv`` (the anchor),
  ``--builds`` first ``vtrack ls -n 20`` processes (wall, peak RSS of the process and its
  git children) and as many in-process builds (seconds, the process's own ``ru_maxrss``,
  its children's apart), beside SQLite alone writing the same rows (parsed beforehand:
  the floor of any build that holds them) and, with ``--compare CHECKOUT``, the same
  build by another checkout's code (e.g. a ``git worktree`` of an older commit), paired.

Usage: ``PYTHONPATH=. python benchmarks/bench_index.py STORE [--repeat 5] [--history]
[--archived [--compare CHECKOUT]]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_scale  # noqa: E402
import scale_build  # noqa: E402

FILTER, ORDER_BY = bench_scale.FILTER, bench_scale.ORDER_BY


def spread(xs: list[float]) -> str:
    lo, mid, hi = min(xs), statistics.median(xs), max(xs)
    f = bench_scale.fmt
    return f"{f(lo)} / {f(mid)} / {f(hi)} (mean {f(statistics.fmean(xs))})"


def timed(fn: Any, n: int) -> list[float]:
    return bench_scale.repeat(fn, n)


def fresh_clone(store: Path, work: Path, reuse: bool = False) -> Path:
    clone = work / f"clone-{store.name}"
    if reuse and (clone / ".git").is_dir():
        return clone  # the same fresh clone again: only its index is rebuilt
    shutil.rmtree(clone, ignore_errors=True)
    scale_build.git(work, "clone", "-q", "--no-local", str(store), str(clone))
    scale_build.git(clone, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    return clone


def drop_index(clone: Path) -> None:
    for extra in ("", "-wal", "-shm"):
        (clone / ".git" / "vtrack" / f"index.sqlite{extra}").unlink(missing_ok=True)


def floors(clone: Path) -> dict[str, float]:
    """Seconds for git alone, parsing alone and SQLite alone, over every run."""
    from vtrack.store.summary import fast_loads

    listing = scale_build.git(clone, "for-each-ref", "--format=%(objectname):.vtrack/summary.json",
                              "refs/vtrack/runs/")  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(["git", "cat-file", "--batch"], cwd=clone, input=listing.encode() + b"\n",
                         capture_output=True, check=True).stdout  # fmt: skip
    git_s = time.perf_counter() - t0
    blobs, i = [], 0
    while i < len(out):
        nl = out.index(b"\n", i)
        head = out[i:nl].split()
        if len(head) < 3:
            break
        size = int(head[2])
        blobs.append(out[nl + 1 : nl + 1 + size])
        i = nl + 1 + size + 1
    t0 = time.perf_counter()
    for b in blobs:
        json.loads(b)
    json_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in blobs:
        fast_loads(b)
    fast_s = time.perf_counter() - t0
    path = Path(tempfile.mkdtemp()) / "floor.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("CREATE TABLE runs(id INTEGER PRIMARY KEY, run_id TEXT UNIQUE, name TEXT, "
                 "start_time INTEGER)")  # fmt: skip
    conn.execute("CREATE TABLE records(run INTEGER PRIMARY KEY, body TEXT)")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO runs VALUES(?,?,?,?)",
                     ((k, f"{k:032x}", f"run-{k}", k) for k in range(len(blobs))))  # fmt: skip
    conn.executemany("INSERT INTO records VALUES(?,?)",
                     ((k, b.decode()) for k, b in enumerate(blobs)))  # fmt: skip
    conn.execute("COMMIT")
    sql_s = time.perf_counter() - t0
    conn.close()
    shutil.rmtree(path.parent, ignore_errors=True)
    return {"runs": len(blobs), "git": git_s, "json": json_s, "fast": fast_s, "sql": sql_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--builds", type=int, default=2, help="fresh index builds to time")
    ap.add_argument("--history", action="store_true")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="reuse the clone of an earlier run")
    ap.add_argument("--archived", action="store_true", help="the build of an archived store")
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="with --archived: another checkout whose build each one is paired with",
    )
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="vtrack-index-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.archived:
        return archived(args.store.resolve(), work, args.builds, args.compare)
    clone = fresh_clone(args.store.resolve(), work, args.reuse)
    fl = floors(clone)
    print(f"\n## {fl['runs']:,} runs ({args.store})\n")
    print(f"floors: git cat-file of every summary.json {bench_scale.fmt(fl['git'])}; "
          f"json.loads {bench_scale.fmt(fl['json'])}, orjson-or-json {bench_scale.fmt(fl['fast'])}; "
          f"SQLite insert of a row + body per run {bench_scale.fmt(fl['sql'])}")  # fmt: skip
    builds, rss = [], []
    for _ in range(args.builds):
        drop_index(clone)
        s, peak = bench_scale.timed_process(bench_scale.vtrack_cli("ls", "-n", "20"), clone)
        builds.append(s)
        rss.append(peak)
    print(f"first `vtrack ls -n 20` (index build): {spread(builds)}; peak RSS "
          f"{max(rss) / 2**20:.0f} MB; ratio to git's stream alone "
          f"{statistics.median(builds) / fl['git']:.1f}x")  # fmt: skip
    from vtrack.client import TrackingClient
    from vtrack.query import parse_filter, parse_order_by
    from vtrack.store.index_sql import compile_search

    os.chdir(clone)
    c = TrackingClient(str(clone))
    t0 = time.perf_counter()
    found = c.search_runs(filter_string=FILTER, order_by=ORDER_BY)
    print(f"first filtered search after the build (writes the keys' value rows): "
          f"{bench_scale.fmt(time.perf_counter() - t0)}, {len(found)} runs")  # fmt: skip
    n = 3 * args.repeat
    idx = c.run_index()
    sql, sargs = compile_search(parse_filter(FILTER), parse_order_by(ORDER_BY), max_results=1000)
    conn = idx.connection()
    anchor = timed(lambda: conn.execute(sql, sargs).fetchall(), n)
    rows = [
        ("`search_runs` 2 clauses + order (default max 1,000)",
         lambda: c.search_runs(filter_string=FILTER, order_by=ORDER_BY)),
        ("the same, max_results=100",
         lambda: c.search_runs(filter_string=FILTER, order_by=ORDER_BY, max_results=100)),
        ("`search_runs_page` filter + order, 50 rows + total (the UI's table)",
         lambda: c.search_runs_page(None, FILTER, ORDER_BY, limit=50)),
        ("`search_runs_page` no filter, newest first", lambda: c.search_runs_page(None, "", None)),
        ("`run_index().keys()` (the UI's column chooser)", lambda: c.run_index().keys()),
    ]  # fmt: skip
    print(f"\nSQL alone (the anchor): {spread(anchor)}")
    for label, fn in rows:
        xs = timed(fn, n)
        print(
            f"{label}: {spread(xs)}; {statistics.median(xs) / statistics.median(anchor):.1f}x the SQL"
        )
    help_s = [bench_scale.timed_process(bench_scale.vtrack_cli("--help"), clone)[0]
              for _ in range(args.repeat)]  # fmt: skip
    ls_s = [bench_scale.timed_process(bench_scale.vtrack_cli("ls"), clone)[0]
            for _ in range(args.repeat)]  # fmt: skip
    lin = [bench_scale.timed_process(bench_scale.vtrack_cli("lineage", "data/d7.csv"), clone)[0]
           for _ in range(args.repeat)]  # fmt: skip
    print(f"\n`vtrack --help` (anchor): {spread(help_s)}")
    print(
        f"`vtrack ls`: {spread(ls_s)} ({statistics.median(ls_s) / statistics.median(help_s):.2f}x)"
    )
    print(f"`vtrack lineage data/d7.csv`: {spread(lin)} "
          f"({statistics.median(lin) / statistics.median(help_s):.2f}x)")  # fmt: skip
    if args.history:
        history(work, args.repeat)
    return 0


_IN_PROCESS = """
import json, resource, sys, time
from vtrack.client import TrackingClient
from vtrack.store.index import RunIndex
t0 = time.perf_counter()
stats = RunIndex.for_store(TrackingClient(sys.argv[1]).repo.store).sync()
s = time.perf_counter() - t0
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"s": s, "own": own, "kids": kids, "read": stats.read,
                  "from_tables": stats.from_tables, "tables": stats.tables}))
"""


_SQL_FLOOR = """
import json, os, sqlite3, subprocess, sys, time
from vtrack.store import index_schema as ix
clone = sys.argv[1]
names = subprocess.run(["git", "for-each-ref", "--format=%(objectname):summaries.tsv",
                        "refs/vtrack/archive/"], cwd=clone, capture_output=True, text=True,
                       check=True).stdout.split()
runs, records, datasets, inputs = [], [], [], []
rid = 1
for name in names:  # parsed beforehand, untimed: only SQLite's part is measured
    data = subprocess.run(["git", "cat-file", "blob", name], cwd=clone, capture_output=True,
                          check=True).stdout.decode()
    for line in data.split("\\n")[1:]:
        if len(line) < 74:
            continue
        run_id, commit, derived, body = line.split("\\t", 3)
        attrs, _, _, _, ds, ins = json.loads(derived)
        runs.append((rid, run_id, commit, "active", 0, *attrs))
        records.append((rid, body))
        datasets += [(rid, *d) for d in ds]
        inputs += [(rid, *f) for f in ins]
        rid += 1
path = os.path.join(clone, ".git", "floor.sqlite")
for extra in ("", "-journal", "-wal", "-shm"):
    if os.path.exists(path + extra):
        os.unlink(path + extra)
t0 = time.perf_counter()
conn = sqlite3.connect(path, isolation_level=None)
conn.execute(f"PRAGMA page_size = {ix.PAGE_BYTES}")
conn.execute("PRAGMA journal_mode = DELETE")
conn.execute("PRAGMA synchronous = OFF")
conn.execute(f"PRAGMA cache_size = {-ix.CACHE_KIB}")
conn.executescript(ix.SCHEMA)
conn.execute("BEGIN")
for name, _ in ix.BULK_INDEXES:
    conn.execute(f"DROP INDEX {name}")
for table, rows in (("runs", runs), ("records", records), ("datasets", datasets),
                    ("input_files", inputs)):
    for at in range(0, len(rows), 1000):
        chunk = rows[at : at + 1000]
        conn.executemany(f"INSERT INTO {table} VALUES({','.join('?' * len(chunk[0]))})", chunk)
for _, create in ix.BULK_INDEXES:
    conn.execute(create)
conn.execute("COMMIT")
conn.close()
print(json.dumps({"s": time.perf_counter() - t0, "runs": len(runs)}))
os.unlink(path)
"""


def sql_floor(clone: Path) -> float:
    """Seconds SQLite alone takes to write the rows a build from the tables writes (rows
    parsed beforehand; same pragmas, page size and deferred indexes): a floor under any
    build that holds those rows."""
    res = subprocess.run([sys.executable, "-c", _SQL_FLOOR, str(clone)], cwd=clone,
                         env=bench_scale.env(), capture_output=True, text=True, check=True)  # fmt: skip
    return float(json.loads(res.stdout)["s"])


def table_stream(clone: Path) -> tuple[float, int, int]:
    """Seconds for ``git cat-file --batch`` to stream every batch's summary table, and
    (tables, bytes) it handed over."""
    names = scale_build.git(clone, "for-each-ref", "--format=%(objectname):summaries.tsv",
                            "refs/vtrack/archive/")  # fmt: skip
    t0 = time.perf_counter()  # to /dev/null: held here, the tables would inflate every
    # child's ru_maxrss (Linux carries the forking process's peak across exec)
    subprocess.run(["git", "cat-file", "--batch"], cwd=clone, input=names.encode() + b"\n",
                   stdout=subprocess.DEVNULL, check=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    sizes = subprocess.run(["git", "cat-file", "--batch-check"], cwd=clone, check=True,
                           input=names.encode() + b"\n", capture_output=True).stdout  # fmt: skip
    blobs = [int(p[2]) for p in map(bytes.split, sizes.splitlines()) if p[1:2] == [b"blob"]]
    return seconds, len(blobs), sum(blobs)


def in_process_build(clone: Path, root: Path | None = None) -> dict[str, Any]:
    """One in-process build on ``clone`` (its index and archive cache removed first), with
    this checkout's code or, with ``root``, another checkout's (a before/after pair)."""
    drop_index(clone)
    shutil.rmtree(clone / ".git" / "vtrack" / "archive-cache", ignore_errors=True)
    env = bench_scale.env()
    if root is not None:
        env["PYTHONPATH"] = str(root)
    res = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(clone)], cwd=clone, env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def archived(store: Path, work: Path, builds: int, compare: Path | None = None) -> int:
    """The fresh clone's first command of an archived store (module doc, ``--archived``);
    with ``compare``, each in-process build is paired with one by that checkout's code."""
    streams, procs, peaks, inproc, before, floors_s = [], [], [], [], [], []
    clone = work / f"clone-{store.name}"
    shutil.rmtree(clone, ignore_errors=True)
    t0 = time.perf_counter()  # a local clone (hardlinked pack): a network one repacks
    scale_build.git(work, "clone", "-q", str(store), str(clone))
    scale_build.git(clone, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    clones = [time.perf_counter() - t0]
    for _ in range(builds):
        s, n_tables, size = table_stream(clone)
        streams.append(s)
        drop_index(clone)
        shutil.rmtree(clone / ".git" / "vtrack", ignore_errors=True)  # as the clone came
        s, peak = bench_scale.timed_process(bench_scale.vtrack_cli("ls", "-n", "20"), clone)
        procs.append(s)
        peaks.append(peak)
        inproc.append(in_process_build(clone))
        if compare is not None:
            before.append(in_process_build(clone, compare))
        floors_s.append(sql_floor(clone))
    runs = inproc[-1]["read"]
    print(f"\n## {runs:,} runs, archived ({store}), {builds} fresh clones\n")
    print(f"local clone (`git clone` + `refs/vtrack/*`): {spread(clones)}")
    print(f"git alone streaming the {n_tables} summary tables ({size / 2**20:.0f} MB, "
          f"anchor): {spread(streams)}")  # fmt: skip
    print(f"first `vtrack ls -n 20` (index build), whole process: {spread(procs)}; peak RSS "
          f"with its git children {max(peaks) / 2**20:.0f} MB; "
          f"{statistics.median(procs) / statistics.median(streams):.1f}x git's stream")  # fmt: skip
    secs = [r["s"] for r in inproc]
    print(f"in-process build (sync): {spread(secs)}; own ru_maxrss "
          f"{max(r['own'] for r in inproc) / 1024:.0f} MB, git children's "
          f"{max(r['kids'] for r in inproc) / 1024:.0f} MB; {inproc[-1]['from_tables']:,} of "
          f"{runs:,} runs from {inproc[-1]['tables']} tables")  # fmt: skip
    print(f"SQLite alone writing the same rows (anchor): {spread(floors_s)}; the build is "
          f"{statistics.median(secs) / statistics.median(floors_s):.2f}x it")  # fmt: skip
    if before:
        old = [r["s"] for r in before]
        print(f"the same build with {compare}'s code (paired): {spread(old)}; now "
              f"{statistics.median(old) / statistics.median(secs):.2f}x faster")  # fmt: skip
    return 0


def history(work: Path, n_repeat: int, points: int = 100_000) -> None:
    import vtrack
    from vtrack.client import TrackingClient

    repo = scale_build.make_repo(work / f"history-{time.time_ns()}")
    os.chdir(repo)
    vtrack.set_tracking_uri(str(repo))
    with vtrack.start_run() as run:
        for s in range(points):
            vtrack.log_metric("loss", 1.0 / (s + 1), step=s)
    rid = run.info.run_id
    c = TrackingClient(str(repo))
    record = c.repo.state(rid).record
    anchor = timed(lambda: list(record.iter_history("loss")), n_repeat)
    t0 = time.perf_counter()
    assert len(c.get_metric_history(rid, "loss")) == points
    first = time.perf_counter() - t0
    warm = timed(lambda: c.get_metric_history(rid, "loss"), n_repeat)
    cache = c.history_cache()
    cols = timed(lambda: cache.history(c.repo.state(rid).record, "loss"), n_repeat)
    print(f"\nhistory of {points:,} points: TSV parse alone (anchor, before) {spread(anchor)}")
    print(f"`get_metric_history`, first read (writes the cache): {bench_scale.fmt(first)}")
    print(f"`get_metric_history`, warm: {spread(warm)} "
          f"({statistics.median(warm) / statistics.median(anchor):.2f}x the TSV parse)")  # fmt: skip
    print(f"the cached columns alone (state read + arrays): {spread(cols)} "
          f"({statistics.median(cols) / statistics.median(anchor):.2f}x)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
