"""Fixtures of the web UI tests: a real store made through the public API, a real server.

``ui_store`` builds one repository per session in a subprocess (through
``TrackingClient``): an experiment ``churn`` with six finished runs (run5 with other code; params, a ``loss``
whose minimum is not its last value, tags, a ``<script>`` param value), a parent with
two children, a run with a 200,000-point history and a system metric, artifacts (CSV, PNG, HTML with a
script, a text file larger than a preview, a model.yaml) and a file input; an
experiment ``other`` with one run. ``ui_server`` runs ``vtrack ui --port 0`` on it and
stops it after the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GIT_ENV, ROOT, reap, wait_for_line

BUILD = r"""
import io, json, math, sys
from vtrack.client import TrackingClient
from vtrack.entities import Metric

c = TrackingClient(".")
churn = c.create_experiment("churn")
other = c.create_experiment("other")
ids = {}
t0 = 1_700_000_000_000
for i in range(6):
    if i == 5:  # run5 ran other code than run0..run4, committed
        import subprocess
        open("train.py", "w").write("print('train, v2')\n")
        subprocess.run(["git", "commit", "-qam", "v2"], check=True)
        open("train.py", "w").write("print('train, edited again')\n")  # dirty again
    r = c.create_run(churn, run_name=f"run{i}", start_time=t0 + i * 1000,
                     tags={"team": "nlp" if i % 2 else "cv"})
    rid = r.info.run_id
    ids[f"run{i}"] = rid
    c.log_params(rid, {"lr": [0.001, 0.01, 0.1][i % 3], "model": "xgb" if i < 3 else "lgbm",
                       "depth": i, "note": "<script>window.__pwned = 1</script>"})
    pts = [Metric("loss", (s - 10) ** 2 / 100 + i, t0 + i * 1000 + s * 10, s) for s in range(50)]
    pts += [Metric("acc", 0.5 + i / 20 + s / 1000, t0 + i * 1000 + s * 10, s) for s in range(50)]
    c.log_batch(rid, pts)
    c.set_terminated(rid, end_time=t0 + i * 1000 + 900)

parent = c.create_run(churn, run_name="sweep", start_time=t0 + 10_000)
ids["sweep"] = parent.info.run_id
for j in range(2):
    ch = c.create_run(churn, run_name=f"trial{j}", start_time=t0 + 10_001 + j,
                      parent_run_id=parent.info.run_id)
    ids[f"trial{j}"] = ch.info.run_id
    c.log_metric(ch.info.run_id, "acc", 0.7 + j / 10, step=0)
    c.set_terminated(ch.info.run_id)
c.set_terminated(parent.info.run_id)

long = c.create_run(churn, run_name="long", start_time=t0 + 20_000)
rid = long.info.run_id
ids["long"] = rid
N = int(sys.argv[1])
for start in range(0, N, 50_000):
    c.log_batch(rid, [Metric("loss", math.sin(s / 500) + (5.0 if s == 123_457 else 0.0),
                             t0 + 20_000 + s, s) for s in range(start, min(N, start + 50_000))])
c.log_batch(rid, [Metric("system/cpu_percent", 10.0 + s, t0 + 20_000 + s * 1000, s)
                  for s in range(30)])
c.log_text(rid, "name,score\nalpha,1\nbeta,2\n", "tables/scores.csv")
c.log_text(rid, "<html><body><p id=p>framed</p><script>parent.__framed_pwned = 1</script></body></html>",
           "report.html")
c.log_text(rid, "x" * 200_000 + "\nEND\n", "big.txt")
assert c.repo.state(rid).record.artifacts["big.txt"]["storage"] == "large"
c.log_text(rid, "flavor: sklearn\nsignature:\n  inputs: [{name: x, type: double}]\n  outputs: [{type: long}]\n",
           "model/model.yaml")
from PIL import Image
img = Image.new("RGB", (8, 8), (200, 30, 30))
buf = io.BytesIO(); img.save(buf, format="PNG")
open("pic.png", "wb").write(buf.getvalue())
c.log_artifact(rid, "pic.png", "images")
open("data.csv", "w").write("a,b\n1,2\n")
c.log_input(rid, "data.csv", name="train")
c.set_terminated(rid)

o = c.create_run(other, run_name="elsewhere", start_time=t0 + 30_000)
c.set_terminated(o.info.run_id)
print(json.dumps({"ids": ids, "churn": churn, "other": other}))
"""


def build_store(path: Path, points: int) -> dict[str, Any]:
    """Make a git repository at ``path`` and fill it through the public API."""
    env = dict(os.environ, **GIT_ENV)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["VTRACK_LARGE_FILE_THRESHOLD"] = "100000"  # big.txt goes to the large-object store
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, env=env)
    (path / "train.py").write_text("print('train')\n")
    subprocess.run(["git", "add", "train.py"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True, env=env)
    (path / "train.py").write_text("print('train, edited')\n")  # runs see a dirty tree
    res = subprocess.run(
        [sys.executable, "-c", BUILD, str(points)], cwd=path, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    info["path"] = path
    return info  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The module's store (see the module docstring)."""
    return build_store(tmp_path_factory.mktemp("ui") / "repo", 200_000)


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """Status and body of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, body


def start_server(repo: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``vtrack ui --port 0`` in ``repo``; returns once it answers (deadline 60 s)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vtrack", "ui", "--port", "0", *args], cwd=repo, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = wait_for_line(proc, "vtrack ui: serving ", timeout=60)
        url = line.split()[3]
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = http_get(url + "api/experiments", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "vtrack ui did not answer within 60 s"
            time.sleep(0.05)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 10 s) and close its pipes."""
    proc.terminate()
    try:
        reap(proc, timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        reap(proc)


@pytest.fixture(scope="module")
def ui_server(ui_store: dict[str, Any]) -> Iterator[str]:
    """The URL of a ``vtrack ui`` serving ``ui_store`` (refreshing live rows every 0.2 s)."""
    proc, url = start_server(ui_store["path"], "--poll", "0.2")
    try:
        yield url
    finally:
        stop_server(proc)
