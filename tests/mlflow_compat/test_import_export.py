"""``vtrack import-mlflow`` and ``vtrack export-mlflow`` against stores MLflow itself made.

One MLflow sqlite store and one mlruns folder are made per module by
``make_stores.py`` (MLflow in a subprocess); every test reads them with MLflow's own
client and compares what vtrack imported (through the real ``vtrack`` command line).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
    pytest.mark.timeout(900),  # MLflow is slow to import and migrate on a loaded machine
]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_ALLOW_FILE_STORE": "true", **extra}
    env.pop("VTRACK_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlflow-stores")
    script = Path(__file__).with_name("make_stores.py")
    res = subprocess.run([sys.executable, str(script), str(out)], env=_env(), capture_output=True,
                         text=True, timeout=800)  # fmt: skip
    assert res.returncode == 0 and "done" in res.stdout, res.stderr[-3000:]
    return out


def _vtrack(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vtrack", *args], cwd=repo, env=_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _import(repo: Path, source: str, *args: str) -> dict[str, Any]:
    res = _vtrack(repo, "import-mlflow", source, "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _mlflow_runs(uri: str) -> list[Any]:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(exps, max_results=1000))


@pytest.fixture(scope="module")
def imported(stores: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    repo = tmp_path_factory.mktemp("imported")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo, _import(repo, str(stores / "mlflow.db"))


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, int, float]]:
    pts = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]
    return sorted(pts, key=lambda p: (p[1], p[0], repr(p[2])))


def _same(a: list[tuple[int, int, float]], b: list[tuple[int, int, float]]) -> bool:
    return len(a) == len(b) and all(
        x[:2] == y[:2] and (x[2] == y[2] or (math.isnan(x[2]) and math.isnan(y[2])))
        for x, y in zip(a, b, strict=True)
    )


def test_import_of_a_sqlite_store_keeps_everything(
    stores: Path, imported: tuple[Path, dict]
) -> None:
    import mlflow

    from vtrack import TrackingClient

    repo, report = imported
    assert report["total"]["found"] == 4 and report["total"]["imported"] == 3
    # the run vtrack refuses is reported, and nothing of it is written
    assert report["total"]["failed"] == 1
    (failure,) = report["failures"]
    assert failure["experiment"] == "exp-c" and "'..'" in failure["error"]
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    ml = mlflow.MlflowClient(uri)
    vt = TrackingClient(str(repo))
    runs = [r for r in _mlflow_runs(uri) if r.info.run_name != "refused"]
    assert failure["mlflow_run_id"] not in {r.info.run_id for r in runs}
    by_mlflow = {r.data.tags["vtrack.mlflow.run_id"]: r for r in vt.search_runs(max_results=None)}
    assert set(by_mlflow) == {r.info.run_id for r in runs}
    for m in runs:
        v = by_mlflow[m.info.run_id]
        assert v.info.run_name == m.info.run_name
        assert (v.info.status, v.info.start_time, v.info.end_time) == (
            m.info.status, m.info.start_time, m.info.end_time)  # fmt: skip
        assert v.info.user_id == m.info.user_id
        assert vt.get_experiment(v.info.experiment_id).name == ml.get_experiment(
            m.info.experiment_id).name  # fmt: skip
        for key in m.data.metrics:
            assert _same(_history(vt, v.info.run_id, key), _history(ml, m.info.run_id, key)), key
        assert {k: str(x) for k, x in v.data.params.items()} == m.data.params
        for key, value in m.data.tags.items():  # system tags derived again, others kept
            if key != "mlflow.parentRunId":  # that one names the vtrack parent (below)
                assert v.data.tags[key] == value, key
        parent = m.data.tags.get("mlflow.parentRunId")
        if parent:
            assert v.info.parent_run_id == report["imported"][parent]
    parent = next(r for r in by_mlflow.values() if r.info.run_name == "parent")
    # types recovered where the text is exactly one; the rest stays text
    assert parent.data.params == {"lr": 0.1, "n": 3, "flag": True, "name": "x", "tiny": "1e-3",
                                  "padded": "01"}  # fmt: skip
    assert math.isnan(parent.data.metrics["odd"])
    child = next(r for r in by_mlflow.values() if r.info.run_name == "child")
    assert child.info.parent_run_id == parent.info.run_id
    (ds,) = parent.inputs.datasets
    m_parent = next(r for r in runs if r.info.run_name == "parent")
    (mds,) = m_parent.inputs.dataset_inputs
    assert (ds.name, ds.context, str(ds.digest)) == ("train", "training",
                                                     f"mlflow:{mds.dataset.digest}")  # fmt: skip


def test_import_keeps_artifact_bytes_and_models(stores: Path, imported: tuple[Path, dict]) -> None:
    import mlflow

    from vtrack import TrackingClient
    from vtrack.models.logged import find_logged_model

    repo, report = imported
    vt = TrackingClient(str(repo))
    parent = next(r for r in vt.search_runs() if r.info.run_name == "parent")
    m_id = parent.data.tags["vtrack.mlflow.run_id"]
    ml = mlflow.MlflowClient(f"sqlite:///{stores / 'mlflow.db'}")
    local = Path(ml.download_artifacts(m_id, "", str(stores / "dl")))
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = f.relative_to(local).as_posix()
        assert _bytes(vt, parent.info.run_id, rel) == f.read_bytes(), rel
    assert _bytes(vt, parent.info.run_id, "data/blob.bin") == bytes(range(256)) * 3
    # the MLflow 3 logged model: same id, its folder an artifact of the run
    (model_out,) = ml.get_run(m_id).outputs.model_outputs
    found = find_logged_model(vt.repo, model_out.model_id)
    assert found.source_run_id == parent.info.run_id and found.flavor == "sklearn"
    mlmodel = _bytes(vt, parent.info.run_id, f"{found.artifact_path}/MLmodel")
    assert b"sklearn" in mlmodel


def _bytes(vt: Any, run_id: str, path: str) -> bytes:
    from vtrack.artifacts.read import read_bytes

    return read_bytes(vt.repo, run_id, path)


def test_reimport_skips_what_is_there(stores: Path, imported: tuple[Path, dict]) -> None:
    from vtrack import TrackingClient

    repo, first = imported
    again = _import(repo, str(stores / "mlflow.db"))
    assert again["total"] == {
        **again["total"],
        "found": 4,
        "imported": 0,
        "skipped": 3,
        "failed": 1,
    }  # the refused run is tried again, and refused
    assert len(TrackingClient(str(repo)).search_runs()) == 3
    assert first["imported"] and again["imported"] == {}


def test_dry_run_and_experiment_filter_write_nothing_else(stores: Path, make_repo: Any) -> None:
    from vtrack import TrackingClient
    from vtrack.errors import ValidationError
    from vtrack.mlflow_io.importer import import_mlflow

    repo = make_repo()
    vt = TrackingClient(str(repo))
    dry = import_mlflow(vt.repo, f"sqlite:///{stores / 'mlflow.db'}", dry_run=True)
    assert dry.dry_run and dry.totals().imported == 4 and dry.imported == {}
    assert vt.search_runs() == []
    only_b = import_mlflow(vt.repo, str(stores / "mlflow.db"), experiments=("exp-b",))
    assert [e.experiment for e in only_b.experiments] == ["exp-b"]
    assert [r.info.run_name for r in vt.search_runs()] == ["solo"]
    with pytest.raises(ValidationError, match="no experiment 'nope'"):
        import_mlflow(vt.repo, str(stores / "mlflow.db"), experiments=("nope",))
    with pytest.raises(ValidationError, match="neither a tracking URI nor"):
        import_mlflow(vt.repo, str(stores / "absent.db"))
    with pytest.raises(ValidationError, match="no MLflow database"):
        import_mlflow(vt.repo, f"sqlite:///{stores / 'absent.db'}")
    assert not (stores / "absent.db").exists()  # a typo never creates an empty MLflow store
    assert [r.info.run_name for r in vt.search_runs()] == ["solo"]


def test_import_of_an_mlruns_folder(stores: Path, make_repo: Any) -> None:
    import mlflow

    from vtrack import TrackingClient

    repo = make_repo()
    res = _vtrack(repo, "import-mlflow", str(stores / "filestore"))  # the table, not JSON
    assert res.returncode == 0, res.stderr
    assert "imported 3 run(s)" in res.stdout and "exp-a" in res.stdout
    uri = f"file:{stores / 'filestore'}"
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    ml = mlflow.MlflowClient(uri)
    vt = TrackingClient(str(repo))
    by_mlflow = {r.data.tags["vtrack.mlflow.run_id"]: r for r in vt.search_runs()}
    for m in _mlflow_runs(uri):
        if m.info.run_name == "refused":
            assert m.info.run_id not in by_mlflow
            continue
        v = by_mlflow[m.info.run_id]
        for key in m.data.metrics:
            assert _same(_history(vt, v.info.run_id, key), _history(ml, m.info.run_id, key))
    parent = next(r for r in by_mlflow.values() if r.info.run_name == "parent")
    assert _bytes(vt, parent.info.run_id, "notes/readme.txt") == b"hello from mlflow"
    child = next(r for r in by_mlflow.values() if r.info.run_name == "child")
    assert child.info.parent_run_id == parent.info.run_id


def test_export_is_read_back_by_mlflow(imported: tuple[Path, dict], tmp_path: Path) -> None:
    import mlflow

    from vtrack import TrackingClient

    repo, _ = imported
    dest = tmp_path / "out.db"
    res = _vtrack(repo, "export-mlflow", str(dest), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["exported"] == 3 and report["failures"] == []
    vt = TrackingClient(str(repo))
    ml = mlflow.MlflowClient(f"sqlite:///{dest}")
    out = {r.data.tags["vtrack.run_id"]: r for r in _mlflow_runs(f"sqlite:///{dest}")}
    assert set(out) == {r.info.run_id for r in vt.search_runs()}
    for v in vt.search_runs():
        m = out[v.info.run_id]
        assert (m.info.run_name, m.info.status, m.info.start_time, m.info.end_time) == (
            v.info.run_name, v.info.status, v.info.start_time, v.info.end_time)  # fmt: skip
        assert m.data.params == {k: str(x) for k, x in v.data.params.items()}
        for key in v.data.metrics:
            assert _same(_history(ml, m.info.run_id, key), _history(vt, v.info.run_id, key))
        if v.info.parent_run_id:
            assert m.data.tags["mlflow.parentRunId"] == report["runs"][v.info.parent_run_id]
    parent = next(r for r in out.values() if r.info.run_name == "parent")
    local = Path(ml.download_artifacts(parent.info.run_id, "data/blob.bin", str(tmp_path / "d")))
    assert local.read_bytes() == bytes(range(256)) * 3
    (ds,) = parent.inputs.dataset_inputs
    assert (ds.dataset.name, ds.dataset.source_type) == ("train", "s3")
    models = ml.search_logged_models([parent.info.experiment_id])
    assert [m.source_run_id for m in models] == [parent.info.run_id]
    again = json.loads(_vtrack(repo, "export-mlflow", str(dest), "--json").stdout)
    assert (again["exported"], again["skipped"]) == (0, 3)
