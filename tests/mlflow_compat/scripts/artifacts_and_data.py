"""Artifacts, tables, images, dicts and experiment tags, all with an implicit run."""

import json

import mlflow
import numpy as np
import pandas as pd

mlflow.set_experiment("artifacts")
mlflow.set_experiment_tag("team", "vision")
mlflow.log_dict({"layers": [64, 32]}, "config.json")  # no start_run: one is started
mlflow.log_text("hello", "notes/hello.txt")
mlflow.log_table(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "table.json")
for step in range(2):
    mlflow.log_image(np.full((4, 4, 3), 40 * step, dtype=np.uint8), key="sample", step=step)
run = mlflow.active_run()
uri = mlflow.get_artifact_uri()
mlflow.end_run()
table = mlflow.load_table("table.json", run_ids=[run.info.run_id])
images = [
    f.path for f in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="images")
]
print(
    "RESULT "
    + json.dumps(
        {
            "config": mlflow.artifacts.load_dict(uri + "/config.json"),
            "text": mlflow.artifacts.load_text(uri + "/notes/hello.txt"),
            "table": table.to_dict(orient="list"),
            "image_steps": sorted({p.split("+step+")[1].split("+")[0] for p in images}),
            "exp_tag": mlflow.get_experiment_by_name("artifacts").tags["team"],
            "status": mlflow.get_run(run.info.run_id).info.status,
        },
        sort_keys=True,
    )
)
