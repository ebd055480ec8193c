"""The chart reduction: exact when it fits, min/max per bucket when not, never a lie."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from vtrack.ui.charts import SeriesCache, parse_chunk, series_from_rows, window

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(st.lists(values, min_size=1, max_size=400), st.integers(10, 60))
def test_reduction_keeps_the_extremes_in_order_within_budget(ys: list[float], budget: int) -> None:
    series = series_from_rows((i, 1000 + i, y) for i, y in enumerate(ys))
    out = window(series, budget=budget)
    finite = [(i, y) for i, y in enumerate(ys) if math.isfinite(y)]
    assert out["non_finite"] == len(ys) - len(finite)
    assert out["total"] == out["in_range"] == len(ys)
    if len(finite) <= budget:
        assert out["reduced"] is False
        assert list(zip(out["x"], out["y"], strict=True)) == finite
        return
    assert out["reduced"] is True and len(out["x"]) <= budget
    assert out["x"] == sorted(out["x"])
    assert min(out["y"]) == min(y for _, y in finite)
    assert max(out["y"]) == max(y for _, y in finite)
    # every drawn point is a real point, at its real step
    real = dict(finite)
    assert all(real[x] == y for x, y in zip(out["x"], out["y"], strict=True))
    assert len(out["envelope"]["lo"]) <= budget // 2


def test_a_range_returns_only_its_points_and_exact_ones() -> None:
    series = series_from_rows((s, 10 * s, float(s % 7)) for s in range(100_000))
    out = window(series, lo=500, hi=520, budget=100)
    assert out["reduced"] is False and out["x"] == list(range(500, 521))
    assert out["y"] == [float(s % 7) for s in range(500, 521)]
    rel = window(series, axis="relative", start_ms=0, hi=0.05, budget=100)
    assert rel["x"] == [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]


def test_histories_are_ordered_by_step_then_time_and_parsed_exactly() -> None:
    text = "3\t30\t0.1\n1\t10\tnan\n2\t20\t-inf\n1\t5\t1e-300\n"
    series = series_from_rows(map(tuple, parse_chunk(text)))
    assert series.steps.tolist() == [1, 1, 2, 3]
    assert series.times.tolist() == [5, 10, 20, 30]
    assert series.values[0] == 1e-300 and math.isnan(series.values[1])


def test_the_cache_evicts_beyond_its_budget_and_checks_signatures() -> None:
    cache = SeriesCache(max_points=10)
    a = series_from_rows((i, i, 0.0) for i in range(8))
    cache.put("r", "a", 1, a)
    assert cache.get("r", "a", 1) is a and cache.get("r", "a", 2) is None
    cache.put("r", "b", 1, series_from_rows((i, i, 0.0) for i in range(8)))
    assert cache.get("r", "a", 1) is None  # evicted: 16 points > 10
