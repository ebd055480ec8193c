"""vtrack's scale envelope (issue 15), beside MLflow 3.17.2's sqlite store.

For each store size (bulk-built by :mod:`scale_build`: runs with 20 params, 10 metrics x
100 steps, 2 small artifacts and one dataset input each) it measures:

- ``.git`` bytes per run and loose objects (no maintenance command run);
- a fresh clone's first command: ``git clone`` + fetching ``refs/vtrack/*``, then the first
  ``vtrack ls`` (it builds the index): wall time and peak RSS of that process;
- ``search_runs`` with a 2-clause filter and an order, warm, in-process;
- ``vtrack ls`` and ``vtrack lineage data/d7.csv``, whole processes, warm index;
- the user's own git: ``fetch`` (nothing new), ``push`` of a branch, ``branch -a``,
  ``for-each-ref``, ``log --all --oneline`` (and the documented ``--exclude`` form),
  ``status``, ``clone`` (``--no-local``, which fetches no run refs) — in a clone without
  runs (the anchor), in the store with its refs loose and no commit-graph (as vtrack
  left them before issue 15), after vtrack's own compaction
  (:func:`vtrack.store.maintain.compact`), and after ``vtrack archive`` (its wall time
  and the peak RSS of its process tree too); the anchor is measured again right before
  each state, so each ratio is to an anchor of the same minutes;

and once: the history of one metric of 100,000 points (``get_metric_history``), and a
check that the bulk store matches one made through the public API (objects and bytes per
run). MLflow's column: the same runs logged through ``MlflowClient`` into
``sqlite:///mlflow.db`` at the sizes it reaches in the time (``--mlflow-runs``), the
same search and the same 100,000-point history.

Usage::

    nice -n 10 python benchmarks/bench_scale.py [--sizes 1000,10000] [--store PATH ...]
        [--mlflow-runs 1000] [--api-runs 200] [--repeat 3] [--dir DIR]

``--store`` measures existing stores (made by ``scale_build.py``) too; they are changed
(refs unpacked, packed, archived), so give copies. With ``--store`` nothing is built
unless ``--sizes`` is given.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale_build  # noqa: E402

FILTER = "metrics.acc > 0.9 and params.model = 'xgb'"
ORDER_BY = ["metrics.acc DESC"]
GIT_COMMANDS = {
    "git fetch (nothing new)": ["fetch", "-q", "scalebench"],
    "git push of a branch": None,  # a new branch each time, see _git_table
    "git branch -a": ["branch", "-a"],
    "git for-each-ref": ["for-each-ref"],
    "git log --all --oneline": ["log", "--all", "--oneline"],
    "git log --all --exclude=refs/vtrack/*": ["log", "--exclude=refs/vtrack/*", "--all",
                                              "--oneline"],
    "git status": ["status", "--short"],
    "git clone": None,  # --no-local into a new folder, see _git_table
}  # fmt: skip


def env() -> dict[str, str]:
    """Children's environment: bytecode cached (outside the tree), as users have it."""
    out = dict(os.environ, PYTHONPATH=str(ROOT), GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b",
               PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "vtrack-bench-pyc"))  # fmt: skip
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def timed_process(args: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed in {cwd} ({proc.returncode})")
    return seconds, usage.ru_maxrss * 1024


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt3(values: list[float]) -> str:
    lo, mid, hi = spread(values)
    return f"{fmt(mid)} ({fmt(lo)}–{fmt(hi)})"


def repeat(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def vtrack_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vtrack", *args]


# --- one store ------------------------------------------------------------------------------


def measure_store(repo: Path, work: Path, n_repeat: int) -> dict[str, Any]:
    from vtrack.client import TrackingClient

    out: dict[str, Any] = {"profile": scale_build.store_profile(repo)}
    base = _base_bytes(work)
    runs = out["profile"]["runs"]
    out["bytes_per_run"] = (out["profile"]["git_bytes"] - base) / runs
    # a fresh clone's first command
    clone = work / f"clone-{runs}"
    shutil.rmtree(clone, ignore_errors=True)
    t0 = time.perf_counter()
    scale_build.git(work, "clone", "-q", "--no-local", str(repo), str(clone))
    scale_build.git(clone, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    out["clone_s"] = time.perf_counter() - t0
    firsts, rss = [], []
    for _ in range(n_repeat):
        (clone / ".git" / "vtrack" / "index.sqlite").unlink(missing_ok=True)
        for extra in ("-wal", "-shm"):
            (clone / ".git" / "vtrack" / f"index.sqlite{extra}").unlink(missing_ok=True)
        seconds, peak = timed_process(vtrack_cli("ls", "-n", "20"), clone)
        firsts.append(seconds)
        rss.append(peak)
    out["first_command"] = firsts
    out["first_rss"] = rss
    # warm queries, in-process and whole processes
    os.chdir(clone)
    client = TrackingClient(str(clone))
    client.search_runs(filter_string=FILTER, order_by=ORDER_BY)
    out["search"] = repeat(
        lambda: client.search_runs(filter_string=FILTER, order_by=ORDER_BY), 10 * n_repeat
    )
    out["ls"] = [timed_process(vtrack_cli("ls"), clone)[0] for _ in range(n_repeat)]
    out["lineage"] = [
        timed_process(vtrack_cli("lineage", "data/d7.csv"), clone)[0] for _ in range(n_repeat)
    ]
    out["git"] = _git_table(repo, work, n_repeat)
    return out


def _base_bytes(work: Path) -> int:
    """``.git`` bytes of the code repository before any run (the same for every store)."""
    probe = work / "base-probe"
    shutil.rmtree(probe, ignore_errors=True)
    scale_build.make_repo(probe)
    return sum(f.stat().st_size for f in (probe / ".git").rglob("*") if f.is_file())


def _unpack_refs(repo: Path) -> None:
    """Put the store back in the state vtrack left it in before issue 15: run refs loose,
    no commit-graph."""
    packed = repo / ".git" / "packed-refs"
    keep = []
    for line in packed.read_text().splitlines():
        sha, _, name = line.partition(" ")
        if name.startswith("refs/vtrack/"):
            path = repo / ".git" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(sha + "\n")
        else:
            keep.append(line)
    packed.write_text("\n".join(keep) + "\n")
    info = repo / ".git" / "objects" / "info"
    (info / "commit-graph").unlink(missing_ok=True)
    shutil.rmtree(info / "commit-graphs", ignore_errors=True)


def _git_table(repo: Path, work: Path, n_repeat: int) -> dict[str, Any]:
    """The user's git in each state (module docstring); ``{command: {state: times}}``,
    plus ``"anchors"`` (``{state: {command: times}}`` of the clone without runs measured
    right before it) and ``"archive"`` (``vtrack archive``'s seconds and peak RSS)."""
    from vtrack.client import TrackingClient
    from vtrack.store import maintain

    bare = work / f"remote-{repo.name}.git"
    shutil.rmtree(bare, ignore_errors=True)
    scale_build.git(work, "clone", "-q", "--bare", "--single-branch", str(repo), str(bare))
    plain = work / f"noruns-{repo.name}"
    shutil.rmtree(plain, ignore_errors=True)
    scale_build.git(work, "clone", "-q", str(bare), str(plain))
    scale_build.git(plain, "remote", "add", "scalebench", str(bare))
    subprocess.run(["git", "remote", "remove", "scalebench"], cwd=repo, capture_output=True)
    scale_build.git(repo, "remote", "add", "scalebench", str(bare))
    table: dict[str, Any] = {}
    anchors: dict[str, dict[str, list[float]]] = {}
    archived: dict[str, float] = {}

    def archive(r: Path) -> None:
        seconds, peak = timed_process(vtrack_cli("archive"), r)
        archived.update(seconds=seconds, rss=peak)
        maintain.compact(TrackingClient(str(r)).repo.store)  # as a run's end would

    states = [("runs, refs loose (before)", repo, _unpack_refs),
              ("runs, after vtrack's compaction", repo,
               lambda r: maintain.compact(TrackingClient(str(r)).repo.store)),
              ("runs, after `vtrack archive`", repo, archive)]  # fmt: skip
    for label, where, prepare in states:
        prepare(where)
        anchors[label] = _git_times(plain, work, n_repeat, "anchor")
        for name, times in _git_times(where, work, n_repeat, label).items():
            table.setdefault(name, {})[label] = times
    table["anchors"] = anchors
    table["archive"] = archived
    return table


def _git_times(where: Path, work: Path, n_repeat: int, label: str) -> dict[str, list[float]]:
    """Each of :data:`GIT_COMMANDS` ``n_repeat`` times in ``where``."""
    scale_build.git(where, "fetch", "-q", "scalebench")
    out: dict[str, list[float]] = {}
    tag = "".join(ch for ch in label if ch.isalnum())[:12]
    for name, args in GIT_COMMANDS.items():
        times = []
        for k in range(n_repeat):
            target = work / f"clone-of-{where.name}-{k}"
            if name == "git clone":
                shutil.rmtree(target, ignore_errors=True)
                cmd = ["git", "clone", "-q", "--no-local", str(where), str(target)]
            elif args is None:
                branch = f"bench-{tag}-{k}-{time.time_ns()}"
                cmd = ["git", "push", "-q", "scalebench", f"HEAD:refs/heads/{branch}"]
            else:
                cmd = ["git", *args]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=where, env=env(), capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
            shutil.rmtree(target, ignore_errors=True)
        out[name] = times
    return out


# --- once -----------------------------------------------------------------------------------


def metric_history(work: Path, n_repeat: int, points: int = 100_000) -> list[float]:
    import vtrack
    from vtrack.client import TrackingClient

    repo = scale_build.make_repo(work / "history")
    os.chdir(repo)
    vtrack.set_tracking_uri(str(repo))
    with vtrack.start_run() as run:
        for s in range(points):
            vtrack.log_metric("loss", 1.0 / (s + 1), step=s)
    client = TrackingClient(str(repo))
    assert len(client.get_metric_history(run.info.run_id, "loss")) == points
    return repeat(lambda: client.get_metric_history(run.info.run_id, "loss"), n_repeat)


def api_vs_bulk(work: Path, n: int) -> dict[str, dict[str, float]]:
    api = scale_build.make_repo(work / "api")
    scale_build.build_api(api, n)
    bulk = scale_build.make_repo(work / "bulk")
    scale_build.build_bulk(bulk, n)
    base = _base_bytes(work)
    out = {}
    for label, repo in (("public API", api), ("bulk path", bulk)):
        p = scale_build.store_profile(repo)
        out[label] = {"objects/run": p["objects"] / p["runs"],
                      "bytes/run": (p["git_bytes"] - base) / p["runs"], "packs": p["packs"],
                      "loose": p["loose"]}  # fmt: skip
    return out


def mlflow_anchor(work: Path, n: int, n_repeat: int, points: int = 100_000) -> dict[str, Any]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    for name in list(os.environ):
        if name.startswith("MLFLOW_"):
            del os.environ[name]
    where = work / "mlflow"
    where.mkdir(exist_ok=True)
    os.chdir(where)
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{where / 'mlflow.db'}")
    exp = client.create_experiment("scale")
    t0 = time.perf_counter()
    start = int(time.time() * 1000)
    for i in range(n):
        values = scale_build.run_values(i)
        run = client.create_run(exp, start_time=start + i)
        metrics = [Metric(k, v, start + s, s) for k, series in values["metrics"].items()
                   for s, v in enumerate(series)]  # fmt: skip
        client.log_batch(run.info.run_id, metrics=metrics[:1000],
                         params=[Param(k, str(v)) for k, v in values["params"].items()])  # fmt: skip
        client.set_terminated(run.info.run_id)
    create = time.perf_counter() - t0

    def search() -> Any:
        return client.search_runs([exp], FILTER, order_by=ORDER_BY, max_results=1000)

    search()
    warm = repeat(search, 3 * n_repeat)
    size = (where / "mlflow.db").stat().st_size  # the runs only, before the history run
    hist = client.create_run(exp)
    for at in range(0, points, 1000):
        client.log_batch(hist.info.run_id,
                         metrics=[Metric("loss", 1.0 / (s + 1), start, s)
                                  for s in range(at, min(points, at + 1000))])  # fmt: skip
    history = repeat(lambda: client.get_metric_history(hist.info.run_id, "loss"), n_repeat)
    return {"runs": n, "create_s": create, "search": warm, "history": history,
            "db_bytes_per_run": size / max(n, 1)}  # fmt: skip


# --- report ---------------------------------------------------------------------------------


def report(stores: dict[int, dict[str, Any]], extra: dict[str, Any]) -> None:
    sizes = sorted(stores)
    mf = extra.get("mlflow")
    print("\n## Envelope (median, min–max)\n")
    head = "| figure | " + " | ".join(f"{s:,} runs" for s in sizes)
    head += f" | MLflow @{mf['runs']:,} |" if mf else " |"
    print(head)
    print("|---" * (len(sizes) + 1 + bool(mf)) + "|")

    def row(label: str, cells: list[str], anchor: str = "") -> None:
        print(f"| {label} | " + " | ".join(cells) + (f" | {anchor} |" if mf else " |"))

    row(".git bytes per run (no maintenance)",
        [f"{stores[s]['bytes_per_run'] / 1024:.1f} KB" for s in sizes],
        f"{mf['db_bytes_per_run'] / 1024:.1f} KB (db)" if mf else "")  # fmt: skip
    row("loose objects / packs", [f"{stores[s]['profile']['loose']} / {stores[s]['profile']['packs']}"
                                  for s in sizes])  # fmt: skip
    row("clone + fetch refs/vtrack/*", [fmt(stores[s]["clone_s"]) for s in sizes])
    row("fresh clone's first `vtrack ls` (index build)",
        [fmt3(stores[s]["first_command"]) for s in sizes])  # fmt: skip
    row("  its peak RSS", [f"{max(stores[s]['first_rss']) / 2**20:.0f} MB" for s in sizes])
    row("`search_runs` warm, 2 clauses + order", [fmt3(stores[s]["search"]) for s in sizes],
        fmt3(mf["search"]) if mf else "")  # fmt: skip
    row("`vtrack ls` (process)", [fmt3(stores[s]["ls"]) for s in sizes])
    row("`vtrack lineage` (process)", [fmt3(stores[s]["lineage"]) for s in sizes])
    if "history" in extra:
        row("metric history, 100,000 points", [fmt3(extra["history"])] + [""] * (len(sizes) - 1),
            fmt3(mf["history"]) if mf else "")  # fmt: skip
    for s in sizes:
        _report_git(s, stores[s]["git"])
    if "api_vs_bulk" in extra:
        print("\n## Bulk store vs public API (same runs)\n")
        print("| store | objects/run | bytes/run | packs | loose |\n|---|---|---|---|---|")
        for label, p in extra["api_vs_bulk"].items():
            print(f"| {label} | {p['objects/run']:.1f} | {p['bytes/run'] / 1024:.1f} KB | "
                  f"{p['packs']} | {p['loose']} |")  # fmt: skip
    if mf:
        print(
            f"\nMLflow: {mf['runs']:,} runs logged in {mf['create_s']:.0f} s "
            f"({mf['create_s'] / mf['runs'] * 1000:.0f} ms per run)."
        )


def _report_git(runs: int, table: dict[str, Any]) -> None:
    """The user's git at ``runs`` runs: median (min–max) per state, ratio to the anchor
    measured right before that state."""
    anchors, archived = table["anchors"], table["archive"]
    labels = list(anchors)
    n = len(anchors[labels[0]]["git status"])
    print(f"\n## The user's git at {runs:,} runs (median (min–max) of {n}; ratio to the clone"
          " without runs measured right before; its medians in the first column)\n")  # fmt: skip
    print("| command | without runs | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 2) + "|")
    for name in GIT_COMMANDS:
        by = table[name]
        base = " / ".join(fmt(statistics.median(anchors[lab][name])) for lab in labels)
        cells = []
        for lab in labels:
            ratio = statistics.median(by[lab]) / max(statistics.median(anchors[lab][name]), 1e-6)
            cells.append(f"{fmt3(by[lab])}, {ratio:.1f}×")
        print(f"| `{name}` | {base} | " + " | ".join(cells) + " |")
    if archived:
        print(f"\n`vtrack archive` of {runs:,} runs: {archived['seconds']:.1f} s, peak RSS "
              f"{archived['rss'] / 2**20:.0f} MB (the process and its git children)")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None,
                    help="store sizes to build (default 1000,10000; none with --store)")  # fmt: skip
    ap.add_argument("--store", type=Path, action="append", default=[],
                    help="measure this existing store (repeatable) instead of building")  # fmt: skip
    ap.add_argument("--mlflow-runs", type=int, default=1000, help="0 skips MLflow")
    ap.add_argument("--api-runs", type=int, default=200, help="0 skips the API/bulk check")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="vtrack-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    stores: dict[int, dict[str, Any]] = {}
    repos = []
    sizes = args.sizes if args.sizes is not None else ("" if args.store else "1000,10000")
    if sizes:
        for size in (int(s) for s in sizes.split(",") if s):
            repo = scale_build.make_repo(work / f"store-{size}")
            seconds = scale_build.build_bulk(repo, size)
            print(f"built {size:,} runs in {seconds:.0f} s", flush=True)
            repos.append(repo)
    repos += args.store
    for repo in repos:
        res = measure_store(repo, work, args.repeat)
        stores[res["profile"]["runs"]] = res
        print(f"measured {repo} ({res['profile']['runs']:,} runs), {_load()}", flush=True)
    extra: dict[str, Any] = {"history": metric_history(work, 5)}
    if args.api_runs:
        extra["api_vs_bulk"] = api_vs_bulk(work, args.api_runs)
    if args.mlflow_runs:
        extra["mlflow"] = mlflow_anchor(work, args.mlflow_runs, args.repeat)
        print(f"MLflow measured, {_load()}", flush=True)
    report(stores, extra)
    print(f"\n(work folder: {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
