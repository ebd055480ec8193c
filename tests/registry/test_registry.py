"""The model registry end to end: real git, real processes, the vtrack command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from tests.cli.conftest import subprocess_env, vt
from tests.conftest import assert_fsck_clean, git
from tests.registry.conftest import jsonout, log_model, py


def test_register_alias_and_load_by_alias_in_a_fresh_process(make_repo) -> None:
    repo = make_repo()
    run_id, version = log_model(repo, 0.91, "churn")
    assert version == "1"
    res = py(repo, "import vtrack; vtrack.set_registered_model_alias('churn', 'champion', 1)")
    assert res.exit_code == 0, res.stderr
    res = py(
        repo,
        """\
import vtrack
m = vtrack.pyfunc.load_model("models:/churn@champion")
print(m.predict([0, 0]))
print(vtrack.pyfunc.load_model("models:/churn/1").predict([0]))
import os
path = vtrack.download_artifacts(artifact_uri="models:/churn@champion")
print(sorted(os.listdir(path)))
mv = vtrack.MlflowClient().get_model_version_by_alias("churn", "champion")
print(mv.version, mv.run_id, mv.aliases)
""",
    )
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "[0.91, 0.91]" and lines[1] == "[0.91]"
    assert "model.yaml" in lines[2]
    assert lines[3] == f"1 {run_id} ['champion']"
    # the log is plain git: one commit per event, readable by git log
    log = git(repo, "log", "--format=%s", "refs/vtrack/registry").splitlines()
    assert log == ["set churn@champion -> v1", f"register churn v1 (run {run_id[:12]})",
                   "create model churn"]  # fmt: skip
    assert_fsck_clean(repo)


def test_unknown_names_versions_and_aliases_are_clear_errors(make_repo) -> None:
    repo = make_repo()
    log_model(repo, 0.5, "churn")
    res = py(
        repo,
        """\
import vtrack
from vtrack.errors import RegisteredModelNotFoundError, ValidationError
c = vtrack.MlflowClient()
for call in (lambda: c.get_model_version("churn", 7), lambda: c.get_registered_model("nope"),
             lambda: c.get_model_version_by_alias("churn", "gone"),
             lambda: vtrack.pyfunc.load_model("models:/churn@gone")):
    try:
        call()
    except RegisteredModelNotFoundError as e:
        print("notfound", e.message)
for bad in (lambda: c.set_registered_model_alias("churn", "v2", 1),
            lambda: c.set_registered_model_alias("churn", "latest", 1),
            lambda: c.create_registered_model("a/b")):
    try:
        bad()
    except ValidationError as e:
        print("invalid", e.message)
""",
    )
    assert res.exit_code == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == "notfound model 'churn' has no version 7"
    assert out[1] == "notfound no registered model 'nope'"
    assert out[2] == out[3] == "notfound model 'churn' has no alias 'gone'"
    assert [o.split()[0] for o in out[4:]] == ["invalid"] * 3
    # nothing half-written: the failed calls added no event
    assert len(git(repo, "log", "--format=%H", "refs/vtrack/registry").splitlines()) == 2


WRITER = """\
import sys, vtrack
c = vtrack.MlflowClient()
got = [c.create_model_version("churn", sys.argv[1]).version for _ in range(int(sys.argv[2]))]
print(" ".join(map(str, got)))
"""


def test_two_processes_registering_at_once_get_unique_numbers_and_lose_nothing(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.7)
    assert (
        py(repo, "import vtrack; vtrack.MlflowClient().create_registered_model('churn')").exit_code
        == 0
    )
    env = subprocess_env(repo.parent)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, f"runs:/{run_id}/model", "12"],
                              cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    got = [int(v) for o in outs for v in o[0].split()]
    assert sorted(got) == list(range(1, 25))  # unique, none lost, none skipped
    for out in outs:  # each process saw its own versions in increasing order
        mine = [int(v) for v in out[0].split()]
        assert mine == sorted(mine)
    versions = jsonout(vt(repo, "models", "show", "churn", "--json"))["versions"]
    assert sorted(v["version"] for v in versions) == list(range(1, 25))
    assert len(git(repo, "log", "--format=%H", "refs/vtrack/registry").splitlines()) == 25
    assert_fsck_clean(repo)


def test_deleted_versions_are_never_renumbered_and_a_version_keeps_its_bytes(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.7, "churn")
    res = py(
        repo,
        f"""\
import vtrack
c = vtrack.MlflowClient()
c.create_model_version("churn", "runs:/{run_id}/model")
c.set_registered_model_alias("churn", "champion", 2)
c.delete_model_version("churn", 2)
print(c.get_registered_model("churn").aliases)
print(c.create_model_version("churn", "runs:/{run_id}/model").version)
mv = c.get_model_version("churn", 1)
print(mv.digest == c.get_model_version("churn", 3).digest)
""",
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout.split("\n")[:3] == ["{}", "3", "True"]
    assert (
        py(repo, "import vtrack; vtrack.MlflowClient().delete_model_version('churn', 3)").exit_code
        == 0
    )
    listed = jsonout(vt(repo, "models", "ls", "--json"))
    assert [(m["name"], m["latest_version"]) for m in listed] == [("churn", 1)]


def test_models_show_gives_the_whole_lineage_and_audit_checks_the_versions_data(make_repo) -> None:
    repo = make_repo()
    data = repo / "train.csv"
    data.write_text("a,b\n1,2\n")
    git(repo, "add", "train.csv")
    git(repo, "commit", "-qm", "data")
    head = git(repo, "rev-parse", "HEAD")
    run_id, _ = log_model(repo, 0.93, "churn", data="train.csv")
    assert (
        py(repo, "import vtrack; vtrack.set_registered_model_alias('churn','champion',1)").exit_code
        == 0
    )
    mv = jsonout(vt(repo, "models", "show", "churn", "@champion", "--json"))
    lin = mv["lineage"]
    assert lin["run_id"] == run_id and lin["code_commit"] == head and lin["dirty"] is False
    assert lin["metrics"] == {"auc": 0.93} and lin["flavor"] == "pyfunc"
    assert [d["name"] for d in lin["datasets"]] == ["train.csv"]
    assert lin["datasets"][0]["digest"].startswith("xxh3-128:")
    assert mv["digest"].startswith("xxh3-128:") and mv["aliases"] == ["champion"]
    text = vt(repo, "models", "show", "churn", "1")
    assert text.exit_code == 0 and head in text.stdout and "train.csv" in text.stdout
    assert vt(repo, "audit", "models:/churn@champion").exit_code == 0
    data.write_text("a,b\n1,3\n")
    drift = vt(repo, "audit", "models:/churn@champion")
    assert drift.exit_code == 1 and "changed" in drift.stdout


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


def test_history_by_date_and_rollback(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.7, "churn")
    res = py(
        repo,
        f"""\
import vtrack
c = vtrack.MlflowClient()
for _ in range(2):
    c.create_model_version("churn", "runs:/{run_id}/model")
for v in (1, 2, 3):
    c.set_registered_model_alias("churn", "champion", v)
c.set_registered_model_alias("churn", "staging", 3)
""",
    )
    assert res.exit_code == 0, res.stderr
    moves = jsonout(vt(repo, "models", "history", "churn", "--alias", "champion", "--json"))
    assert [(m["previous"], m["version"]) for m in moves] == [(None, 1), (1, 2), (2, 3)]
    assert all(m["user"] and m["time"] for m in moves)
    # what held champion at the moment of each move, and before the first
    for move in moves:
        at = jsonout(vt(repo, "models", "history", "churn", "--at", _iso(move["time"]), "--json"))
        assert at["aliases"]["champion"]["version"] == move["version"]
    before = jsonout(vt(repo, "models", "history", "churn", "--at", _iso(moves[0]["time"] - 1),
                        "--json"))  # fmt: skip
    assert before["aliases"] == {}
    assert "@champion = v3" in vt(repo, "models", "history", "churn", "--at", "2999-01-01").stdout
    bad = vt(repo, "models", "history", "churn", "--at", "yesterday")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
    back = jsonout(vt(repo, "models", "rollback", "churn", "champion", "--json"))
    assert (back["reason"], back["previous"], back["version"]) == ("rollback", 3, 2)
    assert jsonout(vt(repo, "models", "ls", "--json"))[0]["aliases"] == {
        "champion": 2,
        "staging": 3,
    }
    assert vt(repo, "models", "rollback", "churn", "staging").exit_code == 3  # held nothing else


def test_the_cache_is_derived_deleting_or_damaging_it_rebuilds_the_same_state(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.7, "churn")
    py(repo, "import vtrack; vtrack.set_registered_model_alias('churn','champion',1)")
    first = vt(repo, "models", "show", "churn", "--json").stdout
    cache = repo / ".git" / "vtrack" / "registry.sqlite"
    assert cache.is_file()
    for leftover in cache.parent.glob("registry.sqlite*"):
        leftover.unlink()
    assert vt(repo, "models", "show", "churn", "--json").stdout == first
    for leftover in cache.parent.glob("registry.sqlite-*"):
        leftover.unlink()
    cache.write_bytes(b"not a database at all" * 100)
    assert vt(repo, "models", "show", "churn", "--json").stdout == first


POLICY = """\
models:
  churn:
    metric-gate: {metrics: "metrics.auc >= 0.9"}
    data-gate: {provenance: clean}
    repro-gate: {reproduced: true}
"""
HOOK = """\
#!/bin/sh
cat > "$(dirname "$0")/../../hook-got.json"
"""


def test_promotion_policy_refuses_each_condition_kind_and_records_evidence(make_repo) -> None:
    repo = make_repo()
    data = repo / "train.csv"
    data.write_text("x\n1\n")
    run_id, _ = log_model(repo, 0.8, "churn", data="train.csv")
    (repo / ".vtrack").mkdir(exist_ok=True)
    (repo / ".vtrack" / "policy.yaml").write_text(POLICY)
    hook = repo / ".vtrack" / "hooks" / "post-promote"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    hook.chmod(0o755)

    refused = vt(repo, "models", "promote", "churn", "1", "--alias", "metric-gate")
    assert refused.exit_code == 4 and "metrics: not met: metrics.auc >= 0.9" in refused.stderr
    data.write_text("x\n2\n")
    refused = vt(repo, "models", "promote", "churn", "1", "--alias", "data-gate")
    assert refused.exit_code == 4 and "train.csv: changed" in refused.stderr
    refused = vt(repo, "models", "promote", "churn", "1", "--alias", "repro-gate")
    assert refused.exit_code == 4 and f"no rerun of run {run_id}" in refused.stderr
    assert not (repo / "hook-got.json").exists()
    assert jsonout(vt(repo, "models", "ls", "--json"))[0]["aliases"] == {}  # nothing moved

    forced = jsonout(vt(repo, "models", "promote", "churn", "1", "--alias", "data-gate",
                        "--force", "--json"))  # fmt: skip
    assert forced["forced"] is True and forced["evidence"]["checks"][0]["passed"] is False
    data.write_text("x\n1\n")
    ok = jsonout(vt(repo, "models", "promote", "churn", "1", "--alias", "data-gate", "--json"))
    assert ok["forced"] is False and ok["reason"] == "promote"
    check = ok["evidence"]["checks"][0]
    assert check["condition"] == "provenance" and check["passed"]
    assert check["inputs"][0]["status"] == "unchanged"
    assert ok["evidence"]["policy"] == {"provenance": "clean"}
    # a rerun verdict "reproduced" on record for the run satisfies the repro gate
    res = py(
        repo,
        f"""\
import vtrack
with vtrack.start_run(tags={{"vtrack.rerun_of": "{run_id}", "vtrack.rerun_verdict": "reproduced"}}):
    pass
""",
    )
    assert res.exit_code == 0, res.stderr
    ok = jsonout(vt(repo, "models", "promote", "churn", "1", "--alias", "repro-gate", "--json"))
    assert ok["evidence"]["checks"][0]["passed"] and ok["evidence"]["checks"][0]["reruns"]
    got = json.loads((repo / "hook-got.json").read_text())
    assert got["type"] == "set_alias" and got["alias"] == "repro-gate" and got["version"] == 1
    assert got["evidence"]["checks"][0]["condition"] == "reproduced"
    hist = jsonout(vt(repo, "models", "history", "churn", "--json"))
    assert [h["forced"] for h in hist if h["type"] == "set_alias"] == [True, False, False]


def test_an_alias_without_a_rule_moves_freely_and_a_bad_policy_is_named(make_repo) -> None:
    repo = make_repo()
    log_model(repo, 0.8, "churn")
    assert vt(repo, "models", "promote", "churn", "1", "--alias", "other").exit_code == 0
    (repo / ".vtrack").mkdir(exist_ok=True)
    (repo / ".vtrack" / "policy.yaml").write_text("models:\n  churn:\n    other: {speed: fast}\n")
    bad = vt(repo, "models", "promote", "churn", "1", "--alias", "other")
    assert bad.exit_code == 2 and "unknown conditions ['speed']" in bad.stderr
