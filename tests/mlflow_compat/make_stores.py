"""Make a real MLflow sqlite store and a real mlruns folder with MLflow itself (a script).

``python make_stores.py DIR`` writes ``DIR/mlflow.db`` (artifacts under ``DIR/artifacts``)
and the mlruns folder ``DIR/filestore``, and prints nothing else than ``done``. Both hold:

- experiment ``exp-a``: a parent run (params of every kind, a 5-step ``loss`` history
  with its own timestamps, a NaN point, a text and a binary artifact, a dataset input,
  in the sqlite store also an MLflow 3 logged model) with a nested child run;
- experiment ``exp-b``: one run with a 3-step ``acc`` history;
- experiment ``exp-c``: one run whose param key vtrack refuses (``a..b``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
from mlflow.entities import Metric

T0 = 1_700_000_000_000
BINARY = bytes(range(256)) * 3


def fill(uri: str, with_model: bool) -> None:
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    mlflow.set_experiment("exp-a")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": 0.1, "n": 3, "flag": True, "name": "x", "tiny": "1e-3",
                           "padded": "01"})  # fmt: skip
        client.log_batch(parent.info.run_id, metrics=[
            Metric("loss", 1.0 / (i + 1), T0 + 10 * i, i) for i in range(5)
        ] + [Metric("odd", float("nan"), T0, 0)])  # fmt: skip
        mlflow.set_tag("team", "vision")
        mlflow.log_text("hello from mlflow", "notes/readme.txt")
        bin_dir = Path(os.environ["SCRATCH"]) / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "blob.bin").write_bytes(BINARY)
        mlflow.log_artifact(str(bin_dir / "blob.bin"), "data")
        import pandas as pd

        ds = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2, 3]}), source="s3://bucket/train.csv",
                                     name="train")  # fmt: skip
        mlflow.log_input(ds, context="training")
        if with_model:
            from mlflow import sklearn as mlflow_sklearn
            from sklearn.linear_model import LinearRegression

            model = LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0])
            mlflow_sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        with mlflow.start_run(run_name="child", nested=True) as child:
            client.log_batch(child.info.run_id, metrics=[Metric("acc", 0.5, T0 + 5, 0)])
    mlflow.set_experiment("exp-b")
    with mlflow.start_run(run_name="solo") as solo:
        client.log_batch(solo.info.run_id, metrics=[
            Metric("acc", 0.1 * i, T0 + i, i) for i in range(3)
        ])  # fmt: skip
    mlflow.set_experiment("exp-c")
    with mlflow.start_run(run_name="refused"):
        mlflow.log_param("a..b", 1)  # MLflow takes the key; vtrack's rules refuse ".."


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["SCRATCH"] = str(out / "scratch")
    os.chdir(out)  # MLflow puts a sqlite store's artifacts in ./mlruns of the cwd
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = f"sqlite:///{out / 'mlflow.db'}"
    SqlAlchemyStore(db, str(out / "artifacts"))  # tables, Default experiment's root
    fill(db, with_model=True)
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    fill(f"file:{out / 'filestore'}", with_model=False)
    print("done")


if __name__ == "__main__":
    main()
