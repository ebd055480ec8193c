"""Refs: reads (loose, packed, symbolic), compare-and-swap, deletion, stale locks.

git is the oracle: what RefStore reads must be what ``git rev-parse`` /
``git for-each-ref`` report, and what it writes must be what git then reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_fsck_clean, git
from vtrack.errors import RefConflictError, StoreError
from vtrack.store.fileio import StaleLockError, acquire_lock
from vtrack.store.gitobj import GitObjects
from vtrack.store.owner import Owner
from vtrack.store.refs import RefStore

REF = "refs/vtrack/runs/0123456789abcdef0123456789abcdef"


def blobs(git_dir: Path, n: int) -> list[str]:
    """``n`` distinct blobs written into the repository (refs must name real objects)."""
    objects = GitObjects(git_dir)
    return [objects.write_blob(b"object %d\n" % i) for i in range(n)]


def git_refs(repo: Path, prefix: str = "refs/") -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", prefix)
    return {name: sha for sha, name in (line.split(" ") for line in out.splitlines())}


def packed_names(git_dir: Path) -> list[str]:
    lines = (git_dir / "packed-refs").read_text().splitlines()
    return [ln.split(" ")[1] for ln in lines if not ln.startswith(("#", "^"))]


# -- reading ----------------------------------------------------------------------


def test_read_agrees_with_git_for_loose_packed_peeled_and_absent_refs(
    repo: Path, git_dir: Path
) -> None:
    a, b, c = blobs(git_dir, 3)
    git(repo, "tag", "-a", "v1", "-m", "annotated")  # packed with a peeled ^ line
    for i, sha in enumerate([a, b, c]):
        git(repo, "update-ref", f"refs/vtrack/runs/r{i}", sha)
    git(repo, "pack-refs", "--all")
    text = (git_dir / "packed-refs").read_text()
    assert text.startswith("# pack-refs with:") and "\n^" in text
    git(repo, "update-ref", "refs/vtrack/runs/loose", a)  # loose beside packed
    refs = RefStore(git_dir)
    expected = git_refs(repo)
    assert len(expected) == 6
    for name, sha in expected.items():
        assert refs.read(name) == sha, name
    assert refs.read("refs/tags/v1") != git(repo, "rev-parse", "v1^{}")  # the tag, unpeeled
    for absent in ["refs/vtrack/runs/r", "refs/vtrack/runs/r00", "refs/a", "refs/zzz", REF]:
        assert refs.read(absent) is None
    assert refs.read("refs/vtrack/runs") is None  # a folder, not a ref


def test_symbolic_ref_is_followed(repo: Path, git_dir: Path) -> None:
    refs = RefStore(git_dir)
    assert refs.read("HEAD") == git(repo, "rev-parse", "HEAD")
    assert refs.read_head(git_dir) == (git(repo, "rev-parse", "HEAD"), "main")
    git(repo, "checkout", "-q", "--detach")
    assert refs.read_head(git_dir) == (git(repo, "rev-parse", "HEAD"), None)


def test_hand_written_unsorted_packed_refs_without_header_are_read_as_git_reads_them(
    repo: Path, git_dir: Path
) -> None:
    shas = blobs(git_dir, 4)
    names = ["refs/vtrack/runs/zz", "refs/vtrack/runs/aa", "refs/vtrack/runs/mm", "refs/heads/x"]
    (git_dir / "packed-refs").write_text(
        "".join(f"{sha} {name}\n" for sha, name in zip(shas, names, strict=True))
    )
    refs = RefStore(git_dir)
    expected = git_refs(repo, "refs/vtrack/")
    assert expected == dict(zip(names[:3], shas[:3], strict=True))
    for name, sha in expected.items():
        assert refs.read(name) == sha


ref_leaf = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
ref_name = st.tuples(st.sampled_from(["runs", "experiments", "trash"]), ref_leaf).map(
    lambda t: f"refs/vtrack/{t[0]}/{t[1]}"
)


@settings(max_examples=25)  # four git commands per example
@given(
    present=st.lists(ref_name, min_size=1, max_size=40, unique=True),
    absent=st.lists(ref_name, max_size=20),
    loose=st.sets(st.integers(0, 39), max_size=5),
)
def test_packed_refs_bisect_finds_exactly_what_git_lists(
    present: list[str], absent: list[str], loose: set[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "init", "-q", "--bare", tmp], check=True)
        git_dir = Path(tmp)
        shas = blobs(git_dir, 3)
        script = "".join(f"create {n} {shas[i % 3]}\n" for i, n in enumerate(present))
        subprocess.run(["git", "update-ref", "--stdin"], input=script.encode(), cwd=tmp, check=True)
        subprocess.run(["git", "pack-refs", "--all"], cwd=tmp, check=True)
        refs = RefStore(git_dir)
        for i in loose & set(range(len(present))):  # a loose update beside the packed copy
            refs.cas(present[i], shas[i % 3], shas[(i + 1) % 3])
        expected = git_refs(git_dir, "refs/vtrack/")
        assert sorted(expected) == sorted(present)
        for name in present:
            assert refs.read(name) == expected[name]
        for name in set(absent) - set(present):
            assert refs.read(name) is None
        assert refs.list("refs/vtrack/") == expected


def test_corrupt_packed_refs_line_raises_store_error_naming_file_and_line(
    repo: Path, git_dir: Path
) -> None:
    a, b = blobs(git_dir, 2)
    packed = git_dir / "packed-refs"
    packed.write_text(
        "# pack-refs with: peeled fully-peeled sorted \n"
        f"{a} refs/vtrack/runs/a\n"
        "not a sha refs/vtrack/runs/b\n"
        f"{b} refs/vtrack/runs/c\n"
    )
    assert subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True).returncode != 0
    with pytest.raises(StoreError) as info:
        RefStore(git_dir).read("refs/vtrack/runs/a")
    assert str(packed) in str(info.value) and "line 3" in str(info.value)


def test_packed_refs_rewritten_by_git_are_read_again(repo: Path, git_dir: Path) -> None:
    a, b = blobs(git_dir, 2)
    git(repo, "update-ref", REF, a)
    git(repo, "pack-refs", "--all")
    refs = RefStore(git_dir)
    assert refs.read(REF) == a
    git(repo, "update-ref", REF, b)
    git(repo, "pack-refs", "--all")
    assert not (git_dir / REF).exists()
    assert refs.read(REF) == b


def test_packed_refs_rewritten_within_one_timestamp_tick_are_read_again(
    repo: Path, git_dir: Path
) -> None:
    # A file's mtime only moves once per filesystem timestamp tick (a jiffy on many
    # kernels, 2 s on FAT, whatever the server says on NFS): git can rewrite
    # packed-refs with the same size within one tick. git itself re-reads it when its
    # inode or ctime changed; a stale read here lets a CAS succeed against a moved ref.
    a, b, c = blobs(git_dir, 3)
    git(repo, "update-ref", REF, a)
    git(repo, "pack-refs", "--all")
    packed = git_dir / "packed-refs"
    before = packed.stat()
    refs = RefStore(git_dir)
    assert refs.read(REF) == a
    git(repo, "update-ref", REF, b)
    git(repo, "pack-refs", "--all")  # same refs, same size, a new file
    os.utime(packed, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... in the same tick
    assert packed.stat().st_size == before.st_size
    assert packed.stat().st_ino != before.st_ino
    assert git(repo, "rev-parse", REF) == b
    assert refs.read(REF) == b
    with pytest.raises(RefConflictError):
        refs.cas(REF, a, c)
    assert git(repo, "rev-parse", REF) == b


# -- compare-and-swap -------------------------------------------------------------------


def test_cas_creates_an_absent_ref_that_git_then_reads(repo: Path, git_dir: Path) -> None:
    (a,) = blobs(git_dir, 1)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    assert git(repo, "rev-parse", REF) == a
    assert git_refs(repo, "refs/vtrack/") == {REF: a}
    assert (git_dir / REF).read_text() == a + "\n"
    assert not (git_dir / (REF + ".lock")).exists()
    assert os.listdir(git_dir / "vtrack" / "tmp") == []


def test_cas_moves_a_ref_that_points_at_the_expected_value(repo: Path, git_dir: Path) -> None:
    a, b = blobs(git_dir, 2)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    refs.cas(REF, a, b, fsync=True)
    assert git(repo, "rev-parse", REF) == b
    assert refs.read(REF) == b


def test_cas_conflict_names_expected_and_found_and_changes_nothing(
    repo: Path, git_dir: Path
) -> None:
    a, b, c = blobs(git_dir, 3)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    with pytest.raises(RefConflictError) as info:
        refs.cas(REF, b, c)
    assert info.value.fields["expected"] == b and info.value.fields["found"] == a
    assert info.value.fields["ref"] == REF
    assert a in str(info.value) and b in str(info.value)
    with pytest.raises(RefConflictError) as info:
        refs.cas(REF, None, c)  # "create" of a ref that exists
    assert info.value.fields["expected"] is None and info.value.fields["found"] == a
    with pytest.raises(RefConflictError) as info:
        refs.cas("refs/vtrack/runs/other", a, c)  # update of a ref that does not exist
    assert info.value.fields["found"] is None
    assert git_refs(repo, "refs/vtrack/") == {REF: a}
    assert not list((git_dir / "refs/vtrack/runs").glob("*.lock"))


def test_cas_refuses_a_value_that_is_not_an_object_id(git_dir: Path) -> None:
    with pytest.raises(StoreError):
        RefStore(git_dir).cas(REF, None, "HEAD")
    assert not (git_dir / REF).exists()
    assert not (git_dir / (REF + ".lock")).exists()


def test_ref_that_git_packed_is_updated_repacked_and_deleted(repo: Path, git_dir: Path) -> None:
    a, b = blobs(git_dir, 2)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    git(repo, "pack-refs", "--all")
    assert not (git_dir / REF).exists() and REF in packed_names(git_dir)
    assert refs.read(REF) == a
    refs.cas(REF, a, b)  # a loose copy now shadows the packed one
    assert git(repo, "rev-parse", REF) == b
    assert git_refs(repo, "refs/vtrack/") == {REF: b}
    git(repo, "pack-refs", "--all")
    assert refs.read(REF) == b and not (git_dir / REF).exists()
    with pytest.raises(RefConflictError):
        refs.delete(REF, a)
    refs.delete(REF, b)
    assert git_refs(repo, "refs/vtrack/") == {}
    assert REF not in packed_names(git_dir)
    assert refs.read(REF) is None
    assert_fsck_clean(repo)


def test_delete_of_a_loose_ref_shadowing_a_packed_one_removes_both(
    repo: Path, git_dir: Path
) -> None:
    a, b = blobs(git_dir, 2)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    git(repo, "pack-refs", "--all")
    refs.cas(REF, a, b)
    refs.delete(REF, b)
    assert refs.read(REF) is None  # the old packed value does not come back
    assert subprocess.run(["git", "rev-parse", "-q", "--verify", REF], cwd=repo).returncode != 0


def test_delete_of_a_loose_ref_checks_the_expected_value(repo: Path, git_dir: Path) -> None:
    a, b = blobs(git_dir, 2)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    with pytest.raises(RefConflictError):
        refs.delete(REF, b)
    assert git(repo, "rev-parse", REF) == a
    refs.delete(REF, a)
    assert not (git_dir / REF).exists() and not (git_dir / (REF + ".lock")).exists()
    assert git_refs(repo, "refs/vtrack/") == {}


def test_cas_on_a_ref_locked_by_a_dead_owner_raises_stale_lock_error(
    git_dir: Path, dead_owner: Owner
) -> None:
    a, b = blobs(git_dir, 2)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    lock = git_dir / (REF + ".lock")
    lock.write_bytes(dead_owner.to_json())
    with pytest.raises(StaleLockError):
        refs.cas(REF, a, b)
    assert refs.read(REF) == a and lock.exists()
    assert refs.stale_locks() == [lock]


def _git_transaction(repo: Path, name: str, new: str, old: str) -> subprocess.Popen[str]:
    """A real ``git update-ref --stdin`` that has prepared (and so locked) an update."""
    proc = subprocess.Popen(
        ["git", "update-ref", "--stdin"], cwd=repo, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"start\nupdate {name} {new} {old}\nprepare\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "start: ok"
    assert proc.stdout.readline().strip() == "prepare: ok"
    return proc


@pytest.mark.parametrize("git_ends_with", ["commit", "abort"])
def test_cas_waits_for_gits_own_ref_lock_and_sees_what_git_did(
    repo: Path, git_dir: Path, git_ends_with: str
) -> None:
    a, b, c = blobs(git_dir, 3)
    refs = RefStore(git_dir)
    refs.cas(REF, None, a)
    proc = _git_transaction(repo, REF, b, a)
    lock = git_dir / (REF + ".lock")
    with pytest.raises(StoreError) as info:  # git's lock: neither stale nor taken
        os.close(acquire_lock(lock, timeout=0.2))
    assert not isinstance(info.value, StaleLockError)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            refs.cas(REF, a, c)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome.append(exc)

    t = threading.Thread(target=attempt)
    t.start()
    proc.communicate(f"{git_ends_with}\n", timeout=30)
    t.join(30)
    assert proc.returncode == 0 and len(outcome) == 1
    if git_ends_with == "commit":
        assert isinstance(outcome[0], RefConflictError)
        assert outcome[0].fields["found"] == b
        assert git(repo, "rev-parse", REF) == b
    else:
        assert outcome[0] is None
        assert git(repo, "rev-parse", REF) == c


_INCREMENTER = """
import json, sys
from pathlib import Path
from vtrack.errors import RefConflictError
from vtrack.store.gitobj import GitObjects
from vtrack.store.refs import RefStore

git_dir, name, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
refs, objects = RefStore(git_dir), GitObjects(git_dir)
took, conflicts = [], 0
while len(took) < n:
    old = refs.read(name)
    count = int(objects.read_blob(old)) if old else 0
    new = objects.write_blob(b"%d" % (count + 1))
    try:
        refs.cas(name, old, new)
    except RefConflictError:
        conflicts += 1
        continue
    took.append(count)
print(json.dumps({"took": took, "conflicts": conflicts}))
"""


@pytest.mark.processes
@pytest.mark.parametrize("with_pack_refs", [False, True])
def test_concurrent_cas_increments_from_real_processes_lose_no_update(
    repo: Path, git_dir: Path, with_pack_refs: bool
) -> None:
    workers, each = 4, 40
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _INCREMENTER, str(git_dir), REF, str(each)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(workers)
    ]
    packs = 0
    if with_pack_refs:  # git packs the ref (and prunes the loose copy) in between
        while any(p.poll() is None for p in procs):
            subprocess.run(["git", "pack-refs", "--all"], cwd=repo, capture_output=True)
            packs += 1
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    total = workers * each
    took = sorted(c for r in results for c in r["took"])
    assert took == list(range(total))  # every count was taken from exactly once
    tip = git(repo, "rev-parse", REF)
    assert git(repo, "cat-file", "blob", tip) == str(total)
    assert not list((git_dir / "refs/vtrack/runs").glob("*.lock"))
    assert not with_pack_refs or packs > 0
    assert_fsck_clean(repo)


# -- listing and stale locks -------------------------------------------------------------


def test_list_and_list_ids_agree_with_for_each_ref(repo: Path, git_dir: Path) -> None:
    a, b, c = blobs(git_dir, 3)
    refs = RefStore(git_dir)
    refs.cas("refs/vtrack/runs/r1", None, a)
    refs.cas("refs/vtrack/runs/r2", None, b)
    git(repo, "pack-refs", "--all")
    refs.cas("refs/vtrack/trash/r3", None, c)
    assert refs.list("refs/vtrack/") == git_refs(repo, "refs/vtrack/")
    assert refs.list_ids("refs/vtrack/runs/") == {"r1": a, "r2": b}


def test_stale_locks_lists_only_dead_vtrack_owners_under_refs_vtrack(
    git_dir: Path, dead_owner: Owner, live_owner: Owner
) -> None:
    runs = git_dir / "refs/vtrack/runs"
    runs.mkdir(parents=True)
    (runs / "dead.lock").write_bytes(dead_owner.to_json())
    (runs / "live.lock").write_bytes(live_owner.to_json())
    (runs / "git.lock").write_bytes(b"")
    (git_dir / "refs/heads/main.lock").write_bytes(dead_owner.to_json())
    assert RefStore(git_dir).stale_locks() == [runs / "dead.lock"]


@pytest.mark.parametrize("big", [False, True])
def test_one_packed_ref_reads_as_git_reads_it_whether_the_file_is_parsed_or_asked_of_git(
    repo: Path, git_dir: Path, big: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PACKED_PARSE_BYTES a single read asks git instead of parsing the file; the
    answers (present, absent, a name that prefixes another, after a rewrite) are the same."""
    from vtrack.store import refs as refs_module

    if big:
        monkeypatch.setattr(refs_module, "PACKED_PARSE_BYTES", 0)
    shas = blobs(git_dir, 4)
    names = ["refs/vtrack/experiments/1", "refs/vtrack/experiments/10", "refs/vtrack/runs/a"]
    for sha, name in zip(shas, names, strict=False):
        git(repo, "update-ref", name, sha)
    git(repo, "pack-refs", "--all")
    refs = RefStore(git_dir)
    for name in names:
        assert refs.read(name) == git(repo, "rev-parse", name)
    assert refs.read("refs/vtrack/experiments/2") is None
    assert refs.read("refs/vtrack/experiments") is None  # a prefix of refs, not a ref
    git(repo, "update-ref", names[0], shas[3])
    git(repo, "pack-refs", "--all")
    assert refs.read(names[0]) == shas[3]
    refs.cas(names[0], shas[3], shas[0])  # a compare-and-swap against a packed value
    assert git(repo, "rev-parse", names[0]) == shas[0]


def test_many_updates_go_in_chunks_and_a_conflict_holds_back_only_its_own_ref(
    repo: Path, git_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vtrack.store import refs as refs_module

    monkeypatch.setattr(refs_module, "APPLY_CHUNK", 3)
    shas = blobs(git_dir, 2)
    names = [f"refs/vtrack/runs/{i:032x}" for i in range(8)]
    for name in names:
        git(repo, "update-ref", name, shas[0])
    git(repo, "pack-refs", "--all")
    refs = RefStore(git_dir)
    updates: list[tuple[str, str | None, str | None]] = [(n, shas[0], None) for n in names[:6]]
    updates[4] = (names[4], shas[1], None)  # a stale expectation: this one must not happen
    updates += [(names[6], shas[0], shas[1]), (names[7], shas[0], shas[1])]
    assert refs.apply(updates) == [names[4]]
    assert git_refs(repo, "refs/vtrack/runs/") == {
        names[4]: shas[0], names[6]: shas[1], names[7]: shas[1],
    }  # fmt: skip
    assert_fsck_clean(repo)
