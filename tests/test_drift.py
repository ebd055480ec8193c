"""Audit: recorded input entries re-checked against the disk, for every kind of drift."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import past_racy_margin, wait_past_timestamps
from vtrack.datasets import describe_input, manifest_to_tsv
from vtrack.errors import DatasetError, ValidationError
from vtrack.provenance.drift import check_input
from vtrack.statcache import StatCache

#: The clock of stat caches that look at the ``aged`` files.
LATER = past_racy_margin()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def same_size_edit_keeping_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def recorded(data, **kw) -> dict:
    """An entry as it comes back from a run record: ``files`` stored as TSV beside it."""
    entry = describe_input(data, **kw)
    files = entry.pop("files", None)
    if files is not None:
        entry["_tsv"] = manifest_to_tsv(files)
    return entry


def audit(entry: dict, **kw) -> dict:
    entry = dict(entry)
    tsv = entry.pop("_tsv", None)
    return check_input(entry, tsv, **kw)


@pytest.fixture(scope="module")
def aged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files past the racy window for a stat cache on the :data:`LATER` clock."""
    d = tmp_path_factory.mktemp("aged")
    (d / "single.bin").write_bytes(b"0123456789")
    make_tree(d / "folder", {"a.txt": b"aaaa", "sub/b.txt": b"bbbb"})
    wait_past_timestamps(d / "single.bin", d / "folder" / "a.txt", d / "folder" / "sub" / "b.txt")
    return d


# --------------------------------------------------------------------------- files
def test_unchanged_file(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a\n1\n")
    e = recorded(p, name="train")
    r = audit(e)
    assert r["status"] == "unchanged" and r["name"] == "train" and r["source"] == str(p)
    assert r["actual_digest"] == r["expected_digest"] == e["digest"]
    assert (r["added"], r["removed"], r["modified"]) == ([], [], [])


def test_changed_file_content(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a\n1\n")
    e = recorded(p)
    p.write_text("a\n2\n")
    assert audit(e)["status"] == "changed"
    p.write_text("a\n22\n")
    assert audit(e)["status"] == "changed"  # size differs: no hashing needed


def test_same_size_edit_with_restored_mtime_is_caught_through_a_warm_cache(
    aged: Path, tmp_path: Path
) -> None:
    p = aged / "single.bin"
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        e = recorded(p, cache=cache)
        assert audit(e, cache=cache)["status"] == "unchanged" and cache.hits == 1
        same_size_edit_keeping_mtime(p, b"9876543210")
        r = audit(e, cache=cache)
    assert r["status"] == "changed"


def test_edit_within_racy_window_is_caught_even_in_the_same_tick(tmp_path: Path) -> None:
    p = tmp_path / "fresh.bin"
    p.write_bytes(b"abcdef")
    with StatCache(tmp_path / "c.sqlite") as cache:
        e = recorded(p, cache=cache)
        same_size_edit_keeping_mtime(p, b"ABCDEF")  # may share the original ctime tick
        r = audit(e, cache=cache)
        assert cache.hits == 0
    assert r["status"] == "changed"


def test_deleted_file_is_missing(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"x")
    e = recorded(p)
    p.unlink()
    r = audit(e)
    assert r["status"] == "missing" and r["actual_digest"] is None


def test_renamed_file_is_missing_and_found_again_with_path_override(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"xyz")
    e = recorded(p)
    moved = tmp_path / "moved.bin"
    p.rename(moved)
    assert audit(e)["status"] == "missing"
    assert audit(e, path=moved)["status"] == "unchanged"


def test_permission_only_change_is_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"xyz")
    e = recorded(p)
    p.chmod(0o400)
    with StatCache(tmp_path / "c.sqlite") as cache:
        assert audit(e, cache=cache)["status"] == "unchanged"
    p.chmod(0o644)


def test_file_replaced_by_folder_is_changed(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"xyz")
    e = recorded(p)
    p.unlink()
    p.mkdir()
    assert audit(e)["status"] == "changed"


def test_dangling_symlink_where_the_file_was_is_missing(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"xyz")
    e = recorded(p)
    p.unlink()
    p.symlink_to(tmp_path / "gone")
    assert audit(e)["status"] == "missing"


@pytest.mark.timeout(20)
def test_fifo_where_the_file_was_raises_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"xyz")
    e = recorded(p)
    p.unlink()
    os.mkfifo(p)
    with pytest.raises(DatasetError, match=r"d\.bin is not a regular file"):
        audit(e)


# --------------------------------------------------------------------------- folders
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "data",
        {
            "a.csv": b"a\n1\n",
            "sub/b.csv": b"b\n2\n",
            "sub/deep/c.csv": b"c\n3\n",
        },
    )


def test_unchanged_folder(folder: Path) -> None:
    e = recorded(folder)
    r = audit(e)
    assert r["status"] == "unchanged" and r["actual_digest"] == e["digest"]


def test_folder_added_removed_modified_detail(folder: Path) -> None:
    e = recorded(folder)
    (folder / "new.csv").write_bytes(b"n\n")
    (folder / "sub" / "b.csv").unlink()
    (folder / "a.csv").write_bytes(b"a\n9\n")
    (folder / "sub" / "deep" / "c.csv").write_bytes(b"c\n33\n")
    r = audit(e)
    assert r["status"] == "changed"
    assert r["added"] == ["new.csv"]
    assert r["removed"] == ["sub/b.csv"]
    assert r["modified"] == ["a.csv", "sub/deep/c.csv"]
    assert r["actual_digest"] is None


def test_folder_rename_is_removed_plus_added(folder: Path) -> None:
    e = recorded(folder)
    (folder / "a.csv").rename(folder / "z.csv")
    r = audit(e)
    assert (r["status"], r["added"], r["removed"], r["modified"]) == (
        "changed",
        ["z.csv"],
        ["a.csv"],
        [],
    )


def test_folder_same_size_edit_with_restored_mtime_through_warm_cache(
    aged: Path, tmp_path: Path
) -> None:
    root = aged / "folder"
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        e = recorded(root, cache=cache)
        assert audit(e, cache=cache)["status"] == "unchanged" and cache.hits == 2
        same_size_edit_keeping_mtime(root / "sub" / "b.txt", b"BBBB")
        r = audit(e, cache=cache)
    assert r["status"] == "changed" and r["modified"] == ["sub/b.txt"]


def test_folder_permission_only_change_is_unchanged(folder: Path) -> None:
    e = recorded(folder)
    (folder / "a.csv").chmod(0o400)
    (folder / "sub").chmod(0o700)
    assert audit(e)["status"] == "unchanged"


def test_folder_deleted_is_missing_and_replaced_by_file_is_changed(folder: Path) -> None:
    e = recorded(folder)
    shutil.rmtree(folder)
    assert audit(e)["status"] == "missing"
    folder.write_bytes(b"now a file")
    assert audit(e)["status"] == "changed"


def test_folder_exclude_is_reapplied(folder: Path) -> None:
    e = recorded(folder, exclude=["*.tmp", "cache/"])
    (folder / "scratch.tmp").write_bytes(b"junk")
    make_tree(folder, {"cache/x.bin": b"1"})
    assert audit(e)["status"] == "unchanged"


def test_folder_without_manifest_compares_digest_only(folder: Path) -> None:
    e = describe_input(folder)
    e.pop("files")
    assert check_input(e)["status"] == "unchanged"
    (folder / "a.csv").write_bytes(b"changed")
    r = check_input(e)
    assert r["status"] == "changed" and r["modified"] == [] and r["actual_digest"] != e["digest"]


def test_folder_entry_with_inline_files_list(folder: Path) -> None:
    e = describe_input(folder)
    (folder / "extra").write_bytes(b"1")
    assert check_input(e)["added"] == ["extra"]


def test_manifest_that_does_not_match_the_digest_is_refused(folder: Path) -> None:
    e = recorded(folder)
    tampered = e["_tsv"].replace("a.csv", "A.csv")
    with pytest.raises(ValidationError, match="does not match its digest"):
        check_input({k: v for k, v in e.items() if k != "_tsv"}, tampered)


def test_folder_file_turned_dangling_link_is_removed(folder: Path) -> None:
    e = recorded(folder)
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to(folder / "nowhere")
    r = audit(e)
    assert r["status"] == "changed" and r["removed"] == ["a.csv"]


def test_deleting_the_cache_changes_no_audit_result(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    e = recorded(folder)
    (folder / "a.csv").write_bytes(b"a\n7\n")
    with StatCache(db) as cache:
        first = audit(e, cache=cache)
    db.unlink()
    with StatCache(db) as cache:
        assert audit(e, cache=cache) == first == audit(e)


# --------------------------------------------------------------------------- in-memory and remote
def test_dataframe_without_source_is_unverifiable() -> None:
    e = recorded(pd.DataFrame({"a": [1]}))
    r = audit(e)
    assert r["status"] == "unverifiable" and r["kind"] == "dataframe"


def test_dataframe_with_source_file_checks_the_file(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_text("a\n1\n")
    e = recorded(pd.read_csv(p), source=str(p))
    assert audit(e)["status"] == "unchanged"
    p.write_text("a\n2\n")
    assert audit(e)["status"] == "changed"
    p.unlink()
    assert audit(e)["status"] == "missing"


def test_array_with_and_without_source(tmp_path: Path) -> None:
    p = tmp_path / "x.npy"
    np.save(p, np.arange(3))
    assert audit(recorded(np.load(p)))["status"] == "unverifiable"
    e = recorded(np.load(p), source=str(p))
    assert audit(e)["status"] == "unchanged"


def test_uri_is_unverifiable() -> None:
    r = audit(recorded("s3://bucket/train.parquet"))
    assert r["status"] == "unverifiable" and r["source"] == "s3://bucket/train.parquet"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown kind"):
        check_input({"name": "x", "kind": "table"})


def test_folder_audit_shows_a_progress_bar_only_on_a_terminal(folder: Path, capfd) -> None:
    from vtrack import progress
    from vtrack.cli import _TerminalProgress

    entry = recorded(folder)
    seen: list = []
    progress.set_reporter(lambda *report: seen.append(report))
    try:
        assert audit(entry)["status"] == "unchanged"
    finally:
        progress.set_reporter(None)
    assert capfd.readouterr().err == ""  # the check only reports; drawing is the CLI's
    assert seen and seen[-1] == ("checking data", 3, 3)
    for delay, drawn in ((0.0, True), (60.0, False)):  # done within the delay: no bar
        bar = _TerminalProgress(delay=delay)
        progress.set_reporter(bar)
        try:
            assert audit(entry)["status"] == "unchanged"
        finally:
            progress.set_reporter(None)
        err = capfd.readouterr().err
        assert ("checking data [" in err) is drawn and not bar.shown
