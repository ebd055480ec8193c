"""LightGBM: a callback on ``lgb.train`` and autologging of ``LGBMRegressor.fit``.
Run inside a git repository: ``python lightgbm_callback.py``."""

import lightgbm as lgb
import numpy as np

import vtrack
from vtrack.integrations.lightgbm import VtrackCallback, autolog

rng = np.random.default_rng(0)
X = rng.normal(size=(600, 6))
y = X[:, 0] * 2 + np.sin(X[:, 1]) + rng.normal(scale=0.1, size=600)
train = lgb.Dataset(X[:450], label=y[:450])
val = lgb.Dataset(X[450:], label=y[450:], reference=train)

with vtrack.start_run(run_name="lgb-train") as run:
    lgb.train(
        {"objective": "regression", "metric": "l2", "verbose": -1, "num_leaves": 7},
        train,
        num_boost_round=20,
        valid_sets=[train, val],
        valid_names=["train", "val"],
        callbacks=[VtrackCallback()],
    )
print(f"RUN {run.info.run_id}")

autolog()  # every lgb.train / LGBM*.fit from here on
model = lgb.LGBMRegressor(n_estimators=15, num_leaves=7, verbose=-1)
model.fit(X[:450], y[:450], eval_X=X[450:], eval_y=y[450:])
print(f"AUTOLOG {vtrack.last_active_run().info.run_id}")
