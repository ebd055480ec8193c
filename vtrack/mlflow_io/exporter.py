"""``vtrack export-mlflow``: vtrack runs written into an MLflow store by MLflow's client.

Each active vtrack run becomes an MLflow run in the experiment of the same name (created
when missing): its name, start time, status and end time, params (as MLflow's client
writes them: ``str()``), tags (with MLflow's system tags derived from vtrack's fields:
``mlflow.runName``, ``mlflow.user``, ``mlflow.source.*``, ``mlflow.note.content`` and
``mlflow.parentRunId`` pointing at the exported parent), every metric history point with
its step and timestamp, dataset inputs (an imported MLflow dataset goes back as it came)
and artifacts. A vtrack logged model becomes an MLflow 3 logged model of the run (its
folder stays a run artifact too). The vtrack run id is kept as the tag
``vtrack.run_id``; a run already in the destination with that tag is skipped, so
exporting again adds only the new runs. A run that fails half-way is deleted from the
destination (and reported), so a second export tries it again.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from vtrack import progress
from vtrack.entities import Run, system_tags
from vtrack.mlflow_io.convert import VTRACK_RUN_ID_TAG, mlflow_dataset, param_text
from vtrack.store.runs import RunRepository

#: The progress task name a face shows.
TASK = "export-mlflow"
#: MLflow's per-call limits of log_batch (metrics, params, tags).
_BATCH = 1000
_PARAMS_PER_BATCH = 100


@dataclass
class ExportReport:
    """The outcome of :func:`export_mlflow`."""

    destination: str
    dry_run: bool
    found: int = 0
    exported: int = 0
    skipped: int = 0
    metric_points: int = 0
    #: vtrack run id -> MLflow run id of the runs exported by this call
    runs: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document of the report."""
        return {k: (round(v, 3) if k == "seconds" else v) for k, v in self.__dict__.items()}


def destination_uri(dest: str) -> str:
    """The MLflow tracking URI ``dest`` names: a URI as given, a ``.db``/``.sqlite`` path
    as ``sqlite:///``, any other path as an ``mlruns`` folder (``file:``)."""
    if "://" in dest or dest.startswith("file:"):
        return dest
    path = os.path.abspath(os.path.expanduser(dest))
    if path.endswith((".db", ".sqlite", ".sqlite3")):
        return "sqlite:///" + path
    return "file:" + path


def export_mlflow(
    repo: RunRepository, dest: str, *, experiments: tuple[str, ...] = (), dry_run: bool = False
) -> ExportReport:
    """Export the store's active runs (of the experiments named, or all) to ``dest``."""
    from vtrack.mlflow_io.source import require_mlflow

    started = time.perf_counter()
    uri = destination_uri(dest)
    report = ExportReport(uri, dry_run)
    mlflow = require_mlflow()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    root = _artifact_root(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    exps = {e.experiment_id: e for e in repo.experiments.all() if e.lifecycle_stage == "active"}
    if experiments:
        exps = {i: e for i, e in exps.items() if e.name in experiments}
    runs = [r for r in repo.index().list_runs(list(exps)) if r.info.status != "RUNNING"]
    report.found = len(runs)
    done_ids = _exported(client, [e.name for e in exps.values()])
    todo = [r for r in _parents_first(runs) if r.info.run_id not in done_ids]
    report.skipped = len(runs) - len(todo)
    if dry_run:
        report.exported = len(todo)
        report.seconds = time.perf_counter() - started
        return report
    ids = dict(done_ids)
    dest_exps: dict[str, str] = {}
    with progress.task(TASK, len(todo)) as update:
        for n, run in enumerate(todo, 1):
            exp = exps[run.info.experiment_id]
            if exp.experiment_id not in dest_exps:
                dest_exps[exp.experiment_id] = _experiment(
                    client, exp.name, dict(exp.tags),
                    None if root is None else f"{root}/{exp.experiment_id}",
                )  # fmt: skip
            try:
                mid, points = _export_run(client, repo, run, dest_exps[exp.experiment_id], ids)
            except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; report them
                report.failures.append({"run_id": run.info.run_id, "error": str(exc)})
                continue
            ids[run.info.run_id] = mid
            report.runs[run.info.run_id] = mid
            report.exported += 1
            report.metric_points += points
            update(n)
    report.seconds = time.perf_counter() - started
    return report


def _exported(client: Any, names: list[str]) -> dict[str, str]:
    """vtrack run id -> MLflow run id of the runs exported to the destination before."""
    from mlflow.entities import ViewType

    exp_ids = [e.experiment_id for e in (client.get_experiment_by_name(n) for n in names) if e]
    out: dict[str, str] = {}
    token = None
    while exp_ids:
        page = client.search_runs(exp_ids, f"tags.`{VTRACK_RUN_ID_TAG}` LIKE '%'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token)  # fmt: skip
        out.update({r.data.tags[VTRACK_RUN_ID_TAG]: r.info.run_id for r in page})
        token = page.token
        if not token:
            break
    return out


def _parents_first(runs: list[Run]) -> list[Run]:
    """``runs`` oldest first, every parent before its children."""
    by_id = {r.info.run_id: r for r in runs}

    def depth(r: Run) -> int:
        d, seen = 0, set()
        while r.info.parent_run_id in by_id and r.info.run_id not in seen:
            seen.add(r.info.run_id)
            r, d = by_id[str(r.info.parent_run_id)], d + 1
        return d

    return sorted(runs, key=lambda r: (depth(r), r.info.start_time, r.info.run_id))


def _artifact_root(uri: str) -> str | None:
    """Where a sqlite destination's artifacts go: ``mlartifacts/`` beside the database
    (MLflow's default, ``./mlruns`` of the current folder, would put them in the vtrack
    worktree). A new database is created with that root, so its Default experiment's
    artifacts go there too. None for other stores (they decide)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :]
    root = os.path.join(os.path.dirname(os.path.abspath(db)), "mlartifacts")
    if not os.path.exists(db):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(uri, root)  # creates the tables, Default experiment under root
    return root


def _experiment(client: Any, name: str, tags: dict[str, str], location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=location, tags=tags or None))


def _export_run(
    client: Any, repo: RunRepository, run: Run, experiment_id: str, ids: dict[str, str]
) -> tuple[str, int]:
    """Write one run; return its MLflow id and the number of metric points written."""
    from mlflow.entities import Metric, Param

    info = run.info
    tags = {**system_tags(info), **dict(run.data.tags), VTRACK_RUN_ID_TAG: info.run_id}
    parent = ids.get(str(info.parent_run_id)) if info.parent_run_id else None
    tags.pop("mlflow.parentRunId", None)
    if parent:
        tags["mlflow.parentRunId"] = parent
    created = client.create_run(experiment_id, start_time=info.start_time, tags=tags,
                                run_name=info.run_name)  # fmt: skip
    mid = created.info.run_id
    try:
        state = repo.state(info.run_id).record
        metrics = [Metric(key, value, ts, step) for key in sorted(state.histories)
                   for step, ts, value in state.iter_history(key)]  # fmt: skip
        params = [Param(k, param_text(v)) for k, v in sorted(run.data.params.items())]
        for i in range(0, len(params), _PARAMS_PER_BATCH):
            client.log_batch(mid, params=params[i : i + _PARAMS_PER_BATCH])
        for i in range(0, len(metrics), _BATCH):
            client.log_batch(mid, metrics=metrics[i : i + _BATCH])
        _inputs(client, mid, state.inputs)
        _artifacts(client, repo, run, mid, experiment_id)
        client.set_terminated(mid, info.status, end_time=info.end_time or info.start_time)
    except BaseException:
        client.delete_run(mid)  # a second export tries the run again
        raise
    return mid, len(metrics)


def _inputs(client: Any, mid: str, entries: list[dict[str, Any]]) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    datasets = []
    for entry in entries:
        fields, tags = mlflow_dataset(entry)
        datasets.append(DatasetInput(Dataset(**fields),
                                     [InputTag(k, v) for k, v in tags.items()]))  # fmt: skip
    if datasets:
        client.log_inputs(mid, datasets=datasets)


def _artifacts(client: Any, repo: RunRepository, run: Run, mid: str, experiment_id: str) -> None:
    """Upload the run's artifacts; each vtrack logged model also as an MLflow logged model."""
    from vtrack.artifacts.read import download_artifacts, manifest
    from vtrack.models.logged import logged_models_of

    if not manifest(repo, run.info.run_id):
        return
    with tempfile.TemporaryDirectory(prefix="vtrack-export-") as tmp:
        download_artifacts(repo, run.info.run_id, None, tmp)
        client.log_artifacts(mid, tmp)
        for m in logged_models_of(run):
            folder = os.path.join(tmp, *m.artifact_path.split("/"))
            if not os.path.isdir(folder):
                continue
            model = client.create_logged_model(
                experiment_id, name=m.name, source_run_id=mid,
                tags={str(k): str(v) for k, v in m.tags.items()} or None,
                params={str(k): str(v) for k, v in m.params.items()} or None,
            )  # fmt: skip
            client.log_model_artifacts(model.model_id, folder)
            client.finalize_logged_model(model.model_id, "READY")
