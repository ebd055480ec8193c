"""MLflow's sklearn elastic-net example, shortened: params, metrics, a signed model."""

import json

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error, r2_score

X, y = load_diabetes(return_X_y=True)
alpha, l1_ratio = 0.05, 0.5
mlflow.set_experiment("elasticnet")
with mlflow.start_run(run_name="enet") as run:
    model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42).fit(X[:300], y[:300])
    pred = model.predict(X[300:])
    rmse = float(np.sqrt(mean_squared_error(y[300:], pred)))
    mlflow.log_param("alpha", alpha)
    mlflow.log_param("l1_ratio", l1_ratio)
    mlflow.log_metric("rmse", rmse)
    mlflow.log_metric("r2", float(r2_score(y[300:], pred)))
    signature = infer_signature(X[300:], pred)
    info = mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=X[:2])
loaded = mlflow.sklearn.load_model(info.model_uri)
got = mlflow.get_run(run.info.run_id)
print(
    "RESULT "
    + json.dumps(
        {
            "metrics": got.data.metrics,
            "params": {k: str(v) for k, v in got.data.params.items()},
            "run_name": got.data.tags["mlflow.runName"],
            "same_predictions": bool(np.allclose(loaded.predict(X[300:]), pred)),
            "status": got.info.status,
        },
        sort_keys=True,
    )
)
