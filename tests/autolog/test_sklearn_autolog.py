"""scikit-learn autologging on real estimators and datasets, checked through the store."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vtrack
import vtrack.sklearn
from tests.conftest import run_script
from vtrack.autolog import AutologWarning
from vtrack.models import load_input_example, read_model_meta


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    vtrack.sklearn.autolog(disable=True)


def _runs() -> list[vtrack.Run]:
    return vtrack.search_runs(search_all_experiments=True, output_format="list")


def _grid() -> GridSearchCV:
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    grid = {
        "logisticregression__C": [0.01, 0.1, 1.0, 10.0],
        "logisticregression__fit_intercept": [True, False],
    }
    return GridSearchCV(pipe, grid, cv=3)


def test_grid_search_makes_a_parent_with_a_child_per_best_candidate(repo: Path) -> None:
    X, y = load_iris(return_X_y=True)
    vtrack.sklearn.autolog()
    search = _grid()
    assert search.fit(X, y) is search
    runs = _runs()
    [parent] = [r for r in runs if r.info.parent_run_id is None]
    children = [r for r in runs if r.info.parent_run_id == parent.info.run_id]
    assert len(runs) == 1 + 5 and len(children) == 5  # max_tuning_runs=5 of 8 candidates
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    for name, value in search.best_params_.items():
        assert parent.data.params[f"best_{name}"] == value
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.data.metrics["training_score"] == pytest.approx(search.score(X, y))
    assert {"training_accuracy_score", "training_f1_score", "training_log_loss",
            "training_roc_auc"} <= set(parent.data.metrics)  # fmt: skip
    arts = {a.path for a in vtrack.list_artifacts(run_id=parent.info.run_id)}
    assert {"model", "best_estimator", "cv_results.csv"} <= arts
    best = vtrack.sklearn.load_model(f"runs:/{parent.info.run_id}/best_estimator")
    np.testing.assert_array_equal(best.predict(X), search.best_estimator_.predict(X))
    ranks = sorted(c.data.metrics["rank_test_score"] for c in children)
    assert ranks == sorted(search.cv_results_["rank_test_score"])[:5]
    for child in children:
        i = int(child.data.tags["vtrack.autolog.candidate"])
        for name, value in search.cv_results_["params"][i].items():
            assert child.data.params[name] == value
        assert child.data.metrics["mean_test_score"] == pytest.approx(
            search.cv_results_["mean_test_score"][i]
        )
        assert child.info.status == "FINISHED"
        assert {d["context"] for d in child.inputs.datasets} == {"train"}
    roles = {d["tags"]["role"]: d for d in parent.inputs.datasets}
    assert roles["features"]["schema"] == {"dtype": "float64", "shape": [150, 4]}
    assert roles["targets"]["rows"] == 150


def test_max_tuning_runs_none_records_every_candidate(repo: Path) -> None:
    X, y = load_iris(return_X_y=True)
    vtrack.sklearn.autolog(max_tuning_runs=None, log_models=False)
    _grid().fit(X, y)
    assert len(_runs()) == 1 + 8


def test_fit_inside_an_active_run_logs_into_it(repo: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    vtrack.sklearn.autolog()
    with vtrack.start_run() as run:
        model = LinearRegression().fit(X, y)
    [only] = _runs()
    assert only.info.run_id == run.info.run_id
    m = only.data.metrics
    pred = model.predict(X)
    assert m["training_mean_squared_error"] == pytest.approx(np.mean((pred - y) ** 2))
    assert m["training_root_mean_squared_error"] == pytest.approx(
        np.sqrt(m["training_mean_squared_error"])
    )
    assert m["training_r2_score"] == pytest.approx(model.score(X, y))
    assert only.data.params["fit_intercept"] is True
    folder = vtrack.download_artifacts(run_id=run.info.run_id, artifact_path="model")
    meta = read_model_meta(folder)
    assert meta.signature is not None and meta.signature.inputs.shape == (-1, 10)
    np.testing.assert_array_equal(load_input_example(folder), X[:5])


def test_fit_that_raises_raises_the_same_and_ends_its_run_failed(repo: Path) -> None:
    vtrack.sklearn.autolog()
    with pytest.raises(ValueError) as info:
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    expected = None
    vtrack.sklearn.autolog(disable=True)
    try:
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])
    except ValueError as exc:
        expected = str(exc)
    assert str(info.value) == expected
    [run] = _runs()
    assert run.info.status == "FAILED"
    assert run.data.params["C"] == 1.0  # params are logged before fit


def test_flags_turn_parts_off(repo: Path) -> None:
    X, y = load_iris(return_X_y=True)
    vtrack.sklearn.autolog(log_models=False, log_datasets=False, log_training_metrics=False)
    with vtrack.start_run() as run:
        LogisticRegression(max_iter=500).fit(X, y)
    got = vtrack.get_run(run.info.run_id)
    assert got.data.params and not got.data.metrics and not got.inputs.datasets
    assert vtrack.list_artifacts(run_id=run.info.run_id) == []
    vtrack.sklearn.autolog(log_input_examples=False)
    with vtrack.start_run() as run:
        LogisticRegression(max_iter=500).fit(X, y)
    folder = vtrack.download_artifacts(run_id=run.info.run_id, artifact_path="model")
    meta = read_model_meta(folder)
    assert meta.input_example is None and meta.signature.outputs is not None


def test_disable_puts_the_original_methods_back(repo: Path) -> None:
    original = LogisticRegression.__dict__["fit"]
    vtrack.sklearn.autolog()
    assert LogisticRegression.__dict__["fit"] is not original
    vtrack.sklearn.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original
    LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert _runs() == []


class Unsaveable(LogisticRegression):
    """A model whose fitted state holds a lock: joblib cannot serialize it."""

    def fit(self, X, y, sample_weight=None):  # noqa: ANN001, ANN201
        super().fit(X, y, sample_weight=sample_weight)
        self.lock_ = threading.Lock()
        return self


def test_a_model_that_cannot_be_saved_warns_and_fit_returns_normally(repo: Path) -> None:
    X, y = load_iris(return_X_y=True)
    vtrack.sklearn.autolog()  # Unsaveable is patched too: user-defined estimators are recorded
    model = Unsaveable(max_iter=500)
    with pytest.warns(AutologWarning, match="could not log the model"):
        returned = model.fit(X, y)
    assert returned is model and hasattr(model, "lock_")
    [run] = _runs()
    assert run.info.status == "FINISHED"
    assert run.data.metrics["training_accuracy_score"] > 0.9
    assert "model" not in {a.path for a in vtrack.list_artifacts(run_id=run.info.run_id)}


def test_vtrack_autolog_waits_for_the_framework_import(repo: Path) -> None:
    code = """
    import sys, json
    import vtrack
    vtrack.autolog()
    imported_early = "sklearn" in sys.modules
    import sklearn
    from sklearn.datasets import load_iris  # reads its files through the module's loader
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=300).fit(X, y)
    runs = vtrack.search_runs(output_format="list")
    loader = type(sklearn.__spec__.loader).__name__
    print(json.dumps([imported_early, len(runs), runs[0].data.tags.get("vtrack.autolog"), loader]))
    """
    res = run_script(code, cwd=repo)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [
        False,
        1,
        "sklearn",
        "SourceFileLoader",
    ]


_DIFF = """
import json, os
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
if os.environ["WHO"] == "mlflow":
    import mlflow as lib
    lib.set_tracking_uri(os.environ["MLFLOW_URI"])
else:
    import vtrack as lib
lib.sklearn.autolog(log_models=False, log_datasets=False)
with lib.start_run() as run:
    LogisticRegression(max_iter=300).fit(X, y)
data = lib.get_run(run.info.run_id).data
tags = {k: v for k, v in data.tags.items() if k.startswith("estimator_")}
print(json.dumps({"metrics": data.metrics, "tags": tags}))
"""


def test_metric_names_and_values_match_mlflow_autolog(repo: Path, tmp_path: Path) -> None:
    outs = {}
    for who in ("mlflow", "vtrack"):
        env = {"WHO": who, "MLFLOW_URI": f"sqlite:///{tmp_path}/mlflow.db"}
        res = run_script(_DIFF, cwd=repo, env=env, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        outs[who] = json.loads(res.stdout.strip().splitlines()[-1])
    assert outs["vtrack"]["tags"] == outs["mlflow"]["tags"]
    assert set(outs["vtrack"]["metrics"]) == set(outs["mlflow"]["metrics"])
    for k, v in outs["mlflow"]["metrics"].items():
        assert outs["vtrack"]["metrics"][k] == pytest.approx(v, rel=1e-9), k


class Counting(LogisticRegression):
    """Counts the rows autologging predicts on after fit (the work it adds to a fit)."""

    rows: list[tuple[str, int]] = []

    def predict(self, X):  # noqa: ANN001, ANN201
        Counting.rows.append(("predict", len(X)))
        return super().predict(X)

    def predict_proba(self, X):  # noqa: ANN001, ANN201
        Counting.rows.append(("predict_proba", len(X)))
        return super().predict_proba(X)


def test_autolog_adds_one_prediction_over_the_training_data(repo: Path) -> None:
    # What autologging costs a real fit, as work rather than time (benchmarks/ has the
    # timings): one predict and one predict_proba over the training data for all the
    # training metrics, and one predict on the 5-row input example for the signature.
    X, y = load_iris(return_X_y=True)
    vtrack.sklearn.autolog()
    Counting.rows = []
    with vtrack.start_run():
        Counting(max_iter=500).fit(X, y)
    assert sorted(Counting.rows) == [("predict", 5), ("predict", 150), ("predict_proba", 150)]
