"""XGBoost: a callback on ``xgb.train`` and autologging of ``XGBClassifier.fit``.
Run inside a git repository: ``python xgboost_callback.py``."""

import numpy as np
import xgboost as xgb

import vtrack
from vtrack.integrations.xgboost import VtrackCallback, autolog

rng = np.random.default_rng(0)
X = rng.normal(size=(600, 6))
y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
dtrain, dval = xgb.DMatrix(X[:450], label=y[:450]), xgb.DMatrix(X[450:], label=y[450:])

with vtrack.start_run(run_name="xgb-train") as run:
    xgb.train(
        {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 3},
        dtrain,
        num_boost_round=20,
        evals=[(dtrain, "train"), (dval, "val")],
        verbose_eval=False,
        callbacks=[VtrackCallback()],
    )
print(f"RUN {run.info.run_id}")

autolog()  # every xgb.train / XGBClassifier.fit from here on
model = xgb.XGBClassifier(n_estimators=15, max_depth=3, early_stopping_rounds=5)
model.fit(X[:450], y[:450], eval_set=[(X[450:], y[450:])], verbose=False)
print(f"AUTOLOG {vtrack.last_active_run().info.run_id}")
