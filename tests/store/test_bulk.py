"""``RunRepository.create_runs``: complete, ended runs created in bulk (what imports use)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import assert_fsck_clean
from vtrack import TrackingClient
from vtrack.errors import RunStateError, ValidationError

T0 = 1_600_000_000_000


def _info(name: str, **extra: object) -> dict[str, object]:
    return {"id": uuid.uuid4().hex, "name": name, "experiment_id": "0", "status": "FINISHED",
            "start_time": T0, "end_time": T0 + 500, "user": "u", **extra}  # fmt: skip


def test_runs_keep_their_own_times_and_histories(repo: Path) -> None:
    c = TrackingClient(str(repo))
    c.repo.experiments.ensure_default()
    with c.repo.create_runs() as bulk:
        a = bulk.new_record(_info("a"))
        a.set_param("lr", 0.1)
        a.set_tag("team", "x")
        bulk.add_history(a, "loss", [(0, T0 + 1, 1.0), (1, T0 + 2, 0.5), (1, T0 + 2, 0.7)])
        b = bulk.new_record(_info("b", parent_run_id=a.info["id"]))
        bulk.add_history(b, "acc", [(i, T0 + 10 * i, i / 10) for i in range(30_000)])
    assert bulk.created == [a.info["id"], b.info["id"]]
    run = c.get_run(str(a.info["id"]))
    assert (run.info.status, run.info.start_time, run.info.end_time) == ("FINISHED", T0, T0 + 500)
    assert run.data.params == {"lr": 0.1} and run.data.tags == {"team": "x"}
    assert run.data.metrics == {"loss": 0.7}  # the larger value at equal step and time
    hist = c.get_metric_history(str(b.info["id"]), "acc")
    assert [(m.step, m.timestamp) for m in hist[:2]] == [(0, T0), (1, T0 + 10)] and len(
        hist
    ) == 30_000
    assert c.get_run(str(b.info["id"])).info.parent_run_id == a.info["id"]
    assert {r.info.run_name for r in c.search_runs()} == {"a", "b"}
    assert_fsck_clean(repo)


def test_a_failed_block_creates_nothing_and_bad_records_are_refused(repo: Path) -> None:
    c = TrackingClient(str(repo))
    with pytest.raises(KeyError), c.repo.create_runs() as bulk:
        bulk.new_record(_info("lost"))
        raise KeyError("boom")
    assert c.search_runs() == []
    existing = c.create_run(run_name="live")
    c.set_terminated(existing.info.run_id)
    with c.repo.create_runs() as bulk:
        with pytest.raises(ValidationError, match="cannot be RUNNING"):
            bulk.new_record(_info("r", status="RUNNING"))
        with pytest.raises(ValidationError, match="lacks name"):
            bulk.new_record({**_info("x"), "name": ""})
        with pytest.raises(RunStateError, match="exists already"):
            bulk.new_record({**_info("x"), "id": existing.info.run_id})
        kept = bulk.new_record(_info("kept"))
        gone = bulk.new_record(_info("gone"))
        bulk.discard(gone)
    assert bulk.created == [kept.info["id"]]
    assert {r.info.run_name for r in c.search_runs()} == {"live", "kept"}
