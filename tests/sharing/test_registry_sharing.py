"""Two clones and a bare remote: the registry travels with push/pull; diverged logs merge."""

from __future__ import annotations

from tests.conftest import assert_fsck_clean, git
from tests.registry.conftest import jsonout, log_model, py
from tests.sharing.conftest import Team, vts


def _state(clone) -> dict:  # type: ignore[no-untyped-def]
    doc = jsonout(vts(clone, "models", "show", "churn", "--json"))
    return {"aliases": doc["aliases"],
            "versions": {v["version"]: (v["run_id"], v["digest"]) for v in doc["versions"]}}  # fmt: skip


def test_diverged_registry_logs_merge_on_pull_and_both_clones_agree(team: Team) -> None:
    run_a, _ = log_model(team.a, 0.8, "churn")
    assert vts(team.a, "push").exit_code == 0
    pulled = vts(team.b, "pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert pulled.json()["registry"]["action"] == "fast-forward"
    assert _state(team.b)["versions"][1][0] == run_a
    # both clones register a version 2 and move champion, without talking
    run_a2, v_a = log_model(team.a, 0.85, "churn")
    run_b2, v_b = log_model(team.b, 0.9, "churn")
    assert v_a == v_b == "2"
    assert (
        py(
            team.a, "import vtrack; vtrack.set_registered_model_alias('churn','champion',2)"
        ).exit_code
        == 0
    )
    assert (
        py(
            team.b, "import vtrack; vtrack.set_registered_model_alias('churn','champion',2)"
        ).exit_code
        == 0
    )
    assert vts(team.a, "push").exit_code == 0
    merged = vts(team.b, "pull", "--json")
    assert merged.exit_code == 0, merged.stderr
    reg = merged.json()["registry"]
    assert reg["action"] == "merged" and reg["renumbered"] == {"churn": {"2": 3}}
    assert reg["replayed"] == 2 and reg["remote_events"] == 2
    b = _state(team.b)
    # the remote's v2 kept its number; b's own became v3 and its alias move followed it
    assert b["versions"][2][0] == run_a2 and b["versions"][3][0] == run_b2
    assert b["aliases"] == {"champion": 3}
    hist = jsonout(vts(team.b, "models", "history", "churn", "--alias", "champion", "--json"))
    assert [(h["previous"], h["version"]) for h in hist] == [(None, 2), (2, 3)]
    text = vts(team.b, "pull")
    assert text.exit_code == 0
    pushed = vts(team.b, "push", "--json")
    assert pushed.exit_code == 0 and pushed.json()["registry"]["action"] == "pushed"
    assert vts(team.a, "pull").exit_code == 0
    assert _state(team.a) == b
    tip = "refs/vtrack/registry"
    assert (
        git(team.a, "rev-parse", tip)
        == git(team.b, "rev-parse", tip)
        == git(team.remote, "rev-parse", tip)
    )
    assert len(git(team.a, "rev-list", tip).splitlines()) == 6  # nothing lost, nothing doubled
    # loads by alias on the clone that did not register it (objects came with the pull)
    res = py(
        team.a,
        "import vtrack; print(vtrack.pyfunc.load_model('models:/churn@champion').predict([0]))",
    )
    assert res.exit_code == 0 and res.stdout.strip() == "[0.9]", res.stderr
    assert_fsck_clean(team.a)
    assert_fsck_clean(team.b)


def test_push_merges_first_when_the_remote_registry_moved(team: Team) -> None:
    log_model(team.a, 0.8, "churn")
    assert vts(team.a, "push").exit_code == 0
    assert vts(team.b, "pull").exit_code == 0
    log_model(team.a, 0.81, "churn")
    log_model(team.b, 0.82, "other")
    assert vts(team.a, "push").exit_code == 0
    pushed = vts(team.b, "push", "--json")  # b never pulled a's v2: the push merges, then sends
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.json()["registry"]["action"] == "pushed"
    assert vts(team.a, "pull").exit_code == 0
    names = [m["name"] for m in jsonout(vts(team.a, "models", "ls", "--json"))]
    assert names == ["churn", "other"]


def test_gto_tag_mirror_writes_and_pushes_annotated_tags_when_enabled(team: Team) -> None:
    log_model(team.a, 0.8, "churn")
    assert not git(team.a, "tag", "-l")  # off by default
    git(team.a, "config", "vtrack.gtoTags", "true")
    log_model(team.a, 0.9, "churn")
    res = py(
        team.a,
        """\
import vtrack
c = vtrack.MlflowClient()
c.set_registered_model_alias("churn", "prod", 2)
c.set_registered_model_alias("churn", "prod", 1)
c.delete_registered_model_alias("churn", "prod")
""",
    )
    assert res.exit_code == 0, res.stderr
    tags = git(team.a, "tag", "-l").split()
    assert tags == ["churn#prod!#3", "churn#prod#1", "churn#prod#2", "churn@v2.0.0"]
    commit_of = {t: git(team.a, "rev-parse", f"{t}^{{commit}}") for t in tags}
    head = git(team.a, "rev-parse", "HEAD")  # the code commit both runs ran on
    assert set(commit_of.values()) == {head}
    assert git(team.a, "cat-file", "-t", "churn#prod#1") == "tag"  # annotated, as GTO writes
    assert (
        git(team.a, "tag", "-l", "--format=%(contents:subject)", "churn#prod#2")
        == "set churn@prod -> v1"
    )
    assert vts(team.a, "push").exit_code == 0
    assert git(team.remote, "tag", "-l").split() == tags
