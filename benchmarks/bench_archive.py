"""The user's own git next to N runs, before and after ``vtrack archive`` (issue 15 point 7).

One store of N runs (bulk-built by :mod:`scale_build`: 20 params, 10 metrics x 100
steps, 2 small artifacts each), measured in three states, medians of ``--repeat`` with
min and max, each as a ratio to the first:

- **without runs**: a clone of the same branch (the anchor);
- **before**: the store as vtrack leaves it without archiving (run refs packed, a
  commit-graph: :func:`vtrack.store.maintain.compact`), remote a mirror of it;
- **after**: the same store after ``vtrack archive`` (plus the same ref packing),
  remote a mirror of that.

Commands: ``git fetch`` (nothing new) from a bare remote holding the runs, ``git push``
of a new branch there, ``git branch -a``, ``git for-each-ref``, ``git log --all
--oneline`` (and its line count), ``git log --exclude='refs/vtrack/*' --all --oneline``,
``git status``; then ``vtrack ls`` (warm), ``vtrack pull`` of everything into a fresh
clone of the remote and the first ``vtrack ls`` after it (which builds the index), and
the time ``vtrack archive`` itself took.

Usage::

    nice -n 10 python benchmarks/bench_archive.py [--runs 10000] [--repeat 3] [--dir DIR]
        [--store PATH]

``--store`` uses (a copy of) a store built by ``scale_build.py`` instead of building.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale_build  # noqa: E402
from bench_scale import env, fmt, spread, vtrack_cli  # noqa: E402

GIT = {
    "git fetch (nothing new)": ["fetch", "-q", "bench"],
    "git push of a branch": None,
    "git branch -a": ["branch", "-a"],
    "git for-each-ref": ["for-each-ref"],
    "git log --all --oneline": ["log", "--all", "--oneline"],
    "git log --exclude='refs/vtrack/*' --all --oneline": ["log", "--exclude=refs/vtrack/*",
                                                          "--all", "--oneline"],
    "git status": ["status", "--short"],
}  # fmt: skip


def run(cmd: list[str], cwd: Path) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{cmd} failed in {cwd}: {res.stderr.decode(errors='replace')[-500:]}")
    return seconds, res.stdout


def prepare_state(repo: Path, work: Path, label: str) -> Path:
    """Pack refs and write the commit-graph the way vtrack does; mirror to a bare remote."""
    from vtrack.client import TrackingClient
    from vtrack.store import maintain

    maintain.compact(TrackingClient(str(repo)).repo.store)
    bare = work / f"remote-{label}.git"
    shutil.rmtree(bare, ignore_errors=True)
    scale_build.git(work, "clone", "-q", "--mirror", str(repo), str(bare))
    subprocess.run(["git", "remote", "remove", "bench"], cwd=repo, capture_output=True)
    scale_build.git(repo, "remote", "add", "bench", str(bare))
    scale_build.git(repo, "fetch", "-q", "bench")
    return bare


def git_table(where: Path, n_repeat: int, label: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, args in GIT.items():
        times, lines = [], 0
        for k in range(n_repeat):
            if args is None:
                cmd = [
                    "git",
                    "push",
                    "-q",
                    "bench",
                    f"HEAD:refs/heads/b-{label}-{k}-{time.time_ns()}",
                ]
            else:
                cmd = ["git", *args]
            seconds, stdout = run(cmd, where)
            times.append(seconds)
            lines = stdout.count(b"\n")
        out[name] = {"times": times, "lines": lines}
    return out


def vtrack_table(repo: Path, bare: Path, work: Path, n_repeat: int, label: str
                 ) -> dict[str, dict[str, Any]]:  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    run(vtrack_cli("ls"), repo)  # index warm
    out["vtrack ls (warm)"] = {"times": [run(vtrack_cli("ls"), repo)[0] for _ in range(n_repeat)]}
    pulls, firsts, clones, runs = [], [], [], 0
    for k in range(n_repeat):
        fresh = work / f"fresh-{label}-{k}"
        shutil.rmtree(fresh, ignore_errors=True)
        clones.append(run(["git", "clone", "-q", str(bare), str(fresh)], work)[0])
        pulls.append(run(vtrack_cli("pull"), fresh)[0])
        firsts.append(run(vtrack_cli("ls"), fresh)[0])  # the default page, as users see it
        if k == 0:  # (every run listed as JSON is the lead's figure: not timed here)
            import json

            runs = len(json.loads(run(vtrack_cli("ls", "--json", "--limit", "0"), fresh)[1]))
        shutil.rmtree(fresh, ignore_errors=True)
    out["git clone of the remote (before the pull)"] = {"times": clones}
    out["vtrack pull into a fresh clone"] = {"times": pulls}
    out["vtrack ls right after the pull"] = {"times": firsts, "lines": runs}
    return out


def interleaved(work: Path, n_repeat: int, with_pull: bool) -> None:
    """The git table again from an earlier run's ``--dir``, the three states measured
    in turn each round (so that the machine's load falls on all three alike): the
    archived store itself, a clone of the ``before`` mirror with its run refs fetched
    in and packed as vtrack packs them, and the clone without runs."""
    from vtrack.client import TrackingClient
    from vtrack.store import maintain

    after, plain = work / "store", work / "noruns"
    before = work / "before-again"
    if not before.exists():
        scale_build.git(work, "clone", "-q", str(work / "remote-before.git"), str(before))
        scale_build.git(before, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
        maintain.compact(TrackingClient(str(before)).repo.store)
        scale_build.git(before, "remote", "add", "bench", str(work / "remote-before.git"))
        scale_build.git(before, "fetch", "-q", "bench")
    scale_build.git(plain, "remote", "set-url", "bench", str(work / "remote-after.git"))
    states = {"without runs": plain, "before": before, "after": after}
    results: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in states}
    results["without runs (after)"] = results["without runs"]
    for k in range(n_repeat):
        for label, where in states.items():
            for name, entry in git_table(where, 1, f"{label[:5]}{k}".replace(" ", "")).items():
                slot = results[label].setdefault(name, {"times": [], "lines": entry["lines"]})
                slot["times"] += entry["times"]
    if with_pull:
        remotes = {"before": work / "remote-before.git", "after": work / "remote-after.git"}
        for k in range(n_repeat):
            for label in ("before", "after"):
                got = vtrack_table(states[label], remotes[label], work, 1, f"{label}{k}")
                for name, entry in got.items():
                    slot = results[label].setdefault(name, {"times": []})
                    slot["times"] += entry["times"]
                    if "lines" in entry and k == 0:
                        slot["lines"] = entry["lines"]
    n = len(scale_build.git(before, "for-each-ref", "--format=x", "refs/vtrack/runs/").splitlines())
    batches = len(scale_build.git(after, "for-each-ref", "--format=x",
                                  "refs/vtrack/archive/").splitlines())  # fmt: skip
    report(n, batches, float("nan"), results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--no-pull", action="store_true", help="skip the vtrack pull figures")
    ap.add_argument(
        "--interleaved",
        action="store_true",
        help="measure the git table again in an earlier run's --dir, states in turn",
    )
    args = ap.parse_args()
    if args.interleaved:
        if args.dir is None:
            raise SystemExit("--interleaved needs --dir of an earlier run")
        interleaved(args.dir, args.repeat, not args.no_pull)
        return 0
    work = args.dir or Path(tempfile.mkdtemp(prefix="vtrack-bench-archive-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "store"
    t0 = time.perf_counter()
    if args.store is not None:
        if not repo.exists():
            shutil.copytree(args.store, repo, symlinks=True)
    elif not repo.exists():
        scale_build.make_repo(repo)
        scale_build.build_bulk(repo, args.runs)
    print(f"store: {repo} ({time.perf_counter() - t0:.0f} s to build)", flush=True)
    n = len(scale_build.git(repo, "for-each-ref", "--format=x", "refs/vtrack/runs/").splitlines())
    results: dict[str, dict[str, dict[str, Any]]] = {}

    plain = work / "noruns"
    shutil.rmtree(plain, ignore_errors=True)
    bare = prepare_state(repo, work, "before")
    scale_build.git(work, "clone", "-q", "--single-branch", str(bare), str(plain))
    scale_build.git(plain, "remote", "add", "bench", str(bare))
    results["without runs"] = git_table(plain, args.repeat, "plain")
    results["before"] = git_table(repo, args.repeat, "before")
    if not args.no_pull:
        results["before"] |= vtrack_table(repo, bare, work, args.repeat, "before")
    print("before: measured", flush=True)

    t0 = time.perf_counter()
    archived = run(vtrack_cli("archive", "--json"), repo)
    archive_s = time.perf_counter() - t0
    bare = prepare_state(repo, work, "after")
    scale_build.git(plain, "remote", "set-url", "bench", str(bare))
    results["without runs (after)"] = git_table(plain, args.repeat, "plain2")
    results["after"] = git_table(repo, args.repeat, "after")
    if not args.no_pull:
        results["after"] |= vtrack_table(repo, bare, work, args.repeat, "after")
    batches = len(scale_build.git(repo, "for-each-ref", "--format=x",
                                  "refs/vtrack/archive/").splitlines())  # fmt: skip
    del archived
    report(n, batches, archive_s, results)
    return 0


def _cell(entry: dict[str, Any] | None, anchor: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    lo, mid, hi = spread(entry["times"])
    text = f"{fmt(mid)} ({fmt(lo)}–{fmt(hi)})"
    if anchor is not None:
        text += f", {mid / statistics_median(anchor['times']):.1f}×"
    if "lines" in entry and "log" in entry.get("_name", ""):
        text += f", {entry['lines']} lines"
    return text


def statistics_median(values: list[float]) -> float:
    import statistics

    return max(statistics.median(values), 1e-6)


def report(n: int, batches: int, archive_s: float, results: dict[str, Any]) -> None:
    print(f"\n{n} runs; vtrack archive took {archive_s:.1f} s and made {batches} batch ref(s)\n")
    print("| command | without runs | before (refs packed) | after `vtrack archive` |")
    print("|---|---|---|---|")
    names = list(GIT) + ["vtrack ls (warm)", "git clone of the remote (before the pull)",
                         "vtrack pull into a fresh clone",
                         "vtrack ls right after the pull"]  # fmt: skip
    for name in names:
        if name not in results["without runs"] and name not in results["before"]:
            continue
        base = results["without runs"].get(name)
        base2 = results["without runs (after)"].get(name)
        cells = []
        for state, anchor in (("before", base), ("after", base2)):
            entry = results[state].get(name)
            if entry is not None:
                entry["_name"] = name
            cells.append(_cell(entry, anchor))
        if base is not None:
            base["_name"] = name
        anchor_cell = _cell(base, None)
        if base2 is not None and base is not None:
            anchor_cell += f" / {fmt(statistics_median(base2['times']))}"
        print(f"| {name} | {anchor_cell} | {cells[0]} | {cells[1]} |")
        sys.stdout.flush()
    for state in ("before", "after"):
        entry = results[state].get("vtrack ls right after the pull")
        if entry is not None:
            print(f"{state}: the fresh clone listed {entry.get('lines')} runs")


if __name__ == "__main__":
    raise SystemExit(main())
