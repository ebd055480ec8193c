"""The summary table an archive batch carries: the index's rows of each run, in one blob.

A fresh clone of 100,000 runs must answer its first command in seconds (issue 15); one
``summary.json`` per run costs git alone ~18 s to stream. So each archive batch
(:mod:`vtrack.store.archive`) also holds ``summaries.tsv``: after a header line
``# vtrack summaries v1 rows <ROWS_VERSION>``, one line per run (sorted by id)::

    <run id> TAB <run commit> TAB <derived JSON> TAB <body>

``derived JSON`` is ``[attrs, param keys, metric keys, tag keys, datasets, inputs]`` of
:class:`~vtrack.store.index_rows.DerivedRun`, ``body`` the run's ``records`` body (its
verified ``summary.json`` as is). A build reads each batch's table in one go instead of
each run (:func:`iter_derived`).

The run commits stay the record; a table is derived from them and only ever stands for
the exact ``(run id, commit)`` of a line. Which commit a run is at is decided by the
ref listing alone — loose and trash refs shadowing the archive, tombstones, superseded
batches (:class:`~vtrack.store.archive_read.ArchiveView`) — so the table obeys the same
rules by construction: a run whose tip is not its line's commit is read from git. Runs
of batches without a table (written before tables existed), lines of a table whose
format is unknown, and runs a table lacks are read one by one; a table whose
``ROWS_VERSION`` differs is used for its bodies only (rows derived again from them).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd, progress
from vtrack.errors import StoreError
from vtrack.store import summary
from vtrack.store.index_records import IndexedRecord, iter_records, to_json
from vtrack.store.index_rows import ROWS_VERSION, DerivedRun, derive
from vtrack.store.refs import ACTIVE
from vtrack.store.summary import fast_loads

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.archive_table import ArchivedRun

SUMMARIES_FILE = "summaries.tsv"
_HEADER = b"# vtrack summaries v1 rows "
#: A batch's table is read when at least this many of the runs a sync wants are in it.
TABLE_MIN = 16
TASK = "indexing runs"

Wanted = tuple[str, str, str, bool]  # (run id, commit, lifecycle, live)


# -- the codec -----------------------------------------------------------------------------
def encode(runs: Iterable[DerivedRun]) -> bytes | None:
    """``summaries.tsv`` of ``runs`` (broken ones and multi-line bodies left out, to be
    read from git); None when no run is left."""
    lines = []
    for d in sorted(runs, key=lambda d: d.run_id):
        if d.broken or "\n" in d.body:
            continue
        derived = to_json([d.attrs, *d.keys, d.datasets, d.inputs])
        lines.append(f"{d.run_id}\t{d.commit}\t{derived}\t{d.body}\n")
    if not lines:
        return None
    return _HEADER + f"{ROWS_VERSION}\n".encode() + "".join(lines).encode("utf-8")


def rows_version(data: bytes) -> int | None:
    """The ``ROWS_VERSION`` a table was written with; None when it is not a table."""
    head, _, _ = data.partition(b"\n")
    if not head.startswith(_HEADER):
        return None
    try:
        return int(head[len(_HEADER) :])
    except ValueError:
        return None


def lines_of(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(run id, line)`` of every run line of a table (the header skipped)."""
    _, _, rest = data.partition(b"\n")
    for line in rest.split(b"\n"):
        if len(line) > 74:
            yield line[:32].decode("ascii", "replace"), line


def decode_line(
    w: Wanted, derived: str, body: str, same_rows: bool, loads: Any = fast_loads
) -> DerivedRun:
    """The run of one table line (:meth:`TableBatch.lines`) for ``w``; rows re-derived
    from the body unless the table's rows are this version's (``same_rows``); ``loads``
    reads the derived JSON. StoreError when damaged."""
    rid, commit, lifecycle, _ = w
    if not same_rows:
        rec = IndexedRecord.from_body(rid, commit, lifecycle, body)
        return derive(rec, body)
    attrs, pkeys, mkeys, tkeys, datasets, inputs = loads(derived)
    if not rows_fit(attrs, datasets, inputs):
        raise StoreError("damaged summary table line")  # (rows of another width: no insert)
    return DerivedRun(
        rid, commit, lifecycle, False, tuple(attrs), (tuple(pkeys), tuple(mkeys), tuple(tkeys)),
        [tuple(r) for r in datasets] if datasets else [],
        [tuple(r) for r in inputs] if inputs else [], body,
    )  # fmt: skip


def rows_fit(attrs: Any, datasets: Any, inputs: Any) -> bool:
    """True when a line's derived attrs, dataset rows and input rows have the widths of
    :class:`DerivedRun`'s (7, 4 and 10): what the index can insert. TypeError when one
    is not a sequence at all."""
    return (len(attrs) == 7 and all(len(r) == 4 for r in datasets or ())
            and all(len(r) == 10 for r in inputs or ()))  # fmt: skip


# -- writing (vtrack archive) ----------------------------------------------------------------
def table_of(store: Store, runs: Sequence[ArchivedRun]) -> bytes | None:
    """The summary table of the runs a new batch holds, read from their commits."""
    wanted = [(r.run_id, r.commit, ACTIVE, False) for r in runs]
    return encode(derive(rec) for rec in iter_records(store, wanted, task="archiving runs"))


def without(data: bytes | None, drop: set[str]) -> bytes | None:
    """A table minus the lines of the runs ``drop`` (a purge's rewrite of a batch)."""
    if data is None or rows_version(data) is None:
        return None
    head, _, _ = data.partition(b"\n")
    kept = [line + b"\n" for rid, line in lines_of(data) if rid not in drop]
    return head + b"\n" + b"".join(kept) if kept else None


def read_table(git_dir: Path, batch_commit: str) -> bytes | None:
    """The summary table of one batch commit, or None when it has none."""
    return next(iter(read_tables(git_dir, [batch_commit])))


def read_tables(git_dir: Path, commits: Sequence[str]) -> Iterator[bytes | None]:
    """The summary tables of batch commits, in order, through one ``git cat-file``
    (None for a batch without one). One table is in memory at a time."""
    names = [f"{c}:{SUMMARIES_FILE}" for c in commits]
    return gitcmd.batch_blobs(git_dir, names, "reading archive summary tables")


# -- reading for a sync ----------------------------------------------------------------------
@dataclass
class TableReads:
    """What :func:`iter_derived` took from summary tables."""

    tables: int = 0  #: summary tables read
    runs: int = 0  #: runs taken from them


def plan(
    store: Store, wanted: Sequence[Wanted]
) -> tuple[dict[str, dict[str, Wanted]], list[Wanted]]:
    """``({batch commit: {run id: wanted}}, the rest)``: runs whose wanted commit is their
    archive entry's, grouped by the batch holding it (batches with few of them left to
    the rest); live runs and every other run go to the rest."""
    view = store.refs.archive
    batches = view.batches()
    if not batches:
        return {}, list(wanted)
    entries = view.entries()
    groups: dict[str, dict[str, Wanted]] = {}
    rest: list[Wanted] = []
    for w in wanted:
        found = None if w[3] else entries.get(w[0])
        if found is not None and found[0] == w[1] and found[1] in batches:
            groups.setdefault(batches[found[1]], {})[w[0]] = w
        else:
            rest.append(w)
    for commit in [c for c, g in groups.items() if len(g) < TABLE_MIN]:
        rest.extend(groups.pop(commit).values())
    return groups, rest


@dataclass
class TableBatch:
    """One summary table of this version's rows and the wanted runs it may stand for,
    handed whole to a bulk build (:func:`vtrack.store.index_bulk.ingest` writes them in
    one go). The consumer either writes them and sets ``taken`` to the run ids it wrote,
    or iterates :meth:`derived` instead; runs of the group not taken are then read from
    git."""

    text: str  #: the table (its header line first)
    data: bytes  #: the same, as read
    group: dict[str, Wanted]
    taken: set[str] = field(default_factory=set)

    def lines(self) -> Iterator[tuple[Wanted, str, str]]:
        """``(wanted, derived JSON, body)`` of each line at its run's wanted commit (a line
        with fewer fields is left out: that run is read from git)."""
        get = self.group.get
        seen: set[str] = set()
        for line in self.text.split("\n")[1:]:
            w = get(line[:32])
            if w is None or line[33:73] != w[1] or line[32:33] != "\t" or w[0] in seen:
                continue
            derived, tab, body = line[74:].partition("\t")
            if tab and line[73:74] == "\t":
                seen.add(w[0])
                yield w, derived, body

    def derived(self) -> Iterator[DerivedRun]:
        """The runs one at a time, as :func:`iter_derived` yields them without batches."""
        found = _runs_of(self, ROWS_VERSION)  # (a batch's table is of this version)
        self.taken = set(found)
        yield from found.values()


def iter_derived(
    store: Store, wanted: Sequence[Wanted], *, tables: bool = True,
    reads: TableReads | None = None, batches: bool = False,
) -> Iterator[DerivedRun | TableBatch]:  # fmt: skip
    """The rows of every ``wanted`` run, one at a time: from the summary tables of the
    batches holding them where they can (``tables``), else read from git (module doc).
    With ``batches``, a table of this version's rows comes as one :class:`TableBatch`.
    Progress is reported per batch, then every 250 runs; ``reads`` counts the tables."""
    groups, rest = plan(store, wanted) if tables else ({}, list(wanted))
    total, done = len(wanted), 0
    tables_read = _prefetch(read_tables(store.location.git_dir, list(groups)))
    for commit, data in zip(groups, tables_read, strict=True):
        group = groups[commit]
        batch = batch_of(data, group) if batches and data is not None else None
        if batch is not None:
            yield batch
            found: Any = batch.taken
        else:
            found = _from_table(data, group) if data is not None else {}
            yield from found.values()
        rest.extend(w for rid, w in group.items() if rid not in found)
        done += len(found)
        if reads is not None:
            reads.tables += data is not None
            reads.runs += len(found)
        progress.report(TASK, done, total)
    yield from (derive(rec) for rec in iter_records(store, rest, done=done, total=total))


def batch_of(data: bytes, group: dict[str, Wanted]) -> TableBatch | None:
    """The :class:`TableBatch` of a table of this version's rows; None for another
    version (its rows are derived again from the bodies, one by one) or bad text."""
    if rows_version(data) != ROWS_VERSION:
        return None
    try:
        return TableBatch(data.decode("utf-8"), data, group)
    except UnicodeDecodeError:
        return None


def _from_table(data: bytes, group: dict[str, Wanted]) -> dict[str, DerivedRun]:
    """The runs of ``group`` a table holds at the wanted commits (others left out)."""
    version = rows_version(data)
    if version is None:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return _runs_of(TableBatch(text, data, group), version)


def _runs_of(table: TableBatch, version: int) -> dict[str, DerivedRun]:
    """The runs of a decoded table written with ``version``'s rows (damaged lines left out)."""
    same = version == ROWS_VERSION
    loads = summary.plain_loads(table.data)
    out: dict[str, DerivedRun] = {}
    for w, derived, body in table.lines():
        try:
            out[w[0]] = decode_line(w, derived, body, same, loads)
        except Exception:  # noqa: BLE001 - a damaged line: that run is read from git
            continue
    return out


def _prefetch(items: Iterator[bytes | None], depth: int = 2) -> Iterator[bytes | None]:
    """``items``, read ahead by a thread (at most ``depth`` waiting): git inflates the
    next table while this process inserts the last one."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((False, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            box.put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # the git process goes with it

    thread = threading.Thread(target=pump, name="vtrack-index-tables", daemon=True)
    thread.start()
    try:
        while True:
            more, item = box.get()
            if not more:
                if isinstance(item, BaseException):
                    raise StoreError(f"reading archive summary tables failed: {item}")
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
