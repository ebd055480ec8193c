"""Issue 4 figures, at the user level (``vtrack.log_artifact`` in a run, not the object store).

Reports, in one run of this script:

- logging a 1 GiB artifact: throughput of ``vtrack.log_artifact`` against a plain
  ``shutil.copyfile`` of the same file to the same disk (target >= 0.5x, medians of
  interleaved runs), plus copyfile followed by fsync since log_artifact makes its
  object durable;
- peak RSS growth of that ``log_artifact``, in a fresh subprocess (target <= 64 MB);
- store growth (bytes allocated under ``.git``) after the same 100 MB artifact is logged
  by 3 runs (target <= 1.05 x 100 MB), next to MLflow's default store doing the same;
- ``log_artifact`` of a 1 MB file: median (target <= 5 ms) for incompressible bytes and
  for text, next to MLflow 3.17's default store measured in the same process.

The object-store-level figures (put_file alone) are in ``bench_objects.py``.

Usage (an interpreter with mlflow==3.17.2 for the MLflow columns)::

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/bench_artifacts.py [--quick] [--dir DIR]

``--quick`` uses a 128 MiB file, a 20 MB file and fewer repetitions. Exits 1 if a target
is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    disk_usage,
    have_mlflow,
    make_repo,
    python_with_vtrack,
    write_random,
)

MiB = 1024 * 1024
MB = 1000 * 1000


def use_store(repo: Path) -> None:
    """Point the fluent API at ``repo`` with a fresh session."""
    from vtrack import fluent

    fluent._reset_for_tests()
    os.chdir(repo)
    fluent.set_tracking_uri(str(repo))


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(MiB)
        while f.readinto(buf):
            pass


def bench_throughput(work: Path, size: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per contender, interleaved, each starting from an empty destination."""
    import vtrack

    repo = make_repo(work / "tp-repo", 5)
    use_store(repo)
    src = work / "big.bin"
    write_random(src, size)
    dst = work / "copy.bin"
    objects = repo / ".git" / "vtrack" / "objects"

    def copy() -> None:
        shutil.copyfile(src, dst)

    def copy_fsync() -> None:
        shutil.copyfile(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def log() -> None:
        vtrack.log_artifact(src, artifact_path="big")

    runs: dict[str, list[float]] = {"copyfile": [], "copyfile+fsync": [], "log_artifact": []}
    warm(src)
    with vtrack.start_run():
        for _ in range(repeat):
            for name, fn in (
                ("copyfile", copy),
                ("copyfile+fsync", copy_fsync),
                ("log_artifact", log),
            ):
                dst.unlink(missing_ok=True)
                shutil.rmtree(objects, ignore_errors=True)
                os.sync()
                t = time.perf_counter()
                fn()
                runs[name].append(time.perf_counter() - t)
    dst.unlink(missing_ok=True)
    shutil.rmtree(objects, ignore_errors=True)
    return runs


def bench_rss(work: Path) -> int:
    """Peak RSS growth (bytes) of ``log_artifact`` of ``big.bin``, in a fresh subprocess."""
    repo = make_repo(work / "rss-repo", 5)
    code = textwrap.dedent(
        """
        import json, resource, sys, vtrack
        vtrack.set_tracking_uri(sys.argv[1])
        with vtrack.start_run():
            vtrack.log_text("warm up", "warm.txt")
            before = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
            vtrack.log_artifact(sys.argv[2])
            after = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        print(json.dumps({"growth_kib": after - before}))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(repo), str(work / "big.bin")],
        env=python_with_vtrack(),
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(repo, ignore_errors=True)
    return int(json.loads(res.stdout.strip().splitlines()[-1])["growth_kib"]) * 1024


def bench_dedup(work: Path, size: int, mlflow_too: bool) -> tuple[int, int | None]:
    """Store growth after 3 runs log the same ``size``-byte file: (vtrack, MLflow or None)."""
    import vtrack

    src = work / "dedup.bin"
    write_random(src, size)
    repo = make_repo(work / "dedup-repo", 5)
    use_store(repo)
    with vtrack.start_run():  # the store's own first-use files are not the artifact's cost
        vtrack.log_text("warm up", "warm.txt")
    before = disk_usage(repo / ".git")
    for _ in range(3):
        with vtrack.start_run():
            vtrack.log_artifact(src, artifact_path="data")
    grown = disk_usage(repo / ".git") - before
    m_grown = None
    if mlflow_too:
        import mlflow

        mdir = work / "mlflow-dedup"
        mdir.mkdir()
        with _in_dir(mdir):
            mlflow.set_tracking_uri(None)
            with mlflow.start_run():
                mlflow.log_text("warm up", "warm.txt")
            before = disk_usage(mdir)
            for _ in range(3):
                with mlflow.start_run():
                    mlflow.log_artifact(str(src), artifact_path="data")
            m_grown = disk_usage(mdir) - before
    src.unlink()
    return grown, m_grown


class _in_dir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc: object) -> None:
        os.chdir(self.old)


def _files(folder: Path, kind: str, n: int) -> list[Path]:
    """``n`` distinct 1 MB files: random bytes, or CSV-like text."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "random":
        base = bytearray(os.urandom(MB))
    else:
        rows = "".join(
            f"{i},{1 / (i + 1):.9f},{i * 0.37:.4f},label_{i % 13}\n" for i in range(40000)
        )
        base = bytearray(rows.encode()[:MB])
    out = []
    for i in range(n):
        data = bytearray(base)
        data[:16] = os.urandom(8).hex().encode()  # distinct content: no deduplication
        p = folder / f"{kind}-{i}.bin"
        p.write_bytes(data)
        out.append(p)
    return out


def bench_1mb(work: Path, n: int, mlflow_too: bool) -> dict[str, float]:
    """Median milliseconds of logging a distinct 1 MB file, per contender."""
    import vtrack

    repo = make_repo(work / "small-repo", 5)
    use_store(repo)
    out: dict[str, float] = {}
    for kind in ("random", "text"):
        files = _files(work / "files", kind, n)  # outside the worktree: not in the snapshot
        times = []
        with vtrack.start_run():
            vtrack.log_text("warm up", "warm.txt")
            for p in files:
                t = time.perf_counter()
                vtrack.log_artifact(p)
                times.append(time.perf_counter() - t)
        out[f"vtrack {kind}"] = statistics.median(times) * 1000
    if mlflow_too:
        import mlflow

        mdir = work / "mlflow-small"
        mdir.mkdir()
        with _in_dir(mdir):
            mlflow.set_tracking_uri(None)
            print(f"   (MLflow's default tracking URI here: {mlflow.get_tracking_uri()})")
            for kind in ("random", "text"):
                files = _files(work / "files", kind, n)
                times = []
                with mlflow.start_run():
                    mlflow.log_text("warm up", "warm.txt")
                    for p in files:
                        t = time.perf_counter()
                        mlflow.log_artifact(str(p))
                        times.append(time.perf_counter() - t)
                out[f"mlflow {kind}"] = statistics.median(times) * 1000
    shutil.rmtree(work / "files", ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 MiB and 20 MB files, fewer runs")
    ap.add_argument("--dir", type=Path, default=None, help="working directory (a disk)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per contender (big file)")
    args = ap.parse_args(argv)
    q = args.quick
    big = 128 * MiB if q else 1024 * MiB
    dedup = 20 * MB if q else 100 * MB
    repeat = args.repeat or (3 if q else 7)
    n_small = 20 if q else 60
    mlf = have_mlflow()
    if mlf:
        import logging

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    work = Path(tempfile.mkdtemp(prefix="bench-artifacts-", dir=args.dir))
    ok = True
    here = os.getcwd()
    try:
        runs = bench_throughput(work, big, repeat)
        t = {k: statistics.median(v) for k, v in runs.items()}
        best = {k: min(v) for k, v in runs.items()}
        print(f"1. logging a {big / MiB:.0f} MiB artifact ({work}), {repeat} interleaved runs each")
        print(f"   {'':<15} {'median':>8} {'MiB/s':>7} {'best':>8} {'MiB/s':>7}")
        for name in t:
            print(
                f"   {name:<15} {t[name]:7.3f}s {big / MiB / t[name]:7.0f} "
                f"{best[name]:7.3f}s {big / MiB / best[name]:7.0f}"
            )
        ratio = t["copyfile"] / t["log_artifact"]
        verdict = "ok" if ratio >= 0.5 else "MISSED"
        print(
            f"   log_artifact / copyfile throughput: {ratio:.2f}x median, "
            f"{best['copyfile'] / best['log_artifact']:.2f}x best (target >= 0.5x) {verdict}"
        )
        print(
            f"   log_artifact / (copyfile+fsync):    "
            f"{t['copyfile+fsync'] / t['log_artifact']:.2f}x median"
        )
        ok &= ratio >= 0.5

        growth = bench_rss(work)
        verdict = "ok" if growth <= 64 * MB else "MISSED"
        print(
            f"2. peak RSS growth of log_artifact ({big / MiB:.0f} MiB, subprocess): "
            f"{growth / MB:.1f} MB (target <= 64 MB) {verdict}"
        )
        ok &= growth <= 64 * MB
        (work / "big.bin").unlink()

        grown, m_grown = bench_dedup(work, dedup, mlf)
        factor = grown / dedup
        verdict = "ok" if factor <= 1.05 else "MISSED"
        m_text = (
            f"; MLflow default store: {m_grown / MB:.1f} MB = {m_grown / dedup:.2f}x"
            if m_grown
            else ""
        )
        print(
            f"3. store growth, same {dedup / MB:.0f} MB artifact in 3 runs: {grown / MB:.1f} MB = "
            f"{factor:.3f}x (target <= 1.05x) {verdict}{m_text}"
        )
        ok &= factor <= 1.05

        small = bench_1mb(work, n_small, mlf)
        v = small["vtrack random"]
        verdict = "ok" if v <= 5.0 else "MISSED"
        print(
            f"4. log_artifact of a 1 MB file, median of {n_small} (target <= 5 ms on random bytes):"
        )
        print(f"   vtrack: random {v:.2f} ms {verdict}, text {small['vtrack text']:.2f} ms")
        if mlf:
            print(
                f"   MLflow 3.17 default store: "
                f"random {small['mlflow random']:.2f} ms, text {small['mlflow text']:.2f} ms"
            )
        ok &= v <= 5.0
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
