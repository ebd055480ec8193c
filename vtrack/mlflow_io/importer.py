"""``vtrack import-mlflow``: every run of an MLflow store becomes a vtrack run.

Each MLflow run becomes a complete, ended vtrack run (:meth:`RunRepository.create_runs`)
with its name, user, status, start and end times, typed params (see
:mod:`vtrack.mlflow_io.convert`), tags, full metric histories (steps and timestamps as
logged), dataset inputs, artifacts and MLflow 3 logged models (each model's folder as an
artifact named after the model, recorded as a vtrack logged model with MLflow's
``model_id``). Nested runs stay nested: ``mlflow.parentRunId`` becomes the child's
parent. The MLflow run id is kept as the tag ``vtrack.mlflow.run_id``; a run already
imported (that tag found in the store, deleted runs included) is skipped, so importing
again brings only what is new.

Runs are read a page at a time (histories of a database store in one query per page)
and written a page at a time, in one pack per page. A run whose content vtrack refuses
(a key or value over vtrack's limits) is reported as failed and nothing of it is
written; the others are imported. MLflow runs still RUNNING (or SCHEDULED) are imported
as KILLED: nobody writes them in vtrack.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from vtrack import progress
from vtrack import validation as v
from vtrack.errors import VtrackError
from vtrack.mlflow_io.convert import (
    MLFLOW_RUN_ID_TAG,
    UNFINISHED,
    dataset_input,
    run_name,
    split_tags,
    typed_param,
)
from vtrack.mlflow_io.source import MlflowSource
from vtrack.store.bulk import NewRuns
from vtrack.store.experiments import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from vtrack.store.record import RecordState
from vtrack.store.runs import RunRepository

#: The progress task name a face shows.
TASK = "import-mlflow"


@dataclass
class ExperimentSummary:
    """What an import did in one experiment."""

    experiment: str
    found: int = 0
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    metric_points: int = 0
    artifact_files: int = 0


@dataclass
class ImportReport:
    """The outcome of :func:`import_mlflow` (``--json`` prints :meth:`to_json`)."""

    source: str
    dry_run: bool
    experiments: list[ExperimentSummary] = field(default_factory=list)
    #: ``{"mlflow_run_id", "experiment", "error"}`` per run that could not be imported
    failures: list[dict[str, str]] = field(default_factory=list)
    #: MLflow run id -> vtrack run id of the runs imported by this call
    imported: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def totals(self) -> ExperimentSummary:
        """The sums over every experiment."""
        t = ExperimentSummary("total")
        for e in self.experiments:
            for k in ("found", "imported", "skipped", "failed", "metric_points",
                      "artifact_files"):  # fmt: skip
                setattr(t, k, getattr(t, k) + getattr(e, k))
        return t

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document of the report."""
        return {
            "source": self.source, "dry_run": self.dry_run, "seconds": round(self.seconds, 3),
            "experiments": [asdict(e) for e in self.experiments],
            "total": asdict(self.totals()), "failures": self.failures,
            "imported": self.imported,
        }  # fmt: skip


def imported_runs(repo: RunRepository) -> dict[str, str]:
    """MLflow run id -> vtrack run id of every run imported into the store so far."""
    from vtrack.query import parse_filter
    from vtrack.store.refs import ACTIVE, DELETED

    clauses = parse_filter(f"tags.`{MLFLOW_RUN_ID_TAG}` IS NOT NULL")
    runs = repo.index().search(clauses, lifecycles=(ACTIVE, DELETED))
    return {str(r.data.tags[MLFLOW_RUN_ID_TAG]): r.info.run_id for r in runs}


def import_mlflow(
    repo: RunRepository, source: str, *, experiments: tuple[str, ...] = (), dry_run: bool = False
) -> ImportReport:
    """Import the MLflow store at ``source`` (see the module docstring); return the report.

    ``experiments`` limits the import to those experiment names (all active ones when
    empty). With ``dry_run`` nothing is written: the report says what would be imported.
    """
    started = time.perf_counter()
    src = MlflowSource(source)
    report = ImportReport(source=src.uri, dry_run=dry_run)
    known = imported_runs(repo)
    exps = src.experiments(experiments)
    pages: list[tuple[Any, ExperimentSummary, list[Any]]] = []
    ids = dict(known)
    for exp in exps:
        summary = ExperimentSummary(exp.name)
        report.experiments.append(summary)
        for page in src.runs([exp.experiment_id]):
            summary.found += len(page)
            new = [r for r in page if r.info.run_id not in known]
            summary.skipped += len(page) - len(new)
            for r in new:
                ids[r.info.run_id] = uuid.uuid4().hex
            if new:
                pages.append((exp, summary, new))
    total = sum(len(p[2]) for p in pages)
    if dry_run:
        for _, summary, new in pages:
            summary.imported += len(new)
        report.seconds = time.perf_counter() - started
        return report
    exp_ids = {exp.experiment_id: _vtrack_experiment(repo, exp) for exp in exps}
    done = 0
    with progress.task(TASK, total) as update:
        for exp, summary, new in pages:
            histories = src.histories(new)
            with tempfile.TemporaryDirectory(prefix="vtrack-import-") as tmp, \
                    repo.create_runs() as bulk:  # fmt: skip
                states: list[tuple[Any, RecordState]] = []
                for r in new:
                    try:
                        state = _record(bulk, src, r, histories.get(r.info.run_id, {}),
                                        exp_ids[exp.experiment_id], ids, tmp, repo)  # fmt: skip
                    except Exception as exc:  # noqa: BLE001 - vtrack's, the OS's or MLflow's
                        if not isinstance(exc, (VtrackError, OSError)) and not _mlflow_error(exc):
                            raise
                        summary.failed += 1
                        report.failures.append({"mlflow_run_id": r.info.run_id,
                                                "experiment": exp.name, "error": str(exc)})  # fmt: skip
                        continue
                    states.append((r, state))
                    done += 1
                    update(done)
            for r, state in states:
                summary.imported += 1
                summary.metric_points += sum(h.count for h in state.histories.values())
                summary.artifact_files += len(state.artifacts)
                report.imported[r.info.run_id] = str(state.info["id"])
    repo.index()  # synced now, so the next command finds the runs at once
    report.seconds = time.perf_counter() - started
    return report


def _mlflow_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of MLflow's own errors (a remote artifact it cannot read)."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException)


def _vtrack_experiment(repo: RunRepository, exp: Any) -> str:
    """The vtrack experiment of the same name (created with MLflow's tags when missing)."""
    if exp.name == DEFAULT_EXPERIMENT_NAME or str(exp.experiment_id) == "0":
        repo.experiments.ensure_default()
        return DEFAULT_EXPERIMENT_ID
    found = repo.experiments.by_name(v.validate_experiment_name(exp.name))
    if found is not None:
        return found.experiment_id
    return repo.experiments.create(exp.name, v.validate_tags(dict(exp.tags or {})))


def _record(
    bulk: NewRuns, src: MlflowSource, run: Any, histories: dict[str, list[tuple[int, int, float]]],
    experiment_id: str, ids: dict[str, str], tmp: str, repo: RunRepository,
) -> RecordState:  # fmt: skip
    """The vtrack record of one MLflow run, added to ``bulk``; raises VtrackError when
    vtrack refuses part of it (then nothing of the run is kept)."""
    info = run.info
    tags, source, user, parent, description = split_tags(dict(run.data.tags))
    status = "KILLED" if info.status in UNFINISHED else str(info.status)
    start = int(info.start_time or 0)
    end = info.end_time if info.end_time is not None else _last_time(histories, start)
    record = {
        "id": ids[info.run_id],
        "name": v.validate_run_name(run_name(info.run_name, info.run_id[:8])),
        "experiment_id": experiment_id,
        "status": status,
        "start_time": start,
        "end_time": int(end),
        "user": user or info.user_id or "",
        "parent_run_id": ids.get(parent) if parent else None,
        "description": v.validate_description(description),
        "source": {
            "code_captured": False,
            "reason": "imported from MLflow",
            **source,
            "mlflow": {
                "run_id": info.run_id,
                "experiment_id": info.experiment_id,
                "status": str(info.status),
            },
        },  # fmt: skip
        "environment": {},
    }
    if parent and record["parent_run_id"] is None:
        tags["mlflow.parentRunId"] = parent  # its parent is not in this store: keep the link
    tags[MLFLOW_RUN_ID_TAG] = info.run_id
    clean_tags = v.validate_tags(tags)
    params = {v.validate_key(k, "param key"): typed_param(str(val))
              for k, val in run.data.params.items()}  # fmt: skip
    for k, val in params.items():
        v.normalize_param_value(k, val)
    for key in histories:
        v.validate_metric_key(key)
    state = bulk.new_record(record)
    try:
        state.tags = clean_tags
        state.params = params
        for key, points in histories.items():
            bulk.add_history(state, key, points)
        for di in run.inputs.dataset_inputs if run.inputs else []:
            state.add_input(dataset_input(di.dataset, {t.key: t.value for t in di.tags}))
        _artifacts(state, src, run, tmp, repo)
    except BaseException:
        bulk.discard(state)
        raise
    return state


def _last_time(histories: dict[str, list[tuple[int, int, float]]], start: int) -> int:
    """The newest metric timestamp (an unfinished run's end), or ``start``."""
    return max([start, *(p[1] for h in histories.values() for p in h)])


def _artifacts(
    state: RecordState, src: MlflowSource, run: Any, tmp: str, repo: RunRepository
) -> None:
    """Store the run's artifacts and its logged models' folders into ``state``."""
    from vtrack.artifacts.write import store_folder

    here = os.path.join(tmp, run.info.run_id)
    items = []
    folder = src.run_artifacts(run, os.path.join(here, "run"))
    if folder is not None:
        items += store_folder(repo.store, folder)
    outputs = run.outputs.model_outputs if getattr(run, "outputs", None) else []
    taken = {p for p, _, _ in items}
    for out in outputs:
        model = src.logged_model(out.model_id)
        folder = src.model_folder(model, os.path.join(here, "models", model.model_id))
        if folder is None:
            continue
        path = model.name if model.name not in taken and not any(
            t.startswith(model.name + "/") for t in taken) else f"{model.name}-{model.model_id}"  # fmt: skip
        stored = store_folder(repo.store, folder, path)
        taken.update(p for p, _, _ in stored)
        items += stored
        state.set_tag(*_model_tag(model, path, out.step, folder))
    for path, entry, blob in items:
        state.add_file(*blob)
        state.add_artifact(path, entry.to_record())


def _model_tag(model: Any, path: str, step: int, folder: str) -> tuple[str, str]:
    """The ``vtrack.model.<id>`` tag recording an imported MLflow logged model."""
    from vtrack.models.logged import MODEL_TAG_PREFIX, model_record
    from vtrack.store.record import load_yaml

    flavor = ""
    try:
        with open(os.path.join(folder, "MLmodel"), "rb") as f:
            flavors = (load_yaml(f.read()) or {}).get("flavors") or {}
        flavor = next((k for k in flavors if k != "python_function"), "python_function")
    except (OSError, ValueError, AttributeError):
        pass
    value = model_record(
        name=model.name, artifact_path=path, flavor=flavor, step=int(step or 0),
        created=int(model.creation_timestamp or 0), params=dict(model.params or {}),
        tags={k: val for k, val in (model.tags or {}).items()},
    )  # fmt: skip
    return MODEL_TAG_PREFIX + model.model_id, value
