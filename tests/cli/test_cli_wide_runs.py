"""Wide runs (many metric keys): reading them stays proportional to what is shown.

Regression: ``vtrack show`` asked for each metric's history separately, and each request
read the whole run (every history) again: 1,000 metrics took 7 min 47 s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import vtrack
from tests.cli.conftest import invoke
from vtrack.entities import Metric
from vtrack.store.record import RecordState


def _wide_run(keys: int) -> str:
    ts = int(time.time() * 1000)
    with vtrack.start_run(run_name="wide") as run:
        c = vtrack.TrackingClient()
        c.log_batch(run.info.run_id, [Metric(f"m{k:03d}", float(k + s), ts + s, s)
                                      for k in range(keys) for s in range(3)])  # fmt: skip
    return run.info.run_id


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = RecordState.from_tree.__func__  # type: ignore[attr-defined]

    def counting(cls: type[RecordState], objects: object, tree: str) -> RecordState:
        calls[0] += 1
        return original(cls, objects, tree)

    monkeypatch.setattr(RecordState, "from_tree", classmethod(counting))
    return calls


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_show_reads_a_wide_run_a_fixed_number_of_times(
    repo: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    run_id = _wide_run(60)
    calls = _count_reads(monkeypatch)
    res = invoke("show", run_id, *args)
    assert res.exit_code == 0, res.stderr
    assert calls[0] <= 3  # was 61: one read of the run per metric, plus one
    if args:
        summaries = json.loads(res.stdout)["metric_summaries"]
        assert len(summaries) == 60
        assert summaries["m007"]["points"] == 3 and summaries["m007"]["max"] == 9.0
    else:
        assert "m059" in res.stdout


def test_metric_histories_equal_the_history_of_each_key(repo: Path) -> None:
    run_id = _wide_run(12)
    c = vtrack.TrackingClient()
    every = c.get_metric_histories(run_id)
    assert sorted(every) == [f"m{k:03d}" for k in range(12)]
    for key, points in every.items():
        assert points == c.get_metric_history(run_id, key)
    assert list(c.get_metric_histories(run_id, ["m003", "m001", "m003"])) == ["m003", "m001"]
    assert c.get_metric_histories(run_id, ["absent"]) == {"absent": []}
    with pytest.raises(vtrack.errors.ValidationError):
        c.get_metric_histories(run_id, [""])
