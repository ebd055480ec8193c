"""Sorting the runs table by min / max / value at step N, server-side and across pages.

The store is made through the public API; the expected order is computed here from each
run's full metric history (``get_metric_history``) with the search rule: numbers, then
NaN, then runs without a value, in both directions; ties newest first, then run id.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from starlette.testclient import TestClient

from vtrack.client import TrackingClient
from vtrack.entities import Metric
from vtrack.ui.app import create_app

KEY = "val/loss"  # a nested key: its history is a nested tree


def reference(client: TrackingClient, exp: str, agg: str, step: int | None, asc: bool) -> list[str]:
    """The expected order, from the histories themselves."""
    runs = client.search_runs([exp], max_results=None)
    keyed = []
    for r in runs:
        rank, value = 2, 0.0
        if KEY in r.data.metrics:
            hist = client.get_metric_history(r.info.run_id, KEY)
            if agg == "step":
                at = [m.value for m in hist if m.step == step]
                if at:
                    rank, value = (1, 0.0) if math.isnan(at[-1]) else (0, at[-1])
            else:
                known = [m.value for m in hist if not math.isnan(m.value)]
                if known:
                    rank, value = 0, (min(known) if agg == "min" else max(known))
                else:
                    rank = 1
        keyed.append(((rank, value if asc else -value, -r.info.start_time, r.info.run_id), r))
    return [r.info.run_id for _, r in sorted(keyed, key=lambda kv: kv[0])]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import git

    path = tmp_path_factory.mktemp("sorts") / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('x')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    client = TrackingClient(str(path))
    exp = client.create_experiment("sorts")
    for i in range(13):
        rid = client.create_run(exp, run_name=f"r{i}", start_time=1_000 + (i % 4)).info.run_id
        if i == 3:
            client.log_metric(rid, "other", 1.0)  # no KEY at all: absent
        elif i == 4:
            client.log_batch(rid, [Metric(KEY, math.nan, 1, s) for s in range(4)])  # all NaN
        elif i == 5:  # more than one sealed chunk; the minimum is in the first
            client.log_batch(rid, [Metric(KEY, -50.0 if s == 17 else float(s % 7), 1, s)
                                   for s in range(25_000)])  # fmt: skip
        elif i == 6:  # ±inf are numbers
            client.log_batch(rid, [Metric(KEY, v, 1, s)
                                   for s, v in enumerate([1.0, math.inf, 2.0, -math.inf])])  # fmt: skip
        else:
            pts = [
                Metric(KEY, float((s * 7 + i * 3) % 11) - 5, 1, s)
                for s in range(2 if i == 7 else 9)
            ]
            if i == 8:
                pts[2] = Metric(KEY, math.nan, 1, 2)  # NaN at step 2
            client.log_batch(rid, pts)
        client.set_terminated(rid)
    live = client.create_run(exp, run_name="live", start_time=999).info.run_id
    client.log_batch(live, [Metric(KEY, 0.5 + s, 1, s) for s in range(3)])
    return {"client": client, "exp": exp, "live": live, "path": path}


@pytest.fixture(scope="module")
def http(store: dict[str, Any]) -> Any:
    with TestClient(create_app(store["client"], host="testserver")) as tc:
        yield tc


def pages(http: TestClient, exp: str, sort: str, per: int = 4) -> list[str]:
    got: list[str] = []
    page = 1
    while True:
        body = http.get("/api/runs", params={"exp": exp, "sort": sort, "per": str(per),
                                             "page": str(page)}).json()  # fmt: skip
        assert body["problems"] == []
        got += [r["run_id"] for r in body["rows"]]
        if page >= body["pages"]:
            assert body["total"] == len(got)
            return got
        page += 1


@pytest.mark.parametrize("agg", ["min", "max", "step=2"])
@pytest.mark.parametrize("desc", [False, True])
def test_aggregate_sorts_page_across_every_run(http, store, agg: str, desc: bool) -> None:
    spec = f"metrics.{KEY}:{agg}"
    step = int(agg[5:]) if agg.startswith("step=") else None
    expected = reference(store["client"], store["exp"], agg[:4] if step is not None else agg,
                         step, not desc)  # fmt: skip
    assert pages(http, store["exp"], ("-" if desc else "") + spec) == expected
    body = http.get("/api/runs", params={"exp": store["exp"], "cols": f"name,{spec}"}).json()
    assert body["columns"][1]["sortable"] is True


def test_a_live_run_is_resorted_as_it_logs(http, store) -> None:
    client, exp, live = store["client"], store["exp"], store["live"]
    first = pages(http, exp, f"metrics.{KEY}:min")
    assert first == reference(client, exp, "min", None, True)
    client.log_metric(live, KEY, -1000.0, step=3)  # a new minimum in the open tail
    again = pages(http, exp, f"metrics.{KEY}:min")
    assert again.index(live) == 1 < first.index(live)  # after the run with -inf only
    assert again == reference(client, exp, "min", None, True)
    client.log_metric(live, KEY, 7.0, step=2)  # a second point at step 2: the last one counts
    assert pages(http, exp, f"metrics.{KEY}:step=2") == reference(client, exp, "step", 2, True)


def test_summaries_are_reused_until_the_run_changes(store) -> None:
    from vtrack.store.index_metricstats import MetricStats

    client, exp = store["client"], store["exp"]
    stats = MetricStats(client.run_index())
    conn = stats._conn()
    scope = ("SELECT r.id, r.run_id, r.commit_sha FROM runs r WHERE r.experiment_id = ?", [exp])
    stats.refresh_minmax(conn, scope, KEY)
    # finished runs are up to date now; only live runs are recomputed (the fixture's live
    # run, unless an earlier test's process-wide cleanup has ended it by now)
    live = conn.execute(
        "SELECT COUNT(*) FROM runs r JOIN metrics mt ON mt.run = r.id AND mt.key = ? "
        "WHERE r.experiment_id = ? AND r.live = 1",
        [KEY, exp],
    ).fetchone()[0]
    assert live <= 1
    assert stats.refresh_minmax(conn, scope, KEY) == live


def test_the_page_says_how_nan_and_absent_sort(http, store) -> None:
    html = http.get("/", params={"exp": store["exp"], "sort": f"-metrics.{KEY}:max",
                                 "cols": f"name,metrics.{KEY}:max"}).text  # fmt: skip
    assert "numbers, then NaN, then runs without a value" in html


def test_a_run_finished_after_a_sort_is_summarised_by_the_next(http, store) -> None:
    client, exp = store["client"], store["exp"]
    before = pages(http, exp, f"-metrics.{KEY}:max")
    rid = client.create_run(exp, run_name="late", start_time=5_000).info.run_id
    client.log_batch(
        rid, [Metric(KEY, math.inf, 1, 0), Metric(KEY, 1.0, 1, 1)]
    )  # ties r6: newer first
    client.set_terminated(rid)
    after = pages(http, exp, f"-metrics.{KEY}:max")
    assert after[0] == rid and after[1:] == before
    assert after == reference(client, exp, "max", None, False)


@pytest.mark.parametrize("desc", [False, True])
def test_a_filtered_aggregate_sort_pages_as_the_reference_orders(http, store, desc: bool) -> None:
    """Value clauses are checked run by run while the summary index is walked."""
    flt = f'metrics."{KEY}" > -3 and attributes.run_name != "r9"'
    client = store["client"]
    matching = {r.info.run_id for r in client.search_runs([store["exp"]], flt, max_results=None)}
    assert 3 < len(matching) < 13
    expected = [r for r in reference(client, store["exp"], "min", None, not desc) if r in matching]
    got: list[str] = []
    page = 1
    while True:
        body = http.get("/api/runs", params={
            "exp": store["exp"], "q": flt, "sort": ("-" if desc else "") + f"metrics.{KEY}:min",
            "per": "3", "page": str(page)}).json()  # fmt: skip
        assert body["problems"] == [] and body["filter_error"] is None
        got += [r["run_id"] for r in body["rows"]]
        if page >= body["pages"]:
            break
        page += 1
    assert got == expected
