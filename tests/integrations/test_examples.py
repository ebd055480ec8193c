"""Each example under examples/integrations runs (a real training loop of its framework, on
the CPU) and leaves the run it promises: metrics at the framework's own step, params, models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vtrack
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "integrations"


def _run_example(name: str, repo: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    res = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    out = {}
    for line in res.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("RUN", "AUTOLOG"):
            out[word] = rest.strip()
    return out


def _steps(run_id: str, key: str) -> list[int]:
    return [m.step for m in vtrack.get_metric_history(run_id, key)]


def _artifacts(run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in vtrack.list_artifacts(run_id=run_id, artifact_path=path)}


@pytest.mark.slow
def test_sklearn_autolog_example(repo: Path) -> None:
    ids = _run_example("sklearn_autolog.py", repo)
    parent = vtrack.get_run(ids["RUN"])
    assert parent.info.status == "FINISHED"
    assert {"model", "best_estimator", "cv_results.csv"} <= _artifacts(ids["RUN"])
    children = vtrack.search_runs(filter_string="tags.vtrack.autolog = 'sklearn'",
                                  output_format="list")  # fmt: skip
    assert sum(c.info.parent_run_id == ids["RUN"] for c in children) == 3


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated:DeprecationWarning")
def test_pytorch_loop_example(repo: Path) -> None:
    run_id = _run_example("pytorch_loop.py", repo)["RUN"]
    run = vtrack.get_run(run_id)
    assert _steps(run_id, "loss") == list(range(1, 41))  # 5 epochs x 8 batches, global steps
    assert _steps(run_id, "train_accuracy") == [0, 1, 2, 3, 4]
    assert run.data.params["optimizer"] == "SGD" and run.data.params["optimizer.lr"] == 0.1
    assert run.data.params["model.num_parameters"] == 8 * 16 + 16 + 16 * 2 + 2
    assert "system/cpu_utilization_percentage" in run.data.metrics  # log_system_metrics=True
    model = vtrack.pytorch.load_model(f"runs:/{run_id}/model")
    import torch

    assert model(torch.zeros(3, 8)).shape == (3, 2)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated:DeprecationWarning")
def test_lightning_example_logs_checkpoints_as_models(repo: Path) -> None:
    run_id = _run_example("lightning_logger.py", repo)["RUN"]
    run = vtrack.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"hidden": 16, "lr": 0.05}
    steps = _steps(run_id, "train_loss")
    assert steps and steps == sorted(steps) and steps[-1] < 36  # the trainer's global step
    assert _steps(run_id, "val_loss") == [11, 23, 35]  # end of each of the 3 epochs
    checkpoints = _artifacts(run_id, "checkpoints")
    assert checkpoints == {f"checkpoints/epoch_{e}-step_{12 * (e + 1)}" for e in range(3)}
    meta = vtrack.load_dict(run_id=run_id, artifact_path="model/model.yaml")
    assert meta["flavor"] == "pytorch" and meta["metadata"]["monitor"] == "val_loss"
    import torch

    model = vtrack.pytorch.load_model(f"runs:/{run_id}/checkpoints/epoch_0-step_12")
    assert model(torch.zeros(2, 8)).shape == (2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosting_examples_log_rounds_and_autolog(repo: Path, library: str) -> None:
    ids = _run_example(f"{library}_callback.py", repo)
    names = ("train-logloss", "val-logloss") if library == "xgboost" else ("train-l2", "val-l2")
    for key in names:
        assert _steps(ids["RUN"], key) == list(range(20))  # the boosting round
    auto = vtrack.get_run(ids["AUTOLOG"])
    assert auto.data.tags["vtrack.autolog"] == library and auto.info.status == "FINISHED"
    assert auto.data.params["num_boost_round"] == 15 or library == "xgboost"
    key = "validation_0-logloss" if library == "xgboost" else "valid_0-l2"
    assert _steps(ids["AUTOLOG"], key)[:3] == [0, 1, 2]
    loaded = vtrack.pyfunc.load_model(f"runs:/{ids['AUTOLOG']}/model")  # MLflow's PyFuncModel
    assert type(loaded.unwrap_python_model()).__name__ == "Booster"


@pytest.mark.slow
def test_keras_example(repo: Path) -> None:
    run_id = _run_example("keras_callback.py", repo)["RUN"]
    run = vtrack.get_run(run_id)
    assert _steps(run_id, "val_loss") == [0, 1, 2]  # Keras' epoch index
    assert _steps(run_id, "batch/loss") == [4 * i for i in range(1, 10)]  # 12 batches x 3 epochs
    assert run.data.params["epochs"] == 3 and run.data.params["optimizer"] == "Adam"
    assert run.data.params["optimizer.learning_rate"] == pytest.approx(0.01)
    assert _artifacts(run_id, "model") == {"model/model.keras"}


@pytest.mark.slow
def test_transformers_example_through_report_to(repo: Path) -> None:
    run_id = _run_example("transformers_trainer.py", repo)["RUN"]
    run = vtrack.get_run(run_id)
    assert _steps(run_id, "loss") == [4, 8, 12, 16, 20, 24]  # Trainer's global step
    assert _steps(run_id, "eval_loss") == [12, 24]
    assert run.data.params["max_steps"] == 24 and run.data.params["model.hidden_size"] == 32
    assert "train_runtime" in run.data.metrics
