"""The UI's derived caches: columnar chunk files on disk, remembered chart answers, records.

Each must be invisible except in speed: the same answers as parsing from git, and fresh
answers as soon as a live run logs more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.conftest import git
from vtrack.client import TrackingClient
from vtrack.entities import Metric
from vtrack.store.history_cache import CACHE_DIR
from vtrack.ui.app import create_app
from vtrack.ui.charts import SeriesCache, parse_chunk
from vtrack.ui.columnar import ColumnarCache
from vtrack.ui.data import UIData


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('x')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    c = TrackingClient(str(path))
    exp = c.create_experiment("caches")
    done = c.create_run(exp, run_name="done").info.run_id
    c.log_batch(
        done, [Metric("loss", float(s % 13) - s / 1000, 1_000 + s, s) for s in range(25_000)]
    )
    c.set_terminated(done)
    live = c.create_run(exp, run_name="live").info.run_id
    c.log_batch(live, [Metric("loss", 1.0 + s, 1_000 + s, s) for s in range(5)])
    return {"client": c, "path": path, "done": done, "live": live}


def boom() -> str:
    raise AssertionError("parsed again: the columnar cache was not used")


def test_a_new_server_reads_sealed_chunks_from_the_columnar_cache(store) -> None:
    client = store["client"]
    first = UIData(client).series(store["done"], "loss")
    root = client.repo.store.location.vtrack_dir.joinpath(*CACHE_DIR)
    files = sorted(root.rglob("*.cols"))
    hist = client.repo.state(store["done"]).record.histories["loss"]
    assert [f.stem for f in files] == sorted(hist.chunks)  # sealed chunks only, by blob id
    disk = ColumnarCache(client.history_cache())
    for sha in hist.chunks:  # a fresh process: no parsing at all
        rows = SeriesCache(disk=disk).chunk(sha, boom)
        text = client.repo.store.objects.read_blob(sha).decode()
        assert np.array_equal(rows, parse_chunk(text))
    again = UIData(client).series(store["done"], "loss")
    for a, b in (
        (first.steps, again.steps),
        (first.times, again.times),
        (first.values, again.values),
    ):
        assert np.array_equal(a, b)
    assert len(again) == 25_000


def test_a_torn_or_foreign_cache_file_is_ignored_and_replaced(store) -> None:
    client = store["client"]
    UIData(client).series(store["done"], "loss")
    root = client.repo.store.location.vtrack_dir.joinpath(*CACHE_DIR)
    victim = sorted(root.rglob("*.cols"))[0]
    victim.write_bytes(b"\x00" * 23)  # not a whole row
    text = client.repo.store.objects.read_blob(victim.stem).decode()
    rows = SeriesCache(disk=ColumnarCache(client.history_cache())).chunk(victim.stem, lambda: text)
    assert np.array_equal(rows, parse_chunk(text))
    assert victim.stat().st_size == rows.size * 8
    assert ColumnarCache(client.history_cache()).load("not-a-sha") is None


def test_remembered_chart_answers_follow_a_live_run(store) -> None:
    client, live = store["client"], store["live"]
    with TestClient(create_app(client, host="testserver")) as http:
        url = f"/api/history/{live}/loss"
        assert http.get(url).json()["total"] == 5
        assert http.get(url).json()["y"] == [1.0, 2.0, 3.0, 4.0, 5.0]  # remembered
        client.log_metric(live, "loss", -7.0, step=5)
        body = http.get(url).json()
        assert body["total"] == 6 and body["y"][-1] == -7.0
        page = http.get(f"/runs/{live}").text
        assert "-7" in page.split('id="metrics"', 1)[1]  # the min column is fresh too
        client.set_terminated(live)
        assert http.get(url).json()["total"] == 6


def test_a_read_only_store_still_serves_charts(store, tmp_path: Path) -> None:
    client = store["client"]
    root = client.repo.store.location.vtrack_dir.joinpath(*CACHE_DIR)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("a file where the cache folder would be")  # cannot be created
    series = UIData(client).series(store["done"], "loss")
    assert len(series) == 25_000
