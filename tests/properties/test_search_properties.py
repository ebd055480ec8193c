"""Property: the SQLite index answers every filter and ordering as the reference evaluator does.

Thirty runs with deliberately awkward values (typed params that look alike, NaN and
infinities, ints beyond 64 bits, LIKE metacharacters, case-changing Unicode, ties in
start time, deleted runs, two experiments) are logged once per module through the real
API into a real repository. Hypothesis then generates clauses, order keys and scopes;
the index's answer must equal ``query.evaluate`` + ``query.sort_runs`` over the records
read back from git, in the same order.
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtrack import TrackingClient
from vtrack.query import (
    ATTRIBUTES,
    DATASET_FIELDS,
    Comparison,
    OrderKey,
    allowed_operators,
    evaluate,
    sort_runs,
)
from vtrack.store import index as index_module
from vtrack.store.index import ACTIVE, DELETED, RunIndex, run_view

N_RUNS = 30
PARAM_KEYS = ("a", "b", "c")
METRIC_KEYS = ("m", "n")
TAG_KEYS = ("t", "u")
MISSING_KEY = "zz"

TEXTS = ["0.01", "0.010", "1", "10", "3.0", "1e-3", " 1", "abc", "ABC", "a_c", "a%c", "",
         "True", "ß", "SS", "İx", "i̇x", "nan", "inf", "a*b", "[x]", "😀", "Zeta"]  # fmt: skip
INTS = [-2, 0, 1, 3, 10, 2**63 - 1, -(2**63), 2**64 + 1]
FLOATS = [0.01, 0.1, 1.0, -0.5, 1e-3, 3.0, 0.0, -0.0, 1e20, math.inf, -math.inf, math.nan]
PARAM_VALUES: list[Any] = [*INTS, *FLOATS, True, False, None, *TEXTS]
METRIC_VALUES = [-1.0, 0.0, -0.0, 0.5, 0.9, 1.0, 2.0, 3, 1e20, math.nan, math.inf, -math.inf]
FILTER_NUMBERS = [-2, 0, 1, 3, 10, 0.01, 0.5, 0.9, 1e-3, 3.0, -0.5, 1e20, 2**63 - 1, 2**63,
                  2**64 + 1, 2**70, -(2**70), math.inf, -math.inf, 1000, 2000, 2500]  # fmt: skip
LIKE_PIECES = ["%", "_", "a", "A", "b", "c", "0", ".", "1", "ß", "ss", "İ", "i", "*", "[", "x",
               "]", "tr", "TR", "XXH", "xxh3-128:a", "ain", "e"]  # fmt: skip


@dataclass
class World:
    client: TrackingClient
    index: RunIndex
    views: dict[str, dict[str, Any]]  # run id -> RunView read back from git
    lifecycle: dict[str, str]
    experiments: list[str]


def _dataset(rng: random.Random) -> dict[str, Any]:
    return {
        "name": rng.choice(["train", "eval", "Tr%in", "TRAIN"]),
        "digest": rng.choice(["xxh3-128:aa", "xxh3-128:ab", "XXH3-128:AA"]),
        "context": rng.choice(["train", "eval", None]),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    path = tmp_path_factory.mktemp("props") / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    c = TrackingClient(str(path))
    experiments = ["0", c.create_experiment("second")]
    rng = random.Random(20240501)
    ids = []
    for i in range(N_RUNS):
        rid = c.create_run(
            experiment_id=rng.choice(experiments),
            start_time=rng.choice([1000, 2000, 2000, 3000]),
            run_name=rng.choice(["alpha", "Alpha", "beta", "a_c", "ß", f"run-{i}"]),
            tags={k: rng.choice(TEXTS) for k in TAG_KEYS if rng.random() < 0.7},
        ).info.run_id
        params = {k: rng.choice(PARAM_VALUES) for k in PARAM_KEYS if rng.random() < 0.8}
        if params:
            c.log_params(rid, params)
        for k in METRIC_KEYS:
            if rng.random() < 0.8:
                c.log_metric(rid, k, rng.choice(METRIC_VALUES))
        for _ in range(rng.choice([0, 0, 1, 2])):
            c.repo.writer(rid).add_input(_dataset(rng))  # what log_input records
        c.set_terminated(rid, rng.choice(["FINISHED", "FINISHED", "FAILED", "KILLED"]),
                         end_time=rng.choice([1500, 2500, 3500]))  # fmt: skip
        ids.append(rid)
    lifecycle = {rid: ACTIVE for rid in ids}
    for rid in rng.sample(ids, 5):
        c.delete_run(rid)
        lifecycle[rid] = DELETED
    index = c.run_index()
    views = {rid: run_view(c.get_run(rid)) for rid in ids}
    return World(c, index, views, lifecycle, experiments)


# --- strategies ---------------------------------------------------------------------------

_keys = {
    "metrics": st.sampled_from((*METRIC_KEYS, MISSING_KEY)),
    "params": st.sampled_from((*PARAM_KEYS, MISSING_KEY)),
    "tags": st.sampled_from((*TAG_KEYS, MISSING_KEY)),
    "attributes": st.sampled_from(sorted(ATTRIBUTES)),
    "datasets": st.sampled_from(sorted(DATASET_FIELDS)),
}
_numbers = st.sampled_from(FILTER_NUMBERS)
_texts = st.sampled_from(TEXTS + ["FINISHED", "FAILED", "alpha", "Alpha", "train", "eval",
                                  "xxh3-128:aa", "TRAIN", "0"])  # fmt: skip
_patterns = st.lists(st.sampled_from(LIKE_PIECES), min_size=0, max_size=4).map("".join)


@st.composite
def clauses(draw: st.DrawFn) -> Comparison:
    entity = draw(st.sampled_from(sorted(_keys)))
    key = draw(_keys[entity])
    op = draw(st.sampled_from(sorted(allowed_operators(entity, key))))
    number_kind = entity == "metrics" or key in ("start_time", "end_time")
    if entity == "params":
        scalar = st.one_of(_numbers, _texts)
    elif number_kind:
        scalar = _numbers
    else:
        scalar = _texts
    value: Any
    if op in ("IS NULL", "IS NOT NULL"):
        value = None
    elif op in ("LIKE", "ILIKE"):
        value = draw(_patterns)
    elif op in ("IN", "NOT IN"):
        value = tuple(draw(st.lists(scalar, min_size=1, max_size=3)))
    else:
        value = draw(scalar)
    return Comparison(entity, key, op, value)


@st.composite
def order_keys(draw: st.DrawFn) -> OrderKey:
    entity = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    return OrderKey(entity, draw(_keys[entity]), draw(st.booleans()))


# --- properties ---------------------------------------------------------------------------


def _reference(world: World, filters: list[Comparison], order: list[OrderKey],
               exps: list[str] | None, lifecycles: tuple[str, ...], limit: int | None,
               offset: int = 0) -> list[str]:  # fmt: skip
    views = [
        v for rid, v in world.views.items()
        if world.lifecycle[rid] in lifecycles
        and (exps is None or v["attributes"]["experiment_id"] in exps)
        and evaluate(filters, v)
    ]  # fmt: skip
    ordered = [v["attributes"]["run_id"] for v in sort_runs(views, order)]
    return ordered[offset:] if limit is None else ordered[offset : offset + limit]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    filters=st.lists(clauses(), min_size=0, max_size=3),
    order=st.lists(order_keys(), min_size=0, max_size=3),
    exps=st.sampled_from([None, ["0"], "second", "both"]),
    lifecycles=st.sampled_from([(ACTIVE,), (DELETED,), (ACTIVE, DELETED)]),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
    offset=st.sampled_from([0, 0, 1, 4, 11]),
    walk_budget=st.sampled_from([None, 0, 3_000]),
)
def test_index_agrees_with_the_reference_evaluator(
    world: World, filters: list[Comparison], order: list[OrderKey], exps: Any,
    lifecycles: tuple[str, ...], limit: int | None, offset: int, walk_budget: int | None,
) -> None:  # fmt: skip
    """``walk_budget``: None keeps the index's own budget for walking an order's index;
    0 cuts every walk off (the clauses' plan answers), 3,000 cuts some walks mid-way."""
    if exps == "second":
        exps = [world.experiments[1]]
    elif exps == "both":
        exps = list(world.experiments)
    saved = index_module.WALK_STEPS, index_module.WALK_STEPS_PER_ROW, index_module.WALK_TICK
    if walk_budget is not None:
        index_module.WALK_STEPS, index_module.WALK_STEPS_PER_ROW = walk_budget, 0
        index_module.WALK_TICK = 100
    try:
        got = world.index.search(
            filters, order, experiment_ids=exps, lifecycles=lifecycles, max_results=limit,
            offset=offset,
        )  # fmt: skip
    finally:
        index_module.WALK_STEPS, index_module.WALK_STEPS_PER_ROW, index_module.WALK_TICK = saved
    assert [r.info.run_id for r in got] == _reference(
        world, filters, order, exps, lifecycles, limit, offset
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filters=st.lists(clauses(), min_size=1, max_size=2))
def test_each_match_is_the_run_as_git_records_it(world: World, filters: list[Comparison]) -> None:
    for run in world.index.search(filters, lifecycles=(ACTIVE, DELETED)):
        assert repr(run_view(run)) == repr(world.views[run.info.run_id])


def test_world_has_what_the_properties_need(world: World) -> None:
    views = list(world.views.values())
    kinds = {type(v["params"].get("a")).__name__ for v in views}
    assert {"int", "float", "str"} <= kinds
    assert any(v["datasets"] for v in views)
    assert len({v["attributes"]["experiment_id"] for v in views}) == 2
    assert sum(1 for s in world.lifecycle.values() if s == DELETED) == 5
    assert len(world.index.search(lifecycles=(ACTIVE, DELETED))) == N_RUNS
    assert isinstance(Path(world.client.store.location.git_dir), Path)
