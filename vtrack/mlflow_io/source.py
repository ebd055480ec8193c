"""An MLflow tracking store, read through MLflow's own code.

:func:`open_source` takes what ``vtrack import-mlflow`` is given: a ``sqlite:///`` (or
other database) URI, a sqlite file, an ``./mlruns`` folder or ``file:`` URI, or a
tracking server's ``http(s)://`` URL. Runs, experiments and logged models are read with
``MlflowClient``; artifacts with MLflow's artifact repositories. Metric histories of a
database store are read in bulk, with one query per page of runs over MLflow's own
``metrics`` table model (``get_metric_history`` per run and key is what makes reading
through the client slow); other stores are asked per run and key.

``mlflow`` is imported when a source is opened, never at module import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vtrack.errors import MissingDependencyError, ValidationError

#: Runs read per ``search_runs`` page (and per bulk history query).
PAGE_SIZE = 500
#: Runs whose ids go into one ``IN (...)`` of the bulk history query.
_IN_CHUNK = 500

History = list[tuple[int, int, float]]  # (step, timestamp, value), in MLflow's order


def require_mlflow() -> Any:
    """The ``mlflow`` module; MissingDependencyError (saying how to install it) if absent."""
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - mlflow is in [dev]
        raise MissingDependencyError(
            "reading or writing an MLflow store needs the mlflow package",
            hint="pip install 'vtrack[mlflow]' (or pip install mlflow)",
        ) from exc
    return mlflow


def tracking_uri(source: str) -> str:
    """The MLflow tracking URI ``source`` names (a path becomes ``sqlite:///`` or ``file:``).

    Raises ValidationError for a path that does not exist or is neither a folder nor a
    file.
    """
    text = str(source)
    if "://" in text or text.startswith("file:"):
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        return "file:" + str(path.resolve())
    if path.is_file():
        return "sqlite:///" + str(path.resolve())
    raise ValidationError(
        f"MLflow source {text!r} is neither a tracking URI nor an existing file or folder",
        hint="give a sqlite file, an mlruns folder, sqlite:///path, file:/path or http://host:port",
    )


class MlflowSource:
    """One MLflow tracking store opened for reading (see the module docstring)."""

    def __init__(self, uri: str) -> None:
        self.uri = tracking_uri(uri)
        mlflow = require_mlflow()
        if self.uri.startswith("file:"):
            # MLflow 3.17 refuses its file store unless asked: reading old runs out of
            # one is exactly what its own migration advice is for
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            if not Path(self.uri[5:].removeprefix("//")).is_dir():
                raise ValidationError(f"no mlruns folder at {self.uri}")
        if self.uri.startswith("sqlite:///") and not Path(self.uri[10:]).is_file():
            raise ValidationError(
                f"no MLflow database at {self.uri[10:]}", hint="check the path of the .db file"
            )
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        self._sql: Any = None
        if self.uri.split(":", 1)[0].split("+", 1)[0] in {
            "sqlite", "postgresql", "mysql", "mssql",
        }:  # fmt: skip
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            # MLflow's own store class, for the bulk history reads (the client has none)
            self._sql = SqlAlchemyStore(self.uri, os.path.abspath("mlruns"))

    # -- experiments and runs ------------------------------------------------------
    def experiments(self, names: Sequence[str] = ()) -> list[Any]:
        """The active experiments (those named in ``names``, if any), by id.

        Raises ValidationError for a name that the source does not have.
        """
        from mlflow.entities import ViewType

        found = list(self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY,
                                                    max_results=50_000))  # fmt: skip
        if names:
            by_name = {e.name: e for e in found}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ValidationError(
                    f"the MLflow store has no experiment {', '.join(map(repr, missing))}",
                    hint="known: " + ", ".join(sorted(by_name)),
                )
            found = [by_name[n] for n in names]
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self, experiment_ids: Sequence[str]) -> Iterator[list[Any]]:
        """Pages of the experiments' active runs (oldest first), MLflow ``Run`` entities."""
        from mlflow.entities import ViewType

        if not experiment_ids:
            return
        token = None
        while True:
            page = self.client.search_runs(
                list(experiment_ids), "", run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE_SIZE, order_by=["attributes.start_time ASC"], page_token=token,
            )  # fmt: skip
            if page:
                yield list(page)
            token = page.token
            if not token:
                return

    # -- metric histories ------------------------------------------------------------
    def histories(self, runs: Sequence[Any]) -> dict[str, dict[str, History]]:
        """Every metric history of ``runs``: run id -> key -> points, in MLflow's order
        (timestamp, step, value)."""
        if self._sql is not None:
            return self._bulk_histories([r.info.run_id for r in runs])
        out: dict[str, dict[str, History]] = {}
        for r in runs:
            mine = out[r.info.run_id] = {}
            for key in r.data.metrics:
                pts = self.client.get_metric_history(r.info.run_id, key)
                mine[key] = sorted(
                    ((int(m.step), int(m.timestamp), float(m.value)) for m in pts),
                    key=lambda p: (p[1], p[0], p[2]),
                )
        return out

    def _bulk_histories(self, run_ids: list[str]) -> dict[str, dict[str, History]]:
        """One query per chunk of runs over MLflow's ``metrics`` table (its SQLAlchemy model)."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        out: dict[str, dict[str, History]] = {rid: {} for rid in run_ids}
        nan = float("nan")
        with self._sql.engine.connect() as conn:
            for i in range(0, len(run_ids), _IN_CHUNK):
                chunk = run_ids[i : i + _IN_CHUNK]
                stmt: Any = (
                    select(SqlMetric.run_uuid, SqlMetric.key, SqlMetric.step,
                           SqlMetric.timestamp, SqlMetric.value, SqlMetric.is_nan)
                    .where(SqlMetric.run_uuid.in_(chunk))
                    .order_by(SqlMetric.run_uuid, SqlMetric.key, SqlMetric.timestamp,
                              SqlMetric.step, SqlMetric.value)
                )  # fmt: skip
                for rid, key, step, ts, value, is_nan in conn.execute(stmt):
                    hist = out[rid].get(key)
                    if hist is None:
                        hist = out[rid][key] = []
                    hist.append((int(step), int(ts), nan if is_nan else float(value)))
        return out

    # -- artifacts and models ----------------------------------------------------------
    def run_artifacts(self, run: Any, scratch: str) -> str | None:
        """The local folder holding the run's artifacts (downloaded into ``scratch`` when
        they are remote), or None when it has none."""
        return self._folder(run.info.artifact_uri, scratch)

    def logged_model(self, model_id: str) -> Any:
        """MLflow's ``LoggedModel`` ``model_id``."""
        return self.client.get_logged_model(model_id)

    def model_folder(self, model: Any, scratch: str) -> str | None:
        """The local folder of a logged model's files (downloaded into ``scratch`` when
        remote), or None when it is empty."""
        return self._folder(model.artifact_location, scratch)

    def _folder(self, artifact_uri: str | None, scratch: str) -> str | None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        if not artifact_uri:
            return None
        local = _local_path(artifact_uri)
        if local is not None:  # read in place: MLflow's local repository would only copy
            return local if os.path.isdir(local) and os.listdir(local) else None
        repo = get_artifact_repository(artifact_uri, tracking_uri=self.uri)
        if not repo.list_artifacts():
            return None
        os.makedirs(scratch, exist_ok=True)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        repo.download_artifacts("", dst_path=scratch)
        return scratch


def _local_path(uri: str) -> str | None:
    """The folder a local artifact URI names, or None for a remote one."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    if "://" in uri or uri.startswith("mlflow-artifacts:"):
        return None
    return uri
