"""MLflow-style training scripts run unchanged under ``import vtrack as mlflow``.

Each script in ``scripts/`` is written against MLflow's API. It runs once under MLflow
3.17 itself (a real sqlite store) and once mechanically ported (only its imports
changed, :func:`port`) in a real git repository under vtrack; both print the same
``RESULT`` document: metrics to the last digit, params, names, statuses, predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_script
from tests.mlflow_compat.mlflow_port import SCRIPTS, port, run_file

# MLflow itself is slow to import and to migrate its sqlite store on a loaded machine
pytestmark = pytest.mark.timeout(1200)

NAMES = sorted(p.stem for p in SCRIPTS.glob("*.py"))


@pytest.fixture(scope="module")
def under_mlflow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every script's RESULT under MLflow 3.17 itself, run once for the module."""
    out = tmp_path_factory.mktemp("mlflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VTRACK_", "MLFLOW_"))}
    # autologging last: it patches sklearn for the rest of the process
    order = sorted(NAMES, key=lambda n: n == "implicit_autolog")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "run_under_mlflow.py"), str(out),
         *(str(SCRIPTS / f"{n}.py") for n in order)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_port_changes_only_imports() -> None:
    src = "import mlflow\nimport mlflow.sklearn\nfrom mlflow.models import infer_signature\nfrom mlflow import MlflowClient\nx = mlflow.log_metric\n"
    assert port(src) == (
        "import vtrack as mlflow\nimport vtrack.sklearn\nfrom vtrack.models import infer_signature\n"
        "from vtrack import MlflowClient\nx = mlflow.log_metric\n"
    )


@pytest.mark.parametrize("name", NAMES)
def test_script_gives_the_same_results_under_vtrack_as_under_mlflow(
    name: str, make_repo, under_mlflow: dict[str, Any]
) -> None:
    source = (SCRIPTS / f"{name}.py").read_text()
    repo = make_repo("repo", {"train.py": port(source)})
    head = git(repo, "rev-parse", "HEAD")
    got = run_file(repo / "train.py", repo)
    assert got == under_mlflow[name]
    # the runs are git commits on hidden refs; the user's branch and index are untouched
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/runs/")
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_a_torch_model_defined_in_main_loads_in_a_fresh_process(make_repo) -> None:
    repo = make_repo("repo", {"train.py": port((SCRIPTS / "torch_main.py").read_text())})
    assert run_file(repo / "train.py", repo)["same"] is True
    uri = (repo / "model_uri.txt").read_text()
    assert uri.startswith("models:/m-")
    proc = run_script(
        f"""
        import torch, vtrack.pytorch
        model = vtrack.pytorch.load_model({uri!r})
        assert type(model).__name__ == "Net" and type(model).__module__ == "__main__"
        print(model(torch.zeros(1, 4)).shape)
        """,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "torch.Size([1, 2])"
