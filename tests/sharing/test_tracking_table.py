"""What a clone knows each remote holds: one table commit per remote, behind one ref."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import assert_fsck_clean, git
from tests.sharing.conftest import Team, refs, vts
from vtrack.store.refs import RefStore
from vtrack.store.tracking import TABLE_FILE, decode

TABLE = "refs/vtrack-remotes/origin/shared"


def _table(clone: Path) -> dict[str, str]:
    return decode(git(clone, "show", f"{TABLE}:{TABLE_FILE}").encode() + b"\n")


def _parents(clone: Path) -> set[str]:
    return set(git(clone, "rev-list", "--parents", "-n", "1", TABLE).split()[1:])


def _to_legacy(clone: Path) -> dict[str, str]:
    """Rewrite a clone's tracking state in the first layout (a ref per shared ref)."""
    table = _table(clone)
    lines = [
        f"create refs/vtrack-remotes/origin/{n[len('refs/vtrack/') :]} {s}"
        for n, s in table.items()
    ]
    lines.append(f"delete {TABLE}")
    subprocess.run(["git", "update-ref", "--stdin"], cwd=clone, check=True,
                   input="\n".join(lines) + "\n", text=True)  # fmt: skip
    return table


def test_push_and_pull_record_the_remote_in_one_table_ref(team: Team) -> None:
    ids = [team.run(team.a, f"r{i}", size=10) for i in range(3)]
    assert vts(team.a, "push").exit_code == 0
    remote = refs(team.remote)
    assert set(refs(team.a, "refs/vtrack-remotes/")) == {TABLE}  # not a ref per run
    assert _table(team.a) == remote
    assert _parents(team.a) == set(remote.values())  # what it names stays reachable

    one = vts(team.b, "pull", "origin", ids[0][:8], "--json")
    assert one.exit_code == 0, one.stderr
    assert one.json()["runs"] == [ids[0]]
    assert set(_table(team.b)) == {f"refs/vtrack/runs/{ids[0]}", "refs/vtrack/experiments/0"}
    assert vts(team.b, "pull").exit_code == 0
    assert _table(team.b) == remote and set(refs(team.b, "refs/vtrack-remotes/")) == {TABLE}
    assert vts(team.b, "push").stdout.startswith("everything up to date")
    assert_fsck_clean(team.a)
    assert_fsck_clean(team.b)


def test_a_clone_with_old_style_tracking_refs_reads_them_then_folds_them_into_the_table(
    team: Team,
) -> None:
    rid = team.run(team.a, "shared", size=10)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    old = _to_legacy(team.a)
    _to_legacy(team.b)
    assert TABLE not in refs(team.a, "refs/vtrack-remotes/")
    assert vts(team.a, "push").stdout.startswith("everything up to date")  # read as before

    # a pull compares with the old refs: a run changed on both sides is a conflict
    assert vts(team.a, "tag", rid, "owner=alice").exit_code == 0
    assert vts(team.b, "tag", rid, "owner=bob").exit_code == 0
    new = team.run(team.a, "new", size=10)
    pushed = vts(team.a, "push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert sorted(pushed.json()["runs"]) == sorted([rid, new])  # only what moved
    assert set(refs(team.a, "refs/vtrack-remotes/")) == {TABLE}  # folded, old refs gone
    assert _table(team.a) == refs(team.remote) and set(old) < set(_table(team.a))
    res = vts(team.b, "pull", "--json")
    assert res.exit_code == 4 and [c["id"] for c in res.json()["conflicts"]] == [rid]
    assert new in res.json()["runs"]
    assert set(refs(team.b, "refs/vtrack-remotes/")) == {
        TABLE, f"refs/vtrack-remotes/origin/conflicts/runs/{rid}",
    }  # fmt: skip


def test_a_run_a_push_found_changed_on_the_remote_is_never_overwritten_by_the_next_push(
    team: Team,
) -> None:
    """Regression: a push whose lease failed fetched the remote's version into the tracking
    state and reported a conflict; the next push then saw the remote "unchanged since the
    last sync" and overwrote the remote's version with this clone's."""
    rid = team.run(team.a, "shared", size=10)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert vts(team.a, "tag", rid, "owner=alice").exit_code == 0
    assert vts(team.a, "push").exit_code == 0
    theirs = refs(team.remote)[f"refs/vtrack/runs/{rid}"]
    assert vts(team.b, "tag", rid, "owner=bob").exit_code == 0
    first = vts(team.b, "push")
    assert (
        first.exit_code == 4 and f"refs/vtrack-remotes/origin/conflicts/runs/{rid}" in first.stderr
    )
    again = vts(team.b, "push")
    assert again.exit_code == 4 and "conflict" in again.stderr
    assert refs(team.remote)[f"refs/vtrack/runs/{rid}"] == theirs
    taken = vts(team.b, "pull", "--theirs")
    assert taken.exit_code == 0, taken.stderr
    assert refs(team.b)[f"refs/vtrack/runs/{rid}"] == theirs
    assert not any("conflicts" in n for n in refs(team.b, "refs/vtrack-remotes/"))


def test_the_remotes_commits_stay_reachable_through_git_gc(team: Team) -> None:
    rid = team.run(team.a, "gone-here", size=10)
    assert vts(team.a, "push").exit_code == 0
    sha = refs(team.a)[f"refs/vtrack/runs/{rid}"]
    git(team.a, "update-ref", "-d", f"refs/vtrack/runs/{rid}")  # only the table names it now
    git(team.a, "-c", "gc.reflogExpire=now", "gc", "-q", "--prune=now")
    assert git(team.a, "cat-file", "-t", sha) == "commit"
    assert_fsck_clean(team.a)


WRITER = """
import sys
from vtrack.store.refs import RefStore
refs = RefStore(__import__("pathlib").Path(sys.argv[1]))
sha, remote, tag = sys.argv[2], sys.argv[3], sys.argv[4]
for i in range(int(sys.argv[5])):
    refs.record_tracking(remote, {f"refs/vtrack/runs/{tag}{i:04d}": sha})
"""


def test_concurrent_writers_of_tables_lose_no_entry(team: Team) -> None:
    """Three processes at once: two record into one remote's table, one into another's."""
    git_dir = team.a / ".git"
    sha = git(team.a, "rev-parse", "HEAD")
    jobs = [("origin", "aa", 25), ("origin", "bb", 25), ("other", "cc", 25)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(git_dir), sha, remote, tag, str(n)],
                              stderr=subprocess.PIPE, text=True) for remote, tag, n in jobs]  # fmt: skip
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    store = RefStore(git_dir)
    origin, other = store.list_tracking("origin"), store.list_tracking("other")
    assert sorted(origin) == sorted(
        f"refs/vtrack/runs/{t}{i:04d}" for t in ("aa", "bb") for i in range(25)
    )
    assert sorted(other) == [f"refs/vtrack/runs/cc{i:04d}" for i in range(25)]
    assert set(origin.values()) == {sha}
    assert_fsck_clean(team.a)


def test_a_sha_this_clone_lacks_is_tabled_but_never_a_parent(team: Team) -> None:
    """git gc and fsck must never meet a missing parent: an absent commit stays out."""
    store = RefStore(team.a / ".git")
    head = git(team.a, "rev-parse", "HEAD")
    ghost = "1234567890" * 4
    many = {f"refs/vtrack/runs/{i:032x}": head for i in range(20)}  # past the in-process check
    store.record_tracking("origin", {**many, "refs/vtrack/runs/ghost": ghost})
    assert store.list_tracking("origin")["refs/vtrack/runs/ghost"] == ghost
    assert _parents(team.a) == {head}
    store.record_tracking("origin", {"refs/vtrack/runs/one": ghost}, replace=True)
    assert _parents(team.a) == set()
    git(team.a, "gc", "-q", "--prune=now")
    assert_fsck_clean(team.a)
