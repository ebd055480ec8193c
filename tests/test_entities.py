"""Typed record entries: Digest, DatasetInput, ArtifactEntry and their record codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import vtrack
from tests.conftest import git
from vtrack.entities import ArtifactEntry, DatasetInput, Digest, RunInputs
from vtrack.errors import ValidationError

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
digests = st.builds(
    lambda h: f"xxh3-128:{h}", st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
)
optional_int = st.none() | st.integers(min_value=0, max_value=2**40)


@st.composite
def dataset_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": draw(text.filter(bool)),
        "context": draw(st.none() | text),
        "source": draw(st.none() | text),
        "kind": draw(st.sampled_from(["file", "folder", "dataframe", "array", "uri"])),
        "digest": draw(st.none() | digests),
        "size": draw(optional_int),
        "format": draw(st.none() | st.sampled_from(["csv", "parquet", "mixed"])),
        "verifiable": draw(st.booleans()),
        "tags": draw(st.dictionaries(text.filter(bool), text, max_size=3)),
    }
    optional = {
        "path": st.just("/data/x.csv"),
        "file_count": st.integers(0, 10**6),
        "rows": st.integers(0, 10**9),
        "source_digest": digests,
        "manifest": st.just("inputs/x.tsv"),
        "repo_path": st.just("data/x.csv"),
        "exclude": st.lists(st.just("*.tmp"), min_size=1, max_size=2),
        "schema": st.just({"columns": [{"name": "a", "dtype": "int64"}]}),
        "from_a_newer_vtrack": st.integers(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            record[key] = draw(strategy)
    return record


@given(dataset_records())
def test_a_dataset_record_round_trips_through_the_typed_entry(record: dict[str, Any]) -> None:
    entry = DatasetInput.from_record(record)
    assert entry.to_record() == record
    assert dict(entry) == record and entry == record  # the Mapping view is the record form
    assert DatasetInput.from_record(entry.to_record()).to_record() == record
    assert (entry.digest is None) == (record["digest"] is None)
    if record["digest"] is not None:
        assert isinstance(entry.digest, Digest) and str(entry.digest) == record["digest"]
        assert entry["digest"] == record["digest"]
    if "from_a_newer_vtrack" in record:  # unknown keys pass through unchanged
        assert entry.extra == {"from_a_newer_vtrack": record["from_a_newer_vtrack"]}


@given(
    st.builds(
        lambda d, size, large, blob: {
            "digest": d,
            "size": size,
            "storage": "large" if large else "git",
            **({} if large else {"blob": blob}),
        },
        digests, st.integers(0, 2**40), st.booleans(),
        st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
    )
)  # fmt: skip
def test_an_artifact_record_round_trips(record: dict[str, Any]) -> None:
    entry = ArtifactEntry.from_record("model/w.bin", record)
    assert entry.path == "model/w.bin" and "path" not in entry  # the manifest's key
    assert entry.to_record() == record and dict(entry) == record
    assert entry.is_large == (record["storage"] == "large")
    assert entry.size == record["size"] and str(entry.digest) == record["digest"]


def test_digest_parses_and_prints_its_record_form() -> None:
    d = Digest.parse("xxh3-128:" + "a" * 32)
    assert (d.algorithm, d.hex, str(d), d.short(8)) == (
        "xxh3-128",
        "a" * 32,
        "xxh3-128:" + "a" * 32,
        "a" * 8,
    )
    assert Digest.parse(d) is d
    assert str(Digest.parse("deadbeef")) == "deadbeef"  # no algorithm named: kept as written
    with pytest.raises(ValidationError, match="non-empty string"):
        Digest.parse("")


def test_entries_are_frozen() -> None:
    entry = DatasetInput.from_record({"name": "a", "digest": "xxh3-128:" + "0" * 32})
    with pytest.raises(AttributeError):
        entry.name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry["name"] = "b"  # type: ignore[index]


def test_run_inputs_leave_out_damaged_elements_and_type_the_rest() -> None:
    inputs = RunInputs.from_record(
        [{"name": "ok"}, "not a mapping", None], {"a.txt": {"digest": "x", "size": 1}, "b": 7}
    )
    assert [e.name for e in inputs.datasets] == ["ok"]
    assert list(inputs.artifacts) == ["a.txt"] and isinstance(
        inputs.artifacts["a.txt"], ArtifactEntry
    )


def test_a_run_read_back_has_typed_entries(repo: Path) -> None:
    (repo / "data.csv").write_text("a,b\n1,2\n")
    with vtrack.start_run() as run:
        logged = vtrack.log_input(str(repo / "data.csv"), context="train")
        vtrack.log_text("hello", "notes.txt")
    got = vtrack.get_run(run.info.run_id)
    [entry] = got.inputs.datasets
    assert isinstance(entry, DatasetInput) and entry == logged
    assert (entry.name, entry.context, entry.kind, entry.rows, entry.format) == (
        "data.csv",
        "train",
        "file",
        1,
        "csv",
    )
    assert isinstance(entry.digest, Digest) and entry.digest.algorithm == "xxh3-128"
    art = got.inputs.artifacts["notes.txt"]
    assert isinstance(art, ArtifactEntry) and art.size == 5 and not art.is_large
    # what the record holds is exactly the entry's record form
    record = yaml.safe_load(git(repo, "show", f"{got.info.commit}:.vtrack/inputs.yaml"))
    assert record == [entry.to_record()]


@pytest.mark.parametrize("collector_on", [True, False])
def test_metric_points_from_columns_equal_points_made_one_by_one(collector_on: bool) -> None:
    import gc
    from array import array

    from vtrack.entities import Metric

    steps, times, values = (
        array("q", [0, 1, 2**62]),
        array("q", [5, 6, 7]),
        array("d", [0.5, -0.0, 2.0]),
    )
    was = gc.isenabled()
    try:
        (gc.enable if collector_on else gc.disable)()
        points = Metric.from_columns("loss", steps, times, values)
        assert gc.isenabled() is collector_on  # the collector is left as it was found
    finally:
        (gc.enable if was else gc.disable)()
    assert points == [
        Metric("loss", 0.5, 5, 0),
        Metric("loss", -0.0, 6, 1),
        Metric("loss", 2.0, 7, 2**62),
    ]
    assert [type(p) for p in points] == [Metric] * 3
    assert points[2].step == 2**62 and points[1].key == "loss"
    with pytest.raises(AttributeError):
        points[0].value = 1.0  # type: ignore[misc]


def test_a_fresh_copy_of_a_run_shares_nothing_the_caller_can_change() -> None:
    from vtrack.entities import Run, RunData, RunInfo
    from vtrack.entities.run import SystemTags, fresh_copy

    info = RunInfo("a" * 32, "brave-fox", "0", "FINISHED", 1, 2, "ana")
    run = Run(info=info, data=RunData({"lr": 0.1}, {"acc": 0.9}, {"team": "x"}))
    copy = fresh_copy(run)
    assert copy == run and copy is not run
    copy.data.params["lr"] = 1.0
    copy.data.metrics.clear()
    copy.data.tags["team"] = "y"
    assert run.data.params == {"lr": 0.1} and run.data.metrics == {"acc": 0.9}
    assert run.data.tags == {"team": "x"}
    assert (
        isinstance(copy.data.tags, SystemTags) and copy.data.tags["mlflow.runName"] == "brave-fox"
    )
    assert copy.info is run.info and copy.inputs is run.inputs
