"""Packs vtrack writes itself: entry headers, kept packs, index lookups, merges, gc.pid.

git is the oracle: ``git verify-pack -v`` must list every entry with its type and
size, ``git index-pack`` must produce the very index vtrack wrote, and a real
``git gc`` must honour (and be honoured by) vtrack's ``gc.pid``.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from dulwich.pack import _decode_object_header, take_msb_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import assert_fsck_clean, git
from vtrack.store.gitobj import GitObjects, object_sha
from vtrack.store.owner import HOST, Owner, parse_owner
from vtrack.store.packs import (
    KEEP_PREFIX,
    KIND_NUMBERS,
    PackBuilder,
    PackHandle,
    PackIndexes,
    entry_header,
    git_gc_lock,
    keep_owner_dead,
    merge_entries,
)


def decode_header(raw: bytes) -> tuple[int, int, int]:
    """``(kind, size, header length)`` as gitformat-pack(5) defines the entry header."""
    kind = (raw[0] >> 4) & 7
    size = raw[0] & 0x0F
    shift, i = 4, 0
    while raw[i] & 0x80:
        i += 1
        size |= (raw[i] & 0x7F) << shift
        shift += 7
    return kind, size, i + 1


def build_pack(folder: Path, objects: list[tuple[bytes, bytes]]) -> PackHandle:
    """Publish ``(kind, data)`` objects as one kept pack under ``folder/pack``."""
    builder = PackBuilder(folder / "pack", folder / "tmp")
    for kind, data in objects:
        sha = object_sha(kind, data)
        builder.add(sha, entry_header(KIND_NUMBERS[kind], len(data)), [zlib.compress(data)])
    handle = builder.publish()
    assert handle is not None
    return handle


def verify_pack(idx: Path) -> dict[str, tuple[str, int, int, int]]:
    """``{sha: (type, size, size in pack, offset)}`` as ``git verify-pack -v`` reads it."""
    out = subprocess.run(
        ["git", "verify-pack", "-v", str(idx)], capture_output=True, text=True, check=True
    ).stdout
    entries = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and len(parts[0]) == 40:
            entries[parts[0]] = (parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
    return entries


def index_pack(pack: Path, out: Path) -> bytes:
    """The version-2 index git itself computes for ``pack``."""
    subprocess.run(
        ["git", "index-pack", "-o", str(out), str(pack)], capture_output=True, check=True
    )
    return out.read_bytes()


# -- entry headers ------------------------------------------------------------------


@given(kind=st.sampled_from(sorted(KIND_NUMBERS.values())), size=st.integers(0, 2**40))
def test_entry_header_encodes_kind_and_size_as_the_pack_format_says(kind: int, size: int) -> None:
    raw = entry_header(kind, size)
    assert decode_header(raw) == (kind, size, len(raw))
    assert _decode_object_header(take_msb_bytes(io.BytesIO(raw).read)[0]) == (kind, size)
    assert all(b & 0x80 for b in raw[:-1]) and not raw[-1] & 0x80
    # as short as possible: 4 bits in the first byte, 7 in each further one
    assert len(raw) == 1 + max(0, -(-(size.bit_length() - 4) // 7))


def test_entry_headers_at_size_boundaries_are_read_by_git(tmp_path: Path) -> None:
    sizes = [0, 1, 15, 16, 17, 2047, 2048, 2049, 2**18 - 1, 2**18, 2**25 + 1]
    objects = [(b"blob", bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    handle = build_pack(tmp_path, objects)
    listed = verify_pack(handle.path.with_suffix(".idx"))
    for kind, data in objects:
        assert listed[object_sha(kind, data)][:2] == ("blob", len(data))


# -- building packs -------------------------------------------------------------------


def test_published_pack_is_kept_and_its_index_is_the_one_git_computes(tmp_path: Path) -> None:
    rng = random.Random(3)
    objects = [
        (b"blob", b""),
        (b"blob", b"hello\n"),
        (b"commit", b"tree " + b"4b825dc642cb6eb9a060e54bf8d69288fbee4904" + b"\n\nm\n"),
        (b"tree", b""),
        (b"blob", rng.randbytes(100_000)),
    ]
    handle = build_pack(tmp_path, objects)
    stem = handle.path.stem
    assert sorted(os.listdir(tmp_path / "pack")) == [f"{stem}.idx", f"{stem}.keep", f"{stem}.pack"]
    assert os.listdir(tmp_path / "tmp") == []
    keep = handle.keep_path.read_bytes()
    assert keep.startswith(KEEP_PREFIX)
    assert parse_owner(keep[len(KEEP_PREFIX) :].strip()).pid == os.getpid()  # type: ignore[union-attr]
    idx = handle.path.with_suffix(".idx")
    assert index_pack(handle.path, tmp_path / "git.idx") == idx.read_bytes()
    listed = verify_pack(idx)
    assert len(listed) == len(objects)
    for kind, data in objects:
        sha = object_sha(kind, data)
        entry = handle.entries[sha]
        assert listed[sha] == (kind.decode(), len(data), entry.length, entry.offset)
    handle.release()
    assert not handle.keep_path.exists() and handle.path.exists()
    handle.delete()
    assert os.listdir(tmp_path / "pack") == []


def test_builder_with_nothing_added_publishes_nothing(tmp_path: Path) -> None:
    builder = PackBuilder(tmp_path / "pack", tmp_path / "tmp")
    assert builder.publish() is None and len(builder) == 0
    assert not (tmp_path / "pack").exists()


def test_discarded_builder_leaves_no_file(tmp_path: Path) -> None:
    builder = PackBuilder(tmp_path / "pack", tmp_path / "tmp")
    builder.add("ab" * 20, entry_header(3, 1), [zlib.compress(b"x")])
    builder.add("ab" * 20, entry_header(3, 1), [zlib.compress(b"x")])  # skipped
    assert len(builder) == 1
    builder.discard()
    tmp = tmp_path / "tmp"  # small packs are built in memory: the folder may never exist
    assert (not tmp.exists() or os.listdir(tmp) == []) and not (tmp_path / "pack").exists()


blob_sets = st.lists(st.binary(max_size=3000), min_size=1, max_size=60, unique=True)


@settings(max_examples=40)  # git verify-pack and index-pack per example
@given(datas=blob_sets, absent=st.lists(st.binary(min_size=20, max_size=20), max_size=20))
def test_pack_index_lookups_agree_with_git_verify_pack(
    datas: list[bytes], absent: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        handle = build_pack(folder, [(b"blob", d) for d in datas])
        idx = handle.path.with_suffix(".idx")
        listed = verify_pack(idx)
        assert index_pack(handle.path, folder / "git.idx") == idx.read_bytes()
        indexes = PackIndexes(folder / "pack")
        for data in datas:
            sha = object_sha(b"blob", data)
            assert listed[sha][:2] == ("blob", len(data))
            assert indexes.contains(sha)
            assert indexes.read_plain(sha) == (b"blob", data)
        for raw in absent:
            if raw.hex() not in listed:
                assert not indexes.contains(raw.hex())
                assert indexes.read_plain(raw.hex()) is None
        assert len(listed) == len(datas)


def test_pack_indexes_see_packs_git_writes_and_deletes(repo: Path) -> None:
    git_dir = repo / ".git"
    indexes = PackIndexes(git_dir / "objects" / "pack")
    blob = git(repo, "rev-parse", "HEAD:train.py")
    assert not indexes.contains(blob)  # still loose
    git(repo, "gc", "-q")
    assert indexes.contains(blob)
    assert indexes.read_plain(blob) == (b"blob", b"print('hello')\n")
    (repo / "more.txt").write_text("more\n")
    git(repo, "add", "more.txt")
    git(repo, "commit", "-q", "-m", "more")
    git(repo, "gc", "-q")  # a new pack replaces the old one
    assert indexes.contains(blob) and indexes.contains(git(repo, "rev-parse", "HEAD:more.txt"))
    for pack in (git_dir / "objects" / "pack").glob("*.idx"):
        pack.unlink()
    assert not indexes.contains(blob)


def test_read_plain_leaves_deltified_entries_to_the_fallback(repo: Path) -> None:
    git_dir = repo / ".git"
    text = "".join(f"row {i} of a file that changes only at its end\n" for i in range(300))
    shas = []
    for v in range(4):
        (repo / "f.txt").write_text(text + f"v{v}\n")
        git(repo, "add", "f.txt")
        git(repo, "commit", "-q", "-m", f"v{v}")
        shas.append(git(repo, "rev-parse", "HEAD:f.txt"))
    git(repo, "gc", "-q", "--aggressive")
    indexes = PackIndexes(git_dir / "objects" / "pack")
    (idx,) = (git_dir / "objects" / "pack").glob("*.idx")
    out = subprocess.run(["git", "verify-pack", "-v", str(idx)], capture_output=True, text=True)
    delta = {ln.split()[0] for ln in out.stdout.splitlines() if len(ln.split()) == 7}
    assert delta & set(shas)
    objects = GitObjects(git_dir)
    for sha in shas:
        assert indexes.contains(sha)
        plain = indexes.read_plain(sha)
        expected = git(repo, "cat-file", "blob", sha) + "\n"
        if sha in delta:
            assert plain is None
        else:
            assert plain == (b"blob", expected.encode())
        assert objects.read(sha) == (b"blob", expected.encode())
    objects.close()


# -- merging --------------------------------------------------------------------------


def test_merge_entries_copies_the_named_entries_byte_for_byte(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    rng = random.Random(11)
    first_data = [b"first %d\n" % i for i in range(5)] + [rng.randbytes(80_000)]
    second_data = [b"second %d\n" % i for i in range(5)]
    with objects.batch() as one:
        first = [objects.write_blob(d) for d in first_data]
    with objects.batch() as two:
        second = [objects.write_blob(d) for d in second_data]
    assert one.handle is not None and two.handle is not None
    take = [(one.handle, first[::2]), (two.handle, second[1:]), (two.handle, [])]
    merged = merge_entries(objects.pack_dir, objects.tmp_dir, take)
    assert merged is not None and merged.keep_path.exists()
    wanted = first[::2] + second[1:]
    assert set(merged.entries) == set(wanted)
    raw = {h.path: h.path.read_bytes() for h in (one.handle, two.handle, merged)}
    for source, shas in take:
        for sha in shas:
            a, b = source.entries[sha], merged.entries[sha]
            assert (
                raw[merged.path][b.offset : b.offset + b.length]
                == (raw[source.path][a.offset : a.offset + a.length])
            )
            assert b.crc == a.crc
    listed = verify_pack(merged.path.with_suffix(".idx"))
    assert set(listed) == set(wanted)
    idx = merged.path.with_suffix(".idx")
    assert index_pack(merged.path, repo / "check.idx") == idx.read_bytes()
    one.handle.delete()
    two.handle.delete()
    merged.release()
    for sha, data in zip(first[::2], first_data[::2], strict=True):
        assert git(repo, "cat-file", "-e", sha) == "" and objects.read_blob(sha) == data
    for sha in first[1::2]:
        assert not objects.exists(sha)
    (repo / "check.idx").unlink()
    assert_fsck_clean(repo)
    objects.close()


def test_merge_of_nothing_publishes_nothing(repo: Path) -> None:
    objects = GitObjects(repo / ".git")
    with objects.batch() as batch:
        objects.write_blob(b"x")
    assert batch.handle is not None
    before = set(os.listdir(objects.pack_dir))
    assert merge_entries(objects.pack_dir, objects.tmp_dir, [(batch.handle, [])]) is None
    assert set(os.listdir(objects.pack_dir)) == before


# -- .keep owners -----------------------------------------------------------------------


def test_keep_owner_dead_only_for_a_vtrack_keep_whose_writer_is_gone(
    tmp_path: Path, dead_owner: Owner, live_owner: Owner
) -> None:
    cases = {
        "dead.keep": KEEP_PREFIX + dead_owner.to_json() + b"\n",
        "live.keep": KEEP_PREFIX + live_owner.to_json() + b"\n",
        "git.keep": b"receive-pack 12345 on " + HOST.encode() + b"\n",
        "empty.keep": b"",
        "odd.keep": KEEP_PREFIX + b"not json\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    found = {name for name in cases if keep_owner_dead(tmp_path / name)}
    assert found == {"dead.keep"}
    assert not keep_owner_dead(tmp_path / "absent.keep")


# -- git's gc lock ------------------------------------------------------------------------


def run_git_gc(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "gc", "-q"], cwd=repo, capture_output=True, text=True)


def test_gc_lock_is_taken_when_no_gc_runs_and_real_git_gc_then_refuses(repo: Path) -> None:
    git_dir = repo / ".git"
    with git_gc_lock(git_dir) as held:
        assert held
        assert (git_dir / "gc.pid").read_text() == f"{os.getpid()} {HOST}"
        assert not (git_dir / "gc.pid.lock").exists()
        res = run_git_gc(repo)
        assert res.returncode != 0 and "gc is already running" in res.stderr
        assert str(os.getpid()) in res.stderr
    assert not (git_dir / "gc.pid").exists()
    assert run_git_gc(repo).returncode == 0


def test_gc_lock_refuses_while_a_live_gc_holds_gc_pid(repo: Path, live_owner: Owner) -> None:
    git_dir = repo / ".git"
    pidfile = git_dir / "gc.pid"
    pidfile.write_text(f"{live_owner.pid} {HOST}")  # what a running git gc writes
    assert run_git_gc(repo).returncode != 0  # git agrees: a gc runs
    with git_gc_lock(git_dir) as held:
        assert not held
    assert pidfile.read_text() == f"{live_owner.pid} {HOST}"
    assert not (git_dir / "gc.pid.lock").exists()


@pytest.mark.parametrize("why", ["dead pid", "older than 12 hours"])
def test_gc_lock_is_taken_over_from_a_gc_pid_git_also_ignores(
    repo: Path, dead_owner: Owner, live_owner: Owner, why: str
) -> None:
    git_dir = repo / ".git"
    pidfile = git_dir / "gc.pid"
    if why == "dead pid":
        pidfile.write_text(f"{dead_owner.pid} {HOST}")
    else:
        pidfile.write_text(f"{live_owner.pid} {HOST}")
        half_a_day_ago = time.time() - 13 * 3600
        os.utime(pidfile, (half_a_day_ago, half_a_day_ago))
    with git_gc_lock(git_dir) as held:
        assert held
        assert pidfile.read_text() == f"{os.getpid()} {HOST}"
    assert not pidfile.exists()


def test_gc_lock_refuses_a_gc_of_another_host_and_a_gc_writing_its_pid(repo: Path) -> None:
    git_dir = repo / ".git"
    pidfile = git_dir / "gc.pid"
    pidfile.write_text(f"1 {HOST}-other-machine")
    with git_gc_lock(git_dir) as held:
        assert not held
    assert pidfile.read_text() == f"1 {HOST}-other-machine"
    pidfile.unlink()
    lock = git_dir / "gc.pid.lock"
    lock.write_text("")  # a git gc between its lock and its rename
    with git_gc_lock(git_dir) as held:
        assert not held
    assert lock.exists() and not pidfile.exists()


def test_gc_lock_leaves_a_gc_pid_that_is_no_longer_its_own(repo: Path) -> None:
    git_dir = repo / ".git"
    pidfile = git_dir / "gc.pid"
    with git_gc_lock(git_dir) as held:
        assert held
        pidfile.write_text(f"1 {HOST}-other-machine")  # taken over meanwhile
    assert pidfile.read_text() == f"1 {HOST}-other-machine"
