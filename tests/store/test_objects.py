"""The large-object store: round trips, dedup, corruption, bounded memory, kills, races."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtrack.errors import ArtifactError, ArtifactNotFoundError, CorruptObjectError, ValidationError
from vtrack.hashing import hash_bytes, hash_file, new_hasher
from vtrack.store.objects import ObjectStore

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
GiB = 1024 * MiB


def _flip_byte(path: Path, offset: int = 0) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def _write_random(path: Path, size: int, block: int = MiB) -> str:
    """Write ``size`` bytes made of one repeated random block; return their digest."""
    chunk = os.urandom(min(block, size) or 1)
    hasher = new_hasher()
    left = size
    with open(path, "wb") as f:
        while left:
            piece = chunk[: min(len(chunk), left)]
            f.write(piece)
            hasher.update(piece)
            left -= len(piece)
    return "xxh3-128:" + hasher.hexdigest()


def _child(code: str, *args: str, wait: bool = True, timeout: float = 300):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-c", textwrap.dedent(code), *args]
    if not wait:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore.local(tmp_path / "objects")


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, 3 * MiB + 7])
def test_put_file_round_trips_through_open_copy_to_and_verify(
    store: ObjectStore, tmp_path: Path, size: int
) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(size)
    src.write_bytes(data)

    digest, n = store.put_file(src)

    assert (digest, n) == hash_file(src)
    assert store.exists(digest) and store.size(digest) == size
    with store.open(digest) as f:
        assert f.read() == data
    dst = tmp_path / "out.bin"
    assert store.copy_to(digest, dst) == size
    assert dst.read_bytes() == data
    assert store.verify(digest)
    assert list(store.iter_digests()) == [digest]


def test_put_stream_and_put_bytes_agree_with_put_file(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(data)

    class ReadOnly:  # a stream without readinto
        def __init__(self) -> None:
            self._b = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._b.read(n)

    results = {
        store.put_file(src),
        store.put_stream(io.BytesIO(data)),
        store.put_stream(ReadOnly()),  # type: ignore[arg-type]
        store.put_bytes(data),
        store.put_bytes(memoryview(data)),
    }
    assert results == {(hash_bytes(data), len(data))}


def test_object_layout_is_two_hex_fanout_and_read_only(store: ObjectStore) -> None:
    digest, _ = store.put_bytes(b"layout")
    hexpart = digest.split(":")[1]
    path = Path(store.root) / hexpart[:2] / hexpart[2:]
    assert store.path_of(digest) == path and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_identical_bytes_are_stored_once(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(MiB + 3)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(data)
    b.write_bytes(data)

    digests = {store.put_file(a)[0], store.put_file(b)[0], store.put_bytes(data)[0]}
    digests.add(store.put_stream(io.BytesIO(data))[0])

    assert len(digests) == 1
    assert list(store.iter_digests()) == list(digests)
    assert store.total_bytes() == len(data)
    assert os.listdir(Path(store.root) / "tmp") == []


def test_text_stream_is_refused(store: ObjectStore) -> None:
    with pytest.raises(ValidationError, match="binary"):
        store.put_stream(io.StringIO("text"))  # type: ignore[arg-type]


def test_open_serves_random_access_after_checking_whole_object(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    digest, _ = store.put_bytes(data)
    with store.open(digest) as f:
        assert f.read(10) == data[:10]
        f.seek(200_000)
        assert f.read(5) == data[200_000:200_005]
        assert f.tell() == 200_005
        f.seek(-3, io.SEEK_END)
        assert f.read() == data[-3:]


# --- missing and malformed -------------------------------------------------------


def test_missing_object_raises_not_found_naming_the_digest(
    store: ObjectStore, tmp_path: Path
) -> None:
    digest = hash_bytes(b"never stored")
    assert not store.exists(digest)
    for call in (
        lambda: store.open(digest),
        lambda: store.size(digest),
        lambda: store.verify(digest),
        lambda: store.copy_to(digest, tmp_path / "x"),
    ):
        with pytest.raises(ArtifactNotFoundError, match=digest):
            call()
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "bad", ["", "abc", "sha256:" + "0" * 32, "xxh3-128:" + "0" * 31, "xxh3-128:" + "G" * 32]
)
def test_malformed_digest_raises_validation_error(store: ObjectStore, bad: str) -> None:
    with pytest.raises(ValidationError, match="digest"):
        store.exists(bad)
    with pytest.raises(ValidationError):
        store.open(bad)


def test_source_that_cannot_be_read_raises_artifact_error_and_leaves_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="missing.bin"):
        store.put_file(tmp_path / "missing.bin")
    assert list(store.iter_digests()) == []


def test_stream_failing_midway_leaves_no_object_and_no_temp(store: ObjectStore) -> None:
    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            self.calls += 1
            if self.calls > 3:
                raise KeyboardInterrupt
            b[:] = b"x" * len(b)
            return len(b)

    with pytest.raises(KeyboardInterrupt):
        store.put_stream(Exploding())  # type: ignore[arg-type]
    assert list(store.iter_digests()) == []
    assert os.listdir(Path(store.root) / "tmp") == []


# --- corruption ------------------------------------------------------------------


@pytest.fixture
def corrupt(store: ObjectStore) -> tuple[str, bytes]:
    data = os.urandom(2 * MiB + 11)
    digest, _ = store.put_bytes(data)
    _flip_byte(store.path_of(digest), offset=MiB + 5)
    return digest, data


def test_corrupt_object_fails_verify(store: ObjectStore, corrupt: tuple[str, bytes]) -> None:
    digest, _ = corrupt
    assert store.verify(digest) is False


def test_corrupt_object_raises_when_read_to_the_end(
    store: ObjectStore, corrupt: tuple[str, bytes]
) -> None:
    digest, _ = corrupt
    with store.open(digest) as f, pytest.raises(CorruptObjectError, match=digest):
        f.read()
    with store.open(digest) as f, pytest.raises(CorruptObjectError, match=digest):
        while f.read(4096):
            pass


def test_corrupt_object_raises_on_seek_before_serving_more(
    store: ObjectStore, corrupt: tuple[str, bytes]
) -> None:
    digest, _ = corrupt
    with store.open(digest) as f, pytest.raises(CorruptObjectError, match=digest):
        f.seek(MiB)
        f.read(100)


def test_corrupt_object_copy_to_raises_and_keeps_destination(
    store: ObjectStore, corrupt: tuple[str, bytes], tmp_path: Path
) -> None:
    digest, _ = corrupt
    dst_dir = tmp_path / "dst"
    dst_dir.mkdir()
    dst = dst_dir / "model.bin"
    dst.write_bytes(b"previous contents")

    with pytest.raises(CorruptObjectError, match=digest) as info:
        store.copy_to(digest, dst)

    assert info.value.fields["digest"] == digest
    assert dst.read_bytes() == b"previous contents"
    assert os.listdir(dst_dir) == ["model.bin"]


def test_unverified_open_serves_bytes_as_stored(
    store: ObjectStore, corrupt: tuple[str, bytes]
) -> None:
    digest, data = corrupt
    with store.open(digest, verify=False) as f:
        served = f.read()
    assert len(served) == len(data) and served != data


def test_truncated_object_is_replaced_by_the_next_put(store: ObjectStore) -> None:
    data = os.urandom(100_000)
    digest, _ = store.put_bytes(data)
    path = store.path_of(digest)
    os.chmod(path, 0o644)
    os.truncate(path, 10)

    assert store.put_bytes(data) == (digest, len(data))
    assert store.verify(digest)


# --- listing, deleting, temp cleanup, read-only --------------------------------------


def test_listing_ignores_temp_files_and_foreign_names(store: ObjectStore) -> None:
    d1, _ = store.put_bytes(b"one")
    d2, _ = store.put_bytes(b"two")
    (Path(store.root) / "tmp" / "123-abc.tmp").write_bytes(b"partial")
    (Path(store.root) / "zz").mkdir()
    (Path(store.root) / "zz" / ("0" * 30)).write_bytes(b"junk")
    (Path(store.root) / d1[9:11] / "notanobject").write_bytes(b"junk")

    assert list(store.iter_digests()) == sorted([d1, d2])
    assert store.total_bytes() == 6


def test_find_prefix_matches_with_or_without_algorithm(store: ObjectStore) -> None:
    digests = sorted(store.put_bytes(bytes([i]))[0] for i in range(40))
    target = digests[7]
    hexpart = target.split(":")[1]

    assert store.find_prefix(hexpart) == [target]
    assert store.find_prefix(target[:20]) == [d for d in digests if d.startswith(target[:20])]
    assert store.find_prefix(hexpart[:1]) == [d for d in digests if d[9] == hexpart[0]]
    assert store.find_prefix(hexpart[:3].upper()) == [d for d in digests if d[9:12] == hexpart[:3]]
    for bad in ["", "xyz", "0" * 33]:
        with pytest.raises(ValidationError, match="prefix"):
            store.find_prefix(bad)


def test_delete_removes_one_object_and_reports_absence(store: ObjectStore) -> None:
    d1, _ = store.put_bytes(b"keep")
    d2, _ = store.put_bytes(b"drop")
    assert store.delete(d2) is True
    assert store.delete(d2) is False
    assert list(store.iter_digests()) == [d1]


def test_gc_temp_removes_only_old_temp_files(store: ObjectStore) -> None:
    store.put_bytes(b"x")
    old = Path(store.root) / "tmp" / "1-old.tmp"
    new = Path(store.root) / "tmp" / "2-new.tmp"
    old.write_bytes(b"a")
    new.write_bytes(b"b")
    past = time.time() - 7200
    os.utime(old, (past, past))

    assert store.gc_temp(older_than_seconds=3600) == 1
    assert sorted(os.listdir(Path(store.root) / "tmp")) == ["2-new.tmp"]


def test_read_only_store_refuses_writes_and_creates_nothing(tmp_path: Path) -> None:
    ro = ObjectStore.local(tmp_path / "objects", read_only=True)
    for call in (
        lambda: ro.put_bytes(b"x"),
        lambda: ro.put_stream(io.BytesIO(b"x")),
        lambda: ro.put_file(tmp_path),
        lambda: ro.delete(hash_bytes(b"x")),
        lambda: ro.gc_temp(0),
    ):
        with pytest.raises(ArtifactError, match="read-only"):
            call()
    assert not (tmp_path / "objects").exists()
    assert list(ro.iter_digests()) == [] and ro.total_bytes() == 0

    digest, _ = ObjectStore.local(tmp_path / "objects").put_bytes(b"shared")
    with ro.open(digest) as f:
        assert f.read() == b"shared"


# --- real processes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A 1 GiB file (one random MiB repeated) and its digest; deleted afterwards."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = _write_random(path, GiB)
    yield path, digest
    path.unlink(missing_ok=True)


def _remove_store(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.unlink(os.path.join(dirpath, name))


@pytest.mark.processes
@pytest.mark.slow
def test_put_of_1gib_file_keeps_peak_rss_growth_under_64mb(
    big_file: tuple[Path, str], tmp_path: Path
) -> None:
    path, digest = big_file
    root = tmp_path / "objects"
    code = """
        import json, resource, sys
        from vtrack.store.objects import ObjectStore
        store = ObjectStore.local(sys.argv[1])
        before = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        digest, size = store.put_file(sys.argv[2])
        after = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        print(json.dumps({"digest": digest, "size": size, "growth_kib": after - before}))
    """
    try:
        res = _child(code, str(root), str(path))
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["digest"] == digest and out["size"] == GiB
        assert out["growth_kib"] * 1024 <= 64 * 1000 * 1000, out
        assert ObjectStore.local(root).size(digest) == GiB
    finally:
        _remove_store(root)


@pytest.mark.processes
@pytest.mark.slow
def test_put_killed_halfway_leaves_no_object_and_retry_succeeds(
    big_file: tuple[Path, str], tmp_path: Path
) -> None:
    path, digest = big_file
    root = tmp_path / "objects"
    code = """
        import sys
        from vtrack.store.objects import ObjectStore
        ObjectStore.local(sys.argv[1]).put_file(sys.argv[2])
        print("finished")
    """
    try:
        proc = _child(code, str(root), str(path), wait=False)
        deadline = time.monotonic() + 60
        tmp_dir = root / "tmp"
        while time.monotonic() < deadline:
            sizes = [e.stat().st_size for e in os.scandir(tmp_dir)] if tmp_dir.is_dir() else []
            if any(sizes):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.001)
        else:
            pytest.fail("the put never started writing its temp file")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, "the put finished before it was killed"

        store = ObjectStore.local(root)
        assert list(store.iter_digests()) == []
        assert not store.exists(digest)
        assert store.total_bytes() == 0
        assert store.find_prefix(digest[9:13]) == []
        assert len(os.listdir(tmp_dir)) == 1  # the abandoned temp, for gc_temp
        assert store.gc_temp(older_than_seconds=3600) == 0
        assert store.gc_temp(older_than_seconds=0) == 1

        assert store.put_file(path) == (digest, GiB)
        assert list(store.iter_digests()) == [digest]
        assert store.verify(digest)
    finally:
        _remove_store(root)


@pytest.mark.processes
@pytest.mark.slow
def test_concurrent_puts_of_the_same_file_store_one_correct_object(tmp_path: Path) -> None:
    src = tmp_path / "shared.bin"
    digest = _write_random(src, 48 * MiB, block=3 * MiB + 1)
    root = tmp_path / "objects"
    go = tmp_path / "go"
    code = """
        import os, sys, time
        from vtrack.store.objects import ObjectStore
        store = ObjectStore.local(sys.argv[1])
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.0005)
        print(store.put_file(sys.argv[2])[0])
    """
    for round_ in range(3):
        go.unlink(missing_ok=True)
        procs = [_child(code, str(root), str(src), str(go), wait=False) for _ in range(4)]
        time.sleep(0.3)
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err.decode()
            assert out.decode().strip() == digest

        store = ObjectStore.local(root)
        assert list(store.iter_digests()) == [digest], f"round {round_}"
        assert store.total_bytes() == 48 * MiB
        assert os.listdir(root / "tmp") == []
        assert store.verify(digest)
        store.delete(digest)
