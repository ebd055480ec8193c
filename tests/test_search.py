"""search_runs (client and fluent): every entity and operator, typed params, ordering, scope."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import vtrack
from vtrack import TrackingClient
from vtrack.errors import QuerySyntaxError, ValidationError
from vtrack.query import evaluate, parse_filter, parse_order_by, sort_runs
from vtrack.store import Store
from vtrack.store.gitobj import GitObjects
from vtrack.store.index import run_view


@dataclass
class Corpus:
    path: Path
    ids: dict[str, str]
    other: str  # id of the second experiment

    def client(self) -> TrackingClient:
        return TrackingClient(str(self.path))


def _dataset(name: str, digest: str, context: str | None) -> dict:
    return {"name": name, "digest": digest, "context": context, "source": f"/data/{name}"}


#: name -> (start_time, params, metrics, tags, datasets, status)
RUNS = {
    "alpha": (1000, {"lr": 0.01, "model": "xgb", "depth": 3, "flag": True, "note": None},
              {"acc": 0.9, "loss": 0.3}, {"team": "nlp", "owner": "Ann"},
              [_dataset("train", "xxh3-128:aaa", "train")], "FINISHED"),
    "beta": (2000, {"lr": "0.01", "model": "rf", "depth": 10},
             {"acc": 0.95}, {"team": "NLP-core"},
             [_dataset("train", "xxh3-128:bbb", "train"), _dataset("holdout", "xxh3-128:ccc", "eval")],
             "FINISHED"),
    "gamma": (3000, {"lr": "0.010", "model": "xgb", "depth": "deep"},
              {"acc": math.nan, "loss": 0.1}, {"team": "cv"}, [], "FAILED"),
    "delta": (3000, {"lr": 0.1, "model": "Xgb", "depth": 2.5, "seed": 2**70},
              {"loss": 0.2, "big": math.inf}, {}, [], "FINISHED"),
    "eps": (4000, {}, {"acc": 0.9}, {"team": "nlp"}, [], "FINISHED"),  # in experiment "other"
    "zeta": (5000, {"lr": 0.01}, {"acc": 0.99}, {}, [], "FINISHED"),  # deleted
}  # fmt: skip
ACTIVE = ["alpha", "beta", "gamma", "delta", "eps"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    path = tmp_path_factory.mktemp("search") / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    c = TrackingClient(str(path))
    other = c.create_experiment("other")
    ids = {}
    for name, (start, params, metrics, tags, datasets, status) in RUNS.items():
        exp = other if name == "eps" else None
        rid = c.create_run(
            experiment_id=exp, start_time=start, run_name=name, tags=tags
        ).info.run_id
        if params:
            c.log_params(rid, params)
        for k, v in metrics.items():
            c.log_metric(rid, k, v)
        for d in datasets:
            c.repo.writer(rid).add_input(d)  # what log_input records
        c.set_terminated(rid, status, end_time=start + 500)
        ids[name] = rid
    c.delete_run(ids["zeta"])
    return Corpus(path, ids, other)


def _brute(c: TrackingClient, filter_string: str, order_by: list[str] | None = None,
           view: tuple[str, ...] = ("active",)) -> list[str]:  # fmt: skip
    runs = [r for r in c.list_runs(view_type="ALL") if r.info.lifecycle_stage in view]
    views = {r.info.run_id: run_view(r) for r in runs}
    clauses = parse_filter(filter_string)
    matching = [v for v in views.values() if evaluate(clauses, v)]
    return [v["attributes"]["run_id"] for v in sort_runs(matching, parse_order_by(order_by))]


def _names(corpus: Corpus, runs: list) -> list[str]:
    by_id = {v: k for k, v in corpus.ids.items()}
    return [by_id[r.info.run_id] for r in runs]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ACTIVE),
        # metrics: numbers; NaN and absent are missing
        ("metrics.acc > 0.9", ["beta"]),
        ("metrics.acc >= 0.9", ["alpha", "beta", "eps"]),
        ("metrics.acc != 0.9", ["beta"]),
        ("metrics.acc < 1", ["alpha", "beta", "eps"]),
        ("metrics.acc <= 0.9", ["alpha", "eps"]),
        ("metrics.acc = 0.95", ["beta"]),
        ("metrics.acc IN (0.9, 0.95)", ["alpha", "beta", "eps"]),
        ("metrics.acc NOT IN (0.9)", ["beta"]),
        ("metrics.acc IS NULL", ["gamma", "delta"]),
        ("metrics.acc IS NOT NULL", ["alpha", "beta", "eps"]),
        ("metrics.big > 1e308", ["delta"]),
        ("metrics.loss > 99999999999999999999999", []),
        ("metrics.loss < 99999999999999999999999", ["alpha", "gamma", "delta"]),
        # params keep their types: numbers numerically, the rest as text
        ("params.lr = '0.01'", ["alpha", "beta"]),
        ("params.lr = 0.01", ["alpha", "beta"]),
        ("params.lr = '0.010'", ["alpha", "gamma"]),
        ("params.lr > 0.05", ["delta"]),
        ("params.lr < '1'", ["alpha", "beta", "gamma", "delta"]),
        ("params.depth > 2", ["alpha", "beta", "gamma", "delta"]),
        ("params.depth < 5", ["alpha", "delta"]),
        ("params.depth >= 10", ["beta", "gamma"]),
        ("params.depth <= '3'", ["alpha", "delta"]),
        ("params.depth != 3", ["beta", "gamma", "delta"]),
        ("params.flag = 'True'", ["alpha"]),
        ("params.note IS NULL", ACTIVE),
        ("params.lr IS NOT NULL", ["alpha", "beta", "gamma", "delta"]),
        ("params.model LIKE 'x%'", ["alpha", "gamma"]),
        ("params.model ILIKE 'X_B'", ["alpha", "gamma", "delta"]),
        ("params.model IN ('rf', 'Xgb')", ["beta", "delta"]),
        ("params.model NOT IN ('xgb')", ["beta", "delta"]),
        ("params.seed = 1180591620717411303424", ["delta"]),
        ("params.seed > 1180591620717411303423", ["delta"]),
        ("params.seed < 1180591620717411303424", []),
        ("params.`lr` = '0.01'", ["alpha", "beta"]),
        # tags: text
        ("tags.team = 'nlp'", ["alpha", "eps"]),
        ("tags.team != 'nlp'", ["beta", "gamma"]),
        ("tags.team LIKE '%core'", ["beta"]),
        ("tags.team LIKE 'nlp'", ["alpha", "eps"]),
        ("tags.team ILIKE 'nlp%'", ["alpha", "beta", "eps"]),
        ("tags.team IN ('cv', 'nlp')", ["alpha", "gamma", "eps"]),
        ("tags.owner IS NOT NULL", ["alpha"]),
        ("tags.team IS NULL", ["delta"]),
        # attributes
        ("attributes.status = 'FAILED'", ["gamma"]),
        ("status != 'FINISHED'", ["gamma"]),
        ("run_name LIKE '%a'", ["alpha", "beta", "gamma", "delta"]),
        ("attributes.run_name IN ('alpha', 'eps', 'zeta')", ["alpha", "eps"]),
        ("attributes.run_name ILIKE 'ALP%'", ["alpha"]),
        ("start_time >= 3000", ["gamma", "delta", "eps"]),
        ("attributes.end_time = 3500", ["gamma", "delta"]),
        ("attributes.end_time IS NULL", []),
        ("attributes.start_time IN (1000, 4000)", ["alpha", "eps"]),
        # datasets: any input matches
        ("datasets.context = 'eval'", ["beta"]),
        ("datasets.name = 'train'", ["alpha", "beta"]),
        ("datasets.name != 'train'", ["beta"]),
        ("datasets.digest LIKE 'xxh3-128:a%'", ["alpha"]),
        ("datasets.context IS NULL", ["gamma", "delta", "eps"]),
        ("datasets.digest IS NOT NULL", ["alpha", "beta"]),
        # AND
        ("metrics.acc >= 0.9 and params.model = 'xgb'", ["alpha"]),
        ("tags.team ILIKE 'nlp%' AND datasets.context = 'train' and start_time > 1000", ["beta"]),
    ],
)
def test_each_operator_and_entity(corpus: Corpus, filter_string: str, expected: list[str]) -> None:
    c = corpus.client()
    got = c.search_runs(filter_string=filter_string)
    assert sorted(_names(corpus, got)) == sorted(expected)
    assert [r.info.run_id for r in got] == _brute(c, filter_string)


def test_id_experiment_and_user_attributes(corpus: Corpus) -> None:
    c = corpus.client()
    rid = corpus.ids["beta"]
    assert _names(corpus, c.search_runs(filter_string=f"attributes.run_id = '{rid}'")) == ["beta"]
    assert _names(corpus, c.search_runs(filter_string=f"run_id LIKE '{rid[:6]}%'")) == ["beta"]
    flt = f"attributes.experiment_id = '{corpus.other}'"
    assert _names(corpus, c.search_runs(filter_string=flt)) == ["eps"]
    user = c.get_run(rid).info.user_id
    assert len(c.search_runs(filter_string=f"attributes.user_id = '{user}'")) == 5


@pytest.mark.parametrize(
    "order_by",
    [
        None,
        ["metrics.acc DESC"],
        ["metrics.acc"],
        ["-metrics.loss"],
        ["params.lr"],
        ["params.lr DESC"],
        ["params.depth DESC", "metrics.acc"],
        ["tags.team", "attributes.run_name DESC"],
        ["attributes.start_time ASC"],
        ["attributes.end_time DESC", "params.seed"],
        ["run_name"],
        ["attributes.status", "params.model ASC"],
    ],
)
def test_order_by_matches_the_reference_sort(corpus: Corpus, order_by: list[str] | None) -> None:
    c = corpus.client()
    got = c.search_runs(order_by=order_by)
    assert [r.info.run_id for r in got] == _brute(c, "", order_by)


def test_order_by_puts_missing_last_and_numbers_before_text(corpus: Corpus) -> None:
    c = corpus.client()
    asc = _names(corpus, c.search_runs(order_by=["metrics.acc"]))
    desc = _names(corpus, c.search_runs(order_by=["metrics.acc DESC"]))
    # MLflow's order both ways: numbers, then NaN (gamma), then absent (delta)
    assert asc[-2:] == desc[-2:] == ["gamma", "delta"]
    assert desc[:3] == ["beta", "eps", "alpha"]  # 0.9 tie broken by start_time, newest first
    by_lr = _names(corpus, c.search_runs(order_by=["params.lr"]))
    assert by_lr == ["alpha", "delta", "beta", "gamma", "eps"]  # 0.01 0.1 | '0.01' '0.010' | none


def test_max_results_cuts_the_ordered_list(corpus: Corpus) -> None:
    c = corpus.client()
    full = c.search_runs(order_by=["metrics.loss"])
    assert c.search_runs(order_by=["metrics.loss"], max_results=2) == full[:2]
    assert len(c.search_runs(max_results=None)) == 5
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValidationError, match="max_results"):
            c.search_runs(max_results=bad)  # type: ignore[arg-type]


def test_experiment_scope_and_view_types(corpus: Corpus) -> None:
    c = corpus.client()
    assert _names(corpus, c.search_runs(experiment_ids=[corpus.other])) == ["eps"]
    assert _names(corpus, c.search_runs(experiment_ids=corpus.other)) == ["eps"]
    assert len(c.search_runs(experiment_ids=["0"])) == 4
    assert c.search_runs(experiment_ids=[]) == []
    (deleted,) = c.search_runs(run_view_type="DELETED_ONLY")
    assert _names(corpus, [deleted]) == ["zeta"] and deleted.info.lifecycle_stage == "deleted"
    assert len(c.search_runs(run_view_type="ALL")) == 6
    assert len(c.search_runs(run_view_type=3)) == 6  # MLflow's ViewType.ALL
    assert _names(corpus, c.search_runs("0", "params.lr = 0.01", "all")) == [
        "zeta",
        "beta",
        "alpha",
    ]
    with pytest.raises(ValidationError, match="view type"):
        c.search_runs(run_view_type="SOME")


def test_bad_filter_points_at_the_column(corpus: Corpus) -> None:
    c = corpus.client()
    with pytest.raises(QuerySyntaxError) as err:
        c.search_runs(filter_string="metrics.acc > 0.9 and tags.x LIKE 3")
    assert err.value.column == 35
    with pytest.raises(QuerySyntaxError):
        c.search_runs(order_by=["datasets.name"])


def test_search_reads_the_index_not_every_run(corpus: Corpus, monkeypatch) -> None:
    c = corpus.client()
    c.search_runs()  # synced

    def fail(*_a, **_k):
        raise AssertionError("search read a run from git")

    monkeypatch.setattr(GitObjects, "read", fail)
    monkeypatch.setattr(Store, "read_run_commit", fail)
    assert len(c.search_runs(filter_string="params.lr < '1'", order_by=["metrics.acc"])) == 4


def test_results_equal_get_run(corpus: Corpus) -> None:
    c = corpus.client()
    for run in c.search_runs(run_view_type="ALL"):
        assert repr(run) == repr(c.get_run(run.info.run_id))  # repr: NaN metrics compare equal


def test_list_runs_is_newest_first_through_the_index(corpus: Corpus) -> None:
    c = corpus.client()
    runs = c.list_runs()
    assert _names(corpus, runs) == ["eps", "delta", "gamma", "beta", "alpha"] or _names(
        corpus, runs
    ) == ["eps", "gamma", "delta", "beta", "alpha"]
    tie = [r for r in runs if r.info.start_time == 3000]
    assert [r.info.run_id for r in tie] == sorted((r.info.run_id for r in tie), reverse=True)
    assert _names(corpus, c.list_runs(corpus.other)) == ["eps"]
    assert _names(corpus, c.list_runs(view_type="DELETED_ONLY")) == ["zeta"]


# --- the fluent API -----------------------------------------------------------------------


def test_fluent_dataframe_has_mlflow_columns(corpus: Corpus) -> None:
    import pandas as pd

    vtrack.set_tracking_uri(corpus.path)
    df = vtrack.search_runs(filter_string="tags.team ILIKE 'nlp%'", order_by=["metrics.acc DESC"])
    assert list(df.columns[:6]) == ["run_id", "experiment_id", "status", "start_time", "end_time",
                                    "run_name"]  # fmt: skip
    assert list(df["run_name"]) == ["beta", "alpha"]  # Default experiment only
    assert df["start_time"].iloc[0] == pd.Timestamp(2000, unit="ms", tz="UTC")
    assert {
        "metrics.acc",
        "metrics.loss",
        "params.lr",
        "params.depth",
        "tags.team",
        "tags.owner",
    } <= set(df.columns)
    assert df["params.lr"].tolist() == ["0.01", 0.01]
    assert math.isnan(df["metrics.loss"].iloc[0]) and pd.isna(df["tags.owner"].iloc[0])


def test_fluent_scope_follows_mlflow(corpus: Corpus) -> None:
    vtrack.set_tracking_uri(corpus.path)
    assert len(vtrack.search_runs()) == 4  # the active experiment: Default
    vtrack.set_experiment("other")
    runs = vtrack.search_runs(output_format="list")
    assert [r.info.run_name for r in runs] == ["eps"]
    assert len(vtrack.search_runs(search_all_experiments=True, output_format="list")) == 5
    named = vtrack.search_runs(
        experiment_names=["other", "Default", "missing"], output_format="list"
    )
    assert len(named) == 5
    assert [
        r.info.run_name for r in vtrack.search_runs(experiment_ids=[], output_format="list")
    ] == ["eps"]  # an empty list counts as not given (MLflow)
    empty = vtrack.search_runs(experiment_names=["missing"])
    assert len(empty) == 0 and "run_id" in empty.columns
    with pytest.raises(ValidationError, match="output_format"):
        vtrack.search_runs(output_format="json")


def test_fluent_scope_from_environment(corpus: Corpus, monkeypatch) -> None:
    vtrack.set_tracking_uri(corpus.path)
    monkeypatch.setenv("VTRACK_EXPERIMENT_NAME", "other")
    assert list(vtrack.search_runs()["run_name"]) == ["eps"]
    monkeypatch.setenv("VTRACK_EXPERIMENT_NAME", "no-such-experiment")
    assert len(vtrack.search_runs()) == 0
    assert vtrack.get_experiment_by_name("no-such-experiment") is None  # searching creates nothing


def test_datasets_filter_on_inputs_logged_through_log_input(repo: Path) -> None:
    c = TrackingClient()
    data = repo / "data.csv"
    data.write_text("a,b\n1,2\n")
    rid = c.create_run(run_name="with-data").info.run_id
    entry = c.log_input(rid, str(data), name="table", context="train")
    c.set_terminated(rid)
    other = c.create_run(run_name="without").info.run_id
    c.set_terminated(other)
    digest = entry["digest"]
    (run,) = c.search_runs(
        filter_string=f"datasets.digest = '{digest}' and datasets.context = 'train'"
    )
    assert run.info.run_id == rid and run.inputs.datasets[0]["digest"] == digest
    assert [r.info.run_id for r in c.search_runs(filter_string="datasets.name IS NULL")] == [other]


# -- pages (search_runs_page, what the web UI's table reads) ---------------------------------


@pytest.mark.parametrize("order", [None, ["metrics.acc DESC"], ["params.lr ASC"]])
@pytest.mark.parametrize("flt", ["", "metrics.acc > 0", "params.model = 'nope'"])
def test_pages_are_slices_of_the_whole_search_with_its_count(corpus: Corpus, flt, order) -> None:
    c = corpus.client()
    whole = [r.info.run_id for r in c.search_runs(None, flt, max_results=None, order_by=order)]
    for per in (1, 2, 3):
        got: list[str] = []
        for offset in range(0, len(whole) + per, per):
            runs, total = c.search_runs_page(None, flt, order, offset=offset, limit=per)
            assert total == len(whole)
            got += [r.info.run_id for r in runs]
        assert got == whole


def test_page_arguments_are_checked(corpus: Corpus) -> None:
    c = corpus.client()
    for bad in ({"offset": -1}, {"limit": 0}, {"limit": True}, {"offset": 1.5}):
        with pytest.raises(ValidationError):
            c.search_runs_page(None, "", **bad)  # type: ignore[arg-type]
    with pytest.raises(QuerySyntaxError) as err:
        c.search_runs_page(None, "metrics.acc >")
    assert err.value.column == 14


def test_index_keys_and_children(corpus: Corpus) -> None:
    c = corpus.client()
    keys = c.run_index().keys()
    assert {"lr", "model", "depth"} <= set(keys["params"])
    assert {"acc", "loss"} <= set(keys["metrics"])
    assert "team" in keys["tags"]
    parent = c.create_run(run_name="p")
    kids = [c.create_run(run_name=f"k{i}", parent_run_id=parent.info.run_id) for i in range(2)]
    try:
        found = c.run_index().children_of(parent.info.run_id)
        assert [s.run_id for s in found] == [k.info.run_id for k in kids]
        # MLflow's system tag filters the parent_run_id attribute (sweeps found as in MLflow)
        pid = parent.info.run_id
        by_tag = c.search_runs(filter_string=f"tags.mlflow.parentRunId = '{pid}'")
        by_attr = c.search_runs(filter_string=f"attributes.parent_run_id = '{pid}'")
        assert {r.info.run_id for r in by_tag} == {k.info.run_id for k in kids}
        assert [r.info.run_id for r in by_tag] == [r.info.run_id for r in by_attr]
    finally:
        for r in (*kids, parent):
            c.set_terminated(r.info.run_id)
            c.delete_run(r.info.run_id)
