"""``TrackingClient``: every operation by explicit run or experiment id.

The client validates its arguments and delegates: runs through the store's
:class:`~vtrack.store.runs.RunRepository` (``client.repo``), experiments through its
:class:`~vtrack.store.experiments.ExperimentStore`, artifacts and provenance through
their services. It holds no run access of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from time import time_ns
from typing import TYPE_CHECKING, Any

# artifacts and provenance are imported by the methods that use them: a command that
# only reads the index (ls, models ls) does not pay for their import
from vtrack import validation as v
from vtrack.config import Settings, load_settings, locate_store
from vtrack.entities import DatasetInput, Experiment, Metric, Run, RunStatus
from vtrack.errors import ExperimentExistsError, RunStateError, ValidationError
from vtrack.registry.calls import RegistryCalls
from vtrack.store import Store
from vtrack.store.experiments import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from vtrack.store.runs import RunRepository, run_from_record
from vtrack.store.writer import MetricPoint, RunWriter, now_ms

if TYPE_CHECKING:
    from vtrack.artifacts import FileInfo
    from vtrack.store.history_cache import HistoryCache
    from vtrack.store.index import RunIndex

#: Stores opened in this process, by location and settings: a changed setting is a new Store.
_stores: dict[tuple[str, Settings], Store] = {}
_stores_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``RECORDED_ENV_NAMES`` (names the run record's ``source.env`` may hold) and
    ``generate_run_name``, kept importable from here; :mod:`vtrack.capture` (snapshots)
    is imported when a run is made, not by commands that only read."""
    if name in ("RECORDED_ENV_NAMES", "generate_run_name"):
        from vtrack import capture

        return getattr(capture, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TrackingClient(RegistryCalls):
    """Explicit access to one store: experiments, runs, logging, reading; the model
    registry's MLflow-named methods come from :class:`~vtrack.registry.calls.RegistryCalls`.

    ``settings`` (a :class:`~vtrack.config.Settings`) default to the environment's as
    they are when the client is made; a client made after a setting changed uses it.
    """

    def __init__(
        self, tracking_uri: str | None = None, *, settings: Settings | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.settings = settings if settings is not None else load_settings()
        self._store: Store | None = None
        self._repo: RunRepository | None = None
        self._last: RunWriter | None = None  # the writer of the last run logged to

    # -- the store -------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The opened store (created on first use outside any repository)."""
        if self._store is None:
            loc = locate_store(self.tracking_uri)
            key = (str(loc.git_dir), self.settings)
            with _stores_lock:
                st = _stores.get(key)
                if st is None or st.location != loc:
                    st = _stores[key] = Store(loc, self.settings)
            self._store = st
        return self._store

    @property
    def repo(self) -> RunRepository:
        """The run repository of this client's store (what services take)."""
        if self._repo is None:
            self._repo = RunRepository(self.store)
        return self._repo

    # -- experiments -----------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> str:
        """Create an experiment and return its id; ExperimentExistsError if the name is taken.

        Processes creating one name at once converge: the losers get
        ExperimentExistsError, never a second experiment with that name.
        """
        v.validate_experiment_name(name)
        return self.repo.experiments.create(name, v.validate_tags(tags))

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with that id; raise ExperimentNotFoundError if absent."""
        return self.repo.experiments.get(v.validate_experiment_id(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with that name (active or deleted), or None."""
        if not isinstance(name, str):
            raise ValidationError(f"experiment name {name!r} must be a string")
        return self.repo.experiments.by_name(name)

    def search_experiments(
        self,
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Experiments by lifecycle (``ACTIVE_ONLY``, ``DELETED_ONLY``, ``ALL`` or MLflow's
        ViewType ints 1, 2, 3) and MLflow's experiment filter (``name LIKE 'x%'``,
        ``tags.team = 'nlp'``, ``creation_time > …``), oldest first unless ``order_by``."""
        from vtrack.query.experiments import filter_experiments

        stages = _lifecycles(view_type)
        exps = [e for e in self.repo.experiments.all() if e.lifecycle_stage in stages]
        exps = filter_experiments(exps, filter_string or "", order_by)
        return exps[:max_results] if max_results else exps

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment (no-op when it has none of that name)."""
        exp = self.get_experiment(experiment_id)
        if key in exp.tags:
            tags = {k: val for k, val in exp.tags.items() if k != key}
            self.repo.experiments.update(exp.experiment_id, tags=tags)

    def get_parent_run(self, run_id: str) -> Run | None:
        """The run's parent run, or None for a top-level run."""
        parent = self.get_run(run_id).info.parent_run_id
        return self.get_run(parent) if parent else None

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment deleted (its runs stay; restore with restore_experiment)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise ValidationError("the Default experiment cannot be deleted")
        self.repo.experiments.update(v.validate_experiment_id(experiment_id),
                                     lifecycle_stage="deleted")  # fmt: skip

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo delete_experiment."""
        self.repo.experiments.update(v.validate_experiment_id(experiment_id),
                                     lifecycle_stage="active")  # fmt: skip

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new (unused) name."""
        v.validate_experiment_name(new_name)
        other = self.get_experiment_by_name(new_name)
        if other is not None and other.experiment_id != str(experiment_id):
            raise ExperimentExistsError(f"experiment {new_name!r} already exists")
        self.repo.experiments.update(v.validate_experiment_id(experiment_id), name=new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        k, val = v.validate_tag(key, value)
        exp = self.get_experiment(experiment_id)
        self.repo.experiments.update(exp.experiment_id, tags={**exp.tags, k: val})

    # -- runs: creation and writers --------------------------------------------------
    def create_run(
        self,
        experiment_id: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        description: str | None = None,
    ) -> Run:
        """Start a new RUNNING run (code snapshot, first commit, ref) and return it."""
        from vtrack import capture

        clean_tags = v.validate_tags(tags)
        name = (
            v.validate_run_name(run_name) if run_name is not None else capture.generate_run_name()
        )
        desc = v.validate_description(description)
        if parent_run_id is not None:
            v.validate_run_id(parent_run_id)
        exp = self.get_experiment(str(experiment_id) if experiment_id is not None
                                  else DEFAULT_EXPERIMENT_ID)  # fmt: skip
        if exp.lifecycle_stage != "active":
            raise RunStateError(f"experiment {exp.name!r} is deleted; restore it to add runs")
        st = self.store
        info, snap = capture.new_run(
            st, name=name, experiment_id=exp.experiment_id, start_time=start_time,
            parent_run_id=parent_run_id, description=desc,
        )  # fmt: skip
        writer = self.repo.start(info, clean_tags, snap, retake=lambda: capture.retake_snapshot(st))
        return run_from_record(writer.tip, writer.state)

    def _writer(self, run_id: str) -> RunWriter:
        """This process's writer for ``run_id`` (joining the run if needed)."""
        last = self._last
        if last is not None and last.run_id == run_id and not last.closed:
            return last  # the fast path of log_metric
        w = self.repo.writer(v.validate_run_id(run_id))
        self._last = w
        return w

    def resume_run(self, run_id: str) -> Run:
        """Attach this process to an existing run and mark it RUNNING again if it had ended."""
        w = self.repo.resume(v.validate_run_id(run_id))
        return run_from_record(w.tip, w.state)

    # -- logging -----------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool = False,
    ) -> None:
        """Log one metric point (NaN and ±inf allowed)."""
        if key not in v.KNOWN_METRIC_KEYS:
            key = v.validate_metric_key(key)
        val = value if type(value) is float else v.validate_metric_value(key, value)
        st = step if type(step) is int else (0 if step is None else v.validate_step(key, step))
        ts = (time_ns() // 1_000_000 if timestamp is None
              else v.validate_timestamp(key, timestamp))  # fmt: skip
        w = self._last
        if w is None or w.run_id != run_id or w.closed:
            w = self._writer(run_id)
        w.log_metric(key, val, st, ts)
        if synchronous:
            w.flush()

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, Any],
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool = False,
    ) -> None:
        """Log several metrics at one step; all are validated before any is recorded."""
        if not isinstance(metrics, Mapping):
            raise ValidationError(f"metrics must be a mapping, not {type(metrics).__name__}")
        ts = v.validate_timestamp("metrics", timestamp) if timestamp is not None else now_ms()
        points: list[MetricPoint] = []
        for key, value in metrics.items():
            k = v.validate_metric_key(key)
            points.append((k, v.validate_metric_value(k, value), v.validate_step(k, step), ts))
        w = self._writer(run_id)
        w.log_metrics(points)
        if synchronous:
            w.flush()

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        """Log one param; return the stored (normalized) value."""
        k = v.validate_key(key, "param key")
        val = v.normalize_param_value(k, value)
        self._writer(run_id).log_params({k: val})
        return val

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params (nested mappings flattened with '.'); all or nothing."""
        self._writer(run_id).log_params(v.validate_params(params))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set one tag."""
        k, val = v.validate_tag(key, value)
        self._writer(run_id).set_tags({k: val})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set several tags; all are validated first."""
        self._writer(run_id).set_tags(v.validate_tags(tags))

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a tag; raise if the run has no such tag."""
        v.validate_key(key, "tag key")
        w = self._writer(run_id)
        if key not in w.state.tags:
            raise ValidationError(f"run {run_id} has no tag {key!r}")
        w.delete_tag(key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Iterable[Any] = (),
        tags: Mapping[str, Any] | None = None,
        synchronous: bool = False,
    ) -> None:
        """Log metrics (Metric objects), params (Param objects or a mapping) and tags at once."""
        pmap = params if isinstance(params, Mapping) else {p.key: p.value for p in params}
        clean_params = v.validate_params(pmap)
        clean_tags = v.validate_tags(tags)
        points: list[MetricPoint] = []
        for m in metrics:
            k = v.validate_metric_key(m.key)
            points.append(
                (k, v.validate_metric_value(k, m.value), v.validate_step(k, m.step),
                 v.validate_timestamp(k, m.timestamp))
            )  # fmt: skip
        w = self._writer(run_id)
        if clean_params:
            w.log_params(clean_params)
        if clean_tags:
            w.set_tags(clean_tags)
        w.log_metrics(points)
        if synchronous:
            w.flush()

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Rename a run and/or end it with ``status``."""
        if name is not None:
            self._writer(run_id).set_info("name", v.validate_run_name(name))
        if status is not None:
            self.set_terminated(run_id, status)

    def set_description(self, run_id: str, description: str | None) -> None:
        """Set a run's description."""
        self._writer(run_id).set_info("description", v.validate_description(description))

    def flush(self, run_id: str) -> None:
        """Make everything logged to ``run_id`` by this process durable in its journal."""
        self.repo.flush(v.validate_run_id(run_id))

    def detach(self, run_id: str) -> None:
        """Commit what this process logged to ``run_id`` and stop writing it (status kept)."""
        self.repo.detach(v.validate_run_id(run_id))

    def checkpoint(self, run_id: str) -> None:
        """Commit everything logged to ``run_id`` by this process now."""
        self.repo.checkpoint(v.validate_run_id(run_id))

    def refresh_environment(self, run_id: str) -> None:
        """Re-record ``run_id``'s environment as this process has it now (more imports).

        Called by the process that ran the code when it ends the run, so that
        distributions imported after ``start_run`` are listed too.
        """
        from vtrack.capture import environment

        store = self.repo.store
        env = environment(store.location.git_dir / "vtrack" / "cache")
        self._writer(v.validate_run_id(run_id)).refresh_environment(env)

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None:
        """End a run with ``status`` (FINISHED, FAILED or KILLED) and commit it."""
        s = RunStatus.parse(status)
        if not s.is_terminal:
            raise ValidationError(f"set_terminated needs a terminal status, not {s.value}")
        self._writer(run_id).end(s.value, end_time)

    # -- reading -----------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """The run with everything logged so far (live journals included; deleted runs too)."""
        return self.repo.get(v.validate_run_id(run_id))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of metric ``key`` in the order logged (a deleted run keeps its history)."""
        v.validate_metric_key(key)
        record = self.repo.state(v.validate_run_id(run_id), deleted_ok=True).record
        return self._history_points(record, key)

    def _history_points(self, record: Any, key: str) -> list[Metric]:
        steps, times, values = self.history_cache().history(record, key)
        return Metric.from_columns(key, steps, times, values)

    def history_cache(self) -> HistoryCache:
        """The store's columnar cache of sealed metric history chunks (derived, exact)."""
        from vtrack.store.history_cache import HistoryCache

        return HistoryCache.for_store(self.repo.store)

    def get_metric_histories(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, list[Metric]]:
        """The histories of ``keys`` (default: every metric of the run) by key, from one
        read of the run: what :meth:`get_metric_history` per key gives, without reading
        the run once per key (a run with 10,000 metrics made that quadratic)."""
        record = self.repo.state(v.validate_run_id(run_id), deleted_ok=True).record
        wanted = sorted(record.metrics) if keys is None else [
            v.validate_metric_key(k) for k in dict.fromkeys(keys)
        ]  # fmt: skip
        return {key: self._history_points(record, key) for key in wanted}

    def list_runs(
        self, experiment_id: str | None = None, view_type: str = "ACTIVE_ONLY"
    ) -> list[Run]:
        """Runs (of one experiment, or all), newest first. Dead writers are recovered first."""
        self.recover()
        exps = None if experiment_id is None else [str(experiment_id)]
        return self.run_index().list_runs(exps, _lifecycles(view_type))

    def run_index(self, *, sync: bool = True) -> RunIndex:
        """The store's derived run index, synced with the refs and this process's unflushed logs."""
        return self.repo.index(sync=sync)

    def search_runs(
        self,
        experiment_ids: str | Iterable[str] | None = None,
        filter_string: str = "",
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Run]:
        """Runs matching MLflow's filter grammar, ordered, at most ``max_results`` (None: all).

        ``experiment_ids`` None searches every experiment. Without ``order_by`` runs come
        newest first. Results include live runs as far as they have been logged. Raises
        QuerySyntaxError for a bad filter or order-by, ValidationError for bad arguments.
        """
        from vtrack.query import parse_filter, parse_order_by

        clauses = parse_filter(filter_string or "")
        order = parse_order_by(order_by)
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
        ):
            raise ValidationError(
                f"max_results must be a positive integer or None, not {max_results!r}"
            )
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        lifecycles = _lifecycles(run_view_type)
        self.recover()
        return self.run_index().search(
            clauses, order, experiment_ids=exps, lifecycles=lifecycles, max_results=max_results
        )

    def search_runs_page(
        self,
        experiment_ids: Iterable[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
        run_view_type: str | int = "ACTIVE_ONLY",
    ) -> tuple[list[Run], int]:
        """One page of :meth:`search_runs`: at most ``limit`` runs from ``offset``, and the total.

        The total counts every matching run, so a face can page without loading them.
        Raises QuerySyntaxError for a bad filter or order-by (its ``column`` says where),
        ValidationError for a negative offset or a limit below 1.
        """
        from vtrack.query import parse_filter, parse_order_by

        clauses = parse_filter(filter_string or "")
        order = parse_order_by(order_by)
        for name, value, low in (("offset", offset, 0), ("limit", limit, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} must be an integer >= {low}, not {value!r}")
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        lifecycles = _lifecycles(run_view_type)
        self.recover()
        index = self.run_index()
        runs = index.search(
            clauses, order, experiment_ids=exps, lifecycles=lifecycles, max_results=limit,
            offset=offset,
        )  # fmt: skip
        total = index.count_matching(clauses, experiment_ids=exps, lifecycles=lifecycles)
        return runs, total

    def search_runs_by_metric_summary(
        self,
        experiment_ids: Iterable[str] | None,
        filter_string: str,
        key: str,
        aggregate: str,
        *,
        step: int | None = None,
        ascending: bool = True,
        offset: int = 0,
        limit: int = 50,
        run_view_type: str | int = "ACTIVE_ONLY",
    ) -> tuple[list[Run], int]:
        """:meth:`search_runs_page` ordered by the min, max or value at ``step`` of a metric.

        The summaries are derived beside the index (:mod:`vtrack.store.index_metricstats`):
        numbers first, then NaN, then runs without a value, in either direction.
        """
        from vtrack.query import parse_filter
        from vtrack.store.index_metricstats import MetricStats

        clauses = parse_filter(filter_string or "")
        for name, value, low in (("offset", offset, 0), ("limit", limit, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} must be an integer >= {low}, not {value!r}")
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        lifecycles = _lifecycles(run_view_type)
        self.recover()
        index = self.run_index()
        runs = MetricStats(index).search(
            clauses, key, aggregate, step=step, ascending=ascending, experiment_ids=exps,
            lifecycles=lifecycles, limit=limit, offset=offset,
        )  # fmt: skip
        total = index.count_matching(clauses, experiment_ids=exps, lifecycles=lifecycles)
        return runs, total

    def recover(self, *, clear_locks: bool = False) -> list[str]:
        """Finalize runs whose writing process died; return their ids.

        With ``clear_locks`` (what ``vtrack recover`` does), lock files left by dead
        processes are removed first, so that runs they blocked can be finalized.
        """
        return self.repo.recover(clear_locks=clear_locks)

    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash; restore_run undoes it."""
        self.repo.delete(v.validate_run_id(run_id))

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back from the trash."""
        self.repo.restore(v.validate_run_id(run_id))

    def archive_runs(self, *, older_than_days: float | None = None, keep: int = 0,
                     dry_run: bool = False) -> dict[str, Any]:  # fmt: skip
        """Compact finished runs into a few archive refs (docs/scale.md); the report as a
        dict (``archived``, ``batches``, ``kept``, ``skipped_live``)."""
        if older_than_days is not None and older_than_days < 0:
            raise ValidationError(f"older_than_days must be >= 0, not {older_than_days}")
        if keep < 0:
            raise ValidationError(f"keep must be >= 0, not {keep}")
        return self.repo.archive(older_than_days=older_than_days, keep=keep,
                                 dry_run=dry_run).to_dict()  # fmt: skip

    def unarchive_runs(self, run_ids: list[str] | None = None, *, dry_run: bool = False
                       ) -> dict[str, Any]:  # fmt: skip
        """Give archived runs (``run_ids``, or every one) their own refs back."""
        ids = None if run_ids is None else [v.validate_run_id(r) for r in run_ids]
        return self.repo.unarchive(ids, dry_run=dry_run).to_dict()

    # -- artifacts (the rules live in vtrack.artifacts) --------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log a local file as ``<artifact_path>/<file name>`` (see vtrack.artifacts)."""
        from vtrack import artifacts

        artifacts.log_artifact(self.repo, v.validate_run_id(run_id), local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log every file under a local folder below ``artifact_path``."""
        from vtrack import artifacts

        artifacts.log_artifacts(self.repo, v.validate_run_id(run_id), local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a UTF-8 text artifact."""
        from vtrack import artifacts

        artifacts.log_text(self.repo, v.validate_run_id(run_id), text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a mapping (or list) as YAML (``.yaml``/``.yml``) or JSON."""
        from vtrack import artifacts

        artifacts.log_dict(self.repo, v.validate_run_id(run_id), dictionary, artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Log a matplotlib figure (format by extension) or a plotly figure (``.html``)."""
        from vtrack import artifacts

        artifacts.log_figure(self.repo, v.validate_run_id(run_id), figure, artifact_file,
                             save_kwargs=save_kwargs)  # fmt: skip

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Log a numpy array or PIL image as an image file (PNG by ``.png``)."""
        from vtrack import artifacts

        artifacts.log_image(self.repo, v.validate_run_id(run_id), image, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly inside artifact folder ``path`` (FileInfo list)."""
        from vtrack import artifacts

        return artifacts.read.list_artifacts(self.repo, v.validate_run_id(run_id), path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Download an artifact file or folder (verified); return its local path."""
        from vtrack import artifacts

        return artifacts.read.download_artifacts(
            self.repo, v.validate_run_id(run_id), path, dst_path
        )

    def load_text(self, run_id: str, path: str) -> str:
        """The text of an artifact file."""
        from vtrack import artifacts

        return artifacts.read.load_text(self.repo, v.validate_run_id(run_id), path)

    def load_dict(self, run_id: str, path: str) -> Any:
        """An artifact file parsed as YAML (``.yaml``/``.yml``) or JSON."""
        from vtrack import artifacts

        return artifacts.read.load_dict(self.repo, v.validate_run_id(run_id), path)

    # -- dataset provenance (the rules live in vtrack.provenance) ------------------------
    def log_input(
        self,
        run_id: str,
        data: Any,
        name: str | None = None,
        context: str | None = None,
        source: str | os.PathLike[str] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        exclude: Sequence[str] | None = None,
    ) -> DatasetInput:
        """Record a file, folder, DataFrame, array or URI as an input; return its entry.

        Logging the same (name, context) again with the same content records nothing;
        other content raises InputConflictError. See vtrack.provenance.log_input.
        """
        from vtrack import provenance

        return provenance.log_input(
            self.repo, run_id, data, name, context, source, tags, exclude=exclude
        )

    def log_inputs(self, run_id: str, inputs: Iterable[Any]) -> list[DatasetInput]:
        """Record several inputs (data, or mappings of log_input's arguments); all or nothing."""
        from vtrack import provenance

        return provenance.log_inputs(self.repo, run_id, inputs)

    def audit(self, run: str) -> list[dict[str, Any]]:
        """Re-check the inputs of ``run`` (id or run spec) against the disk; one dict per input."""
        from vtrack import provenance

        return provenance.audit(self.repo, run)

    def metric_summaries(
        self, run_ids: Sequence[str], key: str, aggregate: str, step: int | None = None
    ) -> dict[str, float | None]:
        """Min, max or value at ``step`` of metric ``key`` for each run named (see
        :meth:`vtrack.store.index_metricstats.MetricStats.values`): what the sort by it uses."""
        from vtrack.store.index_metricstats import MetricStats

        return MetricStats(self.run_index()).values(run_ids, key, aggregate, step)

    def artifact_writers(self, digest: str) -> list[dict[str, Any]]:
        """Runs that logged an artifact with ``digest`` (the writers of a dataset), newest first.

        See :func:`vtrack.store.index_outputs.artifact_writers`; ValidationError for a
        digest that is not ``xxh3-128:<hex>`` with at least 4 hex digits.
        """
        from vtrack.provenance.inputs import DIGEST_ARG, MIN_DIGEST_PREFIX
        from vtrack.store.index_outputs import artifact_writers

        m = DIGEST_ARG.fullmatch(digest or "")
        if m is None or len(m.group(1)) < MIN_DIGEST_PREFIX:
            raise ValidationError(
                f"not a digest: {digest!r}",
                hint=f"give xxh3-128:<hex> with at least {MIN_DIGEST_PREFIX} hex digits",
            )
        return artifact_writers(self.run_index(), digest)

    def lineage(self, path_or_digest: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Runs whose inputs include this file, folder or digest, newest first (plain dicts)."""
        from vtrack import provenance

        return provenance.lineage(self.repo, path_or_digest)


_VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted"),
    1: ("active",), 2: ("deleted",), 3: ("active", "deleted"),
}  # fmt: skip


def _lifecycles(view_type: str | int) -> tuple[str, ...]:
    """Lifecycle stages a view type covers (MLflow's names or its ViewType numbers)."""
    key = view_type.upper() if isinstance(view_type, str) else view_type
    try:
        return _VIEW_TYPES[key]
    except (KeyError, TypeError):
        raise ValidationError(
            f"run view type {view_type!r} must be ACTIVE_ONLY, DELETED_ONLY or ALL"
        ) from None


__all__ = ["DEFAULT_EXPERIMENT_NAME", "RECORDED_ENV_NAMES", "TrackingClient", "generate_run_name"]  # noqa: F822
