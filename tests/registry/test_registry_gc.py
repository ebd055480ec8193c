"""The registry and the run lifecycle: deleting, purging and collecting next to versions.

Regression: ``vtrack gc --purge-trash`` used to purge a deleted run that a registered
version loads from, after which ``load_model("models:/churn/1")`` raised RunNotFoundError.
"""

from __future__ import annotations

from tests.cli.conftest import vt
from tests.conftest import assert_fsck_clean, git
from tests.registry.conftest import jsonout, log_model, py

LOAD = "import vtrack; print(vtrack.pyfunc.load_model('models:/churn/1').predict([0]))"


def test_purge_keeps_a_deleted_run_that_a_registered_version_loads_from(make_repo) -> None:
    repo = make_repo()
    backing, _ = log_model(repo, 0.91, "churn")
    other, _ = log_model(repo, 0.5)  # no version loads from this one
    res = vt(repo, "rm", backing, other)
    assert res.exit_code == 0, res.stderr
    assert f"churn v1 load from {backing}" in res.stderr  # rm says what still uses it
    assert other not in res.stderr
    report = jsonout(vt(repo, "gc", "--purge-trash", "--grace", "0", "--json"))
    assert report["trash_purged"] == [other]
    assert report["trash_kept"] == {backing: ["churn v1"]}
    # the version still loads in a fresh process, and the kept run is still restorable
    res = py(repo, LOAD)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == "[0.91]"
    assert (
        git(repo, "for-each-ref", "--format=%(refname)", "refs/vtrack/trash")
        .strip()
        .endswith(backing)
    )
    text = vt(repo, "gc", "--purge-trash", "--grace", "0")
    assert text.exit_code == 0
    assert f"kept deleted run {backing}" in text.stderr and "vtrack models delete" in text.stderr
    # once the version is deleted, nothing loads from the run: it is purged
    res = vt(repo, "models", "delete", "churn", "1")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == "deleted churn v1"
    report = jsonout(vt(repo, "gc", "--purge-trash", "--grace", "0", "--json"))
    assert report["trash_purged"] == [backing] and report["trash_kept"] == {}
    assert_fsck_clean(repo)


def test_a_dry_run_purge_reports_the_same_kept_runs_and_changes_nothing(make_repo) -> None:
    repo = make_repo()
    backing, _ = log_model(repo, 0.8, "churn")
    assert vt(repo, "rm", backing).exit_code == 0
    report = jsonout(vt(repo, "gc", "--purge-trash", "--dry-run", "--grace", "0", "--json"))
    assert report["trash_kept"] == {backing: ["churn v1"]} and report["trash_purged"] == []
    assert vt(repo, "restore", backing).exit_code == 0


def test_versions_of_a_deleted_model_do_not_keep_their_runs(make_repo) -> None:
    repo = make_repo()
    backing, _ = log_model(repo, 0.7, "churn")
    res = py(repo, "import vtrack; vtrack.MlflowClient().delete_registered_model('churn')")
    assert res.exit_code == 0, res.stderr
    assert vt(repo, "rm", backing).exit_code == 0
    report = jsonout(vt(repo, "gc", "--purge-trash", "--grace", "0", "--json"))
    assert report["trash_purged"] == [backing]


def test_models_delete_checks_every_version_before_deleting_any(make_repo) -> None:
    repo = make_repo()
    log_model(repo, 0.7, "churn")
    log_model(repo, 0.8, "churn")
    res = vt(repo, "models", "delete", "churn", "2", "7")
    assert res.exit_code != 0 and "no version 7" in res.stderr
    res = vt(repo, "models", "delete", "churn", "v2")
    assert res.exit_code != 0 and "v2" in res.stderr
    shown = jsonout(vt(repo, "models", "ls", "--json"))
    assert shown[0]["latest_version"] == 2  # nothing was deleted
    assert jsonout(vt(repo, "models", "delete", "churn", "2", "--json")) == {
        "name": "churn", "deleted_versions": [2]
    }  # fmt: skip
    assert jsonout(vt(repo, "models", "ls", "--json"))[0]["latest_version"] == 1
