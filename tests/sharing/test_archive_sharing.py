"""Archive batches through push and pull: a union of clones, conflicts still reported.

Two clones and a bare remote (real git); compaction next to a real ``git push`` running
in another process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import assert_fsck_clean, git, reap
from tests.sharing.conftest import Team, refs, vts

ARCHIVE = "refs/vtrack/archive/"
RUNS = "refs/vtrack/runs/"


def _ids(clone: Path) -> set[str]:
    res = vts(clone, "ls", "--json")
    assert res.exit_code == 0, res.stderr
    return {r["run_id"] for r in res.json()}


def _archive(clone: Path, *args: str) -> dict:
    res = vts(clone, "archive", "--json", *args)
    assert res.exit_code == 0, res.stderr
    return res.json()


def test_a_teammate_who_pulls_sees_every_archived_run(team: Team, tmp_path: Path) -> None:
    ids = {team.run(team.a, f"r{i}", size=10) for i in range(4)}
    report = _archive(team.a)
    assert set(report["archived"]) == ids
    pushed = vts(team.a, "push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert set(pushed.json()["runs"]) == ids and len(pushed.json()["archives"]) == 1
    assert set(refs(team.remote, ARCHIVE)) == {f"{ARCHIVE}{report['batches'][0]}"}
    assert not refs(team.remote, RUNS)
    # a fresh clone: every run, and no loose ref made for them
    pulled = vts(team.b, "pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert set(pulled.json()["runs"]) == ids
    assert _ids(team.b) == ids and not refs(team.b, RUNS)
    one = sorted(ids)[0]
    shown = vts(team.b, "show", one[:8])
    assert shown.exit_code == 0 and one in shown.stdout
    assert vts(team.b, "pull").stdout.startswith("pulled from origin: 0 run(s)")
    assert_fsck_clean(team.b)


def test_archives_made_on_two_clones_merge_as_a_union(team: Team) -> None:
    a_ids = {team.run(team.a, f"a{i}", size=10) for i in range(2)}
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    b_ids = {team.run(team.b, f"b{i}", size=10) for i in range(2)}
    _archive(team.a)  # a archives its two runs
    _archive(team.b)  # b archives all four (two of them at the same commits as a's batch)
    assert vts(team.a, "push").exit_code == 0
    res = vts(team.b, "pull", "--json")
    assert res.exit_code == 0, res.stderr
    assert not res.json()["conflicts"]
    assert vts(team.b, "push").exit_code == 0
    assert vts(team.a, "pull").exit_code == 0
    everything = a_ids | b_ids
    assert _ids(team.a) == _ids(team.b) == everything
    assert len(refs(team.remote, ARCHIVE)) == 2 and not refs(team.remote, RUNS)
    assert not refs(team.a, RUNS) and not refs(team.b, RUNS)
    assert_fsck_clean(team.remote)


def test_an_archived_run_changed_on_both_clones_is_a_conflict(team: Team) -> None:
    rid = team.run(team.a, "shared", size=10)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert vts(team.a, "tag", rid, "owner=alice").exit_code == 0
    assert vts(team.b, "tag", rid, "owner=bob").exit_code == 0
    _archive(team.a)
    _archive(team.b)
    assert vts(team.a, "push").exit_code == 0
    mine = vts(team.b, "show", rid, "--json").json()["commit"]
    res = vts(team.b, "pull")
    assert res.exit_code == 4 and f"conflict: run {rid}" in res.stderr
    after = vts(team.b, "show", rid, "--json").json()
    assert after["commit"] == mine and after["tags"]["owner"] == "bob"
    taken = vts(team.b, "pull", "--theirs")
    assert taken.exit_code == 0, taken.stderr
    assert vts(team.b, "show", rid, "--json").json()["tags"]["owner"] == "alice"


def test_a_run_deleted_or_updated_after_archiving_travels(team: Team) -> None:
    gone, kept = team.run(team.a, "gone", size=10), team.run(team.a, "kept", size=10)
    _archive(team.a)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert vts(team.a, "rm", gone).exit_code == 0
    assert vts(team.a, "tag", kept, "stage=prod").exit_code == 0
    assert vts(team.a, "push").exit_code == 0
    res = vts(team.b, "pull", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["trashed"] == [gone] and res.json()["runs"] == [kept]
    assert _ids(team.b) == {kept}
    assert vts(team.b, "show", kept, "--json").json()["tags"]["stage"] == "prod"


def test_pulling_one_archived_run_by_id(team: Team) -> None:
    rid = team.run(team.a, "one", size=10)
    _archive(team.a)
    assert vts(team.a, "push").exit_code == 0
    res = vts(team.b, "pull", "origin", rid[:8], "--json")
    assert res.exit_code == 0, res.stderr
    assert rid in res.json()["runs"] and _ids(team.b) == {rid}


def test_compaction_while_a_real_push_runs(team: Team) -> None:
    ids = {team.run(team.a, f"r{i}", size=10) for i in range(6)}
    # a big branch push keeps git busy while the runs are compacted
    big = team.a / "big.bin"
    with big.open("wb") as f:
        for i in range(40):
            f.write(bytes([i]) * (1 << 20))
    git(team.a, "add", "big.bin")
    git(team.a, "commit", "-q", "-m", "big")
    proc = subprocess.Popen(["git", "push", "-q", "origin", "main", "refs/vtrack/*:refs/vtrack/*"],
                            cwd=team.a, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        report = _archive(team.a)
        assert set(report["archived"]) == ids
    finally:
        code = reap(proc, timeout=120)
    assert code == 0
    assert_fsck_clean(team.a)
    git(team.a, "gc", "--prune=now", "--quiet")
    assert_fsck_clean(team.a)
    assert _ids(team.a) == ids
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert _ids(team.b) == ids
    assert_fsck_clean(team.remote)


def test_a_purged_archived_run_disappears_on_every_clone_that_pulls(team: Team) -> None:
    gone, kept = team.run(team.a, "gone", size=10), team.run(team.a, "kept", size=10)
    _archive(team.a)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    old = set(refs(team.remote, ARCHIVE))
    assert vts(team.a, "rm", gone).exit_code == 0
    assert vts(team.a, "gc", "--purge-trash").exit_code == 0
    assert vts(team.a, "push").exit_code == 0
    on_remote = set(refs(team.remote, ARCHIVE))
    assert len(on_remote) == 1 and not on_remote & old  # the old batch replaced there too
    assert vts(team.b, "pull").exit_code == 0
    assert _ids(team.b) == {kept}
    assert vts(team.b, "show", gone).exit_code != 0


def test_the_pre_push_hook_pushes_archived_runs_made_on_the_pushed_commits(team: Team) -> None:
    from tests.cli.conftest import subprocess_env

    assert vts(team.a, "hooks", "install").exit_code == 0
    (team.a / "more.txt").write_text("more")
    git(team.a, "add", "more.txt")
    git(team.a, "commit", "-q", "-m", "more")
    rid = team.run(team.a, "on-new-commit", size=10)
    _archive(team.a)
    pushed = subprocess.run(["git", "push", "origin", "main"], cwd=team.a, capture_output=True,
                            text=True, env=subprocess_env(team.a.parent))  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert refs(team.remote, ARCHIVE) and not refs(team.remote, RUNS)
    assert vts(team.b, "pull").exit_code == 0
    assert _ids(team.b) == {rid}
