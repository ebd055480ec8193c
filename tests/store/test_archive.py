"""Archive batches: finished runs compacted behind a few refs, each still reachable alone.

Real repositories, real git (``for-each-ref``, ``fsck``, ``gc --prune=now``), real
subprocesses for live runs and the CLI.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, assert_fsck_clean, git, reap, run_script, wait_for_line
from vtrack.client import TrackingClient
from vtrack.errors import RefConflictError, RunNotFoundError
from vtrack.repro.checkout import checkout_run
from vtrack.resolve import resolve_run_id
from vtrack.store.archive import compact, forget
from vtrack.store.refs import RefStore

T0 = 1_700_000_000_000


def _bulk(c: TrackingClient, n: int, prefix: str = "b") -> list[str]:
    """``n`` ended runs made through the bulk path (one pack, one ref transaction)."""
    c.repo.experiments.ensure_default()
    ids = []
    with c.repo.create_runs() as bulk:
        for i in range(n):
            rid = uuid.uuid4().hex
            state = bulk.new_record({"id": rid, "name": f"{prefix}-{i:05d}", "experiment_id": "0",
                                     "status": "FINISHED", "start_time": T0 + i * 1000,
                                     "end_time": T0 + i * 1000 + 500, "user": "u"})  # fmt: skip
            state.set_param("i", i)
            bulk.add_history(state, "loss", [(0, T0 + i, 1.0 / (i + 1))])
            ids.append(rid)
    return ids


def _api_runs(repo: Path, n: int) -> list[str]:
    """``n`` runs made through the public API in a subprocess (real snapshots, real ends)."""
    res = run_script(
        f"""
        import vtrack
        for i in range({n}):
            with vtrack.start_run(run_name=f"api-{{i}}") as r:
                vtrack.log_param("lr", i / 10)
                vtrack.log_metric("acc", i / 100)
                print(r.info.run_id)
        """,
        repo,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def _index_rows(repo: Path) -> list[tuple]:
    conn = sqlite3.connect(repo / ".git" / "vtrack" / "index.sqlite")
    try:
        return sorted(conn.execute("SELECT * FROM runs").fetchall())
    finally:
        conn.close()


def _refs(repo: Path, prefix: str = "refs/vtrack/") -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", prefix).splitlines()


def vtrack_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "vtrack", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _compact_in_processes(repo: Path, n: int) -> list[dict[str, Any]]:
    """``n`` ``archive_runs()`` calls at once, each in its own process; their reports."""
    procs = [
        run_script(
            """
            from vtrack.client import TrackingClient
            import json
            print(json.dumps(TrackingClient(".").archive_runs()))
            """,
            repo,
            wait=False,
        )  # fmt: skip
        for _ in range(n)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def test_ten_thousand_runs_compacted_at_once_stay_reachable_one_by_one(repo: Path) -> None:
    # issue 15's test: compaction of 10,000 runs with every run still resolvable and
    # checkout-able and the index equal before and after -- by two compactions at once
    c = TrackingClient(str(repo))
    api = _api_runs(repo, 2)
    ids = _bulk(c, 10_000)
    c.repo.index()
    before = _index_rows(repo)
    tips = c.repo.store.list_run_tips()
    reports = _compact_in_processes(repo, 2)  # one waits for the other, then finds nothing
    assert sorted(reports[0]["archived"] + reports[1]["archived"]) == sorted([*ids, *api])
    assert not reports[0]["kept"] and not reports[1]["kept"]
    assert len(reports[0]["batches"]) + len(reports[1]["batches"]) == 11  # 1,000 per batch
    assert _refs(repo, "refs/vtrack/runs/") == []
    assert len(_refs(repo, "refs/vtrack/archive/")) == 11
    fresh = TrackingClient(str(repo))  # a new process's view: caches on disk only
    assert fresh.repo.store.list_run_tips() == tips
    fresh.repo.index()
    assert _index_rows(repo) == before  # nothing changed for the index
    index = fresh.repo.index()
    for n, rid in enumerate(ids):
        assert resolve_run_id(fresh.repo, rid) == rid
        if n % 97 == 0:  # one run alone, by prefix and by name: each an index query
            assert fresh.repo.store.run_tip(rid) == tips[rid]
            assert resolve_run_id(fresh.repo, rid[:10]) == rid
            assert resolve_run_id(fresh.repo, f"b-{n:05d}") == rid
    assert index.by_name("b-09999", ("active",), None, limit=5)[0].run_id == ids[-1]
    assert fresh.get_run(ids[7]).data.params == {"i": 7}
    # git may prune whatever it likes: the batches keep every run commit reachable
    git(repo, "gc", "--prune=now", "--quiet")
    assert_fsck_clean(repo)
    again = TrackingClient(str(repo))
    assert all(again.get_run(rid).info.commit == tips[rid] for rid in ids[::250])
    # checkout of archived runs from several batches (bulk runs hold their record only)
    for n in (0, 4321, 9999):
        out = checkout_run(again.repo, again.get_run(ids[n]), repo.parent / f"co-{n}")
        assert (out / ".vtrack" / "params.yaml").read_text() == f"i: {n}\n"
    # checkout and diff of archived runs made through the API, by the command line
    out = repo.parent / "co"
    res = vtrack_cli(repo, "checkout", api[0][:8], "--into", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "train.py").read_text() == "print('hello')\n"
    res = vtrack_cli(repo, "diff", api[0][:8], "api-1", "--json")
    assert res.returncode == 0, res.stderr
    assert "lr" in res.stdout


def test_a_live_run_in_a_subprocess_keeps_writing_through_compaction(repo: Path) -> None:
    c = TrackingClient(str(repo))
    old = _api_runs(repo, 2)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, vtrack\n"
         "r = vtrack.start_run(run_name='live')\n"
         "print('id', r.info.run_id, flush=True)\n"
         "for line in sys.stdin:\n"
         "    vtrack.log_metric('x', float(line))\n"
         "    print('logged', flush=True)\n"
         "vtrack.end_run()\n"],
        cwd=repo, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        live_id = wait_for_line(proc, "id").split()[1]
        assert proc.stdin is not None
        for i in range(5):
            proc.stdin.write(f"{i}\n")
            proc.stdin.flush()
            wait_for_line(proc, "logged")
            report = compact(c.repo.store)  # the live run is skipped, the rest archived
            assert report.skipped_live == 1 and live_id not in report.archived
            assert _refs(repo, "refs/vtrack/runs/") == [f"refs/vtrack/runs/{live_id}"]
        proc.stdin.close()
        assert reap(proc, timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            reap(proc)
    run = c.get_run(live_id)
    assert run.info.status == "FINISHED" and run.data.metrics["x"] == 4.0
    report = compact(c.repo.store)
    assert report.archived == [live_id]
    assert c.get_metric_history(live_id, "x")[-1].value == 4.0
    assert {r.info.run_id for r in c.search_runs()} == {*old, live_id}
    assert_fsck_clean(repo)


def test_updates_delete_restore_and_purge_of_archived_runs(repo: Path) -> None:
    c = TrackingClient(str(repo))
    ids = _api_runs(repo, 4)
    a, b, d, e = ids
    compact(c.repo.store)
    store = c.repo.store
    # a tag on an archived run gives it its own ref again (which shadows the batch)
    res = vtrack_cli(repo, "tag", a[:8], "team=x")
    assert res.returncode == 0, res.stderr
    assert c.get_run(a).data.tags["team"] == "x"
    assert _refs(repo, "refs/vtrack/runs/") == [f"refs/vtrack/runs/{a}"]
    # rm, restore
    c.delete_run(b)
    assert b not in store.list_run_tips() and store.trash_tip(b) is not None
    assert b not in {r.info.run_id for r in c.search_runs()}
    c.restore_run(b)
    assert b in {r.info.run_id for r in c.search_runs()}
    assert _refs(repo, "refs/vtrack/trash/") == []
    # purge: gone for good, and a pull of the old batch could not bring it back
    old_batches = dict(store.refs.archive.batches())
    c.delete_run(d)
    res = vtrack_cli(repo, "gc", "--purge-trash", "--json")
    assert res.returncode == 0, res.stderr
    fresh = TrackingClient(str(repo))
    with pytest.raises(RunNotFoundError):
        fresh.get_run(d)
    assert d not in fresh.repo.store.list_run_tips()
    assert e in fresh.repo.store.list_run_tips()
    for bid, sha in old_batches.items():  # the old batch comes back (a teammate still has it)
        git(repo, "update-ref", f"refs/vtrack/archive/{bid}", sha)
    fresh = TrackingClient(str(repo))
    assert d not in fresh.repo.store.list_run_tips()
    assert d not in {r.info.run_id for r in fresh.search_runs()}
    git(repo, "gc", "--prune=now", "--quiet")
    assert_fsck_clean(repo)


def test_writers_racing_from_one_archived_commit_still_conflict(repo: Path) -> None:
    c = TrackingClient(str(repo))
    (rid,) = _bulk(c, 1)
    compact(c.repo.store)
    refs = RefStore(repo / ".git")
    tip = refs.run_tip(rid)
    assert tip is not None and refs.read(f"refs/vtrack/runs/{rid}") is None
    other = git(repo, "rev-parse", "HEAD")
    refs.update_run(rid, tip, other)  # from the archived commit: a loose ref is created
    with pytest.raises(RefConflictError):
        refs.update_run(rid, tip, other)  # the second writer read the same commit: refused
    assert refs.run_tip(rid) == other


def test_undo_gives_every_run_its_ref_back(repo: Path) -> None:
    c = TrackingClient(str(repo))
    ids = _bulk(c, 30)
    tips = c.repo.store.list_run_tips()
    compact(c.repo.store, batch_size=10)
    assert len(_refs(repo, "refs/vtrack/archive/")) == 3
    res = vtrack_cli(repo, "archive", "--undo", ids[0][:8], "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["unarchived"] == [ids[0]]
    res = vtrack_cli(repo, "archive", "--undo")
    assert res.returncode == 0, res.stderr
    assert "unarchive 29 run(s); 3 archive batch(es) removed" in res.stdout
    assert _refs(repo, "refs/vtrack/archive/") == []
    assert RefStore(repo / ".git").list_loose_runs() == tips
    res = vtrack_cli(repo, "archive", "--keep", "5", "--dry-run")
    assert res.stdout.startswith("would archive 25 run(s)")
    assert len(_refs(repo, "refs/vtrack/runs/")) == 30


def test_undo_after_a_purge_keeps_the_tombstone(repo: Path) -> None:
    c = TrackingClient(str(repo))
    ids = _bulk(c, 5)
    compact(c.repo.store)
    c.delete_run(ids[0])
    c.repo.store.refs.purge(ids[0], c.repo.store.trash_tip(ids[0]) or "")
    old = dict(c.repo.store.refs.archive.batches())
    c.unarchive_runs()
    left = _refs(repo, "refs/vtrack/archive/")
    assert len(left) == 1  # a run-less batch that remembers the purge
    for bid, sha in old.items():
        git(repo, "update-ref", f"refs/vtrack/archive/{bid}", sha)
    assert ids[0] not in TrackingClient(str(repo)).repo.store.list_run_tips()


def test_forget_without_an_archive_writes_nothing(repo: Path) -> None:
    refs = RefStore(repo / ".git")
    assert forget(refs, {"0" * 32: "1" * 40}) == []
    assert _refs(repo) == []


def test_automatic_compaction_past_the_configured_count(repo: Path) -> None:
    c = TrackingClient(str(repo))
    _bulk(c, 1100)
    git(repo, "config", "vtrack.archive.auto", "1000")
    git(repo, "config", "vtrack.archive.keep", "100")
    # 64 loose refs (here the 1,100 bulk runs') make a run's end pack refs, and then
    # look at the count: the first run's end archives all but the 100 newest
    _api_runs(repo, 2)
    runs = _refs(repo, "refs/vtrack/runs/")
    assert 100 <= len(runs) <= 102, len(runs)
    assert len(_refs(repo, "refs/vtrack/archive/")) == 2  # 1,001 runs, 1,000 per batch
    assert len(c.repo.store.list_run_tips()) == 1102
    git(repo, "config", "vtrack.archive.auto", "0")
    assert_fsck_clean(repo)


def test_a_run_archived_again_after_an_update_shows_its_new_commit(repo: Path) -> None:
    c = TrackingClient(str(repo))
    ids = _bulk(c, 8)
    compact(c.repo.store)
    new = {}
    for rid in ids:  # each archived again in its own batch, sorted before or after the first
        c.set_tag(rid, "stage", "prod")  # a loose ref at a new commit shadows the batch
        c.repo.detach(rid)
        new[rid] = c.repo.store.run_tip(rid)
        compact(c.repo.store)
    assert _refs(repo, "refs/vtrack/runs/") == []
    fresh = TrackingClient(str(repo))
    assert fresh.repo.store.list_run_tips() == new
    assert all(fresh.get_run(rid).data.tags["stage"] == "prod" for rid in ids)


def test_batch_tables_are_cached_and_a_damaged_cache_is_ignored(repo: Path) -> None:
    c = TrackingClient(str(repo))
    ids = _bulk(c, 20)
    compact(c.repo.store)
    tips = c.repo.store.list_run_tips()
    cache = repo / ".git" / "vtrack" / "archive-cache"
    (entry,) = list(cache.iterdir())
    assert ids[0] in entry.read_text()  # written by the first read
    entry.write_bytes(b"# vtrack archive v1\nnot a line\n")
    assert RefStore(repo / ".git").list_runs() == tips  # re-read from git, and rewritten
    assert ids[0] in entry.read_text()


def test_a_batch_lists_its_runs_oldest_first_and_is_dated_as_its_newest(repo: Path) -> None:
    # git's history walk inserts parents into a date-sorted list: this order keeps
    # `git log --all` and fetch's connectivity check linear (benchmarks/README.md)
    c = TrackingClient(str(repo))
    _api_runs(repo, 3)
    compact(c.repo.store)
    (batch,) = _refs(repo, "refs/vtrack/archive/")
    parents = git(repo, "rev-list", "--parents", "-n1", batch).split()[1:]
    times = [int(git(repo, "log", "-1", "--format=%ct", p)) for p in parents]
    assert times == sorted(times) and len(parents) == 3
    assert int(git(repo, "log", "-1", "--format=%ct", batch)) == times[-1]
