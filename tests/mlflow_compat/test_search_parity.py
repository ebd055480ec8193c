"""Search parity with MLflow 3.17: the same 300 runs in MLflow's sqlite store and in vtrack,
the same filters and orders, the same result sets in the same order.

Runs carry string-valued params as MLflow scripts log them (floats, which MLflow stores
as strings and vtrack as floats), tags, NaN and absent metric values, and a metric logged
twice at one step and timestamp. Start times are distinct, so ties break alike. The
deliberate differences of docs/migrating-from-mlflow.md are not exercised here.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from vtrack.entities import Metric as VMetric

# MLflow's own sqlite store warns about its use of SQLAlchemy; not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
    pytest.mark.timeout(1200),  # MLflow is slow to import and migrate on a loaded machine
]

N_RUNS = 300
T0 = 1_700_000_000_000

FILTERS = [
    "",
    "metrics.m > 0.5",
    "metrics.m <= 0.2",
    "metrics.m = 0.25",
    "metrics.m >= 0",
    "metrics.dup = 2",
    "metrics.dup > 1",
    "`metrics`.m > 0.7",
    "params.opt = 'adam'",
    "params.opt != 'sgd'",
    "params.opt LIKE 'ad%'",
    "params.opt ILIKE 'AD%'",
    "params.lr = '0.01'",
    "parameter.lr = '0.1'",
    "parameters.opt = 'sgd'",
    "params.`lr` = '0.001'",
    "tags.team = 'nlp'",
    "tags.team != 'nlp'",
    "tags.team LIKE '%i%'",
    "tags.team ILIKE 'V%'",
    "tags.`mlflow.runName` = 'run-007'",
    "attributes.status = 'FINISHED'",
    "attributes.status != 'FAILED'",
    "attributes.run_name LIKE 'run-1%'",
    "run_name = 'run-042'",
    "attributes.created > 1700000100000",
    "attributes.start_time < 1700000050000",
    "metrics.m > 0.3 and params.opt = 'adam' and tags.team = 'nlp'",
    "metrics.m < 0.9 and metrics.dup >= 1 and attributes.status = 'FINISHED'",
]
ORDERS = [
    [],
    ["metrics.m DESC"],
    ["metrics.m ASC"],
    ["metrics.dup DESC", "params.opt ASC"],
    ["params.opt DESC"],
    ["tags.team ASC", "metrics.m DESC"],
    ["attributes.run_name ASC"],
    ["attributes.start_time ASC"],
    ["`metrics`.m DESC"],
]


def _runs() -> list[dict[str, Any]]:
    rng = random.Random(13)
    runs = []
    for i in range(N_RUNS):
        m: float | None = round(rng.random(), 2)
        if i % 17 == 0:
            m = math.nan
        elif i % 23 == 0:
            m = None
        runs.append({
            "name": f"run-{i:03d}",
            "start": T0 + i * 1000,
            "status": ["FINISHED", "FINISHED", "FAILED", "KILLED"][i % 4],
            "params": {"opt": rng.choice(["adam", "sgd", "rmsprop"]),
                       "lr": rng.choice([0.1, 0.01, 0.001])},
            "tags": {"team": rng.choice(["nlp", "vision", "rl"])} if i % 5 else {},
            "m": m,
            "dup": (rng.randint(0, 3), rng.randint(0, 3)),
        })  # fmt: skip
    return runs


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, Any, str]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from tests.conftest import git
    from vtrack.client import TrackingClient

    base = tmp_path_factory.mktemp("parity")
    mlf = MlflowClient(tracking_uri=f"sqlite:///{base / 'mlflow.db'}")
    mexp = mlf.create_experiment("parity")
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    vt = TrackingClient(str(repo))
    vexp = vt.create_experiment("parity")
    for r in _runs():
        step_ts = r["start"] + 10
        metrics = [("dup", float(r["dup"][0]), step_ts, 0), ("dup", float(r["dup"][1]), step_ts, 0)]
        if r["m"] is not None:
            metrics.append(("m", r["m"], step_ts, 0))
        mrun = mlf.create_run(mexp, start_time=r["start"], tags={"mlflow.runName": r["name"]},
                              run_name=r["name"])  # fmt: skip
        mlf.log_batch(
            mrun.info.run_id,
            metrics=[Metric(k, val, ts, st) for k, val, ts, st in metrics],
            params=[Param(k, str(val)) for k, val in r["params"].items()],
            tags=[RunTag(k, val) for k, val in r["tags"].items()],
        )
        mlf.set_terminated(mrun.info.run_id, r["status"], end_time=r["start"] + 500)
        vrun = vt.create_run(vexp, start_time=r["start"], run_name=r["name"])
        vt.log_batch(vrun.info.run_id, metrics=[VMetric(k, val, ts, st) for k, val, ts, st in metrics],
                     params=r["params"], tags=r["tags"])  # fmt: skip
        vt.set_terminated(vrun.info.run_id, r["status"], end_time=r["start"] + 500)
    return mlf, mexp, vt, vexp


def test_vtrack_finds_what_mlflow_finds_in_the_same_order(
    stores: tuple[Any, str, Any, str],
) -> None:
    mlf, mexp, vt, vexp = stores
    wrong = []
    for order in ORDERS:
        for flt in FILTERS:  # IN on params, tags and status is a vtrack extension
            expected = [
                r.info.run_name
                for r in mlf.search_runs([mexp], flt, order_by=order, max_results=1000)
            ]
            got = [
                r.info.run_name
                for r in vt.search_runs([vexp], flt, order_by=order, max_results=1000)
            ]
            if got != expected:
                at = next(
                    (k for k, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                    min(len(got), len(expected)),
                )
                wrong.append(
                    f"{flt!r} {order}: {len(got)} vs {len(expected)} runs, first difference at {at}"
                )
    assert wrong == []


def test_latest_value_at_equal_step_and_timestamp_is_the_larger_as_in_mlflow(
    stores: tuple[Any, str, Any, str],
) -> None:
    mlf, mexp, vt, vexp = stores
    m = {
        r.info.run_name: r.data.metrics.get("dup")
        for r in mlf.search_runs([mexp], max_results=1000)
    }
    v = {
        r.info.run_name: r.data.metrics.get("dup") for r in vt.search_runs([vexp], max_results=1000)
    }
    assert v == m
    assert all(
        val == max(r["dup"]) for r in _runs() for name, val in v.items() if name == r["name"]
    )


def test_the_stores_agree_on_nan_and_absent_metrics(stores: tuple[Any, str, Any, str]) -> None:
    mlf, mexp, vt, vexp = stores
    m = {
        r.info.run_name: r.data.metrics.get("m") for r in mlf.search_runs([mexp], max_results=1000)
    }
    v = {r.info.run_name: r.data.metrics.get("m") for r in vt.search_runs([vexp], max_results=1000)}
    assert {k for k, x in m.items() if x is None} == {k for k, x in v.items() if x is None}
    assert {k for k, x in m.items() if x is not None and math.isnan(x)} == {
        k for k, x in v.items() if x is not None and math.isnan(x)
    }
