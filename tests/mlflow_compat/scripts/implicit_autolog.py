"""sklearn autologging with no start_run: the fit starts a run; log_metric after it logs there."""

import json

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment("autolog")
mlflow.sklearn.autolog()
X, y = load_iris(return_X_y=True)
LogisticRegression(max_iter=300, random_state=0).fit(X, y)
run = mlflow.last_active_run()  # the run autolog started (and ended) for the fit
mlflow.log_metric("extra", 1.5)  # no active run: a new one is started
extra_run = mlflow.active_run()
mlflow.end_run()
got = mlflow.get_run(run.info.run_id)
print(
    "RESULT "
    + json.dumps(
        {
            "has_training_score": "training_score" in got.data.metrics,
            "extra": mlflow.get_run(extra_run.info.run_id).data.metrics["extra"],
            "two_runs": extra_run.info.run_id != run.info.run_id,
            "max_iter": str(got.data.params["max_iter"]),
            "status": got.info.status,
        },
        sort_keys=True,
    )
)
