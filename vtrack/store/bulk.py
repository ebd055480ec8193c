"""Complete runs created in bulk (an import): no live writer, one pack, one commit per run.

A run made by :meth:`~vtrack.store.runs.RunRepository.create_runs` is born ended: its
record (info with the original start and end times, params, tags, metric histories with
their own steps and timestamps, inputs, artifacts) is built in memory by the caller and
written as one commit without a code snapshot; every object of the block (records,
history chunks, artifact blobs the caller stores inside it) goes into one kept pack, and
the runs' refs are created once that pack is published, in one ``git update-ref``
transaction.

Each run is all or nothing: its ref is created only after every object it references is
stored. If the block fails, no ref is created (the pack is git's garbage); if the
transaction fails (a ref appeared meanwhile) the refs are created one by one and the
runs whose id existed are reported. Never a half-written run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vtrack.errors import RefConflictError, RunStateError, ValidationError
from vtrack.store.record import RecordState, format_rows

if TYPE_CHECKING:
    from vtrack.store import Store

#: Fields of ``run.yaml`` a bulk-created run must have.
REQUIRED_INFO = ("id", "name", "experiment_id", "status", "start_time")


class NewRuns:
    """The runs a :func:`create_runs` block will create (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.states: list[RecordState] = []
        #: run ids whose refs the block created, in order (set when the block ends)
        self.created: list[str] = []

    def new_record(self, info: dict[str, Any]) -> RecordState:
        """An empty record for a new run described by ``info`` (``run.yaml``'s fields).

        ``info`` needs ``id``, ``name``, ``experiment_id``, ``status`` (not RUNNING:
        nobody writes these runs) and ``start_time``. The record is created with the
        others when the block ends; fill it with :meth:`add_history` and the record's
        own methods (``set_param``, ``set_tag``, ``add_input``, ``add_artifact``,
        ``add_file``) meanwhile.
        """
        missing = [k for k in REQUIRED_INFO if info.get(k) in (None, "")]
        if missing:
            raise ValidationError(f"a new run's info lacks {', '.join(missing)}")
        if info["status"] == "RUNNING":
            raise ValidationError("a run created in bulk cannot be RUNNING: no process writes it")
        if self.store.run_tip(str(info["id"])) is not None:
            raise RunStateError(f"run {info['id']} exists already")
        state = RecordState(self.store.objects)
        state.info = dict(info)
        self.states.append(state)
        return state

    @staticmethod
    def add_history(state: RecordState, key: str, points: list[tuple[int, int, float]]) -> None:
        """Append ``(step, timestamp, value)`` points to metric ``key`` of ``state``, in
        order, with their own timestamps; the latest value follows MLflow's rule."""
        pts = [(key, float(v), int(s), int(t)) for s, t, v in points]
        state.add_points(pts, format_rows(pts))
        # sealed chunks go into the block's pack now, so memory stays bounded over
        # thousands of runs (nothing reads them before the refs exist)
        state.chunks_stored(state.store_chunks())

    def discard(self, state: RecordState) -> None:
        """Leave ``state`` out of the block (its objects become git's garbage)."""
        self.states = [s for s in self.states if s is not state]


@contextlib.contextmanager
def create_runs(store: Store) -> Iterator[NewRuns]:
    """Create the runs recorded in the block when it ends (see the module docstring).

    Raises RefConflictError if a run with one of the ids appeared meanwhile (the other
    runs of the block are created, complete; ``created`` lists them).
    """
    bulk = NewRuns(store)
    with store.objects.batch() as batch:
        yield bulk
        commits = [(str(s.info["id"]), store.write_run_commit(s, (), None)) for s in bulk.states]
    try:
        existed = store.refs.create_runs(dict(commits)) if commits else []
    finally:
        if batch.handle is not None:
            batch.handle.release()
    bulk.created = [run_id for run_id, _ in commits if run_id not in existed]
    for s in bulk.states:
        s.chunks_stored(list(s.unstored))
    if existed:
        raise RefConflictError(f"runs {', '.join(existed)} appeared meanwhile; left as they were")
