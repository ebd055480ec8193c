"""Large objects through moto's S3 server and a folder: resumed uploads, corrupt objects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import subprocess_env
from tests.conftest import reap
from tests.sharing.conftest import BIG, Team, refs, vts
from tests.sharing.test_push_pull import _download
from vtrack.store.fs import open_url
from vtrack.store.objects import ObjectStore
from vtrack.store.transfer import transfer


def test_large_objects_go_through_a_real_s3_server(team: Team, s3: str, tmp_path: Path) -> None:
    rid = team.run(team.a, "big")
    for clone in (team.a, team.b):
        assert vts(clone, "remote", "set-objects", "origin", s3).exit_code == 0
    res = vts(team.a, "push", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["objects"] == 1
    remote = ObjectStore(*open_url(s3))
    assert len(list(remote.iter_digests())) == 1
    assert vts(team.b, "pull").exit_code == 0
    got = _download(team.b, rid, tmp_path / "dl")
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "dl" / "model" / "big.bin").read_bytes() == (
        team.out / "big.bin"
    ).read_bytes()


def test_transfer_between_a_folder_and_s3_verifies_and_skips_what_is_there(
    s3: str, tmp_path: Path
) -> None:
    local = ObjectStore.local(tmp_path / "objects")
    digests = [local.put_bytes(os.urandom(1000 + i))[0] for i in range(5)]
    remote = ObjectStore(*open_url(s3))
    first = transfer(local, remote, digests[:2])
    assert first.ok and sorted(first.copied) == sorted(digests[:2])
    again = transfer(local, remote, digests)
    assert sorted(again.skipped) == sorted(digests[:2]) and len(again.copied) == 3
    back = ObjectStore.local(tmp_path / "back")
    down = transfer(remote, back, digests)
    assert down.ok and all(back.verify(d) for d in digests)


def test_an_interrupted_upload_is_resumed_by_the_next_push(team: Team, tmp_path: Path) -> None:
    # one small large object and two bigger ones: the kill lands between them
    ids = [team.run(team.a, f"r{i}", size=BIG * (1 if i == 0 else 4)) for i in range(3)]
    folder = tmp_path / "store"
    assert vts(team.a, "remote", "set-objects", "origin", str(folder)).exit_code == 0
    slow = (
        "import os, sys, time\n"
        "from vtrack.store import fs\n"
        "real = fs._LocalWriter.write\n"
        "def write(self, data):\n"
        "    time.sleep(0.02)\n"
        "    return real(self, data)\n"
        "fs._LocalWriter.write = write\n"
        "os.copy_file_range = None\n"
        "from vtrack.cli import main\n"
        "sys.argv = ['vtrack', 'push']\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slow], cwd=team.a, env=subprocess_env(team.a.parent),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    published: list[Path] = []
    while time.monotonic() < deadline:
        published = [p for p in folder.glob("??/*") if p.is_file()]
        if published:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the upload never got going")
    os.kill(proc.pid, signal.SIGKILL)
    reap(proc)
    assert not refs(team.remote)  # no ref points at runs whose objects are not all there
    store = ObjectStore.local(folder)
    assert all(store.verify(d) for d in store.iter_digests())  # published ones are whole
    done = len(list(store.iter_digests()))
    assert 1 <= done < 3
    res = vts(team.a, "push", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["objects"] == 3 - done  # the finished ones are not sent again
    assert sorted(res.json()["runs"]) == sorted(ids)


def test_a_corrupt_object_on_the_remote_is_reported_with_its_run_and_path(
    team: Team, tmp_path: Path
) -> None:
    rid = team.run(team.a, "big")
    assert vts(team.a, "push").exit_code == 0
    store = ObjectStore.local(team.remote / "vtrack" / "objects")
    (digest,) = store.iter_digests()
    path = store.path_of(digest)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(BIG // 2)
        byte = f.read(1)
        f.seek(BIG // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert vts(team.b, "pull").exit_code == 0
    got = _download(team.b, rid, tmp_path / "dl")
    assert got.exit_code != 0
    assert (
        "CorruptObjectError" in got.stderr and rid in got.stderr and "model/big.bin" in got.stderr
    )
    assert not (tmp_path / "dl" / "model" / "big.bin").exists()
    local = ObjectStore.local(team.b / ".git" / "vtrack" / "objects")
    assert list(local.iter_digests()) == []  # nothing corrupt was cached
