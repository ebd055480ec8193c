"""The merge rule for diverged registry logs, on real git objects in one repository."""

from __future__ import annotations

import os

from tests.registry.conftest import log_model
from vtrack.registry import events as ev
from vtrack.registry.log import read_log, write_events
from vtrack.registry.merge import rebase_onto


def _registry(repo):  # type: ignore[no-untyped-def]
    from vtrack import fluent

    os.chdir(repo)
    fluent.set_tracking_uri(str(repo))
    return fluent.tracking_client().model_registry


def test_rebase_renumbers_ours_keeps_theirs_and_marks_what_no_longer_applies(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.8, "churn")
    reg = _registry(repo)
    store = reg.store
    base = store.refs.read("refs/vtrack/registry")
    v1 = reg.get_model_version("churn", 1)
    # ours: v2, then champion -> v2 and staging -> v1
    reg.create_model_version("churn", f"runs:/{run_id}/model")
    reg.set_registered_model_alias("churn", "champion", 2)
    reg.set_registered_model_alias("churn", "staging", 1)
    ours = store.refs.read("refs/vtrack/registry")
    # theirs (another clone): its own v2, then v1 deleted
    theirs_events = [
        ev.new_event("register", "churn", "bob", version=2, source=v1.source, run_id=run_id,
                     model_id=None, digest=v1.digest, lineage={}, tags={}, description=""),
        ev.new_event("delete_version", "churn", "bob", version=1),
    ]  # fmt: skip
    theirs = write_events(store, base, theirs_events)
    merged, report = rebase_onto(reg.repo, ours, theirs)
    assert report.action == "merged" and report.renumbered == {"churn": {2: 3}}
    log = read_log(store, merged)
    assert [c for c, _, _ in log[: len(read_log(store, theirs))]] == [
        c for c, _, _ in read_log(store, theirs)
    ]  # theirs is a prefix, unchanged
    mine = [e for _, _, e in log[-3:]]
    assert (mine[0]["type"], mine[0]["version"]) == ("register", 3)
    assert (mine[1]["alias"], mine[1]["version"]) == ("champion", 3)  # followed the renumbering
    assert (mine[2]["alias"], mine[2]["version"]) == ("staging", 1)  # v1: untouched number
    store.refs.cas("refs/vtrack/registry", ours, merged)
    assert reg.get_registered_model("churn").aliases == {"champion": 3}
    hist = reg.history("churn")
    assert hist[-1]["ignored"] == "no version 1"  # staging -> deleted v1: kept, changes nothing
    assert [h["version"] for h in hist if h["type"] == "register"] == [1, 2, 3]
    # merging again (ours now contains theirs) changes nothing; the other way fast-forwards
    assert rebase_onto(reg.repo, merged, theirs)[0] == merged
    tip, again = rebase_onto(reg.repo, theirs, merged)
    assert (tip, again.action) == (merged, "fast-forward")
