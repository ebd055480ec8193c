"""The bulk build of the index (``vtrack.store.index_bulk``): a summary table's lines written
by one ``executemany`` per table give exactly the rows the one-by-one path gives; an
empty index gets its indexes back and its WAL after the build; a build killed by a real
SIGKILL in the middle leaves an index the next command reads.

Real SQLite files, a real git repository and real processes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.store.test_archive import _bulk
from tests.store.test_archive_summaries import _clone, _dump, _reference
from vtrack.client import TrackingClient
from vtrack.store import archive_summaries, index_bulk
from vtrack.store.archive import compact
from vtrack.store.index import RunIndex
from vtrack.store.index_rows import DerivedRun
from vtrack.store.refs import ACTIVE, DELETED

_HEX = "0123456789abcdef"
texts = st.text(max_size=12)
maybe_text = st.none() | texts
times = (
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
)
keys = st.lists(st.text(min_size=1, max_size=8), max_size=4, unique=True).map(tuple)


@st.composite
def derived_runs(draw: Any) -> DerivedRun:
    """A run's rows as :func:`vtrack.store.index_rows.derive` could give them."""
    attrs = (draw(maybe_text), draw(maybe_text), draw(maybe_text), draw(times), draw(times),
             draw(maybe_text), draw(maybe_text))  # fmt: skip
    datasets = [
        (i, draw(maybe_text), draw(maybe_text), draw(maybe_text))
        for i in range(draw(st.integers(0, 2)))
    ]
    inputs = [
        (i, draw(st.integers(0, 1)), draw(texts), *(draw(maybe_text) for _ in range(7)))
        for i in range(draw(st.integers(0, 2)))
    ]
    body = json.dumps({"docs": {"params.yaml": {"x": draw(st.floats(allow_nan=False))}}})
    return DerivedRun(
        draw(st.text(_HEX, min_size=32, max_size=32)), draw(st.text(_HEX, min_size=40, max_size=40)),
        draw(st.sampled_from([ACTIVE, DELETED])), False, attrs,
        (draw(keys), draw(keys), draw(keys)), datasets, inputs, body,
    )  # fmt: skip


#: Lines a damaged table may hold: wrong shapes of the derived JSON, bad JSON.
DAMAGED = ["[1,2]", "not json", '[["a"],[],[],[],[],[]]', "[[null,null,null,1,2,null,null],"
           '[],[],[],[[0,"only two"]],[]]', '{"a":1}', "[[1,2,3,4,5,6,7],3,[],[],[],[]]"]  # fmt: skip


def _index(path: Path) -> tuple[RunIndex, sqlite3.Connection]:
    index = RunIndex(None, path)  # type: ignore[arg-type]  # _apply reads no store
    return index, index.connection()


@settings(max_examples=40)
@given(st.lists(derived_runs(), max_size=6, unique_by=lambda d: d.run_id),
       st.lists(st.sampled_from(DAMAGED), max_size=3))  # fmt: skip
def test_bulk_rows_equal_the_one_by_one_rows(
    tmp_path_factory: Any, runs: list[DerivedRun], damaged: list[str]
) -> None:
    """Every valid line gives the same rows, run numbers and key counts both ways; a
    damaged line is taken by neither (its run is read from git)."""
    table = archive_summaries.encode(runs) or b"# vtrack summaries v1 rows 1\n"
    bad = [(uuid.uuid4().hex, "f" * 40, derived) for derived in damaged]
    table += "".join(f"{rid}\t{sha}\t{d}\t{{}}\n" for rid, sha, d in bad).encode()
    group = {d.run_id: (d.run_id, d.commit, d.lifecycle, False) for d in runs}
    group.update({rid: (rid, sha, ACTIVE, False) for rid, sha, _ in bad})
    work = tmp_path_factory.mktemp("bulk")
    dumps, taken = [], []
    for way in ("bulk", "one by one"):
        batch = archive_summaries.batch_of(table, group)
        assert batch is not None
        index, conn = _index(work / f"{way}.sqlite")
        records = [batch] if way == "bulk" else batch.derived()
        index._apply(conn, records, [], {}, full=False)
        conn.close()
        dumps.append(_dump(work / f"{way}.sqlite"))
        taken.append(batch.taken)
    assert dumps[0] == dumps[1]
    assert taken[0] == taken[1] == {d.run_id for d in runs}


def _archived_clone(repo: Path, n: int) -> Path:
    c = TrackingClient(str(repo))
    _bulk(c, n)
    compact(c.repo.store, batch_size=500)
    return _clone(repo, repo.parent / "clone")


def _schema(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        conn.close()


def test_a_fresh_clones_build_keeps_the_schema_and_goes_back_to_wal(repo: Path) -> None:
    clone = _archived_clone(repo, 1200)
    store = TrackingClient(str(clone)).repo.store
    built = clone / ".git" / "vtrack" / "index.sqlite"
    stats = RunIndex(store, built).sync()
    assert (stats.read, stats.from_tables, stats.tables) == (1200, 1200, 3)
    empty = clone / "empty.sqlite"
    RunIndex(store, empty).connection().close()  # the schema as a new index has it
    assert _schema(built) == _schema(empty)  # every index created again after the rows
    conn = sqlite3.connect(built)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384
    conn.close()
    assert _dump(built) == _reference(store, clone / "ref.sqlite")


def test_the_rollback_journal_is_not_taken_while_another_connection_reads(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    _, conn = _index(path)
    other = sqlite3.connect(path, timeout=60)
    other.execute("BEGIN")
    other.execute("SELECT count(*) FROM runs").fetchone()  # a reader holding the WAL
    assert index_bulk.rollback_journal(conn) is False  # refused at once, not after 60 s
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.execute("COMMIT")
    other.close()
    assert index_bulk.rollback_journal(conn) is True
    index_bulk.back_to_wal(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


_KILLED_BUILD = """
import os, signal, sys
from vtrack.client import TrackingClient
from vtrack.store import index_bulk
from vtrack.store.index import RunIndex
real, seen = index_bulk.ingest, []
def ingest(*args):
    seen.append(1)
    if len(seen) == 2:  # a batch written, the transaction open: a real SIGKILL
        print("killing", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)
index_bulk.ingest = ingest
RunIndex.for_store(TrackingClient(sys.argv[1]).repo.store).sync()
"""


def test_a_build_killed_in_the_middle_leaves_an_index_the_next_command_reads(repo: Path) -> None:
    clone = _archived_clone(repo, 1200)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(clone)], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == -signal.SIGKILL and "killing" in res.stdout, res.stderr
    index_file = clone / ".git" / "vtrack" / "index.sqlite"
    assert index_file.exists()
    store = TrackingClient(str(clone)).repo.store
    stats = RunIndex(store, index_file).sync()  # nothing of the killed build was kept
    assert stats.read == 1200
    conn = sqlite3.connect(index_file)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert _dump(index_file) == _reference(store, clone / "ref.sqlite")
