"""Git objects: loose writes, batches into kept packs, reads, tree and commit codecs.

git is the oracle: every object vtrack writes must be read back identically by
``git cat-file``, every pack checked by ``git verify-pack``, every repository by
``git fsck --full``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_fsck_clean, git
from vtrack.errors import CorruptObjectError, StoreError
from vtrack.store.gitobj import (
    BLOB_MODE,
    EXEC_MODE,
    GITLINK_MODE,
    LINK_MODE,
    TREE_MODE,
    GitObjects,
    MissingObjectError,
    object_sha,
    parse_commit,
    parse_tree,
    serialize_commit,
    serialize_tree,
)
from vtrack.store.owner import parse_owner


def git_bytes(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run git on ``git_dir`` and return its raw stdout (fails the test on error)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    res = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], input=input, capture_output=True, env=env
    )
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout


def cat_file(git_dir: Path, sha: str) -> tuple[bytes, bytes]:
    kind = git_bytes(git_dir, "cat-file", "-t", sha).strip()
    return kind, git_bytes(git_dir, "cat-file", kind.decode(), sha)


def loose_files(git_dir: Path) -> set[str]:
    objects = git_dir / "objects"
    return {
        d + f
        for d in os.listdir(objects)
        if len(d) == 2 and (objects / d).is_dir()
        for f in os.listdir(objects / d)
    }


def pack_files(git_dir: Path) -> set[str]:
    folder = git_dir / "objects" / "pack"
    return set(os.listdir(folder)) if folder.exists() else set()


def verify_pack(idx: Path) -> dict[str, tuple[str, int]]:
    """``{sha: (type, size)}`` of every entry, as ``git verify-pack -v`` reads the pack."""
    out = subprocess.run(
        ["git", "verify-pack", "-v", str(idx)], capture_output=True, text=True, check=True
    ).stdout
    entries = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and len(parts[0]) == 40:
            entries[parts[0]] = (parts[1], int(parts[2]))
    return entries


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bare repository for property tests (objects only accumulate)."""
    path = tmp_path_factory.mktemp("bare") / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


# -- codecs ----------------------------------------------------------------------

name_bytes = st.binary(min_size=1, max_size=24).filter(lambda b: b"\x00" not in b and b"/" not in b)
modes = st.sampled_from([BLOB_MODE, EXEC_MODE, LINK_MODE, TREE_MODE, GITLINK_MODE])
hex_sha = st.binary(min_size=20, max_size=20).map(bytes.hex)
tree_entries = st.lists(
    st.tuples(modes, name_bytes, hex_sha), max_size=12, unique_by=lambda e: e[1]
)
_KIND = {TREE_MODE: b"tree", GITLINK_MODE: b"commit"}


@given(entries=tree_entries)
def test_tree_codec_agrees_with_git_mktree_and_ls_tree(bare: Path, entries: list) -> None:
    spec = b"".join(
        b"%o %s %s\t%s\x00" % (mode, _KIND.get(mode, b"blob"), sha.encode(), name)
        for mode, name, sha in entries
    )
    theirs = git_bytes(bare, "mktree", "-z", "--missing", input=spec).strip().decode()
    raw = serialize_tree(entries)
    assert object_sha(b"tree", raw) == theirs
    assert GitObjects(bare).write_tree(entries) == theirs
    assert git_bytes(bare, "cat-file", "tree", theirs) == raw
    parsed = parse_tree(raw)
    assert sorted(parsed) == sorted(entries)
    listed = []
    for record in git_bytes(bare, "ls-tree", "-z", theirs).split(b"\x00")[:-1]:
        meta, _, name = record.partition(b"\t")
        mode, _, sha = meta.split(b" ")
        listed.append((int(mode, 8), name, sha.decode()))
    assert parsed == listed  # and in git's order


@given(kind=st.sampled_from([b"blob", b"tree", b"commit", b"tag"]), data=st.binary(max_size=2000))
def test_object_sha_is_what_git_hash_object_computes(bare: Path, kind: bytes, data: bytes) -> None:
    theirs = git_bytes(
        bare, "hash-object", "--literally", "-t", kind.decode(), "--stdin", input=data
    )
    assert object_sha(kind, data) == theirs.strip().decode()


def test_commit_codec_round_trips_through_git(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    blob = objects.write_blob(b"hello\n")
    tree = objects.write_tree([(BLOB_MODE, b"hello.txt", blob)])
    head = git(repo, "rev-parse", "HEAD")
    who = b"Ada Lovelace <ada@example.com>"
    message = "vtrack run x\n\nrun: 1\n\u00e9t\u00e9\n".encode()
    raw = serialize_commit(tree, [head, head], who, who, 1700000000, b"+0130", message)
    sha = objects.write(b"commit", raw)
    assert cat_file(git_dir, sha) == (b"commit", raw)
    assert git(repo, "log", "-1", "--format=%T %P %an %ae %at %ai", sha) == (
        f"{tree} {head} {head} Ada Lovelace ada@example.com 1700000000 2023-11-14 23:43:20 +0130"
    )
    assert parse_commit(raw) == {
        "tree": tree, "parents": [head, head], "message": message,
        "committer": who + b" 1700000000 +0130",
    }  # fmt: skip
    git(repo, "update-ref", "refs/vtrack/runs/x", sha)
    assert_fsck_clean(repo)


def test_parse_commit_reads_a_commit_git_wrote(repo: Path) -> None:
    git_dir = repo / ".git"
    head = git(repo, "rev-parse", "HEAD")
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    sha = git(repo, "commit-tree", tree, "-p", head, "-m", "second", "-m", "body")
    found = GitObjects(git_dir).read_commit(sha)
    assert found["tree"] == tree and found["parents"] == [head]
    assert found["message"] == b"second\n\nbody\n"
    assert found["committer"].startswith(b"Test User <test@example.com> ")


# -- loose objects ---------------------------------------------------------------------


def test_loose_objects_are_read_by_git_identically(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    blob = objects.write_blob(b"line\n" * 10)
    empty = objects.write_blob(b"")
    tree = objects.write_tree([(BLOB_MODE, b"a", blob), (EXEC_MODE, b"run.sh", empty)])
    for sha, kind, data in [
        (blob, b"blob", b"line\n" * 10),
        (empty, b"blob", b""),
        (tree, b"tree", serialize_tree([(BLOB_MODE, b"a", blob), (EXEC_MODE, b"run.sh", empty)])),
    ]:
        path = git_dir / "objects" / sha[:2] / sha[2:]
        assert path.stat().st_mode & 0o777 == 0o444  # as git makes them
        assert cat_file(git_dir, sha) == (kind, data)
        assert objects.read(sha) == (kind, data)
        assert objects.exists(sha)
    assert git(repo, "ls-tree", tree) == f"100644 blob {blob}\ta\n100755 blob {empty}\trun.sh"
    assert not [n for n in os.listdir(git_dir / "objects" / blob[:2]) if n.startswith("tmp")]
    assert_fsck_clean(repo)


@pytest.mark.parametrize(
    ("size", "compress", "pattern"),
    [
        (200_000, True, "random"),  # incompressible: stored deflate blocks anyway
        (200_000, False, "text"),  # compress=False: stored although it would shrink
        (65_535 * 2, False, "random"),  # exactly two full stored blocks of data
        (65_535 * 3 + 7, True, "random"),
        (65_537, True, "random"),
    ],
)
def test_large_objects_written_as_stored_deflate_blocks_are_read_by_git(
    repo: Path, size: int, compress: bool, pattern: str
) -> None:
    git_dir = repo / ".git"
    data = random.Random(size).randbytes(size) if pattern == "random" else b"abc\n" * (size // 4)
    sha = GitObjects(git_dir).write_blob(data, compress=compress)
    path = git_dir / "objects" / sha[:2] / sha[2:]
    assert path.stat().st_size >= len(data)  # stored, not compressed
    assert zlib.decompress(path.read_bytes()) == b"blob %d\x00" % len(data) + data
    assert cat_file(git_dir, sha) == (b"blob", data)
    assert GitObjects(git_dir).read_blob(sha) == data
    assert_fsck_clean(repo)


def test_compressible_large_object_is_compressed(repo: Path) -> None:
    git_dir = repo / ".git"
    data = b"loss 0.125\n" * 20_000
    sha = GitObjects(git_dir).write_blob(data)
    assert (git_dir / "objects" / sha[:2] / sha[2:]).stat().st_size < len(data) // 10
    assert cat_file(git_dir, sha) == (b"blob", data)


def _disk_size(git_dir: Path, sha: str) -> int:
    out = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectsize:disk)"], cwd=git_dir,
        input=f"{sha}\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout)


@pytest.mark.parametrize("packed", [False, True])
def test_tabular_blobs_are_compressed_for_numbers_and_read_back_by_git(
    repo: Path, packed: bool
) -> None:
    """A metric history (random 17-digit values) is stored at least 5 % smaller than
    zlib's default strategy stores it (before: exactly the default); other data is not."""
    git_dir = repo / ".git"
    rng = random.Random(7)
    rows = "".join(f"{s}\t{1796000000000 + 37 * s}\t{rng.random()}\n" for s in range(100))
    data = rows.encode()
    objects = GitObjects(git_dir)
    if packed:
        with objects.batch():
            sha = objects.write_blob(data, tabular=True)
            plain = objects.write_blob(b"a: 1\nb: 2\n" * 40)
    else:
        sha = objects.write_blob(data, tabular=True)
        plain = objects.write_blob(b"a: 1\nb: 2\n" * 40)
    default = len(zlib.compress(b"blob %d\x00" % len(data) + data, 6))
    assert _disk_size(git_dir, sha) < 0.95 * default
    assert (
        _disk_size(git_dir, plain)
        <= len(zlib.compress(b"blob 440\x00" + b"a: 1\nb: 2\n" * 40, 6)) + 3
    )
    assert cat_file(git_dir, sha) == (b"blob", data)
    assert GitObjects(git_dir).read_blob(sha) == data
    assert_fsck_clean(repo)


def test_writing_an_existing_object_freshens_it_without_rewriting(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    sha = objects.write_blob(b"shared by many runs")
    path = git_dir / "objects" / sha[:2] / sha[2:]
    long_ago = time.time() - 30 * 86400
    os.utime(path, (long_ago, long_ago))
    inode = path.stat().st_ino
    assert objects.write_blob(b"shared by many runs") == sha
    assert path.stat().st_ino == inode
    assert path.stat().st_mtime > long_ago + 29 * 86400  # git gc's grace period restarts


def test_fan_out_folder_removed_by_git_prune_between_writes_is_recreated(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    first = objects.write_blob(b"unreachable, pruned")
    git(repo, "prune", "--expire=now")  # deletes it and the fan-out folder it emptied
    assert not (git_dir / "objects" / first[:2]).exists()
    assert not objects.exists(first)
    assert objects.write_blob(b"unreachable, pruned") == first  # the same object again
    assert cat_file(git_dir, first) == (b"blob", b"unreachable, pruned")
    git(repo, "prune", "--expire=now")
    data = next(
        d for d in (b"new %d" % i for i in range(10_000))
        if not (git_dir / "objects" / object_sha(b"blob", d)[:2]).exists()
    )  # fmt: skip
    sha = objects.write_blob(data)
    assert cat_file(git_dir, sha) == (b"blob", data)


def test_reads_of_objects_git_packed_and_deltified_agree_with_git(repo: Path) -> None:
    git_dir = repo / ".git"
    text = "".join(f"line {i} of a long file that changes a little\n" for i in range(400))
    shas = []
    for version in range(6):
        (repo / "big.txt").write_text(text + f"version {version}\n")
        git(repo, "add", "big.txt")
        git(repo, "commit", "-q", "-m", f"v{version}")
        shas.append(git(repo, "rev-parse", "HEAD:big.txt"))
    git(repo, "gc", "-q", "--aggressive", "--prune=now")
    assert not loose_files(git_dir)
    (idx,) = (git_dir / "objects/pack").glob("*.idx")
    out = subprocess.run(["git", "verify-pack", "-v", str(idx)], capture_output=True, text=True)
    deltified = {ln.split()[0] for ln in out.stdout.splitlines() if len(ln.split()) == 7}
    assert deltified & set(shas)  # git stored some versions as deltas
    objects = GitObjects(git_dir)
    for sha in shas + [git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD^{tree}")]:
        assert objects.exists(sha)
        assert objects.read(sha) == cat_file(git_dir, sha)
    objects.close()


def test_absent_object_raises_store_error_and_exists_is_false(repo: Path) -> None:
    objects = GitObjects(repo / ".git")
    missing = object_sha(b"blob", b"never written")
    assert not objects.exists(missing)
    with pytest.raises(StoreError) as info:
        objects.read(missing)
    assert missing in str(info.value) and not isinstance(info.value, CorruptObjectError)


def test_corrupt_loose_object_raises_corrupt_object_error(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    sha = objects.write_blob(b"will be damaged")
    path = git_dir / "objects" / sha[:2] / sha[2:]
    path.chmod(0o644)
    path.write_bytes(b"\x78\x01garbage")
    with pytest.raises(CorruptObjectError) as info:
        objects.read(sha)
    assert sha in str(info.value)


def test_typed_reads_refuse_an_object_of_another_kind(repo: Path) -> None:
    objects = GitObjects(repo / ".git")
    blob = objects.write_blob(b"x")
    tree = objects.write_tree([(BLOB_MODE, b"x", blob)])
    with pytest.raises(StoreError, match="not a tree"):
        objects.read_tree(blob)
    with pytest.raises(StoreError, match="not a blob"):
        objects.read_blob(tree)
    with pytest.raises(StoreError, match="not a commit"):
        objects.read_commit(tree)


def test_tree_lookup_and_changed_objects_follow_nested_trees(repo: Path) -> None:
    objects = GitObjects(repo / ".git")
    a, b, c = (objects.write_blob(d) for d in (b"a", b"b", b"c"))
    sub_old = objects.write_tree([(BLOB_MODE, b"b", b)])
    sub_new = objects.write_tree([(BLOB_MODE, b"b", c)])
    old = objects.write_tree([(BLOB_MODE, b"a", a), (TREE_MODE, b"sub", sub_old)])
    new = objects.write_tree([(BLOB_MODE, b"a", a), (TREE_MODE, b"sub", sub_new)])
    assert objects.tree_lookup(new, "sub/b") == (BLOB_MODE, c)
    assert objects.tree_lookup(new, "/sub/") == (TREE_MODE, sub_new)
    assert objects.tree_lookup(new, "a/x") is None and objects.tree_lookup(new, "nope") is None
    assert sorted(objects.changed_objects(new, old)) == sorted([new, sub_new, c])
    assert sorted(objects.changed_objects(new, None)) == sorted([new, a, sub_new, c])


@pytest.mark.processes
def test_concurrent_writers_of_the_same_loose_objects_all_succeed(repo: Path) -> None:
    git_dir = repo / ".git"
    code = (
        "import sys\nfrom pathlib import Path\nfrom vtrack.store.gitobj import GitObjects\n"
        "o = GitObjects(Path(sys.argv[1]))\n"
        "for i in range(300):\n    o.write_blob(b'shared %d' % i)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(git_dir)], env=env, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for i in (0, 150, 299):
        assert cat_file(git_dir, object_sha(b"blob", b"shared %d" % i))[1] == b"shared %d" % i
    assert not [f for f in loose_files(git_dir) if "tmp" in f]
    assert_fsck_clean(repo)


# -- batches ------------------------------------------------------------------------------


def test_batch_publishes_exactly_one_kept_pack_that_git_verifies(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    before_loose, before_packs = loose_files(git_dir), pack_files(git_dir)
    rng = random.Random(7)
    contents = [b"", b"small\n", b"compressible\n" * 10_000, rng.randbytes(150_000)]
    with objects.batch() as batch:
        blobs = [objects.write_blob(d) for d in contents]
        blobs.append(objects.write_blob(rng.randbytes(100_000), compress=False))
        tree = objects.write_tree([(BLOB_MODE, b"f%d" % i, s) for i, s in enumerate(blobs)])
        head = git(repo, "rev-parse", "HEAD")
        who = b"T <t@example.com>"
        commit = objects.write(
            b"commit", serialize_commit(tree, [head], who, who, 1, b"+0000", b"m\n")
        )
        assert objects.write_blob(b"small\n") == blobs[1]  # written once
        with objects.batch() as inner:  # a nested batch joins the outer one
            assert inner is batch
            nested = objects.write_blob(b"nested")
        assert batch.handle is None  # nothing is published before the block ends
    assert loose_files(git_dir) == before_loose  # nothing went loose
    handle = batch.handle
    assert handle is not None
    new = pack_files(git_dir) - before_packs
    stem = handle.path.stem
    assert new == {f"{stem}.pack", f"{stem}.idx", f"{stem}.keep"}
    keep = handle.keep_path.read_bytes()
    assert keep.startswith(b"vtrack ") and parse_owner(keep[7:].strip()).pid == os.getpid()  # type: ignore[union-attr]
    listed = verify_pack(handle.path.with_suffix(".idx"))
    wanted = {s: cat_file(git_dir, s) for s in [*blobs, tree, commit, nested]}
    assert set(listed) == set(wanted) == set(handle.entries)
    for sha, (kind, data) in wanted.items():
        assert listed[sha] == (kind.decode(), len(data))
        assert object_sha(kind, data) == sha
        assert objects.read(sha) == (kind, data)
    assert wanted[blobs[3]][1] == contents[3]
    git(repo, "update-ref", "refs/vtrack/runs/x", commit)
    handle.release()
    assert not handle.keep_path.exists()
    assert handle.path.exists()  # release only lets git repack it
    assert_fsck_clean(repo)


def test_objects_written_in_a_batch_are_readable_before_it_is_published(repo: Path) -> None:
    objects = GitObjects(repo / ".git")
    with objects.batch():
        for data in [b"x", b"y" * 70_000, random.Random(1).randbytes(1 << 20)]:
            sha = objects.write_blob(data)
            assert objects.read(sha) == (b"blob", data)
        tree = objects.write_tree([(BLOB_MODE, b"x", object_sha(b"blob", b"x"))])
        assert objects.read_tree(tree) == [(BLOB_MODE, b"x", object_sha(b"blob", b"x"))]


def test_empty_objects_written_in_a_batch_are_readable_before_it_is_published(
    repo: Path,
) -> None:
    # "Objects up to 1 MiB stay readable from memory until their batch is published":
    # the empty blob (an empty file) and the empty tree are such objects too
    objects = GitObjects(repo / ".git")
    with objects.batch():
        empty_blob = objects.write_blob(b"")
        empty_tree = objects.write_tree([])
        assert objects.read(empty_blob) == (b"blob", b"")
        assert objects.read_tree(empty_tree) == []


def test_kept_pack_survives_git_gc_prune_now_until_released(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    with objects.batch() as batch:
        sha = objects.write_blob(b"a live run will reference this soon")
    assert batch.handle is not None
    git(repo, "gc", "-q", "--prune=now")  # unreachable, but in a kept pack
    assert git(repo, "cat-file", "-p", sha) == "a live run will reference this soon"
    batch.handle.release()
    git(repo, "gc", "-q", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", sha], cwd=repo).returncode != 0
    assert not objects.exists(sha)


def test_batch_that_raises_publishes_nothing_and_leaves_no_temporary(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    before = pack_files(git_dir)
    with pytest.raises(RuntimeError), objects.batch() as batch:
        sha = objects.write_blob(b"abandoned")
        raise RuntimeError("boom")
    assert batch.handle is None and pack_files(git_dir) == before
    assert not objects.exists(sha)
    tmp = git_dir / "vtrack" / "tmp"  # small batches are built in memory: may never exist
    assert not tmp.exists() or os.listdir(tmp) == []
    with objects.batch() as empty:
        pass
    assert empty.handle is None and pack_files(git_dir) == before
    assert objects.write_blob(b"loose again") and loose_files(git_dir)  # batch is over


def test_add_existing_copies_loose_objects_into_the_batch(repo: Path) -> None:
    git_dir = repo / ".git"
    objects = GitObjects(git_dir)
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    blob = git(repo, "rev-parse", "HEAD:train.py")
    with objects.batch() as batch:
        objects.add_existing([tree, blob, tree])
    assert batch.handle is not None
    assert set(verify_pack(batch.handle.path.with_suffix(".idx"))) == {tree, blob}
    with pytest.raises(MissingObjectError), objects.batch():
        objects.add_existing([object_sha(b"blob", b"gone")])
    objects.add_existing([object_sha(b"blob", b"gone")])  # outside a batch: nothing to do
