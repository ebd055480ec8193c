"""``TrackingClient``: every operation by explicit run or experiment id.

The fluent API, the command line and the UI all call this class. It composes the
store (plumbing) with validation, run writers of this process, and recovery of
runs whose writer died.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import validation as v
from vtrack.entities import Experiment, Metric, Run, RunData, RunInfo, RunInputs, RunStatus
from vtrack.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    ValidationError,
)
from vtrack.store import Store, current_user, termination
from vtrack.store import refs as refnames
from vtrack.store.experiments import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    candidate_experiment_ids,
)
from vtrack.store.record import RecordState
from vtrack.store.recover import recover_all, recover_run
from vtrack.store.writer import MetricPoint, RunWriter, live_writers, now_ms

if TYPE_CHECKING:
    from vtrack.artifacts import FileInfo
    from vtrack.store.index import RunIndex

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()

#: Environment variables recorded with a run so that ``vtrack rerun`` can restore them.
RECORDED_ENV_NAMES = (
    "PYTHONHASHSEED",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VTRACK_EXPERIMENT_NAME",
    "VTRACK_EXPERIMENT_ID",
)

_ADJECTIVES = (
    "amber bold brave bright calm clever crisp daring eager fair fancy gentle glad golden "
    "grand happy jolly keen kind lively lucky merry mighty noble polite proud quick quiet "
    "rapid royal shiny silent silver smart snowy steady sunny swift tidy vivid warm wise witty"
).split()
_NOUNS = (
    "ant badger bat bear bee bison boar cat colt crab crane deer dog dove eagle eel elk "
    "falcon finch fox frog goat hare hawk heron ibis jay koala lark lion lynx mole moose "
    "newt otter owl panda quail ram raven robin seal shark sloth snail swan tiger toad trout "
    "wasp whale wolf wren yak zebra"
).split()


def generate_run_name() -> str:
    """A readable random run name such as ``bright-fox-042``."""
    r = uuid.uuid4().int
    adj = _ADJECTIVES[r % len(_ADJECTIVES)]
    noun = _NOUNS[(r // 97) % len(_NOUNS)]
    return f"{adj}-{noun}-{(r // 9973) % 1000:03d}"


_versions_cache: tuple[int, dict[str, str]] = (-1, {})


def _package_versions() -> dict[str, str]:
    """Versions of the imported top-level packages (recomputed when more were imported)."""
    global _versions_cache
    count = len(sys.modules)
    if _versions_cache[0] == count:
        return dict(_versions_cache[1])
    out: dict[str, str] = {}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    import warnings

    with warnings.catch_warnings():  # click 8.2+ warns on __version__; -W error would fail runs
        warnings.simplefilter("ignore")
        for name, mod in list(sys.modules.items()):
            if "." in name or name.startswith("_") or name in stdlib or mod is None:
                continue
            ver = getattr(mod, "__version__", None)
            if isinstance(ver, str) and len(ver) < 64:
                out[name] = str(ver)  # a str subclass (torch.__version__) is no YAML scalar
    _versions_cache = (count, dict(sorted(out.items())))
    return dict(_versions_cache[1])


_platform: str | None = None


def _environment() -> dict[str, Any]:
    global _platform
    import platform

    if _platform is None:
        _platform = platform.platform()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": _platform,
        "packages": _package_versions(),
    }


def _entry_point(worktree: Path | None) -> tuple[str | None, list[str]]:
    """``(entry point, arguments)`` of this process, as Python holds them.

    The entry point is ``sys.argv[0]`` relative to ``worktree`` (absolute outside it),
    ``"-c"``, ``"-m <module>"``, or None when unknown. Non-UTF-8 bytes stay lone
    surrogates here; :func:`vtrack.secrets.command_record` makes the record safe.
    """
    argv = list(sys.argv)
    if not argv or not argv[0]:
        return None, argv[1:]
    first = argv[0]
    if first == "-c":
        return "-c", argv[1:]
    # started as `python -m module`: __main__ carries the module's import name
    name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    if name and name != "__main__":
        return f"-m {name.removesuffix('.__main__')}", argv[1:]
    path = Path(first)
    try:
        path = path.resolve()
        if worktree is not None:
            return path.relative_to(worktree).as_posix(), argv[1:]
    except (OSError, ValueError):
        pass
    return str(path), argv[1:]


def _start_writer(st: Store, run_id: str, info: dict[str, Any], tags: dict[str, str],
                  snap: Any) -> RunWriter:
    """Create the run's writer; retake the snapshot once if a concurrent prune removed part
    of it before the first commit reached it. OS errors (a read-only store) become StoreError."""
    from vtrack.store import snapshot
    from vtrack.store.gitobj import MissingObjectError

    try:
        try:
            return RunWriter.create(st, run_id, info, tags, snap.entries, snap.parent)
        except MissingObjectError:
            snapshot.clear_cache()
            again = snapshot.capture(
                st.location, st.objects, st.refs,
                max_file_bytes=st.settings.snapshot_max_file_bytes,
                enabled=st.settings.capture_code,
                include_secrets=st.settings.snapshot_include_secrets,
            )  # fmt: skip
            return RunWriter.create(st, run_id, info, tags, again.entries, again.parent)
    except OSError as exc:
        raise StoreError(
            f"cannot start a run in the store {st.location.git_dir}: {exc.strerror or exc}",
            hint="is the repository writable by you?",
        ) from exc


class TrackingClient:
    """Explicit access to one store: experiments, runs, logging, reading."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self._store: Store | None = None

    # -- the store -------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The opened store (created on first use outside any repository)."""
        if self._store is None:
            from vtrack.config import locate_store

            loc = locate_store(self.tracking_uri)
            key = str(loc.git_dir)
            with _stores_lock:
                st = _stores.get(key)
                if st is None or st.location != loc:
                    st = _stores[key] = Store(loc)
            self._store = st
        return self._store

    # -- experiments -----------------------------------------------------------
    @staticmethod
    def _to_experiment(data: Mapping[str, Any]) -> Experiment:
        return Experiment(
            experiment_id=str(data["id"]),
            name=str(data["name"]),
            lifecycle_stage=str(data.get("lifecycle_stage", "active")),
            creation_time=int(data.get("creation_time") or 0),
            last_update_time=int(data.get("last_update_time") or 0),
            tags=dict(data.get("tags") or {}),
        )

    def _ensure_default_experiment(self) -> None:
        st = self.store
        if st.experiment_tip(DEFAULT_EXPERIMENT_ID) is None:
            from vtrack.errors import RefConflictError

            try:
                self._write_new_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, {})
            except RefConflictError:
                pass  # created by another process meanwhile

    def _write_new_experiment(self, exp_id: str, name: str, tags: dict[str, str]) -> None:
        now = now_ms()
        self.store.write_experiment(
            {"id": exp_id, "name": name, "lifecycle_stage": "active", "creation_time": now,
             "last_update_time": now, "tags": tags},
            None,
        )

    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> str:
        """Create an experiment and return its id; raise ExperimentExistsError if the name is taken.

        Ids come from the name (:func:`~vtrack.store.experiments.candidate_experiment_ids`),
        so processes creating one name at once converge: the losers get
        ExperimentExistsError, never a second experiment with that name.
        """
        from vtrack.errors import RefConflictError

        v.validate_experiment_name(name)
        clean_tags = v.validate_tags(tags)
        self._ensure_default_experiment()
        if self.get_experiment_by_name(name) is not None:
            raise ExperimentExistsError(f"experiment {name!r} already exists")
        for candidate in candidate_experiment_ids(name):
            for _attempt in range(2):
                data = self.store.read_experiment(candidate)
                if data is not None:
                    if data.get("name") == name:
                        raise ExperimentExistsError(f"experiment {name!r} already exists")
                    break  # held by another (renamed) experiment: try the next id
                try:
                    self._write_new_experiment(candidate, name, clean_tags)
                    return candidate
                except RefConflictError:
                    continue  # created meanwhile: look at what it is
        raise ExperimentExistsError(f"could not allocate an id for experiment {name!r}")

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with that id; raise ExperimentNotFoundError if absent."""
        exp_id = v.validate_experiment_id(experiment_id)
        if exp_id == DEFAULT_EXPERIMENT_ID:
            self._ensure_default_experiment()
        data = self.store.read_experiment(exp_id)
        if data is None:
            raise ExperimentNotFoundError(f"no experiment with id {experiment_id!r}")
        return self._to_experiment(data)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with that name (active or deleted), or None."""
        if not isinstance(name, str):
            raise ValidationError(f"experiment name {name!r} must be a string")
        if name == DEFAULT_EXPERIMENT_NAME:
            self._ensure_default_experiment()
        for data in self.store.list_experiments():
            if data.get("name") == name:
                return self._to_experiment(data)
        return None

    def search_experiments(
        self, view_type: str = "ACTIVE_ONLY", max_results: int | None = None
    ) -> list[Experiment]:
        """Experiments by lifecycle (``ACTIVE_ONLY``, ``DELETED_ONLY``, ``ALL``), oldest first."""
        view = view_type.upper()
        if view not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
            raise ValidationError(f"view_type {view_type!r} must be ACTIVE_ONLY, DELETED_ONLY or ALL")
        self._ensure_default_experiment()
        exps = [self._to_experiment(d) for d in self.store.list_experiments()]
        if view == "ACTIVE_ONLY":
            exps = [e for e in exps if e.lifecycle_stage == "active"]
        elif view == "DELETED_ONLY":
            exps = [e for e in exps if e.lifecycle_stage == "deleted"]
        exps.sort(key=lambda e: (e.creation_time, e.experiment_id))
        return exps[:max_results] if max_results else exps

    def _update_experiment(self, experiment_id: str, **changes: Any) -> Experiment:
        from vtrack.errors import RefConflictError

        exp_id = v.validate_experiment_id(experiment_id)
        for _ in range(20):
            tip = self.store.experiment_tip(exp_id)
            data = self.store.read_experiment(exp_id)
            if tip is None or data is None:
                raise ExperimentNotFoundError(f"no experiment with id {experiment_id!r}")
            data.update(changes)
            data["last_update_time"] = now_ms()
            try:
                self.store.write_experiment(data, tip)
                return self._to_experiment(data)
            except RefConflictError:
                continue
        raise RunStateError(f"experiment {experiment_id} keeps changing; try again")

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment deleted (its runs stay; restore with restore_experiment)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise ValidationError("the Default experiment cannot be deleted")
        self._update_experiment(experiment_id, lifecycle_stage="deleted")

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo delete_experiment."""
        self._update_experiment(experiment_id, lifecycle_stage="active")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new (unused) name."""
        v.validate_experiment_name(new_name)
        other = self.get_experiment_by_name(new_name)
        if other is not None and other.experiment_id != str(experiment_id):
            raise ExperimentExistsError(f"experiment {new_name!r} already exists")
        self._update_experiment(experiment_id, name=new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        k, val = v.validate_tag(key, value)
        exp = self.get_experiment(experiment_id)
        tags = dict(exp.tags)
        tags[k] = val
        self._update_experiment(experiment_id, tags=tags)

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
        clean_tags = v.validate_tags(tags)
        name = v.validate_run_name(run_name) if run_name is not None else generate_run_name()
        desc = v.validate_description(description)
        if parent_run_id is not None:
            v.validate_run_id(parent_run_id)
        exp_id = str(experiment_id) if experiment_id is not None else DEFAULT_EXPERIMENT_ID
        exp = self.get_experiment(exp_id)
        if exp.lifecycle_stage != "active":
            raise RunStateError(f"experiment {exp.name!r} is deleted; restore it to add runs")
        st = self.store
        from vtrack.store.snapshot import capture

        try:
            snap = capture(
                st.location, st.objects, st.refs,
                max_file_bytes=st.settings.snapshot_max_file_bytes,
                enabled=st.settings.capture_code,
                include_secrets=st.settings.snapshot_include_secrets,
            )
        except OSError as exc:
            raise StoreError(
                f"cannot start a run in the store {st.location.git_dir}: {exc.strerror or exc}",
                hint="is the repository writable by you?",
            ) from exc
        from vtrack.secrets import command_record

        entry, argv = _entry_point(st.location.worktree)
        source = dict(snap.source)
        # masked secrets, escaped non-UTF-8 bytes (exact bytes in *_raw): see vtrack.secrets
        source.update(command_record(entry, argv, os.getcwd()))
        env = {k: os.environ[k] for k in RECORDED_ENV_NAMES if k in os.environ}
        if env:
            source["env"] = env
        run_id = uuid.uuid4().hex
        info = {
            "id": run_id,
            "name": name,
            "experiment_id": exp.experiment_id,
            "status": RunStatus.RUNNING.value,
            "start_time": int(start_time) if start_time is not None else now_ms(),
            "end_time": None,
            "user": current_user(),
            "parent_run_id": parent_run_id,
            "description": desc,
            "source": source,
            "environment": _environment(),
        }
        writer = _start_writer(st, run_id, info, clean_tags, snap)
        return self._run_from_state(writer.tip, writer.state)

    def _writer(self, run_id: str) -> RunWriter:
        """This process's writer for ``run_id`` (joining the run if needed)."""
        st = self.store
        for w in live_writers():
            if w.run_id == run_id and w.store is st:
                return w
        v.validate_run_id(run_id)
        return RunWriter.join(st, run_id)

    def resume_run(self, run_id: str) -> Run:
        """Attach this process to an existing run and mark it RUNNING again if it had ended."""
        w = self._writer(v.validate_run_id(run_id))
        if w.state.info.get("status") != RunStatus.RUNNING.value:
            w.set_status(RunStatus.RUNNING.value, None)
            w.checkpoint()
        w.resumed = True
        return self._run_from_state(w.tip, w.state)

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
        key = v.validate_metric_key(key)
        val = v.validate_metric_value(key, value)
        st = v.validate_step(key, step) if step is not None else 0
        ts = v.validate_timestamp(key, timestamp) if timestamp is not None else now_ms()
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
        clean = v.validate_tags(tags)
        self._writer(run_id).set_tags(clean)

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
            )
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
        for w in live_writers():
            if w.run_id == run_id:
                w.flush()

    def detach(self, run_id: str) -> None:
        """Commit what this process logged to ``run_id`` and stop writing it (status kept)."""
        for w in live_writers():
            if w.run_id == run_id and w.store is self.store:
                w.detach()

    def checkpoint(self, run_id: str) -> None:
        """Commit everything logged to ``run_id`` by this process now."""
        for w in live_writers():
            if w.run_id == run_id:
                w.checkpoint()

    def set_terminated(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        """End a run with ``status`` (FINISHED, FAILED or KILLED) and commit it."""
        s = RunStatus.parse(status)
        if not s.is_terminal:
            raise ValidationError(f"set_terminated needs a terminal status, not {s.value}")
        self._writer(run_id).end(s.value, end_time)

    # -- reading -----------------------------------------------------------------
    def _run_from_state(self, commit: str | None, state: RecordState) -> Run:
        info = state.info
        return Run(
            info=RunInfo(
                run_id=str(info.get("id")),
                run_name=str(info.get("name")),
                experiment_id=str(info.get("experiment_id")),
                status=str(info.get("status")),
                start_time=int(info.get("start_time") or 0),
                end_time=info.get("end_time"),
                user_id=str(info.get("user") or ""),
                parent_run_id=info.get("parent_run_id"),
                description=info.get("description"),
                lifecycle_stage=str(info.get("lifecycle_stage", "active")),
                commit=commit,
                source=dict(info.get("source") or {}),
                environment=dict(info.get("environment") or {}),
            ),
            data=RunData(params=dict(state.params), metrics=dict(state.metrics), tags=dict(state.tags)),
            inputs=RunInputs(datasets=list(state.inputs), artifacts=dict(state.artifacts)),
        )

    def _state(self, run_id: str) -> tuple[str | None, RecordState]:
        v.validate_run_id(run_id)
        for w in live_writers():
            if w.run_id == run_id and w.store is self.store:
                with w.lock:
                    w.flush()
                    return w.tip, w.state.copy()
        recover_run(self.store, run_id)
        return self.store.read_run_state(run_id)

    def get_run(self, run_id: str) -> Run:
        """The run with everything logged so far (live journals included)."""
        try:
            tip, state = self._state(run_id)
        except RunNotFoundError:
            trash = self.store.trash_tip(run_id) if isinstance(run_id, str) else None
            if trash:
                state, _, _ = self.store.read_run_commit(trash)
                state.info["lifecycle_stage"] = "deleted"
                return self._run_from_state(trash, state)
            raise
        return self._run_from_state(tip, state)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of metric ``key`` in the order logged."""
        v.validate_metric_key(key)
        try:
            _, state = self._state(run_id)
        except RunNotFoundError:  # a deleted run keeps its history, as get_run shows it
            trash = self.store.trash_tip(run_id)
            if not trash:
                raise
            state, _, _ = self.store.read_run_commit(trash)
        return [Metric(key, val, ts, step) for step, ts, val in state.iter_history(key)]

    def list_runs(self, experiment_id: str | None = None, view_type: str = "ACTIVE_ONLY") -> list[Run]:
        """Runs (of one experiment, or all), newest first. Dead writers are recovered first."""
        self.recover()
        exps = None if experiment_id is None else [str(experiment_id)]
        return self.run_index().list_runs(exps, _lifecycles(view_type))

    def run_index(self, *, sync: bool = True) -> RunIndex:
        """The store's derived run index, synced with the refs and this process's unflushed logs."""
        from vtrack.store.index import RunIndex

        idx = RunIndex.for_store(self.store)
        if sync:
            for w in live_writers():
                if w.store is self.store:
                    w.flush()
            idx.sync()
        return idx

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
            raise ValidationError(f"max_results must be a positive integer or None, not {max_results!r}")
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        exps = None if experiment_ids is None else [str(e) for e in experiment_ids]
        lifecycles = _lifecycles(run_view_type)
        self.recover()
        return self.run_index().search(
            clauses, order, experiment_ids=exps, lifecycles=lifecycles, max_results=max_results
        )

    def recover(self, *, clear_locks: bool = False) -> list[str]:
        """Finalize runs whose writing process died; return their ids.

        With ``clear_locks`` (what ``vtrack recover`` does), lock files left by dead
        processes are removed first, so that runs they blocked can be finalized.
        """
        return recover_all(self.store, clear_locks=clear_locks)

    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash (``refs/vtrack/trash/``); restore_run undoes it."""
        v.validate_run_id(run_id)
        for w in live_writers():
            if w.run_id == run_id and w.store is self.store:
                w.detach()
        st = self.store
        tip = st.require_run(run_id)
        from vtrack.errors import RefConflictError

        if st.trash_tip(run_id) is not None:
            st.refs.delete(refnames.trash_ref(run_id), st.trash_tip(run_id))  # type: ignore[arg-type]
        try:
            st.refs.cas(refnames.trash_ref(run_id), None, tip)
        except RefConflictError:
            pass
        st.refs.delete(refnames.run_ref(run_id), tip)

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back from the trash."""
        v.validate_run_id(run_id)
        st = self.store
        tip = st.trash_tip(run_id)
        if tip is None:
            raise RunNotFoundError(f"no deleted run with id {run_id}")
        if st.run_tip(run_id) is not None:
            raise RunStateError(f"run {run_id} exists and is not deleted")
        st.refs.cas(refnames.run_ref(run_id), None, tip)
        st.refs.delete(refnames.trash_ref(run_id), tip)

    # -- artifacts (the rules live in vtrack.artifacts) --------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log a local file as ``<artifact_path>/<file name>`` (see vtrack.artifacts)."""
        from vtrack import artifacts

        artifacts.log_artifact(self, run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log every file under a local folder below ``artifact_path``."""
        from vtrack import artifacts

        artifacts.log_artifacts(self, run_id, local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a UTF-8 text artifact."""
        from vtrack import artifacts

        artifacts.log_text(self, run_id, text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a mapping (or list) as YAML (``.yaml``/``.yml``) or JSON."""
        from vtrack import artifacts

        artifacts.log_dict(self, run_id, dictionary, artifact_file)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Log a matplotlib figure (format by extension) or a plotly figure (``.html``)."""
        from vtrack import artifacts

        artifacts.log_figure(self, run_id, figure, artifact_file, save_kwargs=save_kwargs)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Log a numpy array or PIL image as an image file (PNG by ``.png``)."""
        from vtrack import artifacts

        artifacts.log_image(self, run_id, image, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly inside artifact folder ``path`` (FileInfo list)."""
        from vtrack import artifacts

        return artifacts.list_artifacts(self, run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Download an artifact file or folder (verified); return its local path."""
        from vtrack import artifacts

        return artifacts.download_artifacts(self, run_id, path, dst_path)

    def load_text(self, run_id: str, path: str) -> str:
        """The text of an artifact file."""
        from vtrack import artifacts

        return artifacts.load_text(self, run_id, path)

    def load_dict(self, run_id: str, path: str) -> Any:
        """An artifact file parsed as YAML (``.yaml``/``.yml``) or JSON."""
        from vtrack import artifacts

        return artifacts.load_dict(self, run_id, path)

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
    ) -> dict[str, Any]:
        """Record a file, folder, DataFrame, array or URI as an input; return its entry.

        Logging the same (name, context) again with the same content records nothing;
        other content raises InputConflictError. See vtrack.provenance.log_input.
        """
        from vtrack import provenance

        return provenance.log_input(
            self, run_id, data, name, context, source, tags, exclude=exclude
        )

    def log_inputs(self, run_id: str, inputs: Iterable[Any]) -> list[dict[str, Any]]:
        """Record several inputs (data, or mappings of log_input's arguments); all or nothing."""
        from vtrack import provenance

        return provenance.log_inputs(self, run_id, inputs)

    def audit(self, run: str) -> list[dict[str, Any]]:
        """Re-check the inputs of ``run`` (id or run spec) against the disk; one dict per input."""
        from vtrack import provenance

        return provenance.audit(self, run)

    def lineage(self, path_or_digest: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Runs whose inputs include this file, folder or digest, newest first (plain dicts)."""
        from vtrack import provenance

        return provenance.lineage(self, path_or_digest)


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


def _end_writers_at_exit() -> None:
    """End every writer still open at exit; then die by the signal that killed us, if any.

    Registered before the fluent API's exit handler, so it runs after it: last.
    """
    termination.begin_exit()
    killed = termination.killed()
    for w in live_writers():
        try:
            if w.joined_status not in (None, "RUNNING") and not w.resumed:
                w.detach()
            else:
                w.end(RunStatus.KILLED.value if killed else RunStatus.FINISHED.value)
        except Exception as exc:  # noqa: BLE001 - exit must go on
            print(f"vtrack: could not finalize run {w.run_id}: {exc}", file=sys.stderr)
    termination.die_by_signal_if_killed()


atexit.register(_end_writers_at_exit)
