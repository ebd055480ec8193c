"""``.git`` bytes per run (issue 15, point 1), beside what git itself achieves for the same runs.

Builds stores of runs shaped like the issue's (20 params, 10 metrics x 100 steps, 2 small
artifacts, one dataset input; :mod:`scale_build`): through the public API (one run at a
time, vtrack's own end-of-run merges and roll-ups, no maintenance command), the same with
10 checkpoints a run (what the background checkpoint every 30 s gives a run of 5 minutes:
each one leaves a superseded commit, trees and history tails behind), and by the bulk
path. For each it prints:

- ``.git`` apparent growth per run (every file under ``.git`` minus the code repository's
  own, as ``bench_scale.py`` measures it), split into pack data, pack indexes, refs and
  the rest (commit-graph, vtrack's caches, minus the code repository's ``.git``);
  objects per run, loose objects, packs, garbage (``git count-objects -v``);
- pack bytes per run by part of the run record (metric histories, ``summary.json``, the
  other record files, trees, commits, and superseded checkpoints no ref reaches);
- whether the user's ``git gc --auto`` stays silent and ``git fsck --full`` is clean;
- **the anchor**: a copy of the same store fully repacked by
  ``git repack -a -d -f --window=250 --depth=50`` (git's best deltas; it also drops the
  unreachable superseded checkpoints), and the ratio vtrack / anchor.

Usage::

    nice -n 5 python benchmarks/bench_bytes.py [--api-runs 200] [--checkpoint-runs 50]
        [--bulk-runs 1000] [--repeat 1] [--store PATH ...] [--dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
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

import scale_build  # noqa: E402

#: Checkpoints of each run of the third store (one every 10 of its 100 steps).
CHECKPOINTS = 10
LABELS = {"api": "public API", "checkpoints": f"public API, {CHECKPOINTS} checkpoints a run",
          "bulk": "bulk path (scale_build.py)"}  # fmt: skip
PARTS = ("metric histories", "summary.json", "other record files", "trees", "commits",
         "superseded (unreachable)")  # fmt: skip


def git(repo: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def base_bytes(work: Path) -> int:
    """``.git`` bytes of the code repository before any run (the same for every store)."""
    probe = work / "base-probe"
    shutil.rmtree(probe, ignore_errors=True)
    scale_build.make_repo(probe)
    return sum(f.stat().st_size for f in (probe / ".git").rglob("*") if f.is_file())


def files(repo: Path) -> dict[str, int]:
    """Apparent bytes of ``.git`` by kind of file."""
    out: dict[str, int] = collections.Counter()
    for f in (repo / ".git").rglob("*"):
        if not f.is_file():
            continue
        rel = f.relative_to(repo / ".git").as_posix()
        if rel.endswith(".pack"):
            kind = "pack data"
        elif rel.endswith((".idx", ".rev", ".mtimes", ".keep")):
            kind = "pack indexes"
        elif rel == "packed-refs" or rel.startswith("refs/"):
            kind = "refs"
        else:
            kind = "other"  # commit-graph, vtrack's caches; and the code repository's files
        out[kind] += f.stat().st_size
    return out


def parts(repo: Path) -> dict[str, int]:
    """Pack bytes (``objectsize:disk``) by part of the run record."""
    sizes = {}
    for line in git(repo, "cat-file", "--batch-all-objects",
                    "--batch-check=%(objectname) %(objecttype) %(objectsize:disk)").splitlines():  # fmt: skip
        sha, kind, disk = line.split()
        sizes[sha] = (kind, int(disk))
    paths = {}
    for line in git(repo, "rev-list", "--objects", "--all").splitlines():
        sha, _, path = line.partition(" ")
        paths[sha] = path
    out: dict[str, int] = collections.Counter()
    for sha, (kind, disk) in sizes.items():
        path = paths.get(sha)
        if path is None:
            part = "superseded (unreachable)"
        elif kind == "commit":
            part = "commits"
        elif kind == "tree":
            part = "trees"
        elif path.startswith(".vtrack/metrics/") and path.endswith(".tsv"):
            part = "metric histories"
        elif path == ".vtrack/summary.json":
            part = "summary.json"
        else:
            part = "other record files"
        out[part] += disk
    return out


def measure(repo: Path, base: int) -> dict[str, Any]:
    profile = scale_build.store_profile(repo)
    runs = profile["runs"]
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    return {
        "runs": runs, "per_run": (profile["git_bytes"] - base) / runs,
        "objects/run": profile["objects"] / runs, "loose": profile["loose"],
        "packs": profile["packs"], "garbage": int(counts["garbage"]),
        "files": {k: (v - base * (k == "other")) / runs for k, v in files(repo).items()},
        "parts": {k: v / runs for k, v in parts(repo).items()},
    }  # fmt: skip


def anchor(repo: Path, work: Path, base: int) -> tuple[dict[str, Any], float]:
    """The same store fully repacked by git (a copy); and the seconds the repack took."""
    copy = work / f"{repo.name}-git-best"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo, copy, symlinks=True)
    for keep in (copy / ".git" / "objects" / "pack").glob("*.keep"):
        keep.unlink()
    t0 = time.perf_counter()
    git(copy, "-c", "repack.writeBitmaps=false", "-c", "repack.updateServerInfo=false",
        "repack", "-a", "-d", "-f", "-q", "--window=250", "--depth=50")  # fmt: skip
    seconds = time.perf_counter() - t0
    (copy / ".git" / "info" / "refs").unlink(missing_ok=True)  # as vtrack's (not written)
    return measure(copy, base), seconds


def checks(repo: Path) -> dict[str, bool]:
    """``git gc --auto`` silent (and changing nothing), ``git fsck --full`` clean."""
    gc = subprocess.run(["git", "-c", "gc.autoDetach=false", "gc", "--auto"], cwd=repo,
                        capture_output=True, text=True)  # fmt: skip
    fsck = subprocess.run(["git", "fsck", "--full", "--no-progress"], cwd=repo,
                          capture_output=True, text=True)  # fmt: skip
    return {"gc --auto silent": gc.returncode == 0 and not (gc.stdout + gc.stderr).strip(),
            "fsck clean": fsck.returncode == 0 and not fsck.stderr.strip()}  # fmt: skip


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0] / 1024:.2f} KB"
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{mid / 1024:.2f} KB ({lo / 1024:.2f}–{hi / 1024:.2f})"


def report(label: str, ours: list[dict[str, Any]], best: dict[str, Any], best_s: float,
           ok: dict[str, bool]) -> None:  # fmt: skip
    m = ours[-1]
    per_run = [o["per_run"] for o in ours]
    print(f"\n## {label}: {m['runs']:,} runs, {len(ours)} build(s)\n")
    print("| figure | vtrack (no maintenance) | git's best repack (anchor) | ratio |")
    print("|---|---|---|---|")
    ratio = statistics.median(per_run) / best["per_run"]
    print(f"| `.git` bytes per run | {spread(per_run)} | {best['per_run'] / 1024:.2f} KB "
          f"({best_s:.0f} s to repack) | {ratio:.3f} |")  # fmt: skip
    for kind in ("pack data", "pack indexes", "refs", "other"):
        a, b = m["files"].get(kind, 0), best["files"].get(kind, 0)
        print(f"| {kind} per run | {a:,.0f} B | {b:,.0f} B | |")
    for part in PARTS:
        a, b = m["parts"].get(part, 0), best["parts"].get(part, 0)
        print(f"| &nbsp;&nbsp;{part} | {a:,.0f} B | {b:,.0f} B | |")
    print(f"| objects per run | {m['objects/run']:.1f} | {best['objects/run']:.1f} | |")
    print(f"| loose objects / packs / garbage | {m['loose']} / {m['packs']} / {m['garbage']} | "
          f"{best['loose']} / {best['packs']} / {best['garbage']} | |")  # fmt: skip
    print("| " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in ok.items()) + " | | | |")


def build(kind: str, work: Path, n: int, k: int) -> Path:
    repo = scale_build.make_repo(work / f"{kind}-{n}-{k}")
    cwd = os.getcwd()
    try:
        if kind == "bulk":
            seconds = scale_build.build_bulk(repo, n)
        else:
            seconds = scale_build.build_api(repo, n, checkpoints=CHECKPOINTS * (kind != "api"))
    finally:
        os.chdir(cwd)
    print(f"built {n:,} runs ({kind}) in {seconds:.0f} s", flush=True)
    return repo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api-runs", type=int, default=200, help="0 skips the API store")
    ap.add_argument("--checkpoint-runs", type=int, default=50,
                    help=f"runs with {CHECKPOINTS} checkpoints each; 0 skips them")  # fmt: skip
    ap.add_argument("--bulk-runs", type=int, default=1000, help="0 skips the bulk store")
    ap.add_argument("--repeat", type=int, default=1, help="builds of each store")
    ap.add_argument("--store", type=Path, action="append", default=[],
                    help="measure this existing store (repeatable) instead of building")  # fmt: skip
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="vtrack-bytes-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    base = base_bytes(work)
    groups: list[tuple[str, list[Path]]] = [(f"store {p}", [p.resolve()]) for p in args.store]
    if not args.store:
        for kind, n in (("api", args.api_runs), ("checkpoints", args.checkpoint_runs),
                        ("bulk", args.bulk_runs)):  # fmt: skip
            if n:
                groups.append((LABELS[kind], [build(kind, work, n, k) for k in range(args.repeat)]))
    for label, repos in groups:
        ours = [measure(r, base) for r in repos]
        best, best_s = anchor(repos[-1], work, base)
        report(label, ours, best, best_s, checks(repos[-1]))
    print(f"\n(work folder: {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
