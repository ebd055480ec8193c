"""Temp files of the large-object store carry their owner; sweeps judge them by it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vtrack.errors import ArtifactError
from vtrack.store.objects import ObjectStore
from vtrack.store.owner import HOST, Owner, this_process
from vtrack.store.tempfiles import FOREIGN_MAX_AGE_SECONDS, temp_name, temp_owner

DAY = 24 * 3600.0


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore.local(tmp_path / "objects")
    s.put_bytes(b"creates the folders")
    return s


def _tmp(store: ObjectStore) -> Path:
    return Path(store.root) / "tmp"


def _plant(store: ObjectStore, name: str, data: bytes = b"partial", age: float = 0.0) -> Path:
    path = _tmp(store) / name
    path.write_bytes(data)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def _child_temp(store: ObjectStore) -> str:
    """A temp file created by a real process that then exits: its owner is gone."""
    code = (
        "import os, sys\n"
        "from vtrack.store.fs import LocalFS\n"
        "out, path = LocalFS().create_temp(sys.argv[1])\n"
        "out.write(b'x' * 1000)\n"
        "out.close()\n"
        "print(os.path.basename(path))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code, str(_tmp(store))], env=env,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return res.stdout.strip()


def test_temp_names_carry_the_creating_process() -> None:
    name = temp_name()
    owner = temp_owner(name)
    me = this_process()
    assert owner is not None and owner.is_alive()
    assert (owner.pid, owner.start, owner.host, owner.boot_id) == (
        me.pid, me.start, HOST, me.boot_id
    )  # fmt: skip
    assert temp_name() != name and len(name) < 120
    assert temp_owner("123-abc.tmp") is None and temp_owner("notes.txt") is None
    assert temp_owner(temp_name("gc-")) == owner


def test_a_dead_processes_temp_file_is_swept_at_any_age(store: ObjectStore) -> None:
    name = _child_temp(store)
    owner = temp_owner(name)
    assert owner is not None and not owner.is_alive()
    dry = store.sweep_temp(3600, dry_run=True)
    assert [(t.name, t.size, t.remove) for t in dry] == [(name, 1000, True)]
    assert "gone" in dry[0].reason and (_tmp(store) / name).exists()
    # the age-only rule of gc_temp keeps a young file; the owner-aware sweep does not
    assert store.gc_temp(older_than_seconds=3600) == 0
    swept = store.sweep_temp(3600)
    assert [t.name for t in swept if t.remove] == [name]
    assert os.listdir(_tmp(store)) == []


def test_a_running_processes_temp_file_is_never_swept(store: ObjectStore) -> None:
    out, path = store.fs.create_temp(str(_tmp(store)))
    out.close()
    past = time.time() - 30 * DAY
    os.utime(path, (past, past))
    (kept,) = store.sweep_temp(0)
    assert not kept.remove and "in progress" in kept.reason
    assert store.gc_temp(older_than_seconds=0) == 0
    assert os.path.exists(path)


def test_a_reused_pid_does_not_keep_a_temp_file_alive(store: ObjectStore) -> None:
    me = this_process()
    impostor = Owner("", me.pid, "1", me.host, me.boot_id, 0.0)  # same pid, other start time
    name = _plant(store, temp_name(owner=impostor)).name
    assert [t.name for t in store.sweep_temp(3600) if t.remove] == [name]


def test_a_temp_file_without_an_owner_goes_only_after_the_grace_period(
    store: ObjectStore,
) -> None:
    young = _plant(store, "1-young.tmp")
    old = _plant(store, "2-old.tmp", age=7200)
    judged = {t.name: t for t in store.sweep_temp(3600)}
    assert judged[old.name].remove and not judged[young.name].remove
    assert young.exists() and not old.exists()
    assert [t.name for t in store.sweep_temp(0) if t.remove] == [young.name]


def test_another_hosts_temp_file_is_kept_unless_long_untouched(store: ObjectStore) -> None:
    elsewhere = Owner("", 4242, "99", "elsewhere.example", "", 0.0)
    recent = _plant(store, temp_name(owner=elsewhere), age=2 * 3600)
    stale = _plant(store, temp_name(owner=elsewhere), age=FOREIGN_MAX_AGE_SECONDS + 60)
    owner = temp_owner(recent.name)
    assert owner is not None and owner.host != HOST and owner.is_alive()
    judged = {t.name: t for t in store.sweep_temp(0)}
    assert not judged[recent.name].remove and "another host" in judged[recent.name].owner
    assert judged[stale.name].remove
    assert recent.exists() and not stale.exists()


def test_a_dry_run_sweep_works_on_a_read_only_store_and_counts_freed_bytes(
    store: ObjectStore,
) -> None:
    dead = _child_temp(store)
    linked = _plant(store, "3-linked.tmp", age=7200)
    os.link(linked, Path(store.root) / "linked-copy")  # published elsewhere: removal frees nothing
    ro = ObjectStore.local(store.root, read_only=True)
    judged = {t.name: t for t in ro.sweep_temp(3600, dry_run=True)}
    assert judged[dead].size == 1000 and judged[linked.name].size == 0
    assert all(t.remove for t in judged.values())
    assert sorted(os.listdir(_tmp(store))) == sorted([dead, linked.name])
    with pytest.raises(ArtifactError, match="read-only"):
        ro.sweep_temp(3600)


def test_a_temp_file_removed_mid_put_is_named_not_blamed_on_free_space(
    store: ObjectStore,
) -> None:
    tmp = _tmp(store)

    class Source:
        """A stream whose second read finds its temp file gone (another cleaner ran)."""

        calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls == 2:
                for name in os.listdir(tmp):
                    os.unlink(tmp / name)
            return b"y" * 100 if self.calls <= 3 else b""

    with pytest.raises(ArtifactError, match="was removed while it was being written") as info:
        store.put_stream(Source())  # type: ignore[arg-type]
    assert "free space" not in str(info.value) + str(info.value.hint or "")
