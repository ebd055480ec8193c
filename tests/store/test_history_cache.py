"""The columnar history cache: what it returns is exactly what the TSV record holds."""

from __future__ import annotations

import math
from pathlib import Path

from vtrack.client import TrackingClient
from vtrack.entities import Metric
from vtrack.limits import HISTORY_CHUNK_ROWS
from vtrack.store.history_cache import HistoryCache


def _tsv(client: TrackingClient, run_id: str, key: str) -> list[tuple[int, int, float]]:
    """The history as the record's own parser reads the TSV chunks."""
    return list(client.repo.state(run_id, deleted_ok=True).record.iter_history(key))


def _same(points: list[Metric], rows: list[tuple[int, int, float]]) -> bool:
    if len(points) != len(rows):
        return False
    for m, (step, ts, value) in zip(points, rows, strict=True):
        if (m.step, m.timestamp) != (step, ts) or type(m.step) is not int:
            return False
        if math.isnan(value) != math.isnan(m.value):
            return False
        if not math.isnan(value) and (
            m.value != value or math.copysign(1, m.value) != math.copysign(1, value)
        ):
            return False
    return True


def _files(client: TrackingClient) -> list[Path]:
    root = HistoryCache.for_store(client.repo.store).root
    assert root is not None
    return sorted(root.rglob("*.cols"))


def test_history_from_the_cache_equals_the_tsv_including_odd_values(repo: Path) -> None:
    c = TrackingClient(str(repo))
    rid = c.create_run().info.run_id
    n = 2 * HISTORY_CHUNK_ROWS + 7  # two sealed chunks and a tail
    odd = [math.nan, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1]
    points = [Metric("m", odd[s % len(odd)] if s % 97 == 0 else s / 3, 10**12 + s, s)
              for s in range(n)]  # fmt: skip
    points.append(Metric("m", 1.0, 10**12, 2**62 + 1))  # beyond float precision, within int64
    c.log_batch(rid, points)
    c.set_terminated(rid)
    first = c.get_metric_history(rid, "m")
    assert _same(first, _tsv(c, rid, "m"))
    assert len(_files(c)) == 2  # the sealed chunks, not the tail
    again = TrackingClient(str(repo)).get_metric_history(rid, "m")  # read from the files
    assert _same(again, _tsv(c, rid, "m"))
    assert again[-1].step == 2**62 + 1


def test_steps_beyond_64_bits_are_not_cached_and_stay_exact(repo: Path) -> None:
    c = TrackingClient(str(repo))
    rid = c.create_run().info.run_id
    big = 2**70
    c.log_batch(rid, [Metric("m", float(s), 1, big + s) for s in range(HISTORY_CHUNK_ROWS)])
    c.set_terminated(rid)
    hist = c.get_metric_history(rid, "m")
    assert [m.step for m in hist] == [big + s for s in range(HISTORY_CHUNK_ROWS)]
    assert _files(c) == []


def test_a_live_runs_history_follows_appends(repo: Path) -> None:
    c = TrackingClient(str(repo))
    rid = c.create_run().info.run_id
    for round_ in range(3):
        c.log_batch(rid, [Metric("m", round_ + s / 7, 5 + s, round_ * HISTORY_CHUNK_ROWS + s)
                          for s in range(HISTORY_CHUNK_ROWS - 3)])  # fmt: skip
        assert _same(c.get_metric_history(rid, "m"), _tsv(c, rid, "m"))
    c.set_terminated(rid)
    assert _same(TrackingClient(str(repo)).get_metric_history(rid, "m"), _tsv(c, rid, "m"))


def test_a_torn_cache_file_is_ignored_and_replaced(repo: Path) -> None:
    c = TrackingClient(str(repo))
    rid = c.create_run().info.run_id
    c.log_batch(rid, [Metric("m", s * 0.5, 7, s) for s in range(HISTORY_CHUNK_ROWS + 1)])
    c.set_terminated(rid)
    c.get_metric_history(rid, "m")
    (victim,) = _files(c)
    size = victim.stat().st_size
    victim.write_bytes(b"\x01" * (size - 1))  # not a whole number of points
    assert _same(c.get_metric_history(rid, "m"), _tsv(c, rid, "m"))
    assert victim.stat().st_size == size
