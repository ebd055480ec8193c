"""The ``vtrack://`` MLflow tracking store: ``mlflow server`` on a vtrack repository.

A vtrack repository is made here with vtrack's own client; ``mlflow server
--backend-store-uri vtrack:///<repo>`` runs as a real subprocess on loopback and its REST
API answers with the vtrack runs' data. MLflow finds the store through the
``mlflow.tracking_store`` entry point of the installed vtrack (pyproject; CI installs
with ``pip install -e .[dev]``); where this checkout is not the installed one, a
throwaway distribution declaring the same entry point is put on the server's path.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
    pytest.mark.timeout(900),  # mlflow server needs a minute to start on a loaded machine
]

ENTRY_POINT = "vtrack.integrations.mlflow_plugin:vtrack_store"
ARTIFACT_ENTRY_POINT = "vtrack.integrations.mlflow_plugin:vtrack_artifacts"


def _plugin_path(tmp: Path) -> list[str]:
    """Extra sys.path entries so MLflow finds the entry points (none when installed)."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["mlflow.tracking_store"]["vtrack"] == ENTRY_POINT
    assert declared["mlflow.artifact_repository"]["vtrack-artifacts"] == ARTIFACT_ENTRY_POINT
    stores = {e.name: e.value for e in entry_points(group="mlflow.tracking_store")}
    repos = {e.name: e.value for e in entry_points(group="mlflow.artifact_repository")}
    if (
        stores.get("vtrack") == ENTRY_POINT
        and repos.get("vtrack-artifacts") == ARTIFACT_ENTRY_POINT
    ):
        return []
    dist = tmp / "plugin" / "vtrack_plugin_local-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vtrack-plugin-local\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        f"[mlflow.tracking_store]\nvtrack = {ENTRY_POINT}\n\n"
        f"[mlflow.artifact_repository]\nvtrack-artifacts = {ARTIFACT_ENTRY_POINT}\n"
    )
    return [str(tmp / "plugin")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def vtrack_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    from vtrack import TrackingClient
    from vtrack.entities import Metric

    repo = tmp_path_factory.mktemp("served")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    c = TrackingClient(str(repo))
    exp = c.create_experiment("served-exp", tags={"team": "nlp"})
    parent = c.create_run(exp, run_name="sweep", start_time=1_700_000_000_000)
    c.log_params(parent.info.run_id, {"lr": 0.01, "opt": "adam"})
    c.log_batch(parent.info.run_id, [Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i)
                                     for i in range(20)])  # fmt: skip
    c.set_tag(parent.info.run_id, "team", "nlp")
    c.log_text(parent.info.run_id, "hello from vtrack", "notes/hi.txt")
    child = c.create_run(exp, run_name="trial-1", parent_run_id=parent.info.run_id)
    c.log_metric(child.info.run_id, "loss", 0.5, step=0)
    for r in (child, parent):
        c.set_terminated(r.info.run_id)
    return repo, {"exp": exp, "parent": parent.info.run_id, "child": child.info.run_id}


@pytest.fixture(scope="module")
def server(vtrack_repo: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    repo, _ = vtrack_repo
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *_plugin_path(tmp)])}
    env.pop("VTRACK_TRACKING_URI", None)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"vtrack://{repo}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer in 600 s"
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_rest_api_answers_with_the_vtrack_runs(server: str, vtrack_repo: Any) -> None:
    _, ids = vtrack_repo
    status, body = _call(server, "/api/2.0/mlflow/experiments/search", {"max_results": 10})
    assert status == 200
    names = {e["name"]: e for e in body["experiments"]}
    assert names["served-exp"]["experiment_id"] == ids["exp"]
    assert {"key": "team", "value": "nlp"} in names["served-exp"]["tags"]
    status, body = _call(
        server, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=served-exp"
    )
    assert status == 200 and body["experiment"]["experiment_id"] == ids["exp"]

    status, body = _call(server, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": [ids["exp"]], "filter": "params.opt = 'adam' and metrics.loss < 0.1",
    })  # fmt: skip
    assert status == 200 and [r["info"]["run_id"] for r in body["runs"]] == [ids["parent"]]
    run = body["runs"][0]
    assert run["info"]["run_name"] == "sweep" and run["info"]["status"] == "FINISHED"
    assert {"key": "lr", "value": "0.01"} in run["data"]["params"]
    (loss,) = run["data"]["metrics"]
    assert (loss["value"], loss["step"]) == (0.05, 19)
    status, body = _call(server, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": [ids["exp"]], "filter": f"tags.mlflow.parentRunId = '{ids['parent']}'",
        "max_results": 1,
    })  # fmt: skip
    assert [r["info"]["run_id"] for r in body["runs"]] == [ids["child"]]

    status, body = _call(server, f"/api/2.0/mlflow/runs/get?run_id={ids['child']}")
    assert status == 200
    tags = {t["key"]: t["value"] for t in body["run"]["data"]["tags"]}
    assert tags["mlflow.parentRunId"] == ids["parent"] and tags["mlflow.runName"] == "trial-1"

    status, body = _call(server, f"/api/2.0/mlflow/metrics/get-history?run_id={ids['parent']}"
                                 "&metric_key=loss")  # fmt: skip
    assert status == 200
    assert [(m["step"], m["value"]) for m in body["metrics"]] == [
        (i, 1.0 / (i + 1)) for i in range(20)]  # fmt: skip
    status, body = _call(server, "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
                                 f"?run_ids={ids['parent']}&metric_key=loss&max_results=5")  # fmt: skip
    assert status == 200
    steps = [m["step"] for m in body["metrics"]]
    assert steps[0] == 0 and steps[-1] == 19 and len(steps) <= 6

    # artifacts: listed and served through the vtrack-artifacts: repository
    status, body = _call(server, f"/api/2.0/mlflow/artifacts/list?run_id={ids['parent']}"
                                 "&path=notes")  # fmt: skip
    assert status == 200 and [f["path"] for f in body["files"]] == ["notes/hi.txt"]
    with urllib.request.urlopen(f"{server}/get-artifact?run_id={ids['parent']}"
                                "&path=notes/hi.txt", timeout=60) as resp:  # fmt: skip
        assert resp.read() == b"hello from vtrack"

    status, body = _call(server, "/api/2.0/mlflow/runs/get?run_id=" + "0" * 32)
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_safe_writes_and_clear_refusals(server: str, vtrack_repo: Any) -> None:
    from vtrack import TrackingClient

    repo, ids = vtrack_repo
    status, body = _call(server, "/api/2.0/mlflow/runs/create", {
        "experiment_id": ids["exp"], "run_name": "from-mlflow", "start_time": 1_700_000_100_000,
    })  # fmt: skip
    assert status == 200, body
    rid = body["run"]["info"]["run_id"]
    status, _ = _call(server, "/api/2.0/mlflow/runs/log-batch", {
        "run_id": rid, "params": [{"key": "depth", "value": "4"}],
        "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1_700_000_100_005, "step": 3}],
        "tags": [{"key": "via", "value": "rest"}],
    })  # fmt: skip
    assert status == 200
    status, _ = _call(server, "/api/2.0/mlflow/runs/update", {
        "run_id": rid, "status": "FINISHED", "end_time": 1_700_000_100_010,
    })  # fmt: skip
    assert status == 200
    run = TrackingClient(str(repo)).get_run(rid)
    assert run.info.status == "FINISHED" and run.info.end_time == 1_700_000_100_010
    assert run.data.params == {"depth": 4} and run.data.metrics == {"acc": 0.9}
    assert run.data.tags["via"] == "rest"
    status, body = _call(server, "/api/2.0/mlflow/traces/" + "tr-" + "0" * 32 + "/info")
    assert status >= 400
    assert "not supported by the vtrack store" in json.dumps(body)
