"""vtrack gc: unreferenced large objects go; referenced, trashed, live and young ones stay."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import vtrack
from tests.conftest import assert_fsck_clean, git
from vtrack.artifacts import object_store
from vtrack.errors import StoreError, ValidationError
from vtrack.gc import collect_garbage
from vtrack.hashing import hash_bytes
from vtrack.store.objects import LocalFS

HOUR = 3600.0


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", "1024")


def _client() -> vtrack.TrackingClient:
    return vtrack.TrackingClient()


def _age(digest: str, seconds: float = 2 * HOUR) -> None:
    """Make an object look as if it was stored ``seconds`` ago."""
    path = object_store(_client().store).path_of(digest)
    past = time.time() - seconds
    os.utime(path, (past, past))


def _log_large(name: str, data: bytes, *, run_name: str | None = None) -> tuple[str, str]:
    with vtrack.start_run(run_name=run_name) as run:
        vtrack.log_text(data.decode("latin-1"), name)
    digest = vtrack.get_run(run.info.run_id).inputs.artifacts[name]["digest"]
    return run.info.run_id, digest


def _stored(digest: str) -> bool:
    return object_store(_client().store).exists(digest)


def _payload(tag: str) -> bytes:
    return (tag * 4000).encode()[:4000]


def test_removes_unreferenced_and_keeps_referenced_objects(repo: Path) -> None:
    run_id, kept = _log_large("kept.bin", _payload("k"))
    orphan, _ = object_store(_client().store).put_bytes(_payload("o"))
    for d in (kept, orphan):
        _age(d)
    report = collect_garbage(_client())
    assert report.objects_scanned == 2 and report.objects_referenced == 1
    assert report.objects_removed == [orphan] and report.bytes_freed == 4000
    assert report.runs_scanned == 1
    assert _stored(kept) and not _stored(orphan)
    assert vtrack.load_text(f"runs:/{run_id}/kept.bin") == _payload("k").decode()
    assert_fsck_clean(repo)


def test_young_unreferenced_objects_survive_the_grace_period(repo: Path) -> None:
    young, _ = object_store(_client().store).put_bytes(_payload("y"))
    report = collect_garbage(_client())
    assert report.objects_removed == [] and report.objects_kept_young == 1
    assert _stored(young)
    assert collect_garbage(_client(), grace_seconds=0).objects_removed == [young]


def test_objects_of_deleted_runs_stay_until_the_trash_is_purged(repo: Path) -> None:
    run_id, digest = _log_large("x.bin", _payload("t"))
    vtrack.delete_run(run_id)
    _age(digest)
    assert collect_garbage(_client()).objects_removed == []
    assert _stored(digest)
    dry = collect_garbage(_client(), dry_run=True, purge_trash_first=True)
    assert dry.trash_purged == [run_id] and dry.objects_removed == [digest]
    assert _stored(digest) and _client().store.trash_tip(run_id) is not None  # dry: untouched
    report = collect_garbage(_client(), purge_trash_first=True)
    assert report.trash_purged == [run_id] and report.objects_removed == [digest]
    assert not _stored(digest) and _client().store.trash_tip(run_id) is None


def test_a_kept_deleted_run_keeps_its_objects_in_a_dry_run_and_a_real_purge(repo: Path) -> None:
    # regression: a dry run of --purge-trash ignored the whole trash, so it reported the
    # objects of a run the purge keeps (keep_runs) as removed
    kept_id, kept = _log_large("k.bin", _payload("k"))
    gone_id, gone = _log_large("g.bin", _payload("g"))
    for run_id, digest in ((kept_id, kept), (gone_id, gone)):
        vtrack.delete_run(run_id)
        _age(digest)
    keep = {kept_id: ["churn v1"]}
    dry = collect_garbage(_client(), dry_run=True, purge_trash_first=True, keep_runs=keep)
    assert dry.trash_purged == [gone_id] and dry.trash_kept == keep
    assert dry.objects_removed == [gone] and _stored(gone)
    report = collect_garbage(_client(), purge_trash_first=True, keep_runs=keep)
    assert report.trash_purged == [gone_id] and report.trash_kept == keep
    assert report.objects_removed == [gone]
    assert _stored(kept) and not _stored(gone)
    assert _client().store.trash_tip(kept_id) is not None


def test_objects_journaled_by_a_live_run_are_kept(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTRACK_CHECKPOINT_SECONDS", "3600")
    with vtrack.start_run() as run:
        vtrack.log_text(_payload("l").decode(), "live.bin")
        digest = vtrack.get_run(run.info.run_id).inputs.artifacts["live.bin"]["digest"]
        assert "live.bin" not in git(repo, "ls-tree", "-r", f"refs/vtrack/runs/{run.info.run_id}")
        _age(digest)
        report = collect_garbage(_client(), grace_seconds=0)
        assert report.objects_referenced == 1 and report.objects_removed == []
    assert _stored(digest)


def test_an_overwritten_artifact_frees_its_old_object(repo: Path) -> None:
    with vtrack.start_run():
        vtrack.log_text(_payload("1").decode(), "w.bin")
        vtrack.log_text(_payload("2").decode(), "w.bin")
    old, new = hash_bytes(_payload("1")), hash_bytes(_payload("2"))
    report = collect_garbage(_client(), grace_seconds=0)
    assert report.objects_removed == [old]
    assert _stored(new)


def test_dry_run_reports_without_removing(repo: Path) -> None:
    orphan, _ = object_store(_client().store).put_bytes(_payload("d"))
    _age(orphan)
    report = collect_garbage(_client(), dry_run=True)
    assert report.dry_run and report.objects_removed == [orphan] and report.bytes_freed == 4000
    assert _stored(orphan)


def test_a_deduplicated_upload_freshens_an_old_orphan_so_gc_spares_it(repo: Path) -> None:
    orphan, _ = object_store(_client().store).put_bytes(_payload("f"))
    _age(orphan)
    _log_large("again.bin", _payload("f"))  # same bytes, logged again
    report = collect_garbage(_client())
    assert report.objects_removed == [] and _stored(orphan)


def test_object_freshened_while_being_collected_is_put_back(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan, _ = object_store(_client().store).put_bytes(_payload("r"))
    real_mtime = LocalFS.mtime
    calls = []

    def first_check_sees_it_old(self, path):
        calls.append(path)
        return 0.0 if len(calls) == 1 else real_mtime(self, path)

    monkeypatch.setattr(LocalFS, "mtime", first_check_sees_it_old)
    report = collect_garbage(_client(), grace_seconds=60)
    assert report.objects_removed == [] and _stored(orphan)
    assert len(calls) == 2  # checked again after it was renamed away


def test_stale_temp_files_are_removed(repo: Path) -> None:
    objects = object_store(_client().store)
    objects.put_bytes(b"x")  # creates the folders
    old = Path(objects.root) / "tmp" / "123-abc.tmp"
    fresh = Path(objects.root) / "tmp" / "456-def.tmp"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"in progress")
    os.utime(old, (time.time() - 2 * HOUR,) * 2)
    report = collect_garbage(_client())
    assert report.temp_files_removed == 1
    assert not old.exists() and fresh.exists()


def test_unreadable_run_record_stops_the_collection(repo: Path) -> None:
    orphan, _ = object_store(_client().store).put_bytes(_payload("u"))
    _age(orphan)
    ref = repo / ".git" / "refs" / "vtrack" / "runs" / ("f" * 32)
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text("1" * 40 + "\n")  # a commit that does not exist
    with pytest.raises(StoreError, match="nothing was removed"):
        collect_garbage(_client())
    assert _stored(orphan)


def test_negative_grace_is_refused(repo: Path) -> None:
    with pytest.raises(ValidationError):
        collect_garbage(_client(), grace_seconds=-1)


def test_empty_store_needs_no_run_scan(repo: Path) -> None:
    with vtrack.start_run():
        vtrack.log_text("small", "s.txt")
    report = collect_garbage(_client())
    assert report.objects_scanned == 0 and report.runs_scanned == 0 and report.bytes_freed == 0


def test_cli_gc_reports_bytes_freed_as_text_and_json(repo: Path) -> None:
    from vtrack.cli import cli

    orphan, _ = object_store(_client().store).put_bytes(_payload("c"))
    _age(orphan)
    runner = CliRunner()
    res = runner.invoke(cli, ["gc", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["dry_run"] is True and data["objects_removed"] == [orphan]
    assert data["bytes_freed"] == 4000
    res = runner.invoke(cli, ["gc", "--dry-run"])
    assert res.exit_code == 0 and "would remove 1 of 1 large object(s), 3.9 KiB freed" in res.stdout
    res = runner.invoke(cli, ["gc"])
    assert res.exit_code == 0 and "removed 1 of 1" in res.stdout
    assert not _stored(orphan)
    res = runner.invoke(cli, ["gc", "--grace", "-5"])
    assert res.exit_code == 2
    assert "gc" in runner.invoke(cli, ["--help"]).stdout
