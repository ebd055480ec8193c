"""Archive summary tables: an index built from them equals one that reads every run.

Real repositories and real git (``clone``, ``fetch``, ``gc``); runs made through the API in
a subprocess and through the bulk path; batches written by ``compact`` and, for the
batches older vtrack wrote, by ``write_batch`` without a table.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_script
from tests.store.test_archive import T0, vtrack_cli
from vtrack import progress
from vtrack.client import TrackingClient
from vtrack.store import archive_summaries
from vtrack.store.archive import compact, plan, write_batch
from vtrack.store.archive_table import BatchTable
from vtrack.store.index import RunIndex
from vtrack.store.refs import run_ref


def _bulk(c: TrackingClient, n: int, prefix: str, inputs: list[dict[str, Any]]) -> list[str]:
    """``n`` ended runs through the bulk path, with params, metrics, tags and inputs."""
    c.repo.experiments.ensure_default()
    ids = []
    with c.repo.create_runs() as bulk:
        for i in range(n):
            rid = uuid.uuid4().hex
            state = bulk.new_record({"id": rid, "name": f"{prefix}-{i:04d}", "experiment_id": "0",
                                     "status": "FINISHED", "start_time": T0 + i * 1000,
                                     "end_time": T0 + i * 1000 + 500, "user": "u"})  # fmt: skip
            state.set_tag("team", f"t{i % 3}")
            state.set_param("i", i)
            state.set_param("lr", i / 7)
            state.set_param(f"only_{i % 5}", "x")
            state.inputs = [dict(inputs[i % len(inputs)])]
            bulk.add_history(state, "loss", [(0, T0 + i, 1.0 / (i + 1))])
            ids.append(rid)
    return ids


def _api_runs(repo: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Runs made through the public API (datasets, a file input), and their input entries."""
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "a.csv").write_text("x,y\n1,2\n")
    res = run_script(
        """
        import json
        import vtrack
        for i in range(3):
            with vtrack.start_run(run_name=f"api-{i}") as r:
                vtrack.log_param("lr", i / 10)
                vtrack.log_metric("acc", i / 100)
                vtrack.set_tag("kind", "api")
                d = vtrack.log_input("data/a.csv", context="training")
                print(r.info.run_id, json.dumps(d.to_record()))
        """,
        repo,
    )
    assert res.returncode == 0, res.stderr
    lines = [line.split(" ", 1) for line in res.stdout.splitlines()]
    return [rid for rid, _ in lines], [json.loads(entry) for _, entry in lines]


def _archive_without_table(c: TrackingClient, rows_version: int | None = None) -> str:
    """Archive every loose run in one batch as vtrack did before summary tables (or, with
    ``rows_version``, with a table of that version whose derived rows are garbage)."""
    store = c.repo.store
    chosen, _ = plan(store)
    summaries = None
    if rows_version is not None:
        table = archive_summaries.table_of(store, chosen)
        assert table is not None
        head, _, rest = table.partition(b"\n")
        lines = [line.split(b"\t") for line in rest.splitlines()]
        summaries = f"# vtrack summaries v1 rows {rows_version}\n".encode() + b"".join(
            b"\t".join([p[0], p[1], b"[]", p[3]]) + b"\n" for p in lines
        )
    batch = write_batch(store.refs, BatchTable(runs=chosen), summaries)
    store.refs.apply([(run_ref(r.run_id), r.commit, None) for r in chosen])
    return batch


def _clone(origin: Path, dest: Path) -> Path:
    git(origin.parent, "clone", "-q", "--no-local", str(origin), str(dest))
    git(dest, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    return dest


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of an index file, run numbers replaced by run ids."""
    conn = sqlite3.connect(path)
    try:
        ids = dict(conn.execute("SELECT id, run_id FROM runs"))
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta'")]  # fmt: skip
        out = {}
        for table in names:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            at = 0 if table == "runs" else cols.index("run") if "run" in cols else None
            rows = []
            for row in conn.execute(f"SELECT * FROM {table}"):
                row = list(row)
                if at is not None:
                    row[at] = None if table == "runs" else ids[row[at]]
                rows.append(tuple(row))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


def _reference(store: Any, path: Path, keys: list[tuple[str, str]] = ()) -> dict[str, Any]:
    """The index rebuilt from every run's own commit (no summary table), dumped."""
    ref = RunIndex(store, path)
    ref.ensure_keys(keys)
    stats = ref.rebuild(tables=False)
    assert stats.from_tables == 0
    ref.connection().close()
    return _dump(path)


@pytest.mark.parametrize("table_min", [archive_summaries.TABLE_MIN, 1])
def test_a_fresh_clones_index_from_tables_equals_one_reading_every_run(
    make_repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_min: int
) -> None:
    origin = make_repo("origin")
    monkeypatch.chdir(origin)
    monkeypatch.setattr(archive_summaries, "TABLE_MIN", table_min)
    c = TrackingClient(str(origin))
    api, inputs = _api_runs(origin)
    ids = _bulk(c, 120, "b", inputs)
    report = compact(c.repo.store, batch_size=40)
    assert len(report.batches) == 4 and not report.kept
    old = _bulk(c, 30, "old", inputs)
    _archive_without_table(c)  # a batch from before summary tables
    other = _bulk(c, 20, "other", inputs)
    _archive_without_table(c, rows_version=0)  # a table of another rows version
    loose = _bulk(c, 5, "loose", inputs)  # never archived
    # shadowed, tombstoned, re-archived and deleted runs
    tagged, deleted, purged, rearchived, unarchived = ids[3], ids[50], ids[90], ids[100], old[4]
    for rid, tag in ((tagged, "t=1"), (rearchived, "t=2")):
        assert vtrack_cli(origin, "tag", rid[:12], tag).returncode == 0
    c.delete_run(purged)
    c.delete_run(loose[0])
    res = vtrack_cli(origin, "gc", "--purge-trash")  # rewrites the purged run's batch
    assert res.returncode == 0, res.stderr
    c = TrackingClient(str(origin))
    c.delete_run(deleted)  # an archived run in the trash (at its archived commit)
    c.restore_run(deleted)
    c.delete_run(deleted)
    compact(c.repo.store, batch_size=40)  # re-archives the tagged runs at new commits
    assert vtrack_cli(origin, "archive", "--undo", unarchived[:12]).returncode == 0, "undo"
    c = TrackingClient(str(origin))
    c.repo.index()
    origin_rows = _dump(origin / ".git" / "vtrack" / "index.sqlite")
    everything = {*api, *ids, *old, *other, *loose} - {purged, loose[0]}
    assert {r[1] for r in origin_rows["runs"]} == everything

    clone = _clone(origin, tmp_path / "clone")
    fresh = TrackingClient(str(clone))
    reports: list[tuple[str, int, int]] = []
    progress.set_reporter(lambda task, done, total: reports.append((task, done, total)))
    try:
        stats = RunIndex.for_store(fresh.repo.store).sync()
    finally:
        progress.set_reporter(None)
    assert stats.read == len(everything)
    # the three full batches (less the tagged and purged runs) and the table of another
    # rows version; with table_min 1 also the 3 API runs' batch and the re-archived batch
    expected = 120 - 3 + 20 if table_min > 1 else 120 - 3 + 20 + 3 + 6
    assert stats.from_tables == expected
    assert stats.tables == (4 if table_min > 1 else 6)
    assert reports[-1] == ("indexing runs", len(everything), len(everything))
    built = _dump(clone / ".git" / "vtrack" / "index.sqlite")
    reference = _reference(fresh.repo.store, tmp_path / "reference.sqlite")
    assert built == reference
    assert built == origin_rows
    # a rebuild with value rows of keys materialized by a search equals the reference too
    found = fresh.search_runs(filter_string="params.lr > 0.5 and tags.team = 't1'")
    assert found and all(r.data.tags["team"] == "t1" for r in found)
    assert RunIndex.for_store(fresh.repo.store).rebuild().from_tables == expected
    keys = [("params", "lr"), ("tags", "team")]
    again = _dump(clone / ".git" / "vtrack" / "index.sqlite")
    assert again == _reference(fresh.repo.store, tmp_path / "reference2.sqlite", keys)
    assert len(again["params"]) > 100


def test_a_sync_that_meets_one_new_batch_reads_only_that_batch(
    make_repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = make_repo("origin")
    monkeypatch.chdir(origin)
    c = TrackingClient(str(origin))
    _, inputs = _api_runs(origin)
    _bulk(c, 60, "a", inputs)
    compact(c.repo.store, batch_size=30)
    clone = _clone(origin, tmp_path / "clone")
    index = RunIndex.for_store(TrackingClient(str(clone)).repo.store)
    first = index.sync()
    assert (first.read, first.from_tables, first.tables) == (63, 60, 2)
    new = _bulk(c, 40, "n", inputs)
    (batch,) = compact(c.repo.store, batch_size=100).batches
    git(clone, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    later = RunIndex.for_store(TrackingClient(str(clone)).repo.store).sync()
    assert (later.read, later.from_tables, later.tables, later.removed) == (40, 40, 1, 0)
    assert {r.run_id for r in index.by_prefix("", ("active",), 200)} >= set(new)
    # a purge upstream rewrites the batch: the clone drops the run and reads nothing
    c.delete_run(new[0])
    assert vtrack_cli(origin, "gc", "--purge-trash").returncode == 0
    git(clone, "fetch", "-q", "--prune", "origin", "+refs/vtrack/*:refs/vtrack/*")
    purged = RunIndex.for_store(TrackingClient(str(clone)).repo.store).sync()
    assert (purged.read, purged.removed) == (0, 1)
    assert batch not in TrackingClient(str(clone)).repo.store.refs.archive.batches()
    ref = _reference(TrackingClient(str(clone)).repo.store, tmp_path / "ref.sqlite")
    assert _dump(clone / ".git" / "vtrack" / "index.sqlite") == ref


def test_a_purge_keeps_the_table_of_the_other_runs(repo: Path) -> None:
    c = TrackingClient(str(repo))
    _, inputs = _api_runs(repo)
    ids = _bulk(c, 20, "p", inputs)
    compact(c.repo.store, batch_size=100)
    c.delete_run(ids[0])
    assert vtrack_cli(repo, "gc", "--purge-trash").returncode == 0
    refs = TrackingClient(str(repo)).repo.store.refs
    ((_, sha),) = refs.archive.batches().items()
    table = archive_summaries.read_table(refs.git_dir, sha)
    assert table is not None
    held = {rid for rid, _ in archive_summaries.lines_of(table)}
    assert held == set(refs.archive.entries()) and len(held) == 22 and ids[0] not in held


def test_index_rebuild_from_tables_or_from_commits_gives_the_same_index(repo: Path) -> None:
    c = TrackingClient(str(repo))
    _, inputs = _api_runs(repo)
    _bulk(c, 30, "r", inputs)
    compact(c.repo.store)
    index_file = repo / ".git" / "vtrack" / "index.sqlite"
    res = vtrack_cli(repo, "index", "rebuild", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["from_tables"] == 33
    from_tables = _dump(index_file)
    res = vtrack_cli(repo, "index", "rebuild", "--from-commits")
    assert res.returncode == 0, res.stderr
    assert "33 runs read in" in res.stdout
    assert _dump(index_file) == from_tables


def test_compacting_thousands_keeps_the_index_and_a_clone_builds_it_from_tables(
    make_repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = make_repo("origin")
    monkeypatch.chdir(origin)
    c = TrackingClient(str(origin))
    api, inputs = _api_runs(origin)
    ids = _bulk(c, 2500, "k", inputs)
    c.repo.index()
    index_file = origin / ".git" / "vtrack" / "index.sqlite"
    before = _dump(index_file)
    report = compact(c.repo.store, batch_size=1000)
    assert len(report.batches) == 3 and len(report.archived) == 2503
    TrackingClient(str(origin)).repo.index()
    assert _dump(index_file) == before  # compaction changes nothing the index holds
    clone = _clone(origin, tmp_path / "clone")
    fresh = TrackingClient(str(clone))
    stats = RunIndex.for_store(fresh.repo.store).sync()
    assert (stats.read, stats.from_tables, stats.tables) == (2503, 2503, 3)
    assert _dump(clone / ".git" / "vtrack" / "index.sqlite") == before
    tips = fresh.repo.store.list_run_tips()
    assert all(fresh.repo.store.run_tip(rid) == tips[rid] for rid in ids)
    assert fresh.get_run(ids[1234]).data.params["i"] == 1234
    out = tmp_path / "co"
    res = vtrack_cli(clone, "checkout", api[0][:10], "--into", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "train.py").read_text() == "print('hello')\n"
