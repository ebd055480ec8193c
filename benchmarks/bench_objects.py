"""Benchmark the large-object store against a plain copy on the same disk.

Reports, in one run:

- throughput of ``ObjectStore.put_file`` for a 1 GiB file against ``shutil.copyfile``
  of the same file to the same disk (and copyfile followed by fsync, since put_file
  makes its object durable): target put/copyfile >= 0.5x;
- peak RSS growth of a put, measured in a fresh subprocess: target <= 64 MB;
- store growth after putting the same 100 MB file 3 times: target <= 1.05 x 100 MB.

Usage: ``python benchmarks/bench_objects.py [--quick] [--dir DIR] [--repeat N]``
(``--quick`` uses 128 MiB and 20 MB files). Exits 1 if a target is missed.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vtrack.store.objects import ObjectStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import disk_usage, write_random  # noqa: E402

MiB = 1024 * 1024
MB = 1000 * 1000


def empty_store(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def time_it(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_throughput(work: Path, size: int, repeat: int) -> dict[str, list[float]]:
    src = work / "src.bin"
    write_random(src, size)
    dst = work / "copy.bin"
    store_root = work / "objects"

    def copy() -> None:
        shutil.copyfile(src, dst)

    def copy_fsync() -> None:
        shutil.copyfile(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put() -> None:
        ObjectStore.local(store_root).put_file(src)

    runs: dict[str, list[float]] = {"copyfile": [], "copyfile+fsync": [], "put_file": []}
    with open(src, "rb", buffering=0) as f:  # warm the page cache for every contender alike
        buf = bytearray(MiB)
        while f.readinto(buf):
            pass
    for _ in range(repeat):
        for name, fn in (("copyfile", copy), ("copyfile+fsync", copy_fsync), ("put_file", put)):
            dst.unlink(missing_ok=True)
            empty_store(store_root)
            os.sync()
            runs[name].append(time_it(fn))
    dst.unlink(missing_ok=True)
    empty_store(store_root)
    src.unlink()
    return runs


def bench_rss(work: Path, size: int) -> int:
    """Peak RSS growth (bytes) of one put_file of a ``size``-byte file, in a subprocess."""
    src = work / "rss.bin"
    write_random(src, size)
    code = textwrap.dedent(
        """
        import json, resource, sys
        from vtrack.store.objects import ObjectStore
        store = ObjectStore.local(sys.argv[1])
        before = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        store.put_file(sys.argv[2])
        after = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        print(json.dumps({"growth_kib": after - before}))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        res = subprocess.run(
            [sys.executable, "-c", code, str(work / "rss-objects"), str(src)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        src.unlink()
        empty_store(work / "rss-objects")
    return json.loads(res.stdout)["growth_kib"] * 1024


def bench_dedup(work: Path, size: int, times: int = 3) -> int:
    """Store growth (bytes on disk) after putting the same file ``times`` times."""
    src = work / "dedup.bin"
    write_random(src, size)
    root = work / "dedup-objects"
    store = ObjectStore.local(root)
    before = disk_usage(root) if root.exists() else 0
    for _ in range(times):
        store.put_file(src)
    growth = disk_usage(root) - before
    src.unlink()
    empty_store(root)
    return growth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 MiB and 20 MB files")
    ap.add_argument("--dir", type=Path, default=None, help="working directory (a disk)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per contender")
    args = ap.parse_args(argv)

    big = 128 * MiB if args.quick else 1024 * MiB
    dedup = 20 * MB if args.quick else 100 * MB
    work = Path(tempfile.mkdtemp(prefix="bench-objects-", dir=args.dir))
    ok = True
    try:
        runs = bench_throughput(work, big, args.repeat)
        t = {k: statistics.median(v) for k, v in runs.items()}
        best = {k: min(v) for k, v in runs.items()}
        print(f"file: {big / MiB:.0f} MiB in {work}, {args.repeat} interleaved runs each")
        print(f"  {'':<15} {'median':>8} {'MiB/s':>7} {'best':>8} {'MiB/s':>7}")
        for name in t:
            print(
                f"  {name:<15} {t[name]:7.3f}s {big / MiB / t[name]:7.0f} "
                f"{best[name]:7.3f}s {big / MiB / best[name]:7.0f}"
            )
        ratio = t["copyfile"] / t["put_file"]
        ratio_best = best["copyfile"] / best["put_file"]
        verdict = "ok" if ratio >= 0.5 else "MISSED"
        print(
            f"  put_file / copyfile throughput: {ratio:.2f}x median, {ratio_best:.2f}x best "
            f"(target >= 0.5x on medians) {verdict}"
        )
        print(
            f"  put_file / (copyfile+fsync):    {t['copyfile+fsync'] / t['put_file']:.2f}x median, "
            f"{best['copyfile+fsync'] / best['put_file']:.2f}x best"
        )
        ok &= ratio >= 0.5

        growth = bench_rss(work, big)
        verdict = "ok" if growth <= 64 * MB else "MISSED"
        print(f"peak RSS growth of put_file: {growth / MB:.1f} MB (target <= 64 MB) {verdict}")
        ok &= growth <= 64 * MB

        grown = bench_dedup(work, dedup)
        factor = grown / dedup
        verdict = "ok" if factor <= 1.05 else "MISSED"
        print(
            f"store growth, same {dedup / MB:.0f} MB file put 3 times: {grown / MB:.1f} MB "
            f"= {factor:.3f}x (target <= 1.05x) {verdict}"
        )
        ok &= factor <= 1.05
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
