"""Moving runs between MLflow and vtrack, and serving a vtrack store to MLflow.

- :mod:`vtrack.mlflow_io.source`: an MLflow tracking store read through MLflow's own
  code (its store classes; bulk reads of a SQL store's metric histories);
- :mod:`vtrack.mlflow_io.convert`: how an MLflow run's fields become a vtrack record
  (system tags, params' types, dataset inputs) and back;
- :mod:`vtrack.mlflow_io.importer`: ``vtrack import-mlflow`` (idempotent, in bulk);
- :mod:`vtrack.mlflow_io.exporter`: ``vtrack export-mlflow``;
- :mod:`vtrack.mlflow_io.tracking_store`: the ``vtrack://`` MLflow tracking-store plugin.

``mlflow`` is an optional dependency: nothing here imports it at module level except the
plugin, which MLflow itself loads. ``import vtrack`` never imports this package.
"""
