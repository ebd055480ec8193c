"""The stat cache: one contract for StatCache and NoStatCache, then what only the cache does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import FastForwardClock, past_racy_margin, wait_past_timestamps
from vtrack import statcache as sc
from vtrack.errors import DatasetError
from vtrack.hashing import hash_file
from vtrack.statcache import RACY_MARGIN_NS, NoStatCache, StatCache

ROOT = Path(__file__).resolve().parent.parent
#: The clock of caches that look at the ``aged`` files: for it they left the racy window.
LATER = past_racy_margin()


@pytest.fixture(scope="module")
def aged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files created once, past the racy window for a cache on the :data:`LATER` clock.

    Tests copy nothing out of it: each test uses its own file name.
    """
    d = tmp_path_factory.mktemp("aged")
    for i in range(20):
        (d / f"f{i}.bin").write_bytes(b"original-content-%02d" % i)
    wait_past_timestamps(*d.iterdir())  # an edit in a test moves the file's stat
    return d


@pytest.fixture(params=["statcache", "nostatcache"])
def any_cache(request: pytest.FixtureRequest, tmp_path: Path):
    """Each implementation of the stat-cache interface, for the shared contract."""
    cache = StatCache(tmp_path / "cache.sqlite") if request.param == "statcache" else NoStatCache()
    yield cache
    cache.close()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def same_size_edit_keeping_mtime(path: Path, data: bytes) -> None:
    """Rewrite ``path`` with other bytes of the same length and put its mtime back."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize(
    "size", [0, 1, 4096, sc.PARALLEL_MIN_BYTES - 1, sc.PARALLEL_MIN_BYTES, 3 * 2**20 + 7]
)
def test_digest_matches_hashing_module_for_every_size(any_cache, tmp_path: Path, size: int) -> None:
    p = write(tmp_path / "f.bin", os.urandom(size))
    assert any_cache.digest(p) == hash_file(p)
    assert any_cache.digest(str(p)) == hash_file(p)


def test_digest_many_returns_results_in_order_and_reports_progress(
    any_cache, tmp_path: Path
) -> None:
    sizes = [10, 2 * 2**20, 0, 3 * 2**20 + 1, 5, 2**20 + 3]
    paths = [write(tmp_path / f"f{i}", os.urandom(n)) for i, n in enumerate(sizes)]
    seen: list[tuple[int, int]] = []
    got = any_cache.digest_many(paths, progress=lambda f, b: seen.append((f, b)))
    assert got == [hash_file(p) for p in paths]
    assert seen[-1] == (len(paths), sum(sizes))
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_content_change_is_seen(any_cache, tmp_path: Path) -> None:
    p = write(tmp_path / "f.txt", b"one")
    first = any_cache.digest(p)
    write(p, b"other")
    assert any_cache.digest(p) == hash_file(p) != first


def test_missing_file_raises_dataset_error_naming_it(any_cache, tmp_path: Path) -> None:
    p = tmp_path / "nope.csv"
    with pytest.raises(DatasetError, match="nope.csv") as info:
        any_cache.digest(p)
    assert info.value.fields["reason"] == "missing"


def test_deleted_file_raises_missing(any_cache, tmp_path: Path) -> None:
    p = write(tmp_path / "f.txt", b"x")
    any_cache.digest(p)
    p.unlink()
    with pytest.raises(DatasetError, match="does not exist"):
        any_cache.digest(p)


def test_dangling_symlink_is_named_as_such(any_cache, tmp_path: Path) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DatasetError, match=r"link\.csv is a dangling symbolic link"):
        any_cache.digest(link)


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_blocking(any_cache, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="pipe is not a regular file") as info:
        any_cache.digest(fifo)
    assert info.value.fields["reason"] == "not_a_file"
    # the open-then-fstat path refuses it too (the file became a FIFO after its stat)
    with pytest.raises(DatasetError, match="not a regular file"):
        sc.hash_regular_file(str(fifo))


def test_rename_gives_same_digest_at_new_path_and_missing_at_old(any_cache, tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"payload")
    before = any_cache.digest(p)
    q = tmp_path / "b.txt"
    p.rename(q)
    assert any_cache.digest(q) == before
    with pytest.raises(DatasetError):
        any_cache.digest(p)


def test_permission_change_keeps_digest(any_cache, tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"payload")
    before = any_cache.digest(p)
    p.chmod(0o600)
    assert any_cache.digest(p) == before


def test_non_utf8_file_name(any_cache, tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.bin")
    with open(raw, "wb") as f:
        f.write(b"bytes")
    name = os.fsdecode(raw)
    assert any_cache.digest(name) == hash_file(raw)
    assert any_cache.digest(name) == hash_file(raw)


# --------------------------------------------------------------------------- the cache itself
def test_old_file_is_served_from_cache_on_second_lookup(aged: Path, tmp_path: Path) -> None:
    p = aged / "f0.bin"
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        first = cache.digest(p)
        assert (cache.misses, cache.stored, cache.hits) == (1, 1, 0)
        assert cache.digest(p) == first
        assert cache.hits == 1
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as again:  # persisted
        assert again.digest(p) == first
        assert (again.hits, again.misses) == (1, 0)


def test_same_size_edit_with_mtime_restored_is_caught(aged: Path, tmp_path: Path) -> None:
    p = aged / "f1.bin"
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        old = cache.digest(p)
        assert cache.digest(p) == old and cache.hits == 1  # the entry is trusted
        same_size_edit_keeping_mtime(p, b"tampered-content-01")
        # size and mtime are as cached; only ctime moved, and that is enough
        new = cache.digest(p)
        assert new == hash_file(p) != old
        assert cache.misses == 2


def test_file_written_within_racy_window_is_rehashed_every_time(tmp_path: Path) -> None:
    p = write(tmp_path / "fresh.txt", b"abc")
    with StatCache(tmp_path / "c.sqlite") as cache:
        cache.digest(p)
        cache.digest(p)
        assert (cache.hits, cache.misses, cache.stored, cache.racy) == (0, 2, 0, 2)
        # even a same-size edit inside the same timestamp tick cannot be served stale
        same_size_edit_keeping_mtime(p, b"xyz")
        assert cache.digest(p) == hash_file(p)


def test_racy_entry_is_stored_once_old_enough(tmp_path: Path) -> None:
    p = write(tmp_path / "fresh.txt", b"abc")
    clock = FastForwardClock()
    with StatCache(tmp_path / "c.sqlite", clock=clock) as cache:
        cache.digest(p)
        assert cache.stored == 0
        clock.advance(RACY_MARGIN_NS / 1e9 + 1)  # as if the next look came 3 s later
        cache.digest(p)
        assert cache.stored == 1
        assert cache.digest(p) == hash_file(p)
        assert cache.hits == 1


def test_a_wider_racy_margin_distrusts_what_the_default_trusts(aged: Path, tmp_path: Path) -> None:
    p = aged / "f12.bin"
    wide = LATER.offset_ns + 60 * 10**9  # files must be a minute older than the clock says
    with StatCache(tmp_path / "c.sqlite", clock=LATER, racy_margin_ns=wide) as cache:
        cache.digest(p)
        cache.digest(p)
        assert (cache.hits, cache.misses, cache.stored, cache.racy) == (0, 2, 0, 2)
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        cache.digest(p)
        assert cache.digest(p) == hash_file(p) and (cache.stored, cache.hits) == (1, 1)
    with StatCache(tmp_path / "c.sqlite", clock=LATER, racy_margin_ns=wide) as cache:
        cache.digest(p)  # the entry is judged by the margin of the cache reading it
        assert cache.hits == 0


def test_racy_margin_must_be_a_non_negative_integer() -> None:
    for bad in (-1, 1.5, None):
        with pytest.raises(ValueError, match="racy_margin_ns"):
            NoStatCache(racy_margin_ns=bad)  # type: ignore[arg-type]


def _put_row(db: Path, path: Path, digest: str, written_ns: int) -> None:
    st = path.stat()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                os.fsencode(str(path)),
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                digest,
                written_ns,
            ),
        )
    conn.close()


def test_entry_written_within_racy_margin_of_mtime_is_not_trusted(tmp_path: Path) -> None:
    p = write(tmp_path / "f.txt", b"abc")
    db = tmp_path / "c.sqlite"
    StatCache(db).close()
    st = p.stat()
    bogus = "xxh3-128:" + "0" * 32
    _put_row(db, p, bogus, max(st.st_mtime_ns, st.st_ctime_ns) + RACY_MARGIN_NS - 1)
    with StatCache(db) as cache:
        assert cache.digest(p) == hash_file(p)
        assert cache.hits == 0
    # the same row written safely later is trusted: the margin is what protects
    _put_row(db, p, bogus, max(st.st_mtime_ns, st.st_ctime_ns) + RACY_MARGIN_NS + 1)
    with StatCache(db) as cache:
        assert cache.digest(p)[0] == bogus
        assert cache.hits == 1


def test_file_changed_while_being_read_is_not_stored(tmp_path: Path, monkeypatch) -> None:
    p = write(tmp_path / "f.txt", b"abc")
    real_fstat = os.fstat
    calls = [0]

    def fstat(fd: int):
        st = real_fstat(fd)
        calls[0] += 1
        if calls[0] % 2 == 0:  # the "after" stat sees a later mtime
            return SimpleNamespace(
                st_mode=st.st_mode,
                st_dev=st.st_dev,
                st_ino=st.st_ino,
                st_size=st.st_size,
                st_mtime_ns=st.st_mtime_ns + 1,
                st_ctime_ns=st.st_ctime_ns + 1,
            )
        return st

    monkeypatch.setattr(sc.os, "fstat", fstat)
    digest, size, fst = sc.hash_regular_file(str(p))
    assert fst is None and size == 3

    def later_fstat(fd: int):  # the cache stats before opening; the read's fstat is "after"
        st = real_fstat(fd)
        return SimpleNamespace(
            st_mode=st.st_mode,
            st_dev=st.st_dev,
            st_ino=st.st_ino,
            st_size=st.st_size,
            st_mtime_ns=st.st_mtime_ns + 1,
            st_ctime_ns=st.st_ctime_ns + 1,
        )

    monkeypatch.setattr(sc.os, "fstat", later_fstat)
    with StatCache(tmp_path / "c.sqlite", clock=lambda: time.time_ns() + 10**10) as cache:
        cache.digest(p)
        assert cache.stored == 0


def test_file_replaced_between_stat_and_open_is_hashed_but_not_stored(tmp_path: Path) -> None:
    p = write(tmp_path / "f.txt", b"old")
    before = os.stat(p)
    replacement = write(tmp_path / "g.txt", b"new!")
    os.replace(replacement, p)
    digest, size, fst = sc.hash_regular_file(str(p), before)
    assert (digest, size) == hash_file(p) and fst is None


def test_deleting_the_database_changes_no_result(aged: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    paths = sorted(aged.iterdir())
    with StatCache(db, clock=LATER) as cache:
        first = cache.digest_many(paths)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with StatCache(db, clock=LATER) as cache:
        assert cache.digest_many(paths) == first
        assert cache.hits == 0
    # deleted underneath an open cache: still answers
    with StatCache(db, clock=LATER) as cache:
        db.unlink()
        assert cache.digest_many(paths) == first


def test_corrupt_database_is_rebuilt(aged: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with StatCache(db, clock=LATER) as cache:
        assert cache.available
        assert cache.digest(aged / "f2.bin") == hash_file(aged / "f2.bin")
        assert cache.stored == 1


def test_unknown_schema_version_is_dropped_and_rebuilt(aged: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.execute("CREATE TABLE entries (path TEXT, digest TEXT)")
    conn.execute(
        "INSERT INTO entries VALUES (?, ?)", (str(aged / "f3.bin"), "xxh3-128:" + "0" * 32)
    )
    conn.commit()
    conn.close()
    with StatCache(db, clock=LATER) as cache:
        assert cache.digest(aged / "f3.bin") == hash_file(aged / "f3.bin")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(sc.SCHEMA_VERSION,)]
    conn.close()


def test_locked_database_degrades_to_hashing(aged: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    StatCache(db, clock=LATER).close()
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with StatCache(db, clock=LATER, busy_timeout=0.05) as cache:
            assert cache.digest(aged / "f4.bin") == hash_file(aged / "f4.bin")
            assert cache.stored == 0 and cache.errors >= 1
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_exclusively_locked_database_at_open_degrades_to_hashing(
    aged: Path, tmp_path: Path
) -> None:
    db = tmp_path / "c.sqlite"
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("CREATE TABLE hold (x)")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with StatCache(db, clock=LATER, busy_timeout=0.05) as cache:
            assert not cache.available
            assert cache.digest(aged / "f5.bin") == hash_file(aged / "f5.bin")
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_batch_defers_writes_to_one_transaction(aged: Path, tmp_path: Path) -> None:
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        with cache.batch():
            for i in range(6, 10):
                cache.digest(aged / f"f{i}.bin")
            assert cache.stored == 0
        assert cache.stored == 4


def test_unsigned_stat_fields_fold_into_sqlite_range() -> None:
    assert sc._i64(2**64 - 1) == -1
    assert sc._i64(2**63) == -(2**63)
    assert sc._i64(12345) == 12345


@pytest.mark.processes
def test_concurrent_processes_share_one_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(300):
        (data / f"{i}.txt").write_bytes(b"%d" % i * (i % 7 + 1))
    os.utime(data)
    db = tmp_path / "c.sqlite"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from vtrack.statcache import StatCache
        from vtrack.hashing import hash_file
        names = sorted(os.listdir({str(data)!r}))
        paths = [os.path.join({str(data)!r}, n) for n in names]
        with StatCache({str(db)!r}, clock=lambda: time.time_ns() + 10**10) as c:
            for _ in range(3):
                assert c.digest_many(paths) == [hash_file(p) for p in paths]
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 300
    conn.close()


def test_a_symlink_gets_its_originals_trusted_entry_and_nothing_else(
    aged: Path, tmp_path: Path
) -> None:
    p = aged / "f19.bin"
    link = tmp_path / "link.bin"
    link.symlink_to(p)
    other = tmp_path / "other.bin"
    other.symlink_to(aged / "f18.bin")  # an original the cache never saw
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        digest = cache.digest(p)
        assert cache.alias([(str(p), str(link)), (str(aged / "f18.bin"), str(other))]) == 1
        assert cache.digest(link) == digest and cache.hits == 1  # not rehashed
        assert cache.digest(other)[0] == hash_file(other)[0]
        assert cache.misses == 2
    # a link that points elsewhere than the original is given nothing
    wrong = tmp_path / "wrong.bin"
    wrong.symlink_to(aged / "f17.bin")
    with StatCache(tmp_path / "c.sqlite", clock=LATER) as cache:
        assert cache.alias([(str(p), str(wrong))]) == 0
    assert NoStatCache().alias([(str(p), str(link))]) == 0
