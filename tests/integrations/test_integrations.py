"""Callbacks and autologging switches in small real training runs of their frameworks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vtrack
from tests.conftest import run_script
from vtrack.autolog import AutologWarning


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    vtrack.autolog(disable=True)


def _runs() -> list[vtrack.Run]:
    return vtrack.search_runs(search_all_experiments=True, output_format="list")


@pytest.mark.parametrize(
    ("module", "framework"),
    [("pytorch", "torch"), ("lightning", "lightning"), ("xgboost", "xgboost"),
     ("lightgbm", "lightgbm"), ("keras", "keras"), ("transformers", "transformers")],
)  # fmt: skip
def test_importing_an_integration_imports_no_framework(
    repo: Path, module: str, framework: str
) -> None:
    code = f"""
    import sys, json
    import vtrack, vtrack.autolog, vtrack.sklearn
    import vtrack.integrations.{module}
    vtrack.autolog()
    heavy = ["torch", "lightning", "pytorch_lightning", "xgboost", "lightgbm", "keras",
             "transformers", "sklearn", "numpy", "pandas", "tensorflow"]
    print(json.dumps([m for m in heavy if m in sys.modules]))
    """
    res = run_script(code, cwd=repo)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []


def _tiny_torch():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 3), torch.randn(32, 1)
    return torch, model, opt, X, y


def test_train_loop_logging_failure_warns_once_and_training_goes_on(repo: Path) -> None:
    from vtrack.integrations.pytorch import TrainLoop

    torch, model, opt, X, y = _tiny_torch()
    with vtrack.start_run() as run:
        vtrack.log_param("epochs", 1)
        with pytest.warns(AutologWarning, match="could not log params") as caught:
            with TrainLoop(model, opt, params={"epochs": 3}, log_model=False) as loop:
                for _ in range(3):
                    loss = torch.nn.functional.mse_loss(model(X), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    loop.step(loss=loss, note="not a number")
    assert len([w for w in caught if issubclass(w.category, AutologWarning)]) == 1
    assert [m.step for m in vtrack.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]
    assert "note" not in vtrack.get_run(run.info.run_id).data.metrics


def test_train_loop_ends_its_own_run_failed_and_lets_the_exception_through(repo: Path) -> None:
    from vtrack.integrations.pytorch import TrainLoop

    _, model, opt, _, _ = _tiny_torch()
    with pytest.raises(RuntimeError, match="diverged"):
        with TrainLoop(model, opt) as loop:
            loop.step(loss=float("nan"))
            raise RuntimeError("diverged")
    [run] = _runs()
    assert run.info.status == "FAILED" and run.info.run_id == loop.run_id
    assert "model" not in {a.path for a in vtrack.list_artifacts(run_id=run.info.run_id)}


def test_train_loop_with_an_importable_class_logs_a_state_dict(repo: Path) -> None:
    from vtrack.integrations.pytorch import TrainLoop

    torch, model, opt, X, _ = _tiny_torch()
    with TrainLoop(model, opt, model_kwargs={"in_features": 3, "out_features": 1}) as loop:
        loop.epoch(val=1.0)
    meta = vtrack.load_dict(run_id=loop.run_id, artifact_path="model/model.yaml")
    assert meta["format"] == "state_dict" and meta["model_class"].endswith(":Linear")
    loaded = vtrack.pytorch.load_model(f"runs:/{loop.run_id}/model")
    assert torch.equal(loaded(X), model(X))


def test_vtrack_autolog_covers_sklearn_and_boosting_without_double_logging(repo: Path) -> None:
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    vtrack.autolog(log_models=False)
    xgb.XGBClassifier(n_estimators=5).fit(X, y, eval_set=[(X, y)], verbose=False)
    LogisticRegression().fit(X, y)
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=5)).fit(X, y)
    tags = sorted(r.data.tags["vtrack.autolog"] for r in _runs())
    assert tags == ["sklearn", "sklearn", "xgboost"]  # the pipeline's inner train: not again
    vtrack.autolog(disable=True)
    assert not hasattr(xgb.train, "__vtrack_original__")
    assert not hasattr(LogisticRegression.fit, "__vtrack_original__")
    LogisticRegression().fit(X, y)
    assert len(_runs()) == 3


def test_lightgbm_autolog_records_and_disable_restores(repo: Path) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] + rng.normal(scale=0.1, size=300)
    from vtrack.integrations import lightgbm as vlgb

    vlgb.autolog()
    with vtrack.start_run() as run:
        booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, y),
                            num_boost_round=8, valid_sets=[lgb.Dataset(X, y)],
                            callbacks=[lgb.early_stopping(3, verbose=False)])  # fmt: skip
    got = vtrack.get_run(run.info.run_id)
    assert got.data.params["num_boost_round"] == 8 and got.data.params["objective"] == "regression"
    assert [m.step for m in vtrack.get_metric_history(run.info.run_id, "valid_0-l2")] == list(
        range(8)
    )
    assert got.data.metrics["best_iteration"] == booster.best_iteration
    loaded = vtrack.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))
    vlgb.autolog(disable=True)
    assert not hasattr(lgb.train, "__vtrack_original__")
