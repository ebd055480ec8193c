"""The derived run index: incremental sync from ref tips, rebuilds, concurrency, live runs."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import git, reap, run_script
from vtrack import TrackingClient
from vtrack.query import Comparison, OrderKey
from vtrack.store import index as index_mod
from vtrack.store import index_records, index_schema, index_sync
from vtrack.store.index import RunIndex, compile_search, like_to_glob


def _finished_run(c: TrackingClient, name: str, **params: object) -> str:
    rid = c.create_run(run_name=name).info.run_id
    if params:
        c.log_params(rid, params)
    c.log_metric(rid, "acc", float(len(name)))
    c.set_terminated(rid)
    return rid


def _names(runs: list) -> list[str]:
    return sorted(r.info.run_name for r in runs)


def _fresh_index(c: TrackingClient) -> RunIndex:
    """An index object with no open connection (as another process would have)."""
    return RunIndex(c.store)


def _index_file(c: TrackingClient) -> Path:
    return c.store.location.vtrack_dir / index_mod.INDEX_FILE


def test_sync_reads_only_new_and_moved_runs(repo: Path) -> None:
    c = TrackingClient()
    ids = [_finished_run(c, n) for n in ("a", "bb", "ccc")]
    idx = _fresh_index(c)
    first = idx.sync()
    assert (first.listed, first.read, first.removed) == (True, 3, 0)
    assert idx.sync().read == 0
    c.resume_run(ids[1])
    c.log_metric(ids[1], "acc", 9.0)
    c.set_terminated(ids[1])
    again = idx.sync()
    assert again.read == 1
    (run,) = idx.search([Comparison("metrics", "acc", "=", 9.0)])
    assert run.info.run_id == ids[1] and run.info.commit == c.store.run_tip(ids[1])


def test_search_rows_equal_get_run(repo: Path) -> None:
    c = TrackingClient()
    rid = _finished_run(c, "full", lr=0.01, depth=3, on=True, label="x", empty=None)
    c.set_tag(rid, "team", "nlp")
    (run,) = c.search_runs()
    assert run == c.get_run(rid)


def test_run_deleted_while_index_is_stale_disappears(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(index_sync, "SETTLED_SECONDS", 0.0)  # let the listing be skipped
    c = TrackingClient()
    keep, drop = _finished_run(c, "keep"), _finished_run(c, "drop")
    time.sleep(0.05)
    assert _names(c.search_runs()) == ["drop", "keep"]
    assert c.run_index().sync().listed is False  # settled: nothing to list
    res = run_script(f"import vtrack; vtrack.TrackingClient().delete_run({drop!r})", cwd=repo)
    assert res.returncode == 0, res.stderr
    assert _names(c.search_runs()) == ["keep"]
    (gone,) = c.search_runs(run_view_type="DELETED_ONLY")
    assert gone.info.run_id == drop and gone.info.lifecycle_stage == "deleted"
    c.restore_run(drop)
    assert _names(c.search_runs()) == ["drop", "keep"]
    assert {r.info.lifecycle_stage for r in c.search_runs(run_view_type="ALL")} == {"active"}
    assert keep in {r.info.run_id for r in c.list_runs()}


def test_ref_removed_by_plain_git_disappears(repo: Path) -> None:
    c = TrackingClient()
    rid = _finished_run(c, "gone")
    assert _names(c.search_runs()) == ["gone"]
    git(repo, "update-ref", "-d", f"refs/vtrack/runs/{rid}")
    assert c.search_runs() == []


def test_packed_refs_are_followed(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(index_sync, "SETTLED_SECONDS", 0.0)
    c = TrackingClient()
    a = _finished_run(c, "a")
    time.sleep(0.05)
    assert len(c.search_runs()) == 1
    git(repo, "pack-refs", "--all")
    b = _finished_run(c, "b")
    git(repo, "pack-refs", "--all")
    assert {r.info.run_id for r in c.search_runs()} == {a, b}


def test_deleting_the_index_file_changes_nothing_but_speed(repo: Path) -> None:
    c = TrackingClient()
    for n in ("a", "bb", "ccc"):
        _finished_run(c, n, lr=len(n) / 10)
    before = c.search_runs(filter_string="params.lr > 0.1", order_by=["params.lr DESC"])
    path = _index_file(c)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    after = c.search_runs(filter_string="params.lr > 0.1", order_by=["params.lr DESC"])
    assert after == before and path.exists()
    assert [r.info.run_name for r in after] == ["ccc", "bb"]


def test_corrupt_or_foreign_schema_file_is_rebuilt(repo: Path) -> None:
    c = TrackingClient()
    _finished_run(c, "a")
    path = _index_file(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not sqlite" * 100)
    idx = _fresh_index(c)
    idx.sync()
    assert [r.info.run_name for r in idx.search()] == ["a"]
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        raw.execute("CREATE TABLE leftover(x)")
    idx = _fresh_index(c)
    assert idx.count() == 0  # rebuilt empty, then filled by the next sync
    idx.sync()
    assert [r.info.run_name for r in idx.search()] == ["a"]
    with sqlite3.connect(path) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "leftover" not in tables


def test_batch_and_in_process_reads_agree(repo: Path, monkeypatch) -> None:
    c = TrackingClient()
    ids = [_finished_run(c, f"run-{i}", i=i, half=i / 2, s=str(i)) for i in range(20)]
    c.set_tag(ids[0], "t", "v")
    batch = _fresh_index(c)
    assert batch.rebuild().read == 20  # above the threshold: git cat-file --batch
    via_batch = batch.search(order=[OrderKey("params", "i")])
    monkeypatch.setattr(index_records, "BATCH_READ_THRESHOLD", 10_000)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_index_file(c)}{suffix}").unlink(missing_ok=True)
    single = _fresh_index(c)
    single.sync()
    assert single.search(order=[OrderKey("params", "i")]) == via_batch
    assert via_batch == [c.get_run(r) for r in ids]


def test_run_with_a_broken_commit_is_skipped_not_fatal(repo: Path) -> None:
    c = TrackingClient()
    _finished_run(c, "good")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "update-ref", "refs/vtrack/runs/" + "e" * 32, head)  # a code commit, no record
    assert "good" in _names(c.search_runs())
    assert c.run_index().sync().read == 0


def test_live_run_of_another_process_is_visible(repo: Path) -> None:
    c = TrackingClient()
    proc = run_script(
        """
        import time, vtrack
        run = vtrack.start_run(run_name="live-one")
        vtrack.log_param("lr", 0.5)
        vtrack.log_metric("loss", 0.25, synchronous=True)
        print(run.info.run_id, flush=True)
        time.sleep(120)
        """,
        cwd=repo,
        wait=False,
    )
    try:
        rid = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert len(rid) == 32, proc.stderr.read()  # type: ignore[union-attr]
        (run,) = c.search_runs(filter_string="metrics.loss < 0.3")
        assert run.info.run_id == rid and run.info.status == "RUNNING"
        assert run.data.params == {"lr": 0.5} and run.data.metrics == {"loss": 0.25}
        assert c.search_runs(filter_string="attributes.status = 'RUNNING'") == [run]
    finally:
        proc.kill()
        reap(proc)  # type: ignore[arg-type]


def test_live_run_of_this_process_is_visible_before_any_checkpoint(repo: Path) -> None:
    c = TrackingClient()
    rid = c.create_run(run_name="mine").info.run_id
    c.log_metric(rid, "loss", 0.5)
    c.log_param(rid, "p", "x")
    (run,) = c.search_runs(filter_string="metrics.loss = 0.5 and params.p = 'x'")
    assert run.info.run_id == rid and run.info.status == "RUNNING"
    c.log_metric(rid, "loss", 0.25, step=2)
    assert c.search_runs(filter_string="metrics.loss = 0.5") == []
    c.set_terminated(rid)
    (done,) = c.search_runs(filter_string="metrics.loss = 0.25")
    assert done.info.status == "FINISHED"
    assert c.run_index().sync().read == 0  # no longer live: not re-read


def test_live_runs_are_reread_without_listing_refs_while_refs_are_still(
    repo: Path, monkeypatch
) -> None:
    monkeypatch.setattr(index_sync, "SETTLED_SECONDS", 0.0)
    c = TrackingClient()
    _finished_run(c, "done")
    rid = c.create_run(run_name="training").info.run_id
    time.sleep(0.05)
    idx = c.run_index()  # lists refs, sees them settled, records the fingerprint
    c.log_metric(rid, "loss", 0.5)
    c.flush(rid)
    stats = idx.sync()
    assert (stats.listed, stats.read) == (False, 1)  # only the live run, from its journal
    (run,) = idx.search([Comparison("metrics", "loss", "=", 0.5)])
    assert run.info.run_id == rid and run.info.status == "RUNNING"
    c.set_terminated(rid)
    assert (
        c.search_runs(filter_string="attributes.status = 'FINISHED'", max_results=None)[
            0
        ].info.run_id
        == rid
    )


def test_unchanged_listing_skips_the_row_comparison(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(index_sync, "SETTLED_SECONDS", 1e9)  # never skip the listing itself
    c = TrackingClient()
    _finished_run(c, "a")
    idx = _fresh_index(c)
    assert idx.sync().read == 1
    monkeypatch.setattr(RunIndex, "_parse_tips", lambda *a: pytest.fail("compared every row"))
    stats = idx.sync()
    assert (stats.listed, stats.read) == (True, 0)


def test_marks_are_not_stored_when_another_sync_wrote_in_between(repo: Path) -> None:
    c = TrackingClient()
    rid = _finished_run(c, "x")
    a, b = _fresh_index(c), _fresh_index(c)
    a.sync()
    conn = a._conn()
    generation, seen = a._read_rows(conn, "SELECT run_id, commit_sha, lifecycle, live FROM runs")
    c.delete_run(rid)
    b.sync()  # another process records the deletion meanwhile
    # a now applies what it read before the deletion: its marks would describe rows it
    # never saw, so they must not be stored
    a._apply(conn, [], [], seen, full=False, generation=generation,
             marks=(a._fingerprint(), time.time() - 100, "digest-of-an-older-listing"))  # fmt: skip
    meta = a._meta(conn)
    assert "refs_listing" not in meta and "refs_fingerprint" not in meta
    assert a.search() == []
    c.restore_run(rid)  # refs back to what a listed: a must still notice
    a.sync()
    assert [r.info.run_id for r in a.search()] == [rid]


def test_two_processes_syncing_at_once_neither_corrupt_nor_duplicate(repo: Path) -> None:
    c = TrackingClient()
    for i in range(30):
        _finished_run(c, f"r{i}", i=i)
    syncer = """
        import sys
        from vtrack.client import TrackingClient
        from vtrack.store.index import RunIndex
        c = TrackingClient()
        for _ in range(6):
            RunIndex(c.store).rebuild() if sys.argv[-1] == "rebuild" else None
            c.run_index().sync()
            assert len(c.search_runs(max_results=None)) >= 30
        print("ok")
        """
    writer = """
        from vtrack.client import TrackingClient
        c = TrackingClient()
        for i in range(15):
            rid = c.create_run(run_name=f"w{i}").info.run_id
            c.log_metric(rid, "acc", 1.0)
            c.set_terminated(rid)
            c.search_runs(max_results=5)
        print("ok")
        """
    procs = [run_script(syncer, cwd=repo, wait=False) for _ in range(3)]
    procs.append(run_script(writer, cwd=repo, wait=False))
    for p in procs:
        out, err = p.communicate(timeout=240)  # type: ignore[union-attr]
        assert p.returncode == 0 and out.strip() == "ok", err
    runs = c.search_runs(max_results=None)
    assert len(runs) == 45 == len({r.info.run_id for r in runs})
    with sqlite3.connect(_index_file(c)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("SELECT count(*) FROM runs").fetchone()[0] == 45
        dup = raw.execute(
            "SELECT count(*) FROM (SELECT run, key FROM metrics GROUP BY run, key HAVING count(*) > 1)"
        )
        assert dup.fetchone()[0] == 0
    fresh = sorted(_fresh_index(c).search(), key=lambda r: r.info.run_id)
    assert fresh == sorted(runs, key=lambda r: r.info.run_id)


def test_index_lives_in_the_vtrack_dir_and_uses_wal(repo: Path) -> None:
    c = TrackingClient()
    _finished_run(c, "a")
    c.search_runs()
    path = _index_file(c)
    assert path == Path(git(repo, "rev-parse", "--absolute-git-dir")) / "vtrack" / "index.sqlite"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[
            0
        ] == str(index_schema.SCHEMA_VERSION)


def test_unwritable_store_falls_back_to_an_in_memory_index(repo: Path, monkeypatch) -> None:
    c = TrackingClient()
    _finished_run(c, "a")
    idx = RunIndex(c.store, path=repo / "no-such-dir" / "x" / "index.sqlite")
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: (_ for _ in ()).throw(PermissionError("ro")))
    idx.sync()
    assert [r.info.run_name for r in idx.search()] == ["a"]


# --- the SQL compiler -------------------------------------------------------------------------


def test_values_are_bound_never_interpolated() -> None:
    evil = "x'; DROP TABLE runs; --"
    clauses = [
        Comparison("params", evil, "=", evil),
        Comparison("tags", "t", "LIKE", evil),
        Comparison("attributes", "run_name", "IN", (evil, "y")),
        Comparison("datasets", "digest", "ILIKE", evil),
        Comparison("metrics", "m", ">", 2**80),
    ]
    sql, args = compile_search(clauses, [OrderKey("params", evil, False)], experiment_ids=[evil])
    assert "DROP" not in sql and evil not in sql
    assert evil in args and str(2**80) in args


@pytest.mark.parametrize(
    ("pattern", "glob"),
    [("a%", "a*"), ("_b", "?b"), ("a*b?c[d]", "a[*]b[?]c[[]d]"), ("%%", "**"), ("", "")],
)
def test_like_to_glob(pattern: str, glob: str) -> None:
    assert like_to_glob(pattern) == glob


def test_index_module_names_are_reexported() -> None:
    assert index_mod.run_view is index_records.run_view
    assert os.path.basename(index_mod.INDEX_FILE) == "index.sqlite"


def _brute_keys(c: TrackingClient, exps: list[str] | None, view: str) -> dict[str, list[str]]:
    runs = c.search_runs(exps, run_view_type=view, max_results=None)
    return {
        "params": sorted({k for r in runs for k in r.data.params}),
        "metrics": sorted({k for r in runs for k in r.data.metrics}),
        "tags": sorted({k for r in runs for k in dict(r.data.tags)}),  # logged tags only
    }


def test_keys_of_a_scope_follow_deletes_restores_and_tag_removal(repo: Path) -> None:
    """keys() comes from per-scope counts kept by each sync, not from value rows."""
    c = TrackingClient(str(repo))
    other = c.create_experiment("other")
    a = c.create_run(run_name="a").info.run_id
    c.log_param(a, "only_a", 1)
    c.log_metric(a, "shared", 0.5)
    c.set_tag(a, "doomed", "x")
    b = c.create_run(experiment_id=other, run_name="b").info.run_id
    c.log_param(b, "only_b", "y")
    c.log_metric(b, "shared", 0.7)
    for rid in (a, b):
        c.set_terminated(rid)

    def check() -> None:
        for exps in (None, ["0"], [other]):
            for view in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
                life = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",),
                        "ALL": ("active", "deleted")}[view]  # fmt: skip
                got = c.run_index().keys(exps, life)
                assert got == _brute_keys(c, exps, view), (exps, view)

    check()
    assert c.run_index().keys(["0"])["params"] == ["only_a"]
    c.delete_tag(a, "doomed")
    check()
    assert "doomed" not in c.run_index().keys()["tags"]
    c.delete_run(b)
    check()
    assert "only_b" not in c.run_index().keys()["params"]
    assert c.run_index().keys(lifecycles=("deleted",))["params"] == ["only_b"]
    c.restore_run(b)
    check()
    c.run_index().rebuild()
    check()


def test_runs_a_search_keeps_built_are_never_stale_or_shared(repo: Path) -> None:
    """Search results are kept built (by row and body); callers get their own dicts."""
    c = TrackingClient(str(repo))
    rid = c.create_run(run_name="kept").info.run_id
    c.log_param(rid, "p", 1)
    c.log_metric(rid, "m", 0.5)
    (first,) = c.search_runs(filter_string="params.p = 1")
    first.data.params["p"] = "changed by the caller"
    first.data.metrics.clear()
    (again,) = c.search_runs(filter_string="params.p = 1")
    assert again.data.params == {"p": 1} and again.data.metrics == {"m": 0.5}
    assert again.data.params == c.get_run(rid).data.params
    c.log_metric(rid, "m", 0.75)  # a live run: same commit, new body
    (live,) = c.search_runs(filter_string="params.p = 1")
    assert live.data.metrics == {"m": 0.75}
    c.set_terminated(rid)
    (done,) = c.search_runs(filter_string="params.p = 1")
    assert done.info.status == "FINISHED" and done.data.metrics == {"m": 0.75}
    assert done.data.tags.get("mlflow.runName") == "kept"  # system tags still derived
