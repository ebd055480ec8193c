"""MLflow 3's model-centric flow: checkpoints by step, metrics linked to a model and a dataset."""

import json

import mlflow
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier

X, y = load_iris(return_X_y=True, as_frame=True)
train = mlflow.data.from_pandas(
    pd.concat([X, y.rename("target")], axis=1), targets="target", name="iris"
)
mlflow.set_experiment("mlflow3")
with mlflow.start_run() as run:
    mlflow.log_input(train, context="training")
    clf = SGDClassifier(random_state=0)
    for step in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
        info = mlflow.sklearn.log_model(clf, name="clf", step=step, params={"epoch": step})
        acc = float((clf.predict(X) == y).mean())
        mlflow.log_metric("accuracy", acc, step=step, model_id=info.model_id, dataset=train)
last = mlflow.last_logged_model()
model = mlflow.get_logged_model(info.model_id)
found = mlflow.search_logged_models(filter_string="name = 'clf'", output_format="list")
loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
print(
    "RESULT "
    + json.dumps(
        {
            "n_models": len(found),
            "last_is_model": last.model_id == info.model_id,
            "model_name": model.name,
            "source_run": model.source_run_id == run.info.run_id,
            "predict_len": len(loaded.predict(X)),
            "accuracy_points": len(
                mlflow.MlflowClient().get_metric_history(run.info.run_id, "accuracy")
            ),
        },
        sort_keys=True,
    )
)
