"""Two clones and a bare remote (and the same over a real git daemon): push, pull, clone."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import assert_fsck_clean, git
from tests.sharing.conftest import BIG, Team, make_team, refs, vts


def _download(clone: Path, run_id: str, dst: Path):  # type: ignore[no-untyped-def]
    code = (f"import vtrack; print(vtrack.download_artifacts(run_id={run_id!r}, "
            f"artifact_path='model', dst_path={str(dst)!r}))")  # fmt: skip
    return _py(clone, code)


def _py(clone: Path, code: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.cli.conftest import Result, subprocess_env

    res = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True,
                         env=subprocess_env(clone.parent), timeout=120)  # fmt: skip
    return Result(res.returncode, res.stdout, res.stderr)


def test_runs_and_large_objects_travel_from_one_clone_to_another(
    team: Team, tmp_path: Path
) -> None:
    rid = team.run(team.a, "big")
    small = team.run(team.a, "small", size=1000)
    pushed = vts(team.a, "push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    report = pushed.json()
    assert sorted(report["runs"]) == sorted([rid, small])
    assert report["objects"] == 1 and report["bytes"] == BIG and report["experiments"] == ["0"]
    assert set(refs(team.remote)) >= {f"refs/vtrack/runs/{rid}", f"refs/vtrack/runs/{small}"}
    assert not refs(team.remote, "refs/vtrack/live/")
    assert vts(team.a, "push").stdout.startswith("everything up to date")

    # a teammate: records only on pull, the large object on first read
    pulled = vts(team.b, "pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert sorted(pulled.json()["runs"]) == sorted([rid, small])
    listed = vts(team.b, "ls", "--json").json()
    assert {r["run_id"] for r in listed} == {rid, small}
    objects = team.b / ".git" / "vtrack" / "objects"
    assert not objects.exists() or not any(p.name != "tmp" for p in objects.iterdir())
    got = _download(team.b, rid, tmp_path / "dl")
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "dl" / "model" / "big.bin").read_bytes() == (
        team.out / "big.bin"
    ).read_bytes()
    assert any(p.name != "tmp" for p in objects.iterdir())  # cached here now
    assert_fsck_clean(team.b)


def test_a_branch_fetch_or_push_carries_no_run_refs(team: Team) -> None:
    team.run(team.a, "r", size=10)
    assert vts(team.a, "push").exit_code == 0
    git(team.b, "fetch", "-q", "origin")
    git(team.b, "pull", "-q", "origin", "main")
    assert not refs(team.b) and not refs(team.b, "refs/vtrack-remotes/")
    (team.b / "x.txt").write_text("x")
    git(team.b, "add", "x.txt")
    git(team.b, "commit", "-q", "-m", "x")
    git(team.b, "push", "-q", "origin", "main")
    clone = team.remote.parent / "plain"
    git(team.remote.parent, "clone", "-q", str(team.remote), str(clone))
    assert not refs(clone)
    # ... and vtrack says where the runs are
    res = vts(clone, "ls")
    assert "vtrack pull origin" in res.stderr


def test_vtrack_clone_brings_every_run(team: Team) -> None:
    rid = team.run(team.a, "r", size=10)
    assert vts(team.a, "push").exit_code == 0
    res = vts(team.remote.parent, "clone", str(team.remote), "c")
    assert res.exit_code == 0, res.stderr
    assert f"refs/vtrack/runs/{rid}" in refs(team.remote.parent / "c")


def test_deleting_a_run_and_pushing_moves_it_to_the_remotes_trash(team: Team) -> None:
    rid = team.run(team.a, "doomed", size=10)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert vts(team.a, "rm", rid).exit_code == 0
    report = vts(team.a, "push", "--json").json()
    assert report["trashed"] == [rid]
    remote = refs(team.remote)
    assert f"refs/vtrack/trash/{rid}" in remote and f"refs/vtrack/runs/{rid}" not in remote
    assert vts(team.b, "pull", "--json").json()["trashed"] == [rid]
    assert f"refs/vtrack/trash/{rid}" in refs(team.b)
    assert vts(team.b, "restore", rid).exit_code == 0  # never a silent loss


def test_a_pull_never_overwrites_a_local_run_that_differs(team: Team) -> None:
    rid = team.run(team.a, "shared", size=10)
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    assert vts(team.a, "tag", rid, "owner=alice").exit_code == 0
    assert vts(team.b, "tag", rid, "owner=bob").exit_code == 0
    assert vts(team.a, "push").exit_code == 0
    mine = refs(team.b)[f"refs/vtrack/runs/{rid}"]
    res = vts(team.b, "pull")
    assert res.exit_code == 4 and f"conflict: run {rid}" in res.stderr
    assert refs(team.b)[f"refs/vtrack/runs/{rid}"] == mine  # kept
    theirs = refs(team.b, "refs/vtrack-remotes/")[
        f"refs/vtrack-remotes/origin/conflicts/runs/{rid}"
    ]
    assert f"refs/vtrack-remotes/origin/conflicts/runs/{rid}" in res.stderr
    assert "alice" in git(team.b, "show", f"{theirs}:.vtrack/run.yaml")  # both reachable
    pushed = vts(team.b, "push")
    assert pushed.exit_code == 4 and "conflict" in pushed.stderr
    assert refs(team.remote)[f"refs/vtrack/runs/{rid}"] == theirs  # never overwritten
    taken = vts(team.b, "pull", "--theirs")
    assert taken.exit_code == 0 and mine in taken.stdout
    assert refs(team.b)[f"refs/vtrack/runs/{rid}"] == theirs


def test_experiments_made_on_two_clones_under_one_name_merge(team: Team) -> None:
    env = {"VTRACK_EXPERIMENT_NAME": "churn"}
    one = team.run(team.a, "one", size=10, env=env)
    two = team.run(team.b, "two", size=10, env=env)
    assert vts(team.a, "push").exit_code == 0
    res = vts(team.b, "push", "--json")
    assert res.exit_code == 0, res.stderr
    assert vts(team.a, "pull").exit_code == 0
    exps = [e for e in vts(team.a, "experiments", "ls", "--json").json() if e["name"] == "churn"]
    assert len(exps) == 1
    runs = vts(team.a, "ls", "-e", "churn", "--json").json()
    assert {r["run_id"] for r in runs} == {one, two}


def test_an_experiment_merge_redone_when_another_process_moved_the_local_ref(team: Team) -> None:
    """Two pushes from one clone at once both merge the remote's experiment: the one that
    publishes second found its local ref moved and failed with RefConflictError (exit 4).
    The merge is redone on what the ref holds now, which keeps both changes."""
    from vtrack.client import TrackingClient
    from vtrack.sharing.gitsync import RefUpdate
    from vtrack.sharing.push import PushReport, _push_refs
    from vtrack.sharing.remotes import resolve

    env = {"VTRACK_EXPERIMENT_NAME": "churn"}
    team.run(team.a, "one", size=10, env=env)
    team.run(team.b, "two", size=10, env=env)
    assert vts(team.a, "push").exit_code == 0
    c = TrackingClient(str(team.b))
    store = c.repo.store
    exp = c.get_experiment_by_name("churn")
    assert exp is not None
    name = store.refs.experiment_name(exp.experiment_id)
    stale = store.refs.read(name)  # what this push read before the twin moved the ref
    c.set_experiment_tag(exp.experiment_id, "moved", "by another process")  # the twin's move
    moved = store.refs.read(name)
    assert stale is not None and moved not in (stale, None)
    report = PushReport("origin")
    _push_refs(c.repo, resolve(store, "origin"), [RefUpdate(name, stale, None)], report)
    assert not report.conflicts and not report.rejected
    merged = store.refs.read(name)
    theirs = refs(team.remote)[name]
    assert merged == theirs  # the merge was published here and on the remote
    parents = store.objects.read_commit(merged)["parents"]
    assert parents[0] == moved  # redone on what the ref held, not on the stale value
    assert c.get_experiment(exp.experiment_id).tags["moved"] == "by another process"


def test_push_and_pull_over_a_real_git_daemon(tmp_path: Path, git_daemon: tuple[Path, str]) -> None:
    root, url = git_daemon
    base = tmp_path / "team"
    base.mkdir()
    served = root / "remote.git"
    import subprocess

    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(served)], check=True)
    team = make_team(base, remote_url=f"{url}/remote.git")
    rid = team.run(team.a, "big")
    refused = vts(team.a, "push")
    assert refused.exit_code != 0 and "vtrack remote set-objects origin" in refused.stderr
    assert not refs(served)  # nothing half-published
    folder = tmp_path / "objects-folder"
    assert vts(team.a, "remote", "set-objects", "origin", str(folder)).exit_code == 0
    assert vts(team.b, "remote", "set-objects", "origin", str(folder)).exit_code == 0
    shown = vts(team.a, "remote", "show", "--json").json()
    assert shown["objects"] == str(folder)
    assert vts(team.a, "push").exit_code == 0
    assert f"refs/vtrack/runs/{rid}" in refs(served)
    assert vts(team.b, "pull").exit_code == 0
    got = _download(team.b, rid, tmp_path / "dl")
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "dl" / "model" / "big.bin").stat().st_size == BIG


def test_a_batch_push_keeps_every_lease_and_forces_only_where_it_holds(team: Team) -> None:
    """The batch is sent by wildcard from a staging directory; a ``+`` on those refspecs
    made git ignore the leases and overwrite a run that had moved on the remote."""
    from vtrack.client import TrackingClient
    from vtrack.sharing.gitsync import RefUpdate, push
    from vtrack.sharing.remotes import resolve

    first, second = (team.run(team.a, n, size=10) for n in ("first", "second"))
    assert vts(team.a, "push").exit_code == 0
    on_remote = refs(team.remote)
    store = TrackingClient(str(team.a)).repo.store
    other = git(team.a, "commit-tree", "-m", "not a fast-forward", f"{on_remote[f'refs/vtrack/runs/{first}']}^{{tree}}")  # fmt: skip
    moved, held = f"refs/vtrack/runs/{first}", f"refs/vtrack/runs/{second}"
    stale = "1" * 40  # not what the remote holds
    exp = next(n for n in on_remote if n.startswith("refs/vtrack/experiments/"))
    results = push(store, resolve(store, "origin"), [
        RefUpdate(moved, other, stale), RefUpdate(held, other, on_remote[held]),
        RefUpdate(exp, other, None),  # "new" to us, but the remote has one: no lease needed
    ])  # fmt: skip
    assert results[moved].startswith("rejected") and results[held] == "ok"
    assert results[exp].startswith("rejected")
    after = refs(team.remote)
    assert after[moved] == on_remote[moved] and after[exp] == on_remote[exp]  # never overwritten
    assert after[held] == other  # a non-fast-forward update whose lease held
    assert not git(team.a, "for-each-ref", "refs/vtrack-push/")  # nothing staged is left here


def test_a_branchs_plain_git_fetch_push_and_clone_neither_carry_nor_advertise_run_refs(
    team: Team, tmp_path: Path
) -> None:
    """Point 7: only vtrack's own commands (or the opt-in hook) move refs/vtrack/*. A fetch
    or clone (protocol v2) asks for the branch and tag prefixes alone, so run refs are not
    even advertised; a push is not carried, but receive-pack advertises every ref to any
    push (git has no prefix filter there: what the archive refs of DESIGN.md §11 are for)."""
    import os
    import subprocess

    from tests.cli.conftest import subprocess_env

    shared = team.run(team.a, "shared", size=10)
    assert vts(team.a, "push").exit_code == 0
    unshared = team.run(team.a, "unshared", size=10)
    (team.a / "more.py").write_text("print(1)\n")
    git(team.a, "add", "more.py")
    git(team.a, "commit", "-q", "-m", "more")
    before = refs(team.remote)
    env = {**subprocess_env(tmp_path), "GIT_TRACE_PACKET": "1"}
    env = {k: v for k, v in env.items() if k != "GIT_DIR"}

    def traced(cwd: Path, *args: str) -> str:
        res = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stderr

    pushed = traced(team.a, "push", "origin", "main")
    assert refs(team.remote) == before  # the branch went, the unshared run did not
    assert f"refs/vtrack/runs/{unshared}" not in refs(team.remote)
    sent = [ln for ln in pushed.splitlines() if "push>" in ln and "refs/vtrack/" in ln]
    assert not sent and f"refs/vtrack/runs/{shared}" in pushed  # advertised, never sent
    fetched = traced(team.b, "fetch", "origin")
    assert not refs(team.b) and "refs/vtrack/" not in fetched
    cloned = traced(tmp_path, "clone", "-q", str(team.remote), "fresh")
    assert not refs(tmp_path / "fresh") and "refs/vtrack/" not in cloned
    assert os.listdir(tmp_path / "fresh")
