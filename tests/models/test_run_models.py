"""Models logged in runs and loaded back by ``runs:/<run>/<path>`` through the artifact API."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import vtrack
import vtrack.models
from tests.conftest import assert_fsck_clean, git
from vtrack.errors import ArtifactNotFoundError
from vtrack.models import pyfunc as vpf
from vtrack.models import pytorch as vpt
from vtrack.models import sklearn as vsk

HERE = Path(__file__).resolve().parent
jit_deprecation = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(
        n_samples=60, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    return pd.DataFrame(X, columns=["f0", "f1", "f2", "f3"]), y


@pytest.fixture
def nets(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return importlib.import_module("torch_nets")


def test_sklearn_model_logged_in_a_run_loads_back_by_id_and_by_name(repo: Path, data) -> None:
    X, y = data
    clf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    with vtrack.start_run(run_name="forest") as run:
        info = vsk.log_model(clf, "model", input_example=X[:5])
    run_id = run.info.run_id
    assert info.run_id == run_id and info.model_uri == f"runs:/{run_id}/model"
    names = [f.path for f in vtrack.list_artifacts(run_id=run_id, artifact_path="model")]
    assert names == [
        "model/input_example.json",
        "model/model.joblib",
        "model/model.yaml",
        "model/requirements.txt",
    ]
    expected = clf.predict(X)
    for uri in (info.model_uri, "runs:/forest/model", f"runs:/{run_id[:6]}/model"):
        np.testing.assert_array_equal(vsk.load_model(uri).predict(X), expected)
    np.testing.assert_array_equal(
        vtrack.models.load_model("runs:/forest/model").predict(X), expected
    )
    # plain git sees the model folder in the run commit
    assert "flavor: sklearn" in git(
        repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/artifacts/model/model.yaml"
    )
    assert_fsck_clean(repo)


def test_large_model_file_goes_through_the_object_store(
    repo: Path, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", "2048")
    X, y = data
    clf = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    with vtrack.start_run() as run:
        vsk.log_model(clf, "clf")
    entry = vtrack.get_run(run.info.run_id).inputs.artifacts["clf/model.joblib"]
    assert entry["storage"] == "large"
    loaded = vsk.load_model(f"runs:/{run.info.run_id}/clf")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


@jit_deprecation
@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_pytorch_model_logged_in_a_run_loads_back_with_equal_outputs(
    repo: Path, nets, fmt: str
) -> None:
    torch.manual_seed(0)
    net = nets.TinyNet(n_in=4, n_hidden=6, n_out=3)
    net.train()
    net(torch.randn(16, 4))
    net.eval()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)
    with vtrack.start_run(run_name=f"torch-{fmt}") as run:
        kw = {"model_kwargs": {"n_in": 4, "n_hidden": 6, "n_out": 3}} if fmt == "state_dict" else {}
        info = vpt.log_model(net, "net", format=fmt, input_example=x[:2], **kw)
    for uri in (info.model_uri, f"runs:/torch-{fmt}/net"):
        loaded = vpt.load_model(uri)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected)
    assert info.run_id == run.info.run_id


class Scaler:
    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, X):
        return np.asarray(X, dtype=float) * self.k


def test_pyfunc_model_logged_in_a_run_loads_back(repo: Path) -> None:
    X = np.arange(12, dtype=float).reshape(4, 3)
    with vtrack.start_run(run_name="scaler"):
        vpf.log_model(Scaler(2.5), "pyfunc-model", input_example=X[:2])
    loaded = vpf.load_model("runs:/scaler/pyfunc-model")
    np.testing.assert_array_equal(loaded.predict(X), X * 2.5)


def test_log_model_without_a_run_starts_one_and_missing_model_is_not_found(
    repo: Path, data
) -> None:
    X, y = data
    clf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    info = vsk.log_model(clf, "model")  # no active run: one is started, as in MLflow
    assert vtrack.active_run().info.run_id == info.run_id
    vtrack.end_run()
    with vtrack.start_run() as run:
        pass
    with pytest.raises(ArtifactNotFoundError):
        vsk.load_model(f"runs:/{run.info.run_id}/model")
