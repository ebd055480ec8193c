"""Atomic writes and owner-named lock files (vtrack.store.fileio)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vtrack.errors import StoreError
from vtrack.store.fileio import (
    StaleLockError,
    acquire_lock,
    atomic_write,
    is_stale,
    lock_file,
    lock_owner,
    remove_if_stale,
)
from vtrack.store.owner import HOST, Owner, this_process


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n not in keep)


# -- atomic_write ---------------------------------------------------------------


def test_atomic_write_replaces_the_file_and_an_open_reader_keeps_the_old_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"old content")
    with open(path, "rb") as reader:
        atomic_write(path, b"new")
        assert reader.read() == b"old content"  # the old file was replaced, not rewritten
    assert path.read_bytes() == b"new"
    assert _leftovers(tmp_path, {"state"}) == []


def test_atomic_write_applies_the_requested_mode(tmp_path: Path) -> None:
    path = tmp_path / "ro"
    atomic_write(path, b"x" * 100_000, mode=0o444, fsync=True)
    assert path.stat().st_mode & 0o777 == 0o444
    assert path.read_bytes() == b"x" * 100_000


def test_atomic_write_that_cannot_rename_leaves_the_target_and_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        atomic_write(target, b"data")
    assert (target / "inside").read_text() == "keep"
    assert _leftovers(tmp_path, {"target"}) == []


# -- acquire_lock ---------------------------------------------------------------


def test_acquired_lock_names_this_process_as_its_owner(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "x.lock"  # a missing folder is made
    fd = acquire_lock(lock, timeout=5)
    try:
        owner = lock_owner(lock)
        assert owner is not None
        assert (owner.pid, owner.host) == (os.getpid(), HOST)
        assert owner.is_alive() and not is_stale(lock)
        assert _leftovers(lock.parent, {"x.lock"}) == []  # no temporary beside it
    finally:
        os.close(fd)


def test_lock_of_a_dead_owner_raises_stale_lock_error_at_once(
    tmp_path: Path, dead_owner: Owner
) -> None:
    lock = tmp_path / "ref.lock"
    lock.write_bytes(dead_owner.to_json())
    started = time.monotonic()
    with pytest.raises(StaleLockError) as info:
        acquire_lock(lock, timeout=30)
    assert time.monotonic() - started < 5  # not the 30 s timeout
    assert info.value.fields["pid"] == dead_owner.pid
    assert str(lock) in str(info.value) and "vtrack recover" in str(info.value)
    assert lock.read_bytes() == dead_owner.to_json()  # reported, not removed


def test_lock_of_a_process_that_reused_a_pid_is_stale(tmp_path: Path) -> None:
    me = this_process()
    impostor = replace(me, start=f"{me.start}0")  # this pid, another start time
    lock = tmp_path / "ref.lock"
    lock.write_bytes(impostor.to_json())
    assert is_stale(lock)
    with pytest.raises(StaleLockError):
        acquire_lock(lock, timeout=30)


def test_lock_of_a_live_owner_is_waited_for_until_the_timeout(
    tmp_path: Path, live_owner: Owner
) -> None:
    lock = tmp_path / "ref.lock"
    lock.write_bytes(live_owner.to_json())
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        acquire_lock(lock, timeout=0.5)
    assert not isinstance(info.value, StaleLockError)
    assert time.monotonic() - started >= 0.5
    assert str(lock) in str(info.value)
    assert lock.read_bytes() == live_owner.to_json()


def test_lock_released_by_its_live_owner_is_then_acquired(tmp_path: Path) -> None:
    lock = tmp_path / "ref.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import os, sys, time\n"
            "from pathlib import Path\n"
            "from vtrack.store.fileio import acquire_lock\n"
            "lock = Path(sys.argv[1])\n"
            "os.close(acquire_lock(lock, timeout=5))\n"
            "print('LOCKED', flush=True)\n"
            "time.sleep(0.5)\n"  # hold it for a while, then let go
            "released = time.time()\n"
            "os.unlink(lock)\n"
            "print(released, flush=True)\n"
        ), str(lock)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "LOCKED"
    assert lock_owner(lock).pid == holder.pid  # type: ignore[union-attr]
    fd = acquire_lock(lock, timeout=30)
    acquired = time.time()
    os.close(fd)
    out, _ = holder.communicate(timeout=30)
    assert acquired >= float(out)  # never while the holder had it
    assert lock_owner(lock).pid == os.getpid()  # type: ignore[union-attr]


@pytest.mark.parametrize("content", [b"", b"3f2a" * 10 + b"\n", b"{not json"])
def test_lock_of_unknown_content_is_waited_for_then_store_error(
    tmp_path: Path, content: bytes
) -> None:
    lock = tmp_path / "HEAD.lock"  # as git leaves it: empty, or the new value
    lock.write_bytes(content)
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        acquire_lock(lock, timeout=0.3)
    assert not isinstance(info.value, StaleLockError)
    assert time.monotonic() - started >= 0.3
    assert lock.read_bytes() == content
    assert not is_stale(lock)


def test_unknown_lock_older_than_stale_seconds_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))
    fd = acquire_lock(lock, timeout=5, stale_seconds=60)
    os.close(fd)
    assert lock_owner(lock).pid == os.getpid()  # type: ignore[union-attr]


def test_young_unknown_lock_is_not_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_bytes(b"")
    with pytest.raises(StoreError):
        acquire_lock(lock, timeout=0.3, stale_seconds=60)
    assert lock.read_bytes() == b""


def test_old_lock_of_a_live_owner_is_never_taken_over(tmp_path: Path, live_owner: Owner) -> None:
    lock = tmp_path / "x.lock"
    lock.write_bytes(live_owner.to_json())
    long_ago = time.time() - 86400
    os.utime(lock, (long_ago, long_ago))
    with pytest.raises(StoreError):
        acquire_lock(lock, timeout=0.3, stale_seconds=1, take_over_dead=True)
    assert lock.read_bytes() == live_owner.to_json()


# -- lock_file --------------------------------------------------------------------


def test_lock_file_takes_over_a_dead_owners_lock_and_removes_it_at_the_end(
    tmp_path: Path, dead_owner: Owner
) -> None:
    lock = tmp_path / "recover.lock"
    lock.write_bytes(dead_owner.to_json())
    with lock_file(lock, timeout=5) as fd:
        assert fd >= 0
        assert lock_owner(lock).pid == os.getpid()  # type: ignore[union-attr]
    assert not lock.exists()


def test_lock_file_is_removed_when_the_block_raises(tmp_path: Path) -> None:
    lock = tmp_path / "end.lock"
    with pytest.raises(RuntimeError), lock_file(lock):
        raise RuntimeError("boom")
    assert not lock.exists()
    assert _leftovers(tmp_path, set()) == []


# -- remove_if_stale ----------------------------------------------------------------


def test_remove_if_stale_removes_a_dead_owners_lock(tmp_path: Path, dead_owner: Owner) -> None:
    lock = tmp_path / "x.lock"
    lock.write_bytes(dead_owner.to_json())
    assert remove_if_stale(lock)
    assert _leftovers(tmp_path, set()) == []
    assert not remove_if_stale(lock)  # gone already


def test_remove_if_stale_never_removes_a_live_owners_lock(
    tmp_path: Path, live_owner: Owner
) -> None:
    mine = tmp_path / "mine.lock"
    os.close(acquire_lock(mine, timeout=5))
    theirs = tmp_path / "theirs.lock"
    theirs.write_bytes(live_owner.to_json())
    before = {p: (p.stat().st_ino, p.read_bytes()) for p in (mine, theirs)}
    assert not remove_if_stale(mine)
    assert not remove_if_stale(theirs)
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in (mine, theirs)} == before
    assert _leftovers(tmp_path, {"mine.lock", "theirs.lock"}) == []


def test_remove_if_stale_leaves_foreign_and_other_hosts_locks(
    tmp_path: Path, dead_owner: Owner
) -> None:
    foreign = tmp_path / "git.lock"
    foreign.write_bytes(b"")
    remote = tmp_path / "remote.lock"
    # the same dead pid, but on another machine sharing the folder: never provably dead
    remote.write_bytes(replace(dead_owner, host=HOST + "-elsewhere").to_json())
    assert not remove_if_stale(foreign)
    assert not remove_if_stale(remote)
    assert foreign.exists() and remote.exists()


def test_lock_of_this_host_before_a_reboot_is_stale(tmp_path: Path) -> None:
    me = this_process()
    lock = tmp_path / "x.lock"
    lock.write_bytes(replace(me, boot_id="00000000-0000-0000-0000-000000000000").to_json())
    assert me.boot_id  # Linux: /proc/sys/kernel/random/boot_id
    assert remove_if_stale(lock)
