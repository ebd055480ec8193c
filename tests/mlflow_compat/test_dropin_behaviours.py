"""MLflow behaviours that ported scripts rely on, one by one, in a real repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vtrack
from tests.conftest import ROOT, run_script
from vtrack.entities import ViewType
from vtrack.errors import (
    ArtifactNotFoundError,
    ValidationError,
)
from vtrack.query import Comparison, parse_filter, parse_order_by


def test_import_vtrack_stays_lazy_with_the_mlflow_names() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import vtrack as mlflow; "
        "dt = time.perf_counter() - t; "
        "assert callable(mlflow.MlflowClient) and mlflow.ViewType.ALL == 3; "
        "assert not any(m in sys.modules for m in ('pandas', 'numpy', 'torch', 'sklearn', 'mlflow'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_mlflow_module_names_import(repo: Path) -> None:
    proc = run_script(
        """
        import vtrack as mlflow
        import vtrack.sklearn, vtrack.pytorch, vtrack.pyfunc, vtrack.data, vtrack.tracking
        from vtrack.models import infer_signature, ModelSignature
        from vtrack.tracking import MlflowClient
        from vtrack.entities import ViewType, Run, RunStatus, Metric, Param, RunTag, Dataset
        from vtrack.artifacts import download_artifacts, load_text, load_dict, list_artifacts
        assert MlflowClient is mlflow.TrackingClient
        assert mlflow.models.ModelSignature is mlflow.models.Signature
        print("ok")
        """,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_logging_with_no_active_run_starts_one_that_ends_at_exit(repo: Path) -> None:
    proc = run_script(
        "import vtrack as mlflow\nmlflow.log_param('a', 1)\nprint(mlflow.active_run().info.run_id)",
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr
    run = vtrack.get_run(proc.stdout.strip())
    assert run.info.status == "FINISHED" and run.data.params == {"a": 1}


def test_system_tags_are_derived_readable_and_searchable(repo: Path) -> None:
    with vtrack.start_run(run_name="parent", description="notes") as parent:
        with vtrack.start_run(run_name="child", nested=True) as child:
            pass
    got = vtrack.get_run(child.info.run_id)
    tags = got.data.tags
    assert tags["mlflow.runName"] == "child"
    assert tags.get("mlflow.parentRunId") == parent.info.run_id
    assert "mlflow.user" in tags and tags["mlflow.source.git.commit"] == got.info.source["commit"]
    assert vtrack.get_run(parent.info.run_id).data.tags["mlflow.note.content"] == "notes"
    assert dict(tags) == {}  # iteration and equality see only logged tags
    found = vtrack.search_runs(
        filter_string="tags.`mlflow.runName` = 'child'", output_format="list"
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]
    frame = vtrack.search_runs()
    assert set(frame["tags.mlflow.runName"]) == {"parent", "child"}
    assert vtrack.MlflowClient().get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert vtrack.MlflowClient().get_parent_run(parent.info.run_id) is None


def test_artifact_uri_and_get_artifact_uri(repo: Path) -> None:
    with vtrack.start_run() as run:
        assert vtrack.get_artifact_uri() == f"runs:/{run.info.run_id}"
        assert vtrack.get_artifact_uri("a/b.txt") == f"runs:/{run.info.run_id}/a/b.txt"
        vtrack.log_text("x", "a/b.txt")
        assert vtrack.artifacts.load_text(vtrack.get_artifact_uri("a/b.txt")) == "x"
    assert vtrack.get_run(run.info.run_id).info.artifact_uri == f"runs:/{run.info.run_id}"


def test_experiment_tags_and_search_experiments_by_view_type_and_filter(repo: Path) -> None:
    vtrack.set_experiment("nlp-a")
    vtrack.set_experiment_tags({"team": "nlp", "tmp": "1"})
    vtrack.delete_experiment_tag("tmp")
    other = vtrack.create_experiment("cv-b")
    vtrack.delete_experiment(other)
    assert vtrack.get_experiment_by_name("nlp-a").tags == {"team": "nlp"}
    names = lambda exps: sorted(e.name for e in exps)  # noqa: E731
    assert names(vtrack.search_experiments(view_type=ViewType.ALL)) == ["Default", "cv-b", "nlp-a"]
    assert names(vtrack.search_experiments(view_type=3)) == ["Default", "cv-b", "nlp-a"]
    assert names(vtrack.search_experiments(view_type=ViewType.DELETED_ONLY)) == ["cv-b"]
    assert names(vtrack.search_experiments(filter_string="tags.team = 'nlp'")) == ["nlp-a"]
    assert names(vtrack.search_experiments(view_type=3, filter_string="name LIKE '%-b'")) == [
        "cv-b"
    ]
    with pytest.raises(ValidationError):
        vtrack.search_experiments(view_type=7)


def test_tables_and_image_series(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_table({"x": [1, 2], "y": ["a", "b"]}, "t.json")
        for step in range(3):
            vtrack.log_image(np.zeros((2, 2), dtype=np.uint8), key="val/sample", step=step)
        with pytest.raises(ValidationError, match="not both"):
            vtrack.log_image(np.zeros((2, 2), dtype=np.uint8), "a.png", key="k")
        with pytest.raises(ValidationError, match=".json"):
            vtrack.log_table({"x": [1]}, "t.csv")
    table = vtrack.load_table("t.json", run_ids=[run.info.run_id], extra_columns=["run_id"])
    assert table.to_dict(orient="list") == {
        "x": [1, 2],
        "y": ["a", "b"],
        "run_id": [run.info.run_id] * 2,
    }
    images = [f.path for f in vtrack.list_artifacts(run_id=run.info.run_id, artifact_path="images")]
    assert sorted(p.split("+step+")[1].split("+")[0] for p in images) == ["0", "1", "2"]
    assert all(p.startswith("images/val#sample+step+") for p in images)


def test_mlflow_uri_forms_work_or_say_what_vtrack_accepts(repo: Path, tmp_path: Path) -> None:
    vtrack.set_tracking_uri("file:./store")  # MLflow's relative file: form
    with vtrack.start_run():
        vtrack.log_metric("m", 1.0)
    assert (repo / "store").is_dir()
    for uri in (
        "sqlite:///mlflow.db",
        "http://localhost:5000",
        "databricks",
        "postgresql://u@h/db",
    ):
        with pytest.raises(ValidationError, match="not a vtrack store") as err:
            vtrack.set_tracking_uri(uri)
        assert "vtrack push/pull" in str(err.value)


def test_over_long_param_and_tag_values_are_refused_not_truncated(repo: Path) -> None:
    # deliberate difference: MLflow 3.17 truncates to 6000/8000 characters with a warning
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError):
            vtrack.log_param("p", "x" * 6001)
        with pytest.raises(ValidationError):
            vtrack.set_tag("t", "x" * 8001)
    assert vtrack.get_run(run.info.run_id).data.params == {}


def test_datasets_from_pandas_get_a_real_digest(repo: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "label": [0, 1, 0]})
    ds = vtrack.data.from_pandas(df, targets="label", name="train", source="s3://bucket/train.csv")
    with vtrack.start_run() as run:
        entry = vtrack.log_input(ds, "training")
    assert entry["digest"] == ds.digest and ds.digest.startswith("xxh3-128:")
    assert entry["name"] == "train" and entry["context"] == "training"
    assert entry["tags"]["mlflow.targets"] == "label" and entry["source"] == "s3://bucket/train.csv"
    assert vtrack.lineage(ds.digest)[0]["run_id"] == run.info.run_id
    assert ds.to_entity().schema is not None
    with pytest.raises(ValidationError):
        vtrack.data.from_pandas(df, targets="missing")


def test_logged_models_ids_uris_checkpoints_and_search(repo: Path) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
    with vtrack.start_run() as run:
        infos = [vtrack.sklearn.log_model(LinearRegression().fit(X, y * (s + 1)), name="lin", step=s,
                                          params={"s": s}) for s in range(3)]  # fmt: skip
        vtrack.log_metric("mse", 0.5, step=2, model_id=infos[-1].model_id)
        legacy = vtrack.sklearn.log_model(LinearRegression().fit(X, y), "legacy")
    ids = [i.model_id for i in infos]
    assert len(set(ids)) == 3 and all(i.model_uri == f"models:/{i.model_id}" for i in infos)
    assert [i.artifact_path for i in infos] == ["lin", "lin-step-1", "lin-step-2"]
    assert legacy.model_uri == f"runs:/{run.info.run_id}/legacy" and legacy.model_id
    np.testing.assert_allclose(vtrack.pyfunc.load_model(infos[1].model_uri).predict(X), y * 2)
    model = vtrack.get_logged_model(ids[2])
    assert (model.name, model.step, model.params, model.source_run_id) == (
        "lin",
        2,
        {"s": "2"},
        run.info.run_id,
    )
    assert [(m.key, m.value, m.step) for m in model.metrics] == [("mse", 0.5, 2)]
    assert vtrack.last_logged_model().model_id == legacy.model_id
    found = vtrack.search_logged_models(filter_string="name = 'lin' AND params.s >= 1",
                                        order_by=[{"field_name": "params.s", "ascending": False}])  # fmt: skip
    assert [m.model_id for m in found] == [ids[2], ids[1]]
    with pytest.raises(ArtifactNotFoundError):
        vtrack.get_logged_model("m-" + "0" * 32)
    with pytest.raises(ValidationError):
        vtrack.get_logged_model("nope")


def test_registered_model_name_registers_and_a_bad_name_leaves_nothing(repo: Path) -> None:
    from sklearn.linear_model import LinearRegression

    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match="must not contain"):
            vtrack.sklearn.log_model(LinearRegression(), name="m", registered_model_name="a/b")
        with pytest.raises(ValidationError, match="not both"):
            vtrack.sklearn.log_model(LinearRegression(), "a", name="b")
        assert vtrack.list_artifacts(run_id=run.info.run_id) == []  # nothing half-written
        info = vtrack.sklearn.log_model(LinearRegression(), name="m", registered_model_name="prod")
    assert info.registered_model_version == 1
    assert vtrack.MlflowClient().get_model_version("prod", 1).run_id == run.info.run_id
    with pytest.raises(ValidationError):
        vtrack.register_model("models:/m-x", "prod")


@pytest.mark.parametrize(
    ("mlflow_form", "vtrack_form"),
    [
        ("`metrics`.acc > 0", "metrics.acc > 0"),
        ("parameter.lr = '0.1'", "params.lr = '0.1'"),
        ("parameters.`lr` = '0.1'", "params.lr = '0.1'"),
        ("params.'a b' = 'x'", "params.\"a b\" = 'x'"),
        ("attributes.created > 5", "attributes.start_time > 5"),
        ("attributes.`Run name` = 'r'", "attributes.run_name = 'r'"),
        ("tags.`mlflow.user` = 'bob'", "attributes.user_id = 'bob'"),
    ],
)
def test_mlflow_filter_spellings_mean_what_they_mean_in_mlflow(
    mlflow_form: str, vtrack_form: str
) -> None:
    assert parse_filter(mlflow_form) == parse_filter(vtrack_form)


def test_backticked_entity_in_order_by() -> None:
    assert parse_order_by(["`metrics`.acc DESC"])[0] == parse_order_by(["metrics.acc DESC"])[0]
    assert parse_filter("`tags`.`a.b` = 'x'") == (Comparison("tags", "a.b", "=", "x"),)
