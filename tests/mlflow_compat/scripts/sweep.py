"""A nested sweep: parent and children, system tags, search by run name, get_parent_run."""

import json

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType

mlflow.set_experiment("sweep")
with mlflow.start_run(run_name="parent") as parent:
    for lr in (0.1, 0.01, 0.001):
        with mlflow.start_run(run_name=f"lr-{lr}", nested=True):
            mlflow.log_param("lr", lr)
            mlflow.log_metric("loss", 1.0 / (1 + 100 * lr))
client = MlflowClient()
children = mlflow.search_runs(
    filter_string="params.lr != ''",
    order_by=["metrics.loss ASC"],
    output_format="list",
)
best = children[0]
exp = mlflow.get_experiment_by_name("sweep")
by_name = mlflow.search_runs(filter_string="tags.`mlflow.runName` = 'lr-0.1'")
print(
    "RESULT "
    + json.dumps(
        {
            "best": best.data.tags["mlflow.runName"],
            "best_parent_is_parent": best.data.tags["mlflow.parentRunId"] == parent.info.run_id,
            "get_parent_run": client.get_parent_run(best.info.run_id).info.run_name,
            "n_children": len(children),
            "by_name": list(by_name["tags.mlflow.runName"]),
            "experiments": sorted(
                e.name
                for e in client.search_experiments(view_type=ViewType.ALL)
                if e.name == "sweep"
            ),
            "exp_id_matches": best.info.experiment_id == exp.experiment_id,
        },
        sort_keys=True,
    )
)
