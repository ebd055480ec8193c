"""The pure run diff / compare model."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from vtrack.diff import (
    FileStat,
    FolderFiles,
    build_code_diff,
    compare_manifests,
    compare_runs,
    dataset_key,
    diff_runs,
    metric_direction,
    parse_numstat,
)
from vtrack.entities import Run, RunData, RunInfo, RunInputs


def make_run(
    run_id: str = "a" * 32,
    name: str = "run",
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    datasets: list[dict[str, Any]] | None = None,
    artifacts: dict[str, dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    start: int = 1000,
    end: int | None = 3000,
) -> Run:
    return Run(
        info=RunInfo(
            run_id=run_id,
            run_name=name,
            experiment_id="0",
            status="FINISHED",
            start_time=start,
            end_time=end,
            user_id="u",
            commit="c" * 40,
            source=source if source is not None else {"code_captured": True, "commit": "1" * 40},
            environment=environment or {},
        ),
        data=RunData(params=params or {}, metrics=metrics or {}, tags=tags or {}),
        inputs=RunInputs(datasets=datasets or [], artifacts=artifacts or {}),
    )


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("acc", "max"),
        ("val_acc", "max"),
        ("accuracy", "max"),
        ("top1acc", "max"),
        ("f1_macro", "max"),
        ("roc_auc", "max"),
        ("precision@5", "max"),
        ("recall", "max"),
        ("test/score", "max"),
        ("r2", "max"),
        ("loss", "min"),
        ("val_loss", "min"),
        ("mean_squared_error", "min"),
        ("rmse", "min"),
        ("mae", "min"),
        ("mse", "min"),
        ("precision_loss", "min"),
        ("layer2", None),
        ("accel", None),
        ("lr", None),
        ("system/cpu_loss", None),
        ("epoch", None),
    ],
)
def test_metric_direction_by_name(key: str, direction: str | None) -> None:
    assert metric_direction(key) == direction


def test_params_changed_added_removed_keep_types() -> None:
    a = make_run(params={"lr": 0.1, "depth": 1, "flag": True, "gone": "x", "same": "s"})
    b = make_run(params={"lr": 0.2, "depth": 1.0, "flag": 1, "new": None, "same": "s"})
    d = diff_runs(a, b)
    got = {c.key: c.kind for c in d.params}
    assert got == {
        "lr": "changed",
        "depth": "changed",
        "flag": "changed",
        "gone": "removed",
        "new": "added",
    }
    assert [c.key for c in diff_runs(a, b, include_unchanged=True).params].count("same") == 1


def test_metrics_absolute_and_relative_change_and_improvement() -> None:
    a = make_run(metrics={"acc": 0.8, "loss": 0.5, "zero": 0.0, "n": math.nan, "old": 1.0})
    b = make_run(metrics={"acc": 0.9, "loss": 0.6, "zero": 1.0, "n": math.nan, "fresh": 2.0})
    d = {m.key: m for m in diff_runs(a, b).metrics}
    assert d["acc"].delta == pytest.approx(0.1)
    assert d["acc"].relative == pytest.approx(0.125)
    assert d["acc"].improved is True
    assert d["loss"].improved is False
    assert d["zero"].relative is None and d["zero"].delta == 1.0
    assert "n" not in d  # NaN equals NaN
    assert d["old"].kind == "removed" and d["fresh"].kind == "added"
    assert d["fresh"].delta is None


def test_datasets_compared_by_name_context_and_digest() -> None:
    a = make_run(
        datasets=[
            {"name": "train", "context": "train", "digest": "xxh3-128:1"},
            {"name": "eval", "context": "eval", "digest": "xxh3-128:2"},
        ]
    )
    b = make_run(
        datasets=[
            {"name": "train", "context": "train", "digest": "xxh3-128:9"},
            {"name": "eval", "context": "eval", "digest": "xxh3-128:2"},
            {"name": "extra", "context": "train", "digest": "xxh3-128:3"},
        ]
    )
    d = diff_runs(a, b).datasets
    assert [(x.name, x.kind) for x in d] == [("extra", "added"), ("train", "changed")]
    assert d[1].old_digest == "xxh3-128:1" and d[1].new_digest == "xxh3-128:9"


def test_folder_manifests_compared_file_by_file() -> None:
    old = [("a.txt", 2, "d:1"), ("b.txt", 2, "d:2"), ("c/x.bin", 5, "d:3"), ("same", 1, "d:4")]
    new = [("b.txt", 3, "d:5"), ("c/x.bin", 5, "d:6"), ("c/y.bin", 1, "d:7"), ("same", 1, "d:4")]
    files = compare_manifests(old, new)
    assert files == FolderFiles(
        added=("c/y.bin",), removed=("a.txt",), modified=("b.txt", "c/x.bin")
    )
    assert compare_manifests(old, old).empty and not files.empty


def test_folder_file_changes_attach_to_a_changed_dataset_only() -> None:
    a = make_run(
        datasets=[
            {"name": "imgs", "context": "train", "digest": "xxh3-128:1"},
            {"name": "same", "digest": "xxh3-128:5"},
        ]
    )
    b = make_run(
        datasets=[
            {"name": "imgs", "context": "train", "digest": "xxh3-128:2"},
            {"name": "same", "digest": "xxh3-128:5"},
        ]
    )
    files = FolderFiles(added=("n.txt",))
    folders = {dataset_key(a.inputs.datasets[0]): files, ("same", None): files}
    d = {x.name: x for x in diff_runs(a, b, include_unchanged=True, folders=folders).datasets}
    assert d["imgs"].files == files and d["same"].files is None
    assert d["imgs"].to_dict()["added"] == ["n.txt"] and d["imgs"].to_dict()["removed"] == []
    assert d["same"].to_dict()["added"] is None
    assert diff_runs(a, b).datasets[0].files is None  # no manifests given: digests only


def test_artifacts_added_removed_changed_by_digest() -> None:
    a = make_run(
        artifacts={
            "m.pkl": {"digest": "d1", "size": 3},
            "x": {"digest": "d2"},
            "same": {"digest": "s"},
        }
    )
    b = make_run(
        artifacts={
            "m.pkl": {"digest": "d9", "size": 4},
            "y": {"digest": "d3"},
            "same": {"digest": "s"},
        }
    )
    d = diff_runs(a, b).artifacts
    assert [(x.path, x.kind) for x in d] == [("m.pkl", "changed"), ("x", "removed"), ("y", "added")]
    assert d[0].old_size == 3 and d[0].new_size == 4


def test_environment_python_packages_and_recorded_env() -> None:
    a = make_run(
        environment={"python": "3.11.7", "packages": {"numpy": "1.26", "yaml": "6"}},
        source={"env": {"PYTHONHASHSEED": "0"}},
    )
    b = make_run(
        environment={"python": "3.12.1", "packages": {"numpy": "2.0", "yaml": "6"}},
        source={"env": {"PYTHONHASHSEED": "1"}},
    )
    keys = {c.key: (c.old, c.new) for c in diff_runs(a, b).environment}
    assert keys == {
        "python": ("3.11.7", "3.12.1"),
        "packages.numpy": ("1.26", "2.0"),
        "env.PYTHONHASHSEED": ("0", "1"),
    }


def test_identical_runs_have_empty_diff_and_code_section_from_caller() -> None:
    a = make_run(params={"x": 1}, metrics={"m": 1.0})
    b = make_run(run_id="b" * 32, params={"x": 1}, metrics={"m": 1.0})
    d = diff_runs(a, b, code=build_code_diff(a, b))
    assert d.identical
    files = [FileStat("train.py", 3, 1)]
    d2 = diff_runs(a, b, code=build_code_diff(a, b, files))
    assert not d2.identical and not d2.section_empty("code")
    assert d2.section_empty("params")


def test_parse_numstat_with_binary_and_rename() -> None:
    # \x00 before the "0" count: an octal \0 would swallow the digit (\00 is one NUL)
    text = "3\t1\ttrain.py\x00-\t-\tdata.bin\x000\t0\t\x00old.py\x00new.py\x00"
    got = parse_numstat(text)
    assert got == (
        FileStat("train.py", 3, 1),
        FileStat("data.bin", None, None),
        FileStat("new.py", 0, 0, old_path="old.py"),
    )
    assert got[1].binary


def test_to_dict_is_json_serializable_with_nan() -> None:
    a = make_run(metrics={"acc": math.nan, "loss": math.inf})
    b = make_run(metrics={"acc": 0.5, "loss": 1.0})
    d = diff_runs(a, b, code=build_code_diff(a, b, [FileStat("f", 1, 0)], patch="+x"))
    text = json.dumps(d.to_dict(), allow_nan=False)
    assert json.loads(text)["code"]["patch"] == "+x"
    json.dumps(compare_runs([a, b]).to_dict(), allow_nan=False)


def test_compare_keeps_differing_rows_and_marks_best() -> None:
    runs = [
        make_run(
            run_id="1" * 32,
            name="one",
            params={"lr": 0.1, "bs": 32},
            metrics={"acc": 0.8, "loss": 0.3, "lr_now": 1.0},
        ),
        make_run(
            run_id="2" * 32,
            name="two",
            params={"lr": 0.2, "bs": 32},
            metrics={"acc": 0.9, "loss": 0.4, "lr_now": 2.0},
        ),
        make_run(
            run_id="3" * 32,
            name="three",
            params={"lr": 0.3, "bs": 32},
            metrics={"acc": 0.9, "loss": 0.2},
        ),
    ]
    table = compare_runs(runs)
    rows = {(r.section, r.key): r for r in table.rows}
    assert ("params", "bs") not in rows
    assert rows[("params", "lr")].values == (0.1, 0.2, 0.3)
    assert rows[("metrics", "acc")].best == frozenset({1, 2})
    assert rows[("metrics", "loss")].best == frozenset({2})
    assert rows[("metrics", "lr_now")].best == frozenset()
    assert rows[("metrics", "lr_now")].values == (1.0, 2.0, None)
    assert ("info", "name") in rows
    every = compare_runs(runs, all_rows=True)
    assert any(r.key == "bs" for r in every.rows)


def test_compare_unknown_section_raises() -> None:
    with pytest.raises(ValueError, match="unknown compare section"):
        compare_runs([make_run()], sections=("nope",))
