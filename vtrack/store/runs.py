"""``RunRepository``: the one way to reach a run.

Services (artifacts, provenance, resolve, repro, gc, sharing, …) and the facades reach
runs only through a repository, never through the client:

- :meth:`RunRepository.writer` — this process's writer of a run, joining the run if
  this process has none yet;
- :meth:`RunRepository.state` — a run as it stands: this process's unflushed logging
  included, dead writers recovered first, other processes' journals applied, and a
  deleted run read from the trash when the caller allows it;
- :meth:`RunRepository.index` — the derived index, synced;
- :meth:`RunRepository.start`, :meth:`delete`, :meth:`restore`, :meth:`recover`;
- :meth:`RunRepository.create_runs` — complete, ended runs recorded in bulk (imports).

It knows nothing of the fluent API, validation or the command line.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vtrack.entities import Run, RunData, RunInfo, RunStatus
from vtrack.errors import RunNotFoundError, RunStateError, StoreError
from vtrack.store import Store, termination
from vtrack.store.bulk import NewRuns, create_runs
from vtrack.store.experiments import ExperimentStore
from vtrack.store.record import RecordState, run_inputs
from vtrack.store.recover import recover_all, recover_run
from vtrack.store.writer import RunWriter, live_writers

if TYPE_CHECKING:
    from vtrack.store.archive import ArchiveReport
    from vtrack.store.index import RunIndex
    from vtrack.store.snapshot import Snapshot


@dataclass(frozen=True)
class RunState:
    """A run's record as it stands now, with the commit it was read from."""

    run_id: str
    commit: str | None
    record: RecordState
    deleted: bool = False

    def to_run(self) -> Run:
        """The run as a :class:`~vtrack.entities.Run` (a copy: later logging does not show)."""
        return run_from_record(self.commit, self.record, deleted=self.deleted)


def run_from_record(commit: str | None, state: RecordState, *, deleted: bool = False) -> Run:
    """The :class:`~vtrack.entities.Run` a record describes."""
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
            lifecycle_stage="deleted" if deleted else str(info.get("lifecycle_stage", "active")),
            commit=commit,
            source=dict(info.get("source") or {}),
            environment=dict(info.get("environment") or {}),
        ),
        data=RunData(params=dict(state.params), metrics=dict(state.metrics), tags=dict(state.tags)),
        inputs=run_inputs(state.inputs, state.artifacts),
    )


class RunRepository:
    """Every run of one store, as this process can reach them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: the store's experiment records (resolve and the facades look names up here)
        self.experiments = ExperimentStore(store)

    # -- this process's writers ---------------------------------------------------
    def _mine(self) -> Iterator[RunWriter]:
        git_dir = self.store.location.git_dir
        for w in live_writers():
            if w.store.location.git_dir == git_dir:
                yield w

    def own_writer(self, run_id: str) -> RunWriter | None:
        """This process's open writer of ``run_id``, or None."""
        for w in self._mine():
            if w.run_id == run_id:
                return w
        return None

    def writer(self, run_id: str) -> RunWriter:
        """This process's writer of ``run_id``, joining the run if there is none yet.

        Raises RunNotFoundError for an unknown (or deleted) run.
        """
        return self.own_writer(run_id) or RunWriter.join(self.store, run_id)

    def start(self, info: dict[str, Any], tags: dict[str, str], snapshot: Snapshot,
              *, retake: Any = None) -> RunWriter:  # fmt: skip
        """Start a new RUNNING run (first commit and ref) from ``info`` and a code snapshot.

        ``retake`` (a callable returning a fresh snapshot) is used once if a concurrent
        ``git gc`` removed part of the snapshot before the first commit reached it. OS
        errors (a read-only store) become StoreError.
        """
        from vtrack.store.gitobj import MissingObjectError

        run_id = str(info["id"])
        try:
            try:
                return RunWriter.create(self.store, run_id, info, tags, snapshot.entries,
                                        snapshot.parent)  # fmt: skip
            except MissingObjectError:
                if retake is None:
                    raise
                again = retake()
                return RunWriter.create(self.store, run_id, info, tags, again.entries,
                                        again.parent)  # fmt: skip
        except OSError as exc:
            raise StoreError(
                f"cannot start a run in the store {self.store.location.git_dir}: "
                f"{exc.strerror or exc}",
                hint="is the repository writable by you?",
            ) from exc

    def create_runs(self) -> contextlib.AbstractContextManager[NewRuns]:
        """A block in which complete, ended runs are recorded and then created together
        (an import: original start and end times, metric timestamps; no code snapshot).

        See :mod:`vtrack.store.bulk`: one pack for the whole block, each run all or
        nothing, no live writer and no journal.
        """
        return create_runs(self.store)

    def resume(self, run_id: str) -> RunWriter:
        """Attach this process to ``run_id`` and mark it RUNNING again if it had ended."""
        w = self.writer(run_id)
        if w.state.info.get("status") != RunStatus.RUNNING.value:
            w.set_status(RunStatus.RUNNING.value, None)
            w.checkpoint()
        w.resumed = True
        return w

    def flush(self, run_id: str | None = None) -> None:
        """Make what this process logged (to ``run_id``, or to every run) durable in journals."""
        for w in self._mine():
            if run_id is None or w.run_id == run_id:
                w.flush()

    def checkpoint(self, run_id: str) -> None:
        """Commit everything this process logged to ``run_id`` now."""
        w = self.own_writer(run_id)
        if w is not None:
            w.checkpoint()

    def detach(self, run_id: str) -> None:
        """Commit what this process logged to ``run_id`` and stop writing it (status kept)."""
        w = self.own_writer(run_id)
        if w is not None:
            w.detach()

    def end(self, run_id: str, status: str, end_time: int | None = None) -> None:
        """End ``run_id`` with a terminal ``status`` (as the last writer out, for FINISHED)."""
        self.writer(run_id).end(status, end_time)

    # -- reading ------------------------------------------------------------------
    def state(self, run_id: str, *, deleted_ok: bool = False) -> RunState:
        """The run as it stands now (see the module docstring).

        Raises RunNotFoundError when there is no such run (or it is deleted and
        ``deleted_ok`` is false).
        """
        w = self.own_writer(run_id)
        if w is not None:
            with w.lock:
                w.flush()
                return RunState(run_id, w.tip, w.state.copy())
        recover_run(self.store, run_id)
        try:
            tip, record = self.store.read_run_state(run_id)
            return RunState(run_id, tip, record)
        except RunNotFoundError:
            trash = self.store.trash_tip(run_id) if deleted_ok else None
            if trash is None:
                raise
            record, _, _ = self.store.read_run_commit(trash)
            return RunState(run_id, trash, record, deleted=True)

    def get(self, run_id: str, *, deleted_ok: bool = True) -> Run:
        """The run as an entity (live journals included; deleted runs too by default)."""
        return self.state(run_id, deleted_ok=deleted_ok).to_run()

    def index(self, *, sync: bool = True) -> RunIndex:
        """The derived run index, synced with the refs and this process's unflushed logging."""
        from vtrack.store.index import RunIndex

        idx = RunIndex.for_store(self.store)
        if sync:
            self.flush()
            idx.sync()
        return idx

    def recover(self, *, clear_locks: bool = False) -> list[str]:
        """Finalize runs whose writing process died; return their ids.

        With ``clear_locks``, lock files left by dead processes are removed first.
        """
        return recover_all(self.store, clear_locks=clear_locks)

    # -- deleting -----------------------------------------------------------------
    def delete(self, run_id: str) -> None:
        """Move a run to the trash (this process's writer of it leaves first)."""
        w = self.own_writer(run_id)
        if w is not None:
            w.detach()
        tip = self.store.require_run(run_id)
        self.store.refs.move_to_trash(run_id, tip)

    def restore(self, run_id: str) -> None:
        """Bring a deleted run back from the trash."""
        tip = self.store.trash_tip(run_id)
        if tip is None:
            raise RunNotFoundError(f"no deleted run with id {run_id}")
        if self.store.run_tip(run_id) is not None:
            raise RunStateError(f"run {run_id} exists and is not deleted")
        self.store.refs.restore_from_trash(run_id, tip)

    # -- archiving ----------------------------------------------------------------
    def archive(self, *, older_than_days: float | None = None, keep: int = 0,
                dry_run: bool = False) -> ArchiveReport:  # fmt: skip
        """Compact finished runs into archive batches (:mod:`vtrack.store.archive`).

        The runs stay reachable by id, prefix and name; live runs are never archived.
        ``keep`` newest runs stay as they are; ``older_than_days`` archives only runs
        whose last commit is older; the batch size is ``vtrack.archive.batchSize``.
        """
        from vtrack.store.archive import compact, read_settings

        size = read_settings(self.store.location.git_dir).batch_size
        return compact(self.store, older_than_days=older_than_days, keep=keep,
                       batch_size=size, dry_run=dry_run)  # fmt: skip

    def unarchive(self, run_ids: list[str] | None = None, *, dry_run: bool = False
                  ) -> ArchiveReport:  # fmt: skip
        """Give archived runs (``run_ids``, or all, then removing the batches) their own
        refs again."""
        from vtrack.store.archive import unarchive

        return unarchive(self.store, run_ids, dry_run=dry_run)


def end_writers_at_exit() -> None:
    """End every writer of this process still open at exit (KILLED after SIGTERM, else
    FINISHED; a joined writer of an ended run just leaves); then die by the signal that
    killed the process, if one did. Registered before the fluent API's exit handler, so
    that it runs after it: last."""
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


atexit.register(end_writers_at_exit)
