"""Issue 16 figures: the model registry at 1,000 models x 10 versions and 5,000 alias moves.

Builds, in a temporary repository, one real run with a logged model (the source of every
version), then the registry log in bulk: 1,000 ``create_model`` + 10,000 ``register`` +
5,000 ``set_alias`` events (16,000 event commits, one ``git fast-import`` pack). The
events are made by the same constructor the API uses, with the digest and lineage the
API reads from the run; a small model made through the API and its bulk twin are
checked to fold to the same state first.

Whole-process timings (min / median / max of N runs; the first ``models ls`` after the
bulk import, which builds the cache from the log, is reported on its own):

- ``vtrack models ls --json`` (target <= 300 ms);
- resolving ``models:/<name>@champion`` in a fresh process (``python -c``), and in-process
  (a fresh ModelRegistry each time: ref read, cache check, one row) (target <= 20 ms);
- ``vtrack models history <name> --json`` (target <= 300 ms);

beside anchors measured in the same run: ``python -c pass``, ``git for-each-ref`` and
``git tag -l`` over 1,500 GTO-style annotated tags (``churn@v1.0.0``, ``churn#prod#3``),
and GTO's published 6-12 s per command at ~1,500 tags (gto#156).

Usage::

    PYTHONPATH=. nice -n 10 python benchmarks/bench_registry.py [--quick] [-n N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, python_with_vtrack, table  # noqa: E402

LOG_MODEL = """\
import vtrack
class Const:
    def predict(self, x): return [1] * len(x)
with vtrack.start_run() as run:
    vtrack.log_metric("auc", 0.9)
    info = vtrack.pyfunc.log_model(python_model=Const(), name="model")
print(run.info.run_id)
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str], n: int) -> list[float]:
    """Wall-clock milliseconds of ``n`` runs of ``cmd`` (each must exit 0)."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
        out.append((time.perf_counter() - t) * 1000)
        if res.returncode != 0:
            raise SystemExit(f"{cmd} failed: {res.stderr.decode()[-2000:]}")
    return out


def fast_import(repo: Path, messages: list[str], ref: str = "refs/vtrack/registry") -> None:
    """Write ``messages`` as a linear chain of empty-tree commits on ``ref``, one pack."""
    parts = []
    stamp = int(time.time())
    res = subprocess.run(["git", "rev-parse", "-q", "--verify", ref], cwd=repo,
                         capture_output=True, text=True)  # fmt: skip
    tip = res.stdout.strip()
    for i, msg in enumerate(messages):
        data = msg.encode()
        parts.append(b"commit %s\nmark :%d\ncommitter bench <bench@vtrack> %d +0000\ndata %d\n%s\n"
                     % (ref.encode(), i + 1, stamp, len(data), data))  # fmt: skip
        if i == 0:
            parts.append(b"from %s\n" % tip.encode() if tip else b"deleteall\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(parts), check=True)


def gto_tags(repo: Path, count: int) -> None:
    """``count`` annotated GTO-style tags (registrations and stage assignments), one pack."""
    head = git(repo, "rev-parse", "HEAD")
    parts = []
    stamp = int(time.time())
    for i in range(count):
        name = f"m{i // 15:03d}@v{i % 15}.0.0" if i % 3 else f"m{i // 15:03d}#prod#{i % 15}"
        msg = f"Registering version {i}".encode()
        parts.append(b"tag %s\nfrom %s\ntagger bench <b@v> %d +0000\ndata %d\n%s\n"
                     % (name.encode(), head.encode(), stamp, len(msg), msg))  # fmt: skip
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(parts), check=True)


def stats(ms: list[float]) -> tuple[str, str, str]:
    return f"{min(ms):.1f}", f"{statistics.median(ms):.1f}", f"{max(ms):.1f}"


def build_events(reg, n_models: int, n_versions: int, n_moves: int, source: str,
                 prefix: str = "m") -> list[dict]:  # type: ignore[no-untyped-def]  # fmt: skip
    """The events the API would write for that registry, made by its own constructor."""
    from vtrack.registry import events as ev
    from vtrack.registry.lineage import folder_digest, lineage_of, source_of

    run_id, path, model_id = source_of(reg.repo, source)
    digest = folder_digest(reg.repo, run_id, path)
    lineage = lineage_of(reg.repo, run_id, path)
    out = []
    names = [f"{prefix}-{i:04d}" for i in range(n_models)]
    for name in names:
        out.append(ev.new_event("create_model", name, "bench", tags={}, description=""))
        for v in range(1, n_versions + 1):
            out.append(ev.new_event("register", name, "bench", version=v, source=source,
                                    run_id=run_id, model_id=model_id, digest=digest,
                                    lineage=lineage, tags={}, description=""))  # fmt: skip
    held: dict[str, int] = {}
    for k in range(n_moves):
        name = names[(k * 7) % n_models]
        version = 1 + (k * 3) % n_versions
        out.append(ev.new_event("set_alias", name, "bench", alias="champion", version=version,
                                previous=held.get(name), reason="set", evidence={},
                                forced=False))  # fmt: skip
        held[name] = version
    return out


def _ls(reg):  # type: ignore[no-untyped-def]
    return reg.model_summaries()


def _comparable(reg, name: str) -> dict:  # type: ignore[no-untyped-def]
    skip = {"creation_timestamp", "last_updated_timestamp", "user_id", "event", "name"}
    reg.cache.sync()
    fold = reg.cache.model(name)
    versions = {n: {k: v for k, v in d.items() if k not in skip} for n, d in fold.versions.items()}
    doc = {k: v for k, v in fold.doc.items() if k not in skip}
    return {"doc": doc, "versions": versions}


def check_api_matches_bulk(repo: Path, source: str) -> None:
    """A model made through the API and the same made by build_events fold alike."""
    from vtrack import fluent
    from vtrack.registry import ModelRegistry
    from vtrack.registry.events import encode

    fluent._reset_for_tests()
    os.chdir(repo)
    fluent.set_tracking_uri(str(repo))
    reg = ModelRegistry(fluent.tracking_client().repo)
    reg.create_registered_model("api-0000")
    for _ in range(3):
        reg.create_model_version("api-0000", source)
    for v in (1, 3, 2):
        reg.set_registered_model_alias("api-0000", "champion", v)
    api = _comparable(reg, "api-0000")
    events = build_events(reg, 1, 3, 0, source, prefix="gen")
    from vtrack.registry import events as ev

    for v in (1, 3, 2):
        events.append(ev.new_event("set_alias", "gen-0000", "bench", alias="champion",
                                   version=v, previous=None, reason="set", evidence={},
                                   forced=False))  # fmt: skip
    other = Path(tempfile.mkdtemp(prefix="vtrack-bench-check-"))
    git(other, "init", "-q")
    subprocess.run(["git", "fetch", "-q", str(repo), "refs/vtrack/*:refs/vtrack/*"], cwd=other,
                   check=True)  # fmt: skip
    subprocess.run(["git", "update-ref", "-d", "refs/vtrack/registry"], cwd=other, check=True)
    fast_import(other, [encode(e) for e in events])
    fluent._reset_for_tests()
    os.chdir(other)
    fluent.set_tracking_uri(str(other))
    gen = _comparable(ModelRegistry(fluent.tracking_client().repo), "gen-0000")
    if gen != api:
        raise SystemExit(f"bulk events fold differently from the API's:\n{api}\n{gen}")
    print("check: a model made through the API and its bulk twin fold to the same state")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 models x 10, 500 moves")
    ap.add_argument("-n", type=int, default=7, help="runs per timing")
    args = ap.parse_args()
    n_models, n_versions, n_moves = (100, 10, 500) if args.quick else (1000, 10, 5000)
    env = python_with_vtrack()
    # byte-compiled modules, as an installed vtrack has them (this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which makes every process compile vtrack first)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-registry-pycache-")
    base = Path(tempfile.mkdtemp(prefix="vtrack-bench-registry-"))
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    res = subprocess.run([sys.executable, "-c", LOG_MODEL], cwd=repo, env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    run_id = res.stdout.strip().splitlines()[-1]
    source = f"runs:/{run_id}/model"
    check_api_matches_bulk(repo, source)

    from vtrack import fluent
    from vtrack.registry import ModelRegistry
    from vtrack.registry.events import encode

    os.chdir(repo)
    fluent._reset_for_tests()
    fluent.set_tracking_uri(str(repo))
    reg = ModelRegistry(fluent.tracking_client().repo)
    t = time.perf_counter()
    events = build_events(reg, n_models, n_versions, n_moves, source)
    fast_import(repo, [encode(e) for e in events])
    gen_s = time.perf_counter() - t
    print(f"generated {len(events)} events as one pack in {gen_s:.1f} s")

    vt = [str(Path(sys.executable).parent / "vtrack")]
    if not Path(vt[0]).exists():
        vt = [sys.executable, "-m", "vtrack"]
    first = timed([*vt, "models", "ls", "--json"], repo, env, 1)  # builds the cache (and .pyc)
    timed([sys.executable, "-c", "import vtrack.fluent, vtrack.cli.models"], repo, env, 1)
    target = f"m-{n_models // 2:04d}"
    resolve = ("import vtrack; from vtrack.fluent import tracking_client; "
               f"print(tracking_client().model_registry.resolve('models:/{target}@champion').version)")  # fmt: skip
    rows = []
    figures = {
        "vtrack models ls --json": timed([*vt, "models", "ls", "--json"], repo, env, args.n),
        f"models:/{target}@champion (fresh python)": timed([sys.executable, "-c", resolve], repo, env, args.n),
        f"vtrack models history {target} --json": timed([*vt, "models", "history", target, "--json"], repo, env, args.n),
        "anchor: python -c pass": timed([sys.executable, "-c", "pass"], repo, env, args.n),
    }  # fmt: skip
    inproc = []
    for _ in range(200):
        t = time.perf_counter()
        ModelRegistry(reg.repo).resolve(f"models:/{target}@champion")
        inproc.append((time.perf_counter() - t) * 1000)
    figures[f"models:/{target}@champion (in-process)"] = inproc
    for label, fn in (
        ("models ls data (in-process)", lambda: _ls(ModelRegistry(reg.repo))),
        (f"models history {target} (in-process)", lambda: ModelRegistry(reg.repo).history(target)),
    ):
        ms = []
        for _ in range(50):
            t = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t) * 1000)
        figures[label] = ms
    figures["anchor: vtrack experiments ls --json (CLI + store, no registry)"] = timed(
        [*vt, "experiments", "ls", "--json"], repo, env, args.n)  # fmt: skip
    tags = base / "gto"
    tags.mkdir()
    git(tags, "init", "-q", "-b", "main")
    (tags / "f").write_text("x")
    git(tags, "add", "-A")
    git(tags, "commit", "-qm", "i")
    gto_tags(tags, 1500)
    figures["anchor: git for-each-ref refs/tags (1,500 tags)"] = timed(
        ["git", "for-each-ref", "refs/tags"], tags, env, args.n)  # fmt: skip
    figures["anchor: git tag -l (1,500 tags)"] = timed(["git", "tag", "-l"], tags, env, args.n)
    gto_ms = 6000.0
    for name, ms in figures.items():
        rows.append((name, *stats(ms), f"{gto_ms / statistics.median(ms):.0f}x"))
    print(f"{n_models} models x {n_versions} versions, {n_moves} alias moves "
          f"({len(events)} events); first models ls (builds the cache from the log, and compiles vtrack): {first[0]:.0f} ms")  # fmt: skip
    print(table(rows, ("command", "min ms", "median ms", "max ms", "GTO 6 s / median")))


if __name__ == "__main__":
    main()
