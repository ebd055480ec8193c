"""What the run index writes for one run commit, derived once: :class:`DerivedRun`.

A sync turns each record it reads into the rows it writes (the ``runs`` row, the
``datasets``, ``input_files`` and ``records`` rows, the key sets ``key_counts`` counts).
:func:`derive` is the one place that does it, for records read from git and for the
summary tables archive batches carry (:mod:`vtrack.store.archive_summaries`), so an
index built from those tables holds exactly what reading every run gives.

Value rows of materialized keys need the values themselves: :meth:`DerivedRun.record`
rebuilds them from the stored body when the run came from a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vtrack.store import index_inputs
from vtrack.store.index_records import (
    IndexedRecord,
    attr_int,
    attr_text,
    body_of,
    text_or_none,
    value_rows,
)

#: Version of what :func:`derive` computes (the columns of each row). Bump it whenever
#: the rows a record gives change, so tables written before are re-derived from bodies.
ROWS_VERSION = 1

Row = tuple[Any, ...]


@dataclass
class DerivedRun:
    """The rows one run commit gives the index (run number ``rid`` added on insert)."""

    run_id: str
    commit: str
    lifecycle: str
    live: bool
    #: ``name, experiment_id, status, start_time, end_time, user, parent_run_id``
    attrs: Row
    #: the run's param, metric and tag keys (in record order)
    keys: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    #: ``(idx, name, digest, context)`` of each dataset input
    datasets: list[Row]
    #: ``input_files`` rows (:func:`vtrack.store.index_inputs.input_file_rows`)
    inputs: list[Row]
    #: the ``records`` body (:func:`vtrack.store.index_records.body_of`)
    body: str
    #: left out of the index: its record could not be read (a warning said why)
    broken: bool = False
    _rec: IndexedRecord | None = None

    @classmethod
    def unreadable(cls, run_id: str, commit: str, lifecycle: str) -> DerivedRun:
        """A placeholder for a run whose record cannot be read."""
        return cls(run_id, commit, lifecycle, False, (None,) * 7, ((), (), ()), [], [], "",
                   broken=True)  # fmt: skip

    @property
    def experiment_id(self) -> str | None:
        """The run's experiment id as the ``runs`` row stores it."""
        return self.attrs[1]

    def record(self) -> IndexedRecord:
        """The record itself (rebuilt from the body when the run came from a table)."""
        if self._rec is None:
            self._rec = IndexedRecord.from_body(self.run_id, self.commit, self.lifecycle,
                                                self.body)  # fmt: skip
        return self._rec

    def run_values(self) -> Row:
        """The ``runs`` row after its ``id`` and ``run_id``."""
        return (self.commit, self.lifecycle, int(self.live), *self.attrs)

    def key_sets(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``(entity, keys)`` for :class:`vtrack.store.index_keys.KeyCounts`."""
        p, m, t = self.keys
        return (("params", p), ("metrics", m), ("tags", t))

    def value_rows(self, rid: int, materialized: dict[str, set[str]]) -> dict[str, list[Row]]:
        """The value rows of the ``materialized`` keys this run has, by table."""
        out: dict[str, list[Row]] = {}
        for (entity, keys), index in zip(self.key_sets(), range(3), strict=True):
            wanted = materialized.get(entity)
            if not wanted or not keys or wanted.isdisjoint(keys):
                continue
            rec = self.record()
            values = (rec.params, rec.metrics, rec.tags)[index]
            out[entity] = value_rows(rid, entity, values, wanted)
        return out


def derive(rec: IndexedRecord, body: str | None = None) -> DerivedRun:
    """The rows ``rec`` gives (``body``: its stored body, when already known)."""
    if rec.broken:
        return DerivedRun.unreadable(rec.run_id, rec.commit, rec.lifecycle)
    info = rec.info
    attrs = (
        attr_text(info.get("name")), attr_text(info.get("experiment_id")),
        attr_text(info.get("status")), attr_int(info.get("start_time")),
        attr_int(info.get("end_time")), attr_text(info.get("user")),
        attr_text(info.get("parent_run_id")),
    )  # fmt: skip
    datasets = [
        (i, *(text_or_none(d.get(f)) for f in ("name", "digest", "context")))
        for i, d in enumerate(rec.inputs)
        if isinstance(d, dict)
    ]
    inputs = index_inputs.record_rows(rec)
    return DerivedRun(
        rec.run_id, rec.commit, rec.lifecycle, rec.live, attrs,
        (tuple(rec.params), tuple(rec.metrics), tuple(rec.tags)), datasets, inputs,
        body_of(rec) if body is None else body, _rec=rec,
    )  # fmt: skip
