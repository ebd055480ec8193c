"""The same MLflow-named registry calls against MLflow 3.17's sqlite store and vtrack.

One script, written for MLflow, runs once under ``mlflow`` (a real sqlite store) and once
with ``import vtrack as mlflow``; both print what the calls returned, normalised (error
kinds by MLflow's error codes), and the documents must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import git

SCRIPT = r"""
import json
import mlflow
from mlflow import MlflowClient

def kind(exc):
    code = getattr(exc, "error_code", None)
    if code:
        return code
    name = type(exc).__name__
    return {"RegisteredModelNotFoundError": "RESOURCE_DOES_NOT_EXIST",
            "RegisteredModelExistsError": "RESOURCE_ALREADY_EXISTS",
            "ValidationError": "INVALID_PARAMETER_VALUE"}.get(name, name)

def err(call):
    try:
        call()
    except Exception as exc:
        return kind(exc)
    return "no error"

class Const(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [7] * len(model_input)

out = {}
c = MlflowClient()
with mlflow.start_run() as run:
    mlflow.log_metric("auc", 0.9)
    info = mlflow.pyfunc.log_model(name="model", python_model=Const())
rm = c.create_registered_model("churn", tags={"team": "a"}, description="d")
out["created"] = [rm.name, rm.tags, rm.description, rm.aliases, len(rm.latest_versions)]
v1 = c.create_model_version("churn", info.model_uri, run.info.run_id)
v2 = mlflow.register_model(info.model_uri, "churn")
o1 = mlflow.register_model(info.model_uri, "other")
out["versions"] = [v1.version, v2.version, o1.version, type(v1.version).__name__,
                   v1.run_id == run.info.run_id, v1.current_stage, v1.status, v1.aliases]
c.set_registered_model_alias("churn", "champion", 1)
c.set_registered_model_alias("churn", "champion", "2")
c.set_registered_model_alias("churn", "staging", 1)
c.set_model_version_tag("churn", "1", "k", "v")
g = c.get_registered_model("churn")
out["model"] = [g.aliases, [v.version for v in g.latest_versions], g.tags, g.description]
a = c.get_model_version_by_alias("churn", "champion")
out["by_alias"] = [a.version, a.aliases, a.source == info.model_uri]
one = c.get_model_version("churn", 1)
out["v1"] = [one.tags, one.aliases]
out["search_rm"] = [m.name for m in c.search_registered_models()]
out["search_rm_filter"] = [m.name for m in c.search_registered_models(filter_string="name = 'churn'")]
out["search_rm_tag"] = [m.name for m in c.search_registered_models(filter_string="tags.team = 'a'")]
out["search_mv"] = [(m.name, m.version) for m in c.search_model_versions("name = 'churn'")]
out["search_mv_run"] = sorted((m.name, m.version) for m in
                              c.search_model_versions(f"run_id = '{run.info.run_id}'"))
out["fluent_search"] = [m.name for m in mlflow.search_registered_models()]
out["predict"] = list(mlflow.pyfunc.load_model("models:/churn@champion").predict([1, 2]))
out["predict_n"] = list(mlflow.pyfunc.load_model("models:/churn/1").predict([1]))
c.delete_registered_model_alias("churn", "champion")
out["after_delete_alias"] = c.get_registered_model("churn").aliases
c.set_registered_model_alias("churn", "champion", 2)
c.delete_model_version("churn", 2)
out["after_delete_version"] = [c.get_registered_model("churn").aliases,
                               [m.version for m in c.search_model_versions("name = 'churn'")]]
out["next_version"] = c.create_model_version("churn", info.model_uri, run.info.run_id).version
out["errors"] = [
    err(lambda: c.get_model_version("churn", 2)),
    err(lambda: c.create_registered_model("churn")),
    err(lambda: c.get_registered_model("nope")),
    err(lambda: c.set_registered_model_alias("churn", "a", 99)),
    err(lambda: c.set_registered_model_alias("churn", "v1", 1)),
    err(lambda: c.create_model_version("nope", info.model_uri, run.info.run_id)),
]
print("RESULT " + json.dumps(out, sort_keys=True))
"""


def _run(cwd: Path, code: str, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_registry_calls_return_what_mlflow_returns(make_repo, tmp_path: Path) -> None:
    import os

    from tests.cli.conftest import subprocess_env

    work = tmp_path / "mlflow"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
           "GIT_PYTHON_REFRESH": "quiet"}  # fmt: skip
    theirs = _run(work, SCRIPT, env)
    repo = make_repo()
    ported = SCRIPT.replace("import mlflow\nfrom mlflow import MlflowClient",
                            "import vtrack as mlflow\nfrom vtrack import MlflowClient")  # fmt: skip
    ours = _run(repo, ported, subprocess_env(repo.parent))
    assert ours == theirs
    assert theirs["versions"][:3] == [1, 2, 1] and theirs["next_version"] == 3
    assert git(repo, "rev-list", "--count", "refs/vtrack/registry") != "0"
