"""Concurrent pushes, hooks beside the user's own, the secret scan and scrub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import BIN, subprocess_env
from tests.conftest import git
from tests.sharing.conftest import Team, refs, vts


def _push_proc(clone: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "vtrack"), "push"], cwd=clone, env=subprocess_env(clone.parent),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_concurrent_pushes_from_two_clones_and_two_processes_lose_nothing(team: Team) -> None:
    a_ids = [team.run(team.a, f"a{i}", size=10) for i in range(3)]
    b_ids = [team.run(team.b, f"b{i}", size=10) for i in range(3)]
    procs = [_push_proc(team.a), _push_proc(team.b), _push_proc(team.b)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs[:2]] == [0, 0], outs
    assert procs[2].returncode in (0, 4), outs  # a twin push of the same clone: never a loss
    remote = refs(team.remote)
    assert {f"refs/vtrack/runs/{i}" for i in a_ids + b_ids} <= set(remote)
    for clone in (team.a, team.b):
        assert vts(clone, "pull").exit_code == 0
        assert {r["run_id"] for r in vts(clone, "ls", "--json").json()} == set(a_ids + b_ids)


def test_hooks_run_beside_an_existing_user_hook(team: Team) -> None:
    hooks = team.a / ".git" / "hooks"
    user = hooks / "pre-push"
    marker = team.a.parent / "user-hook-ran"
    user.write_text(f'#!/bin/sh\ncat > {marker}\necho user-hook "$@" >> {marker}\n')
    user.chmod(0o755)
    res = vts(team.a, "hooks", "install")
    assert res.exit_code == 0 and "pre-push: chained" in res.stdout
    rid = team.run(team.a, "hooked", size=10)
    (team.a / "more.txt").write_text("more")
    git(team.a, "add", "more.txt")
    git(team.a, "commit", "-q", "-m", "more")
    rid2 = team.run(team.a, "on-new-commit", size=10)
    env = subprocess_env(team.a.parent)
    pushed = subprocess.run(
        ["git", "push", "origin", "main"], cwd=team.a, env=env, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "refs/heads/main" in marker.read_text() and "user-hook origin" in marker.read_text()
    remote = refs(team.remote)
    assert f"refs/vtrack/runs/{rid2}" in remote  # made on a pushed commit
    assert f"refs/vtrack/runs/{rid}" not in remote  # its commit was already there
    assert vts(team.a, "hooks", "uninstall").exit_code == 0
    assert user.read_text().startswith("#!/bin/sh\ncat >")  # the user's hook is back


def test_core_hooks_path_is_honoured_and_a_failing_hook_never_fails_git(team: Team) -> None:
    git(team.a, "config", "core.hooksPath", ".githooks")
    assert vts(team.a, "hooks", "install").exit_code == 0
    assert (team.a / ".githooks" / "pre-push").is_file()
    team.run(team.a, "big")  # a large object, and an object store that cannot work
    git(team.a, "config", "remote.origin.vtrackObjects", "nosuchscheme://x")
    (team.a / "c.txt").write_text("c")
    git(team.a, "add", "c.txt")
    git(team.a, "commit", "-q", "-m", "c")
    team.run(team.a, "big2")
    env = subprocess_env(team.a.parent)
    pushed = subprocess.run(
        ["git", "push", "origin", "main"], cwd=team.a, env=env, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "vtrack: warning: the pre-push hook failed" in pushed.stderr
    assert git(team.remote, "rev-parse", "main") == git(team.a, "rev-parse", "main")


def test_hook_shims_in_the_project_match_what_vtrack_installs() -> None:
    from tests.conftest import ROOT
    from vtrack.hooks import HOOKS, shim

    for name in HOOKS:
        path = ROOT / "hooks" / name
        assert path.read_text() == shim(name) and os.access(path, os.X_OK)


def test_post_commit_links_a_dirty_run_to_the_commit_of_its_snapshot(team: Team) -> None:
    assert vts(team.a, "hooks", "install").exit_code == 0
    with open(team.a / "train.py", "a") as f:
        f.write("# tuned\n")
    rid = team.run(team.a, "dirty", size=10)
    git(team.a, "add", "train.py")
    env = subprocess_env(team.a.parent)
    subprocess.run(["git", "commit", "-q", "-m", "tuned"], cwd=team.a, env=env, check=True)
    head = git(team.a, "rev-parse", "HEAD")
    shown = vts(team.a, "show", rid, "--json").json()
    assert shown["tags"]["vtrack.linked_commit"] == head


def test_the_secret_scan_refuses_a_dotenv_and_a_private_key_unless_allowed(team: Team) -> None:
    (team.a / ".env").write_text("API_TOKEN=abc\n")
    key = team.out / "deploy.txt"
    key.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    code = f"import vtrack\nwith vtrack.start_run(run_name='leaky'):\n    vtrack.log_artifact({str(key)!r})\n    print(vtrack.active_run().info.run_id)\n"
    (team.a / "leak.py").write_text(code)
    res = subprocess.run(["python", "leak.py"], cwd=team.a, capture_output=True, text=True,
                         env=subprocess_env(team.a.parent, {"VTRACK_SNAPSHOT_INCLUDE_SECRETS": "1"}))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rid = res.stdout.strip()
    refused = vts(team.a, "push")
    assert refused.exit_code != 0
    assert ".env" in refused.stderr and ".vtrack/artifacts/deploy.txt" in refused.stderr
    assert "vtrack scrub" in refused.stderr and "--allow-secrets" in refused.stderr
    assert not refs(team.remote)
    scrubbed = vts(team.a, "scrub", rid, ".env")
    assert scrubbed.exit_code == 0 and "scrub" in scrubbed.stdout
    assert ".env" not in git(team.a, "ls-tree", "-r", "--name-only", f"refs/vtrack/runs/{rid}")
    still = vts(team.a, "push")
    assert still.exit_code != 0 and "deploy.txt" in still.stderr and ".env (" not in still.stderr
    allowed = vts(team.a, "push", "--allow-secrets")
    assert allowed.exit_code == 0, allowed.stderr
    assert f"refs/vtrack/runs/{rid}" in refs(team.remote)


def test_secret_looking_environment_variables_never_reach_a_run_record_or_the_remote(
    team: Team,
) -> None:
    """Point 5's last promise, end to end: a run made by a real process whose environment
    and command line hold credentials is pushed; no object on the remote holds them."""
    values = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRET1",
        "GITHUB_TOKEN": "ghp_0123456789abcdefSECRET2",
        "HF_TOKEN": "hf_abcdefghijSECRET3",
        "DB_PASSWORD": "hunter2-SECRET4",
    }
    code = "import vtrack\nwith vtrack.start_run():\n    vtrack.log_param('lr', 0.1)\n"
    (team.a / "envrun.py").write_text(code)
    git(team.a, "add", "envrun.py")
    git(team.a, "commit", "-q", "-m", "envrun")
    argv = ["envrun.py", f"--api-key={values['GITHUB_TOKEN']}",
            f"DB_PASSWORD={values['DB_PASSWORD']}"]  # fmt: skip
    res = subprocess.run([sys.executable, *argv], cwd=team.a, capture_output=True, text=True,
                         env=subprocess_env(team.a.parent, values), timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    pushed = vts(team.a, "push")
    assert pushed.exit_code == 0, pushed.stderr
    assert any(n.startswith("refs/vtrack/runs/") for n in refs(team.remote))
    everything = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=team.remote,
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert b"--api-key=***" in everything  # the command line was recorded, masked
    for name, value in values.items():
        assert value.encode() not in everything, name


def test_a_hook_with_nothing_to_do_starts_no_vtrack_process(team: Team) -> None:
    """Regression (issue 11, point 4): every commit and push paid a Python start (0.7 s).

    A spy ``vtrack`` first on PATH records each start and then runs the real one.
    """
    assert vts(team.a, "hooks", "install").exit_code == 0
    spy_dir, starts = team.out / "spy", team.out / "starts.txt"
    spy_dir.mkdir()
    spy = spy_dir / "vtrack"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {starts}\nexec {BIN / "vtrack"} "$@"\n')
    spy.chmod(0o755)
    env = subprocess_env(team.a.parent)
    env["PATH"] = f"{spy_dir}{os.pathsep}{env['PATH']}"

    def commit(name: str) -> None:
        (team.a / name).write_text(name)
        subprocess.run(["git", "add", name], cwd=team.a, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", name], cwd=team.a, env=env, check=True)

    def push() -> None:
        res = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=team.a, env=env,
                             capture_output=True, text=True)  # fmt: skip
        assert res.returncode == 0, res.stderr

    commit("no-runs-yet.txt")  # no run anywhere: post-commit has nothing to do
    push()  # no run made on a pushed commit: pre-push has nothing to do
    assert not starts.exists(), starts.read_text()
    old = team.run(team.a, "on-pushed-commit", size=10)
    commit("after-run.txt")  # a run on HEAD^: post-commit may have work, vtrack decides
    assert "hooks run post-commit" in starts.read_text()
    starts.unlink()
    commit("again.txt")  # the new HEAD^ has no run
    assert not starts.exists(), starts.read_text()
    push()  # the run's commit was pushed before: nothing to push
    assert not starts.exists(), starts.read_text()
    assert f"refs/vtrack/runs/{old}" not in refs(team.remote)
    commit("more.txt")
    rid = team.run(team.a, "on-new-commit", size=10)
    push()  # the run's commit is pushed now: vtrack pushes the run
    assert "hooks run pre-push" in starts.read_text()
    assert f"refs/vtrack/runs/{rid}" in refs(team.remote)
    git(team.a, "config", "vtrack.pushRuns", "false")
    team.run(team.a, "not-pushed", size=10)
    starts.unlink()
    commit("last.txt")
    starts.unlink()  # post-commit ran (a run on HEAD^); the push below must not
    push()
    assert not starts.exists(), starts.read_text()
