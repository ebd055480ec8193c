"""Provenance at scale: ``vtrack lineage`` over 10,000 runs and ``vtrack audit`` of 10,000 files.

    python benchmarks/bench_provenance.py            # 10,000 runs, 10,000-file folder
    python benchmarks/bench_provenance.py --quick    # 1,000 runs, 2,000 files

Figures (issue 5), each as a whole ``vtrack`` process (wall time, median of
``--rounds``), the way a person or a script runs it:

- ``vtrack lineage PATH|DIGEST --json`` over 10,000 runs with the index warm: target
  <= 300 ms. Targets: a file inside a folder that 1 run in 100 logged, a file every
  run logged, a digest, a file no run logged. The first command after the runs were
  written (the index reads every run and its manifests) is reported too.
- ``vtrack audit RUN`` of a run whose input is an unchanged 10,000-file folder, with a
  warm stat cache: target <= 0.5 s. The same audit with an empty stat cache (every file
  hashed) is compared with hashing the same bytes as one stream (in-process, both), and
  with a plain ``open``/``read``/``close`` of every file: the floor for a cold audit.

Runs: for each of 100 "shard" folders (20 files each) one run is made through the
normal API (``log_input`` of the shard folder and of one CSV file every run reads);
the other runs are written in bulk through the real store code (``RecordState`` with
those runs' ``inputs.yaml`` entries and manifest blobs, ``Store.write_run_commit``, a
ref), so every record is what the API writes. Refs are packed, as ``git gc`` would.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["VTRACK_CAPTURE_CODE"] = "0"  # bulk runs need no code snapshot each

from _common import git, in_forked_workers  # noqa: E402

from vtrack import provenance  # noqa: E402
from vtrack.client import TrackingClient  # noqa: E402
from vtrack.provenance.drift import check_input  # noqa: E402
from vtrack.statcache import RACY_MARGIN_NS, NoStatCache, hash_regular_file  # noqa: E402
from vtrack.store import refs as refnames  # noqa: E402
from vtrack.store.gitobj import BLOB_MODE  # noqa: E402
from vtrack.store.record import RecordState  # noqa: E402
from vtrack.store.writer import now_ms  # noqa: E402

SHARDS = 100
FILES_PER_SHARD = 20
TARGET_LINEAGE_S = 0.300
TARGET_AUDIT_WARM_S = 0.5


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    return path


#: Where the ``vtrack`` processes keep their bytecode (set in :func:`main`): an installed
#: vtrack has its ``.pyc`` files, so the processes measured get them too, outside the checkout.
PYCACHE: Path | None = None


def vtrack_cmd(repo: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one ``vtrack ARGS`` process (the console script when installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if PYCACHE is not None:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    script = Path(sys.executable).parent / "vtrack"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "vtrack"]
    t0 = time.perf_counter()
    res = subprocess.run([*cmd, *args], cwd=repo, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, res


def median_of(fn: Callable[[], float], rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


# --- lineage --------------------------------------------------------------------------------


class BulkRuns:
    """Template runs through the API, then copies of their records written in bulk."""

    def __init__(self, client: TrackingClient, repo: Path) -> None:
        self.client = client
        self.store = client.store
        data = repo / "data"
        (data).mkdir()
        (data / "common.csv").write_text(
            "id,label\n" + "".join(f"{i},{i % 3}\n" for i in range(500))
        )
        self.templates: list[tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]] = []
        for s in range(SHARDS):
            shard = data / f"shard-{s:03d}"
            shard.mkdir()
            for f in range(FILES_PER_SHARD):
                (shard / f"part-{f:02d}.bin").write_bytes(os.urandom(64) + bytes([s, f]))
            run = client.create_run(run_name=f"template-{s}")
            rid = run.info.run_id
            client.log_input(rid, shard, name="shard", context="training")
            client.log_input(rid, data / "common.csv", name="labels", context="training")
            client.set_terminated(rid)
            state = client.store.read_run_state(rid)[1]
            manifests = {}
            for e in state.inputs:
                if e.get("manifest"):
                    found = self.store.objects.tree_lookup(
                        state.extra["inputs"][1], e["manifest"].split("/", 1)[1]
                    )
                    manifests[e["manifest"]] = found[1]  # type: ignore[index]
            self.templates.append((dict(state.info), [dict(e) for e in state.inputs], manifests))
        _, self.code, self.parent = self.store.read_run_commit(self.store.run_tip(rid))  # type: ignore[arg-type]
        self.start = now_ms()

    def write(self, count: int, workers: int = os.cpu_count() or 1) -> None:
        """Write ``count`` more runs in ``workers`` forked processes."""
        in_forked_workers(self._write, 0, count, workers)

    def _write(self, indexes: range) -> None:
        for i in indexes:
            info, inputs, manifests = self.templates[i % SHARDS]
            state = RecordState(self.store.objects)
            start = self.start + i * 1000
            state.info = dict(
                info,
                id=uuid.uuid4().hex,
                name=f"run-{i}",
                start_time=start,
                end_time=start + 900,
                status="FINISHED",
            )
            state.inputs = [dict(e) for e in inputs]
            for path, sha in manifests.items():
                state.add_file(path, BLOB_MODE, sha)
            sha = self.store.write_run_commit(state, self.code, self.parent)
            self.store.refs.cas(refnames.run_ref(state.info["id"]), None, sha, fsync=False)


def bench_lineage(base: Path, n_runs: int, rounds: int) -> list[tuple[str, str, str, str]]:
    repo = make_repo(base / "lineage")
    os.chdir(repo)
    client = TrackingClient(str(repo))
    t0 = time.perf_counter()
    bulk = BulkRuns(client, repo)
    t_templates = time.perf_counter() - t0
    t0 = time.perf_counter()
    bulk.write(n_runs - SHARDS)
    t_bulk = time.perf_counter() - t0
    git(repo, "pack-refs", "--all")
    time.sleep(2.2)  # let the ref storage settle, as it is between a person's commands

    shard_file = repo / "data" / "shard-007" / "part-03.bin"
    common = repo / "data" / "common.csv"
    digest = hash_regular_file(str(shard_file))[0]
    targets = [
        ("file in 1 of 100 shard folders", str(shard_file), n_runs // SHARDS),
        ("file every run read", str(common), n_runs),
        ("digest of the shard file", digest, n_runs // SHARDS),
        ("file no run read", str(repo / "train.py"), 0),
    ]
    rows = []
    t_first, first = vtrack_cmd(repo, "lineage", str(shard_file), "--json")
    assert first.returncode == 0, first.stderr
    rows.append(
        (
            f"first vtrack lineage after writing {n_runs:,} runs (index reads them all)",
            f"{t_first:.2f} s",
            "",
            "reference",
        )
    )
    for label, target, expect in targets:

        def one(target: str = target, expect: int = expect) -> float:
            t, res = vtrack_cmd(repo, "lineage", target, "--json")
            assert res.returncode == 0, res.stderr
            got = json.loads(res.stdout)
            assert len(got) == expect, (len(got), expect)
            return t

        t = median_of(one, rounds)
        rows.append(
            (
                f"vtrack lineage, {label} ({expect:,} runs)",
                f"{t * 1000:.0f} ms",
                f"{n_runs:,} runs",
                _verdict(t <= TARGET_LINEAGE_S, "<= 300 ms"),
            )
        )
    t_api = median_of(lambda: _timed(lambda: client.lineage(shard_file)), rounds)
    rows.append(
        ("vtrack.lineage() in-process, shard file", f"{t_api * 1000:.1f} ms", "", "reference")
    )
    rows.append(
        (
            f"writing runs: {SHARDS} through the API",
            f"{t_templates:.1f} s",
            f"{t_templates / SHARDS * 1000:.0f} ms/run",
            "setup",
        )
    )
    rows.append((f"writing runs: {n_runs - SHARDS:,} in bulk", f"{t_bulk:.1f} s", "", "setup"))
    return rows


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- audit ----------------------------------------------------------------------------------


def make_folder(root: Path, files: int, file_bytes: int) -> int:
    payload = os.urandom(file_bytes + files)
    total = 0
    for i in range(files):
        sub = root / f"{i % 100:02d}"
        if i < 100:
            sub.mkdir(parents=True)
        data = payload[i : i + file_bytes - (i % 7)]
        (sub / f"{i}.bin").write_bytes(data)
        total += len(data)
    return total


def plain_reads(paths: list[str]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.read(fd, 1 << 20)
        finally:
            os.close(fd)


def bench_audit(
    base: Path, n_files: int, file_kib: int, rounds: int
) -> list[tuple[str, str, str, str]]:
    repo = make_repo(base / "audit")
    os.chdir(repo)
    total = make_folder(repo / "data", n_files, file_kib * 1024)
    stream = base / "stream.bin"
    with open(stream, "wb") as f:
        f.write(os.urandom(total))
    time.sleep(RACY_MARGIN_NS / 1e9 + 0.2)  # every file leaves the racy window
    client = TrackingClient(str(repo))
    run = client.create_run(run_name="reads-a-folder")
    entry = client.log_input(run.info.run_id, repo / "data", name="data", context="training")
    client.set_terminated(run.info.run_id)
    run_id = run.info.run_id
    cache_db = client.store.location.vtrack_dir / provenance.STATCACHE_FILE

    def drop_cache() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(cache_db) + suffix).unlink(missing_ok=True)

    def cmd_cold() -> float:
        drop_cache()
        t, res = vtrack_cmd(repo, "audit", run_id)
        assert res.returncode == 0, res.stdout + res.stderr
        return t

    def cmd_warm() -> float:
        t, res = vtrack_cmd(repo, "audit", run_id)
        assert res.returncode == 0, res.stdout + res.stderr
        return t

    def api_cold() -> float:
        drop_cache()
        return _timed(lambda: client.audit(run_id))

    listing = [str(p) for p in sorted((repo / "data").rglob("*.bin"))]
    manifest = provenance.read_manifest(client.store, client.store.read_run_state(run_id)[1], entry)
    hash_regular_file(str(stream))
    t_stream = median_of(lambda: _timed(lambda: hash_regular_file(str(stream))), rounds)
    t_reads = median_of(lambda: _timed(lambda: plain_reads(listing)), rounds)
    t_nocache = median_of(
        lambda: _timed(lambda: check_input(entry, manifest, NoStatCache())), rounds
    )
    t_api_cold = median_of(api_cold, rounds)
    cmd_warm()  # compiles the audit command's modules, as an install would have
    t_cmd_cold = median_of(cmd_cold, rounds)
    cmd_warm()
    t_cmd_warm = median_of(cmd_warm, rounds)
    t_api_warm = median_of(lambda: _timed(lambda: client.audit(run_id)), rounds)
    t_start, _ = vtrack_cmd(repo, "--version")
    what = f"{n_files:,} files, {total / 2**20:.0f} MiB"
    return [
        (
            f"xxh3-128 of the same bytes as one stream ({total / 2**20:.0f} MiB)",
            f"{t_stream * 1000:.1f} ms",
            "",
            "baseline",
        ),
        (
            f"open+read+close of every file, no hashing ({n_files:,})",
            f"{t_reads * 1000:.0f} ms",
            f"{t_reads / t_stream:.1f}x stream",
            "floor",
        ),
        (
            f"vtrack.audit(), empty stat cache ({what})",
            f"{t_api_cold * 1000:.0f} ms",
            f"{t_api_cold / t_stream:.1f}x stream, {t_api_cold / t_reads:.2f}x open+read+close",
            _verdict(t_api_cold <= 1.2 * t_stream, "<= 1.2x stream"),
        ),
        (
            "check_input() with no stat cache at all",
            f"{t_nocache * 1000:.0f} ms",
            f"{t_nocache / t_stream:.1f}x stream",
            "reference",
        ),
        (
            f"vtrack audit RUN, empty stat cache ({what})",
            f"{t_cmd_cold * 1000:.0f} ms",
            "whole process",
            "reference",
        ),
        (
            f"vtrack audit RUN, warm stat cache ({what})",
            f"{t_cmd_warm * 1000:.0f} ms",
            "whole process",
            _verdict(t_cmd_warm <= TARGET_AUDIT_WARM_S, "<= 0.5 s"),
        ),
        (
            "vtrack.audit(), warm stat cache",
            f"{t_api_warm * 1000:.0f} ms",
            "in-process",
            "reference",
        ),
        ("vtrack --version (process start)", f"{t_start * 1000:.0f} ms", "", "reference"),
    ]


def _verdict(ok: bool, target: str) -> str:
    return f"{target}: {'ok' if ok else 'MISSED'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 runs and 2,000 files")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--file-kib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where to create the test data")
    ap.add_argument("--only", choices=("lineage", "audit"), default=None)
    args = ap.parse_args()
    n_runs = args.runs or (1_000 if args.quick else 10_000)
    n_files = args.files or (2_000 if args.quick else 10_000)
    rows: list[tuple[str, str, str, str]] = []
    global PYCACHE
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="vtrack-bench-prov-") as tmp:
        base = Path(tmp)
        PYCACHE = base / "pycache"
        vtrack_cmd(base, "--version")  # compiles vtrack's bytecode once, as an install does
        if args.only in (None, "lineage"):
            rows += bench_lineage(base, n_runs, args.rounds)
        if args.only in (None, "audit"):
            rows += bench_audit(base, n_files, args.file_kib, args.rounds)
        os.chdir(ROOT)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("measurement", "time", "scale", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(
        f"(median of {args.rounds} rounds; python {sys.version.split()[0]}, {os.cpu_count()} cpus)"
    )
    return 1 if any("MISSED" in r[3] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
