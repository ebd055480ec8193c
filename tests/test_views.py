"""The view model every face renders: cells, columns, summaries, JSON, value text."""

from __future__ import annotations

import json
import math

import pytest

from tests.test_diff import make_run
from vtrack import views
from vtrack.entities import Experiment, Metric
from vtrack.errors import ValidationError


def test_cells_of_attribute_and_keyed_columns() -> None:
    run = make_run(
        run_id="0123456789abcdef" * 2, name="r1", params={"lr": 0.1}, metrics={"acc": 0.9},
        tags={"t": "x"}, source={"commit": "f" * 40, "branch": "main", "dirty": True},
        start=1_000, end=4_500,
    )  # fmt: skip
    assert views.cell(run, "id") == "01234567"
    assert views.cell(run, "run_id") == run.info.run_id
    assert views.cell(run, "duration") == 3.5
    assert views.cell(run, "commit") == "ffffffff"
    assert (views.cell(run, "branch"), views.cell(run, "dirty")) == ("main", True)
    assert views.cell(run, "experiment") == "0"
    assert views.cell(run, "experiment", {"0": "Default"}) == "Default"
    assert views.cell(run, "params.lr") == 0.1 and views.cell(run, "params.nope") is None
    assert views.cell(run, "metrics.acc") == 0.9 and views.cell(run, "tags.t") == "x"
    assert views.cell(make_run(end=None), "duration") is None
    with pytest.raises(ValidationError, match="unknown column 'bogus'"):
        views.cell(run, "bogus")


def test_default_columns_pick_varying_params_and_common_metrics() -> None:
    runs = [
        make_run(params={"lr": 0.1, "same": 1}, metrics={"loss": 1.0, "test_acc": 0.5, "z": 1.0}),
        make_run(params={"lr": 0.2, "same": 1}, metrics={"loss": 0.5, "system/cpu": 3.0}),
    ]
    cols = views.default_columns(runs, with_experiment=True)
    assert cols[:6] == ["id", "name", "experiment", "status", "start", "duration"]
    assert "params.lr" in cols and "params.same" not in cols
    assert "metrics.loss" in cols and "metrics.system/cpu" not in cols
    assert views.column_headers(["params.lr", "metrics.lr", "metrics.acc"]) == [
        "params.lr", "metrics.lr", "acc",
    ]  # fmt: skip


def test_sort_keys_become_order_by_clauses() -> None:
    assert views.order_by_from_sort(["-metrics.acc", "params.lr", " ", "+name", "x DESC"]) == [
        "metrics.acc DESC", "params.lr ASC", "name ASC", "x DESC",
    ]  # fmt: skip


def test_metric_summaries_read_histories_through_the_callable() -> None:
    run = make_run(metrics={"loss": 0.2, "odd": math.nan})
    points = {
        "loss": [Metric("loss", 0.5, 2, 1), Metric("loss", 0.9, 1, 0), Metric("loss", 0.2, 3, 2)],
        "odd": [Metric("odd", math.nan, 1, 0)],
    }
    asked: list[str] = []

    def history(key: str) -> list[Metric]:
        asked.append(key)
        return points[key]

    s = views.metric_summaries(run, history)
    assert asked == ["loss", "odd"]
    assert s["loss"] == {"last": 0.2, "min": 0.2, "max": 0.9, "points": 3, "last_step": 2,
                         "values": [0.9, 0.5, 0.2]}  # fmt: skip
    assert s["odd"]["min"] is None and s["odd"]["max"] is None
    doc = views.run_to_dict(run, s)
    assert "values" not in doc["metric_summaries"]["loss"]
    text = json.dumps(views.jsonable(doc), allow_nan=False)
    assert '"odd": "NaN"' in text


def test_json_documents_of_runs_and_experiments() -> None:
    run = make_run(metrics={"acc": 0.9, "system/gpu": 1.0, "epoch": 3.0, "loss": 0.1})
    brief = views.run_brief(run)
    assert brief["duration_s"] == 2.0 and list(brief["metrics"]) == ["acc", "loss", "epoch"]
    exp = Experiment("7", "e", creation_time=5, tags={"a": "b"})
    assert views.experiment_to_dict(exp) == {
        "experiment_id": "7", "name": "e", "lifecycle_stage": "active", "creation_time": 5,
        "tags": {"a": "b"},
    }  # fmt: skip
    assert views.jsonable({"x": (math.inf, -math.inf, {1}), 2: object}) == {
        "x": ["Infinity", "-Infinity", [1]], "2": str(object),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "param", "shown"),
    [
        (0.0, "0.0", "0"), (1, "1", "1"), ("1", "'1'", "1"), ("true", "'true'", "true"),
        (True, "true", "true"), (None, "null", "—"), (math.nan, "nan", "nan"),
        (1 / 3, "0.333333", "0.333333"), ("text", "text", "text"),
    ],
)  # fmt: skip
def test_values_for_people(value: object, param: str, shown: str) -> None:
    assert views.fmt_param(value) == param
    assert views.fmt_value(value) == shown


def test_sizes_durations_and_digests() -> None:
    assert [views.fmt_bytes(n) for n in (None, 512, 1536, 3 * 2**20)] == [
        "", "512 B", "1.5 KiB", "3.0 MiB",
    ]  # fmt: skip
    assert [views.fmt_seconds(s) for s in (0.85, 12.34, 245, 7380)] == [
        "850ms", "12.3s", "4m05s", "2h03m",
    ]  # fmt: skip
    assert views.fmt_duration(1000, None) == "" and views.fmt_duration(1000, 2500) == "1.5s"
    assert views.short_digest("xxh3-128:0123456789abcdef") == "xxh3-128:0123456789ab"
    assert views.fmt_delta(0.1, 0.125) == "+0.1 (+12.5%)" and views.fmt_delta(None, None) == ""
