"""Framework callbacks and loggers; each module imports its framework only when used.

- :mod:`vtrack.integrations.pytorch` — ``TrainLoop``, for a plain PyTorch training loop;
- :mod:`vtrack.integrations.lightning` — ``VtrackLogger``, a PyTorch Lightning logger
  whose checkpoints become models;
- :mod:`vtrack.integrations.xgboost` and :mod:`vtrack.integrations.lightgbm` — training
  callbacks and ``autolog()``;
- :mod:`vtrack.integrations.keras` — ``VtrackCallback`` for ``model.fit``;
- :mod:`vtrack.integrations.transformers` — ``VtrackCallback`` for ``transformers.Trainer``;
- :mod:`vtrack.integrations.mlflow_store` and :mod:`vtrack.integrations.mlflow_artifacts`
  — MLflow's ``vtrack://`` tracking store and ``vtrack-artifacts:`` artifact repository
  (MLflow loads them through the entry points of :mod:`vtrack.integrations.mlflow_plugin`).

``docs/integrations.md`` shows the two lines each one needs.
"""
