"""Names that stay usable, and an environment record pip can reinstall (issue 12).

Regressions: running a script twice made ``vtrack show mlp`` exit 2 (ambiguous); ``@``
picked the newest *child* of a sweep; packages were recorded by import name
(``yaml``), which pip cannot install; with a separate store the code commit was None.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import new_repo, subprocess_env, train, vt
from tests.cli.test_cli_rerun_trees import sweep_repo
from tests.conftest import git


def test_a_name_shared_by_two_and_three_runs_resolves_to_the_newest(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    train(path, "--lr", "0.1", "--name", "mlp")
    train(path, "--lr", "0.2", "--name", "mlp")
    ids = [r["run_id"] for r in vt(path, "ls", "--json").json()]  # newest first
    shown = vt(path, "show", "mlp", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["run_id"] == ids[0]
    assert (
        "newest of 2 runs named 'mlp'" in shown.stderr and "mlp~1 is the one before" in shown.stderr
    )
    assert vt(path, "show", "mlp~1", "--json").json()["run_id"] == ids[1]
    train(path, "--lr", "0.3", "--name", "mlp")
    ids = [r["run_id"] for r in vt(path, "ls", "--json").json()]
    assert vt(path, "show", "mlp~2", "--json").json()["run_id"] == ids[2]
    past = vt(path, "show", "mlp~3")
    assert past.exit_code == 3 and "goes past the oldest run named 'mlp'" in past.stderr
    # destructive commands still refuse, listing the candidates
    for args in (("rm", "mlp"), ("tag", "mlp", "k=v"), ("checkout", "mlp")):
        res = vt(path, *args)
        assert res.exit_code == 2, (args, res.stderr)
        assert "ambiguous" in res.stderr and all(i[:12] in res.stderr for i in ids), args
    assert vt(path, "rm", "mlp~2").exit_code == 0  # an explicit older one is fine


def test_a_rerun_is_named_after_its_original_and_keeps_the_name_usable(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    train(path, "--name", "mlp")
    first = vt(path, "ls", "--json").json()[0]["run_id"]
    res = vt(path, "rerun", "mlp", "--yes")
    assert res.exit_code == 0, res.stdout + res.stderr
    runs = {r["run_name"]: r for r in vt(path, "ls", "--json").json()}
    assert set(runs) == {"mlp", "mlp (rerun 1)"}
    assert runs["mlp (rerun 1)"]["tags"]["vtrack.rerun_of"] == first
    assert vt(path, "show", "mlp", "--json").json()["run_id"] == first
    found = vt(path, "ls", "-f", "run_name LIKE 'mlp%'", "--json").json()
    assert len(found) == 2


def test_at_is_the_newest_top_level_run_and_children_are_reachable(tmp_path: Path) -> None:
    path, ids = sweep_repo(tmp_path)
    assert vt(path, "show", "@", "--json").json()["run_id"] == ids["sweep"]
    assert vt(path, "show", "@/2", "--json").json()["run_id"] == ids["lr-0.2"]
    assert vt(path, "show", "sweep/3", "--json").json()["run_id"] == ids["lr-0.3"]
    res = vt(path, "show", "@/4")
    assert res.exit_code == 3 and "has 3 child runs (@/1 to @/3)" in res.stderr
    # and so audit and diff against @ compare the sweep, not its newest child
    diff = vt(path, "diff", ids["sweep"], "@", "--json")
    assert diff.exit_code == 0, diff.stderr


ENV_SCRIPT = textwrap.dedent(
    """\
    import vtrack

    with vtrack.start_run(run_name="env"):
        import yaml  # imported after start: still recorded

        vtrack.log_param("yaml", yaml.__version__)
    """
)


def test_the_environment_lists_distributions_pip_can_install(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    (path / "env.py").write_text(ENV_SCRIPT)
    git(path, "add", "env.py")
    git(path, "commit", "-q", "-m", "env")
    res = subprocess.run([sys.executable, "env.py"], cwd=path, env=subprocess_env(tmp_path),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    env = vt(path, "show", "env", "--json").json()["environment"]
    packages = env["packages"]
    assert "yaml" not in packages and packages["PyYAML"] == md.version("PyYAML")
    for name, version in packages.items():
        assert md.version(name) == version, name  # every key is an installed distribution
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["platform"]
    target = tmp_path / "co"
    co = vt(path, "checkout", "env", "--into", str(target), "--requirements")
    assert co.exit_code == 0, co.stderr
    req = target / ".vtrack" / "requirements.txt"
    assert f"PyYAML=={md.version('PyYAML')}" in req.read_text().splitlines()
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-r", str(req)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # under .vtrack/, which snapshots leave out: no part of the code
    assert git(target, "status", "--porcelain") == "?? .vtrack/requirements.txt"
    git(path, "worktree", "remove", "--force", str(target))


def test_a_separate_store_still_records_the_code_repository(tmp_path: Path) -> None:
    path = new_repo(tmp_path)
    store = tmp_path / "store.git"
    train(path, "--name", "sep", env={"VTRACK_TRACKING_URI": str(store)})
    shown = vt(path, "show", "sep", "--json", env={"VTRACK_TRACKING_URI": str(store)})
    assert shown.exit_code == 0, shown.stderr
    src = shown.json()["source"]
    assert src["commit"] == git(path, "rev-parse", "HEAD")
    assert src["branch"] == "main" and src["dirty"] is False
    assert src["code_captured"] is False
    (path / "train.py").write_text((path / "train.py").read_text() + "# edit\n")
    train(path, "--name", "sep2", env={"VTRACK_TRACKING_URI": str(store)})
    src = vt(path, "show", "sep2", "--json", env={"VTRACK_TRACKING_URI": str(store)}).json()
    assert src["source"]["dirty"] is True
