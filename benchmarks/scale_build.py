"""Building large vtrack stores for benchmarks/bench_scale.py (issue 15).

Two ways to make N runs shaped like the issue's (20 params, 10 metrics x 100 steps, 2
small artifacts):

- :func:`build_api` through the public API (``vtrack.start_run`` ...), one run at a time:
  what users do, ~70-150 ms per run on this machine;
- :func:`build_bulk`, the bulk path: a template run made through the API is cloned with
  fresh ids, params and metric values through the real store code (``RecordState`` +
  ``Store.write_run_commit``), 500 runs per pack, refs in one ``git update-ref --stdin``
  transaction per batch, then refs packed. What ``RunWriter`` does minus journal,
  checkpoints and per-run snapshot; :func:`store_profile` lets the benchmark compare a
  bulk store with an API one (objects per run, bytes per run).

Usage: ``python benchmarks/scale_build.py DEST N [--api]`` (prints seconds taken).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import in_forked_workers  # noqa: E402

MODELS = ("xgb", "rf", "lgbm", "mlp")
BATCH = 500
#: Each run reads one of this many dataset files (``data/d<k>.csv``, k = i % DATASETS).
DATASETS = 100


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")  # fmt: skip
    res = subprocess.run(["git", *args], cwd=repo, env=env, input=input, capture_output=True,
                         check=True)  # fmt: skip
    return res.stdout.decode().strip()


def make_repo(path: Path) -> Path:
    """A git repository with one commit of code."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("import vtrack\nprint('train')\n")
    (path / ".gitignore").write_text("data/\n")
    (path / "data").mkdir()
    for k in range(DATASETS):
        (path / "data" / f"d{k}.csv").write_text(f"a,b\n{k},{k * 2}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "code")
    return path


def run_values(i: int) -> dict[str, Any]:
    """Params and metric histories of run ``i`` (the same for every way of building)."""
    rng = random.Random(f"scale-{i}")
    params: dict[str, Any] = {f"p{k:02d}": rng.randint(0, 10**6) for k in range(17)}
    params |= {"lr": rng.choice([0.001, 0.003, 0.01, 0.03, 0.1]), "model": rng.choice(MODELS),
               "depth": rng.randint(2, 12)}  # fmt: skip
    final = rng.uniform(0.5, 1.0)
    metrics = {
        f"m{k}": [final * (1 - 0.5 / (s + 1)) + rng.random() * 0.02 for s in range(100)]
        for k in range(9)
    }
    metrics["acc"] = [final * (1 - 0.5 / (s + 1)) for s in range(100)]
    return {"params": params, "metrics": metrics}


def api_run(i: int, checkpoints: int = 0) -> str:
    """One run through the public API in the current directory; returns its id.

    ``checkpoints``: that many checkpoints spread over the 100 steps (what a run of a few
    minutes gets from the background checkpoints every 30 s), besides the run's end."""
    import vtrack
    from vtrack.client import TrackingClient

    values = run_values(i)
    every = 100 // checkpoints if checkpoints else 0
    with vtrack.start_run(run_name=f"run-{i:06d}") as run:
        vtrack.log_input(f"data/d{i % DATASETS}.csv")
        vtrack.log_params(values["params"])
        for s in range(100):
            vtrack.log_metrics({k: v[s] for k, v in values["metrics"].items()}, step=s)
            if every and (s + 1) % every == 0:
                TrackingClient().checkpoint(run.info.run_id)
        for name in ("config.json", "notes.txt"):
            Path(name).write_text(f'{{"run": {i}, "file": "{name}"}}\n')
            vtrack.log_artifact(name)
            os.unlink(name)
        return str(run.info.run_id)


def build_api(repo: Path, n: int, first: int = 0, checkpoints: int = 0) -> float:
    """Make runs ``first`` .. ``first + n - 1`` through the public API (``checkpoints`` as
    for :func:`api_run`); seconds taken."""
    import vtrack

    os.chdir(repo)
    vtrack.set_tracking_uri(str(repo))
    t0 = time.perf_counter()
    for i in range(first, first + n):
        api_run(i, checkpoints)
    return time.perf_counter() - t0


class Bulk:
    """Clones of one API-made template run, written through the store code in batches."""

    def __init__(self, repo: Path) -> None:
        import vtrack
        from vtrack.client import TrackingClient

        os.chdir(repo)
        vtrack.set_tracking_uri(str(repo))
        self.repo = repo
        self.client = TrackingClient(str(repo))
        self.store = self.client.repo.store
        template = api_run(-1)
        tip = self.store.run_tip(template)
        assert tip is not None
        self.state, self.code, self.parent = self.store.read_run_commit(tip)
        self.start = int(time.time() * 1000) - 10**9
        self.inputs = []  # the API's own entries, one per dataset file
        with vtrack.start_run(run_name="inputs-template"):
            for k in range(DATASETS):
                self.inputs.append(vtrack.log_input(f"data/d{k}.csv").to_record())

    def write(self, indexes: range) -> None:
        from vtrack.store import refs as refnames
        from vtrack.store.record import RecordState, format_rows

        store = self.store
        todo = list(indexes)
        for at in range(0, len(todo), BATCH):
            lines = []
            with store.objects.batch() as batch:
                for i in todo[at : at + BATCH]:
                    values = run_values(i)
                    state = RecordState(store.objects)
                    start = self.start + i * 1000
                    run_id = uuid.uuid4().hex
                    state.info = dict(self.state.info, id=run_id, name=f"run-{i:06d}",
                                      start_time=start, end_time=start + 900, status="FINISHED")  # fmt: skip
                    state.tags = dict(self.state.tags)
                    state.params = dict(values["params"])
                    points = [(key, value, step, start + step)
                              for key, series in values["metrics"].items()
                              for step, value in enumerate(series)]  # fmt: skip
                    state.add_points(points, format_rows(points))
                    state.extra = dict(self.state.extra)
                    state.inputs = [self.inputs[i % DATASETS]]
                    for path, entry in self.state.artifacts.items():
                        blob = store.objects.write_blob(
                            f'{{"run": {i}, "file": "{path}"}}\n'.encode()
                        )
                        state.add_file(f"artifacts/{path}", 0o100644, blob)
                        state.add_artifact(path, dict(entry))
                    sha = store.write_run_commit(state, self.code, self.parent)
                    lines.append(f"create {refnames.run_ref(run_id)} {sha}\n")
            git(self.repo, "update-ref", "--stdin", input="".join(lines).encode())
            if batch.handle is not None:
                batch.handle.release()

    def write_parallel(self, first: int, n: int, workers: int = 2) -> None:
        in_forked_workers(self.write, first, first + n, workers)


def build_bulk(repo: Path, n: int, workers: int = 2) -> float:
    """Make ``n`` runs by the bulk path (plus the template); seconds taken."""
    t0 = time.perf_counter()
    bulk = Bulk(repo)
    bulk.write_parallel(0, n, workers)
    git(repo, "-c", "repack.writeBitmaps=false", "-c", "repack.updateServerInfo=false", "repack",
        "--geometric=2", "-d", "-q")  # fmt: skip
    git(repo, "pack-refs", "--all")
    return time.perf_counter() - t0


def store_profile(repo: Path) -> dict[str, float]:
    """Runs, objects and bytes of ``.git`` (apparent sizes) of a store."""
    runs = len(git(repo, "for-each-ref", "--format=x", "refs/vtrack/runs/").splitlines())
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    size = sum(f.stat().st_size for f in (repo / ".git").rglob("*") if f.is_file())
    return {
        "runs": runs, "loose": int(counts["count"]), "packs": int(counts["packs"]),
        "objects": int(counts["count"]) + int(counts["in-pack"]), "git_bytes": size,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("--api", action="store_true", help="through the public API, one by one")
    args = ap.parse_args()
    repo = make_repo(args.dest)
    seconds = build_api(repo, args.n) if args.api else build_bulk(repo, args.n)
    print(f"{args.n} runs in {seconds:.1f} s", store_profile(repo))


if __name__ == "__main__":
    main()
