"""The run record: metric history chunks, latest values, the YAML codec, tree round trips.

Trees are written into real repositories and read back with git (``ls-tree``,
``show``), so the format contract of docs/concepts/run-record.md is what is checked.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import assert_fsck_clean, git
from vtrack.errors import CorruptObjectError, ParamConflictError
from vtrack.limits import HISTORY_CHUNK_ROWS
from vtrack.store.gitobj import BLOB_MODE, TREE_MODE, GitObjects, object_sha
from vtrack.store.record import (
    RecordState,
    chunk_name,
    dump_yaml,
    format_row,
    load_yaml,
    parse_rows,
    storable,
)


@pytest.fixture
def objects(repo: Path) -> GitObjects:
    return GitObjects(repo / ".git")


def rows(start: int, stop: int) -> list[tuple[int, int, float]]:
    return [(i, 1_000 + i, i / 8) for i in range(start, stop)]


def fill(state: RecordState, key: str, points: list[tuple[int, int, float]]) -> None:
    for step, ts, value in points:
        state.add_metric(key, step, ts, value)


def commit_record(repo: Path, objects: GitObjects, state: RecordState) -> str:
    """Put the record's tree under ``.vtrack`` of a commit on a ref (for git to read)."""
    record = state.build_tree()
    state.chunks_stored(list(state.unstored))
    root = objects.write_tree([(TREE_MODE, b".vtrack", record)])
    sha = git(repo, "commit-tree", root, "-m", "run")
    git(repo, "update-ref", "refs/vtrack/runs/r", sha)
    return record


def chunk_lines(repo: Path, key: str) -> list[int]:
    ref = f"refs/vtrack/runs/r:.vtrack/metrics/{key}"
    names = git(repo, "ls-tree", "--name-only", ref).splitlines()
    assert names == [chunk_name(i) for i in range(len(names))]
    return [len(git(repo, "show", f"{ref}/{n}").splitlines()) for n in names]


# -- history chunks ---------------------------------------------------------------------


def test_history_is_sealed_in_chunks_of_exactly_10000_rows(repo: Path, objects: GitObjects) -> None:
    assert HISTORY_CHUNK_ROWS == 10_000  # the format contract
    state = RecordState(objects)
    points = rows(0, 25_000)
    fill(state, "loss", points)
    hist = state.histories["loss"]
    assert len(hist.chunks) == 2 and len(hist.tail) == 5_000 and hist.count == 25_000
    assert list(state.unstored) == hist.chunks  # sealed, named, not stored yet
    for i, sha in enumerate(hist.chunks):
        data = state.unstored[sha]
        assert object_sha(b"blob", data) == sha
        assert parse_rows(data.decode()) == points[i * 10_000 : (i + 1) * 10_000]
    commit_record(repo, objects, state)
    assert chunk_lines(repo, "loss") == [10_000, 10_000, 5_000]
    first = git(repo, "show", "refs/vtrack/runs/r:.vtrack/metrics/loss/000000.tsv")
    assert first.splitlines()[:2] == ["0\t1000\t0.0", "1\t1001\t0.125"]
    assert state.unstored == {}
    assert list(state.iter_history("loss")) == points  # now read back from git
    assert_fsck_clean(repo)


def test_exactly_one_full_chunk_has_no_tail_until_the_next_point(
    repo: Path, objects: GitObjects
) -> None:
    state = RecordState(objects)
    fill(state, "acc", rows(0, 10_000))
    record = commit_record(repo, objects, state)
    assert chunk_lines(repo, "acc") == [10_000]
    loaded = RecordState.from_tree(objects, record)
    hist = loaded.histories["acc"]
    assert len(hist.chunks) == 1 and hist.tail == []
    fill(loaded, "acc", rows(10_000, 10_001))
    commit_record(repo, objects, loaded)
    assert chunk_lines(repo, "acc") == [10_000, 1]
    assert list(loaded.iter_history("acc")) == rows(0, 10_001)


def test_checkpoint_rewrites_only_the_tail_chunk(repo: Path, objects: GitObjects) -> None:
    state = RecordState(objects)
    state.set_param("lr", 0.1)
    fill(state, "loss", rows(0, 10_005))
    commit_record(repo, objects, state)
    ref = "refs/vtrack/runs/r:.vtrack"
    sealed = git(repo, "rev-parse", f"{ref}/metrics/loss/000000.tsv")
    params = git(repo, "rev-parse", f"{ref}/params.yaml")
    tail = git(repo, "rev-parse", f"{ref}/metrics/loss/000001.tsv")
    long_ago = time.time() - 86400
    for sha in (sealed, params):
        os.utime(repo / ".git/objects" / sha[:2] / sha[2:], (long_ago, long_ago))
    fill(state, "loss", rows(10_005, 10_010))
    commit_record(repo, objects, state)
    assert git(repo, "rev-parse", f"{ref}/metrics/loss/000000.tsv") == sealed
    assert git(repo, "rev-parse", f"{ref}/params.yaml") == params
    assert git(repo, "rev-parse", f"{ref}/metrics/loss/000001.tsv") != tail
    assert chunk_lines(repo, "loss") == [10_000, 10]
    for sha in (sealed, params):  # neither written again (not even freshened)
        assert (repo / ".git/objects" / sha[:2] / sha[2:]).stat().st_mtime == long_ago


def test_sealed_chunks_go_into_the_callers_batch_and_stay_readable_until_stored(
    objects: GitObjects,
) -> None:
    state = RecordState(objects)
    fill(state, "m", rows(0, 20_001))
    with objects.batch() as batch:
        shas = state.store_chunks()
    assert batch.handle is not None and set(batch.handle.entries) == set(shas)
    assert len(shas) == 2 and set(state.unstored) == set(shas)
    assert list(state.iter_history("m")) == rows(0, 20_001)  # still from memory
    state.chunks_stored(shas)
    assert state.unstored == {}
    assert list(state.iter_history("m")) == rows(0, 20_001)  # from the pack now
    state.chunks_stored(shas)  # twice is harmless


# -- latest values ------------------------------------------------------------------------


def test_latest_value_is_at_the_highest_step_then_timestamp_then_larger_value(
    objects: GitObjects,
) -> None:
    state = RecordState(objects)
    state.add_metric("m", 5, 100, 1.0)
    state.add_metric("m", 5, 100, 2.0)  # equal step and timestamp: the larger (MLflow)
    assert state.metrics["m"] == 2.0
    state.add_metric("m", 5, 100, 1.5)  # smaller, logged later: MLflow keeps 2.0
    assert state.metrics["m"] == 2.0
    state.add_points([("m", 0.5, 5, 100), ("m", 1.8, 5, 100)], ["5\t100\t0.5\n", "5\t100\t1.8\n"])
    assert state.metrics["m"] == 2.0
    state.add_metric("m", 5, 99, 3.0)  # equal step, earlier timestamp
    assert state.metrics["m"] == 2.0
    state.add_metric("m", 4, 10**12, 4.0)  # lower step, however late
    assert state.metrics["m"] == 2.0
    state.add_metric("m", 5, 101, 5.0)
    assert state.metrics["m"] == 5.0
    state.add_metric("m", 6, 0, float("nan"))
    assert math.isnan(state.metrics["m"])


def test_latest_value_keeps_the_rule_after_loading_the_record_from_a_tree(
    objects: GitObjects,
) -> None:
    # a resumed run (start_run(run_id=...)), a rebasing writer and recovery all load the
    # record from its commit and then add points
    state = RecordState(objects)
    state.add_metric("m", 10, 1_000, 0.1)
    state.add_metric("m", 3, 2_000, 0.7)
    loaded = RecordState.from_tree(objects, state.build_tree())
    assert loaded.metrics == {"m": 0.1}
    loaded.add_metric("m", 5, 3_000, 0.9)  # a lower step than the committed latest
    assert loaded.metrics == {"m": 0.1}
    loaded.add_metric("m", 10, 1_000, 0.2)  # equal step and timestamp: the larger value
    assert loaded.metrics == {"m": 0.2}
    again = RecordState.from_tree(objects, loaded.build_tree())
    again.add_metric("m", 10, 1_000, 0.15)
    assert again.metrics == {"m": 0.2}


# -- the YAML codec --------------------------------------------------------------------------

param_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.sampled_from(["1", "1.0", "true", "no", "null", "~", "", " ", "0x10", "1e3", ".inf"]),
)
param_keys = st.from_regex(r"[A-Za-z0-9_./ -]{1,30}", fullmatch=True)


def same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b) and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


@given(params=st.dictionaries(param_keys, param_values, max_size=20))
def test_yaml_codec_round_trips_typed_params(params: dict[str, Any]) -> None:
    data = dump_yaml(params)
    back = load_yaml(data)
    assert set(back or {}) == set(params)
    for key, value in params.items():
        assert same_value(value, back[key]), (key, value, back[key])
    assert dump_yaml(back or {}) == data  # stable: dumping it again changes nothing


def test_yaml_is_sorted_block_style_and_read_back_through_git(
    repo: Path, objects: GitObjects
) -> None:
    state = RecordState(objects)
    params = {"z": 1, "a.b": "x", "m": 1, "n": None, "f": float("inf")}
    for k, v in params.items():
        state.set_param(k, v)
    state.info = {"id": "0" * 32, "status": "RUNNING"}
    state.set_tag("team", "growth")
    record = commit_record(repo, objects, state)
    text = git(repo, "show", "refs/vtrack/runs/r:.vtrack/params.yaml")
    assert text.splitlines() == ["a.b: x", "f: .inf", "m: 1", "n: null", "z: 1"]
    run_yaml = load_yaml(git(repo, "show", "refs/vtrack/runs/r:.vtrack/run.yaml"))
    assert run_yaml == {
        "id": "0" * 32,
        "status": "RUNNING",
        "tags": {"team": "growth"},
        "format": 1,
    }
    loaded = RecordState.from_tree(objects, record)
    assert loaded.params == params and loaded.tags == {"team": "growth"}
    assert loaded.info == {"id": "0" * 32, "status": "RUNNING"}


any_text = st.text(
    st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
)
nested = st.recursive(
    st.one_of(any_text, st.integers(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in all_strings(k) + all_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in all_strings(v)]
    return []


@given(value=nested)
def test_storable_never_raises_and_always_gives_encodable_text(value: Any) -> None:
    out = storable(value)
    for s in all_strings(out):
        s.encode("utf-8")
    assert load_yaml(dump_yaml(value)) == out  # dump_yaml never fails either


valid_nested = st.recursive(
    st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(value=valid_nested)
def test_storable_is_identity_on_valid_unicode(value: Any) -> None:
    assert storable(value) == value


@given(raw=st.binary(max_size=40))
def test_storable_shows_undecodable_bytes_as_hex_escapes(raw: bytes) -> None:
    decoded = os.fsdecode(raw)  # how Python hands non-UTF-8 argv and paths over
    assert storable(decoded) == raw.decode("utf-8", "backslashreplace")


# -- params, inputs, files, loading ---------------------------------------------------------------


def test_param_relogged_with_another_value_raises_and_keeps_the_first(objects: GitObjects) -> None:
    state = RecordState(objects)
    state.set_param("lr", 0.1)
    state.set_param("lr", 0.1)
    state.set_param("nan", float("nan"))
    state.set_param("nan", float("nan"))  # NaN equals NaN for params
    with pytest.raises(ParamConflictError) as info:
        state.set_param("lr", 0.2)
    assert info.value.fields == {"key": "lr", "old": 0.1, "new": 0.2}
    with pytest.raises(ParamConflictError):
        state.set_param("lr", "0.1")  # another type is another value
    assert state.params["lr"] == 0.1


def test_full_record_round_trips_through_its_tree(repo: Path, objects: GitObjects) -> None:
    state = RecordState(objects)
    state.info = {"id": "1" * 32, "name": "bright-fox", "status": "FINISHED", "end_time": 5}
    state.set_tag("a", "b")
    state.set_param("p", True)
    fill(state, "val/loss", rows(0, 3))
    fill(state, "val", rows(0, 2))
    state.add_input({"name": "train", "context": "train", "digest": "d1"})
    state.add_input({"name": "train", "context": "eval", "digest": "d2"})
    state.add_input({"name": "train", "context": "train", "digest": "d3"})  # replaces d1
    blob = objects.write_blob(b"model bytes")
    state.add_artifact("model.bin", {"digest": "xxh3-128:00", "size": 11, "storage": "git"})
    state.add_file("artifacts/models/model.bin", BLOB_MODE, blob)
    state.add_file("notes.txt", BLOB_MODE, blob)
    record = commit_record(repo, objects, state)
    ref = "refs/vtrack/runs/r:.vtrack"
    assert git(repo, "show", f"{ref}/artifacts/models/model.bin") == "model bytes"
    listed = git(repo, "ls-tree", "--name-only", f"{ref}/metrics/val").splitlines()
    assert listed == ["000000.tsv", "loss"]  # a folder holds chunks and deeper keys
    loaded = RecordState.from_tree(objects, record)
    assert loaded.info == state.info and loaded.tags == state.tags
    assert loaded.params == {"p": True}
    assert loaded.metrics == state.metrics == {"val/loss": 0.25, "val": 0.125}
    assert [e["digest"] for e in loaded.inputs] == ["d2", "d3"]
    assert loaded.artifacts == state.artifacts
    assert set(loaded.extra) == {"artifacts", "notes.txt"}
    assert list(loaded.iter_history("val/loss")) == rows(0, 3)
    copy = loaded.copy()
    fill(copy, "val", rows(2, 3))
    copy.set_tag("c", "d")
    assert loaded.histories["val"].count == 2 and "c" not in loaded.tags
    # adding a file under an existing folder keeps what the folder held
    copy.add_file("artifacts/other.txt", BLOB_MODE, blob)
    again = RecordState.from_tree(objects, copy.build_tree())
    tree = again.extra["artifacts"][1]
    assert {n for _, n, _ in objects.read_tree(tree)} == {b"models", b"other.txt"}
    assert_fsck_clean(repo)


def test_record_with_a_history_but_no_latest_value_is_corrupt(objects: GitObjects) -> None:
    state = RecordState(objects)
    fill(state, "m", rows(0, 2))
    record = state.build_tree()
    entries = [e for e in objects.read_tree(record) if e[1] != b"metrics.yaml"]
    entries.append((BLOB_MODE, b"metrics.yaml", objects.write_blob(dump_yaml({}))))
    with pytest.raises(CorruptObjectError, match="'m'"):
        RecordState.from_tree(objects, objects.write_tree(entries))


def test_history_rows_use_float_repr_and_round_trip_exactly() -> None:
    values = [0.1, 1e-300, -0.0, float("inf"), float("-inf"), 123456789.123456789, 5e-324]
    text = "".join(format_row(i, 10 * i, v) for i, v in enumerate(values))
    assert "inf\n" in text and "-inf\n" in text
    back = parse_rows(text + "\n")
    assert [(s, t) for s, t, _ in back] == [(i, 10 * i) for i in range(len(values))]
    assert [repr(v) for _, _, v in back] == [repr(v) for v in values]
    assert math.isnan(parse_rows(format_row(0, 0, float("nan")))[0][2])


# -- histories are read on first use ----------------------------------------------------


def _wide_record(objects: GitObjects) -> str:
    state = RecordState(objects)
    state.set_param("p", 1)
    for k in range(40):
        fill(state, f"m{k:02d}", rows(0, 3 + k))
    fill(state, "nested/a", rows(0, HISTORY_CHUNK_ROWS + 5))  # a sealed chunk and a tail
    fill(state, "nested/b/c", rows(10, 12))
    return state.build_tree()


def test_a_loaded_record_reads_only_the_histories_it_is_asked_for(
    objects: GitObjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _wide_record(objects)
    reads: list[str] = []
    original = GitObjects.read

    def counting(self: GitObjects, sha: str) -> tuple[bytes, bytes]:
        reads.append(sha)
        return original(self, sha)

    monkeypatch.setattr(GitObjects, "read", counting)
    state = RecordState.from_tree(objects, tree)
    loaded = len(reads)
    assert loaded <= 6  # the record tree, its YAML files, the metrics tree: no history
    assert state.metrics["m07"] == 9 / 8
    assert list(state.iter_history("m07")) == rows(0, 10)
    assert len(reads) - loaded <= 2  # that metric's folder and its one chunk
    assert list(state.iter_history("absent")) == [] and state.history("nested") is None
    assert list(state.iter_history("nested/b/c")) == rows(10, 12)


def test_lazily_read_histories_equal_the_eagerly_read_ones(objects: GitObjects) -> None:
    tree = _wide_record(objects)
    lazy = RecordState.from_tree(objects, tree)
    eager = RecordState.from_tree(objects, tree)
    every = eager.histories  # everything read at once
    assert sorted(every) == sorted(lazy.metrics)
    for key in sorted(lazy.metrics, reverse=True):
        assert list(lazy.iter_history(key)) == list(eager.iter_history(key))
    # unchanged, a loaded record writes the same tree (its metrics tree reused as is)
    assert RecordState.from_tree(objects, tree).build_tree() == tree
    # appending to one history of a partly read record writes what an eager one writes
    part = RecordState.from_tree(objects, tree)
    list(part.iter_history("m03"))
    for state in (part, eager, RecordState.from_tree(objects, tree)):
        fill(state, "m03", rows(100, 102))
        fill(state, "nested/a", rows(200, 201))
        fill(state, "new", rows(0, 1))
    trees = {part.build_tree(), eager.build_tree()}
    assert len(trees) == 1
    back = RecordState.from_tree(objects, trees.pop())
    assert list(back.iter_history("m03")) == rows(0, 6) + rows(100, 102)
    assert list(back.iter_history("new")) == rows(0, 1)
    assert sorted(back.histories) == sorted(set(lazy.metrics) | {"new"})


def test_a_copy_of_a_partly_read_record_reads_on_by_itself(objects: GitObjects) -> None:
    tree = _wide_record(objects)
    state = RecordState.from_tree(objects, tree)
    list(state.iter_history("m01"))
    other = state.copy()
    fill(other, "m01", rows(50, 51))
    assert list(state.iter_history("m01")) == rows(0, 4)
    assert list(other.iter_history("m01")) == rows(0, 4) + rows(50, 51)
    assert list(other.iter_history("m02")) == rows(0, 5)
    assert state.build_tree() == tree and other.build_tree() != tree
