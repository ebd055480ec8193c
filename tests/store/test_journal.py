"""The live journal: line codec, coverage, reading beyond coverage, replay, torn writes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from vtrack.errors import ParamConflictError
from vtrack.store import Store
from vtrack.store.gitobj import BLOB_MODE, EXEC_MODE, GitObjects
from vtrack.store.journal import (
    ForeignWriter,
    Journal,
    apply_lines,
    encode_artifact,
    encode_delete_tag,
    encode_file,
    encode_info,
    encode_input,
    encode_param,
    encode_status,
    encode_tag,
    format_coverage,
    list_writers,
    parse_coverage,
    replay,
    segment_seq,
)
from vtrack.store.owner import Owner
from vtrack.store.record import RecordState, format_row

# -- the line codec ---------------------------------------------------------------------

keys = st.from_regex(
    r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,15}(/[A-Za-z0-9_][A-Za-z0-9_. -]{0,7})?", fullmatch=True
)
floats = st.floats(allow_nan=True, allow_infinity=True)
values = st.one_of(st.none(), st.booleans(), st.integers(), floats, st.text(max_size=30))
entries = st.dictionaries(st.sampled_from(["digest", "size", "storage", "n"]), values, max_size=4)
sha = st.binary(min_size=20, max_size=20).map(bytes.hex)
ops = st.one_of(
    st.tuples(st.just("m"), keys, st.integers(-(2**40), 2**40), st.integers(0, 2**45), floats),
    st.tuples(st.just("p"), keys, values),
    st.tuples(st.just("t"), keys, st.text(max_size=30)),
    st.tuples(st.just("T"), keys),
    st.tuples(st.just("s"), st.sampled_from(["RUNNING", "FINISHED", "FAILED", "KILLED"]),
              st.one_of(st.none(), st.integers(0, 2**45))),
    st.tuples(st.sampled_from(["n", "d"]), st.text(max_size=30)),
    st.tuples(st.just("f"), st.from_regex(r"[a-z]{1,5}(/[a-z]{1,5}){0,2}", fullmatch=True),
              st.sampled_from([BLOB_MODE, EXEC_MODE]), sha),
    st.tuples(st.just("a"), st.text(min_size=1, max_size=20), entries),
    st.tuples(st.just("i"), st.fixed_dictionaries(
        {"name": st.sampled_from(["train", "eval"]), "context": st.sampled_from(["a", "b"])},
        optional={"digest": st.text(max_size=10)},
    )),
)  # fmt: skip


def encode(op: tuple) -> str:
    """The journal line for one operation, as RunWriter writes it."""
    kind = op[0]
    if kind == "m":
        _, key, step, ts, value = op
        return f"m\t{key}\t{format_row(step, ts, value)}"
    return {
        "p": lambda: encode_param(op[1], op[2]),
        "t": lambda: encode_tag(op[1], op[2]),
        "T": lambda: encode_delete_tag(op[1]),
        "s": lambda: encode_status(op[1], op[2]),
        "n": lambda: encode_info("n", op[1]),
        "d": lambda: encode_info("d", op[1]),
        "f": lambda: encode_file(op[1], op[2], op[3]),
        "a": lambda: encode_artifact(op[1], op[2]),
        "i": lambda: encode_input(op[1]),
    }[kind]()


def apply_directly(state: RecordState, op: tuple) -> None:
    """What the writer does in memory for one operation."""
    kind = op[0]
    if kind == "m":
        state.add_metric(op[1], op[2], op[3], op[4])
    elif kind == "p":
        try:
            state.set_param(op[1], op[2])
        except ParamConflictError:
            pass
    elif kind == "t":
        state.set_tag(op[1], op[2])
    elif kind == "T":
        state.delete_tag(op[1])
    elif kind == "s":
        state.info["status"], state.info["end_time"] = op[1], op[2]
    elif kind in "nd":
        state.info["name" if kind == "n" else "description"] = op[1]
    elif kind == "f":
        state.add_file(op[1], op[2], op[3])
    elif kind == "a":
        state.add_artifact(op[1], op[2])
    else:
        state.add_input(op[1])


def snapshot(state: RecordState) -> str:
    """Everything a record holds, as text in which NaN equals NaN and types show."""

    def typed(d: dict) -> list:
        return sorted((k, type(v).__name__, repr(v)) for k, v in d.items())

    def entries(x: object) -> str:  # key order inside an entry is not part of the record
        return json.dumps(x, sort_keys=True)

    return repr((
        typed(state.params), sorted(state.tags.items()), typed(state.info),
        typed(state.metrics),
        {k: [repr(r) for r in state.iter_history(k)] for k in sorted(state.histories)},
        entries(state.artifacts), entries(state.inputs), sorted(state.pending_files.items()),
    ))  # fmt: skip


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> GitObjects:
    path = tmp_path_factory.mktemp("journal") / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return GitObjects(path)


@given(ops=st.lists(ops, max_size=40))
def test_journal_lines_rebuild_exactly_what_the_writer_held(objects: GitObjects, ops: list) -> None:
    direct = RecordState(objects)
    for op in ops:
        apply_directly(direct, op)
    text = "".join(encode(op) for op in ops)
    assert text.count("\n") == len(ops)  # one line per operation, whatever the values
    replayed = RecordState(objects)
    warnings = apply_lines(replayed, text)
    assert all(w.startswith("param ") for w in warnings)  # only conflicts, first value kept
    assert snapshot(replayed) == snapshot(direct)


@given(ops=st.lists(ops, min_size=1, max_size=20), cut=st.integers(1, 200))
def test_torn_final_line_is_ignored(objects: GitObjects, ops: list, cut: int) -> None:
    text = "".join(encode(op) for op in ops)
    last = encode(ops[-1])
    torn = text[: len(text) - len(last)] + last[: max(0, min(cut, len(last) - 1))]
    whole = RecordState(objects)
    apply_lines(whole, text[: len(text) - len(last)])
    state = RecordState(objects)
    apply_lines(state, torn)
    assert snapshot(state) == snapshot(whole)


def test_unreadable_lines_are_skipped_with_a_warning_and_the_rest_applied(
    objects: GitObjects,
) -> None:
    state = RecordState(objects)
    text = (
        "m\tloss\tnot-a-step\t1\t0.5\n"
        "X\twhatever\n"
        "p\tlr\t0.1\n"
        "p\tlr\t0.2\n"
        "m\tloss\t1\t2\t0.25\n"
        "p\tbroken\n"
    )
    warnings = apply_lines(state, text)
    assert len(warnings) == 4
    assert any("unknown journal operation 'X'" in w for w in warnings)
    assert any("param 'lr'" in w for w in warnings)  # the first value is kept
    assert state.params == {"lr": 0.1} and state.metrics == {"loss": 0.25}


def test_journaled_strings_that_are_not_unicode_are_kept_escaped(objects: GitObjects) -> None:
    bad = os.fsdecode(b"caf\xe9")  # a lone surrogate, as Python decodes such bytes
    state = RecordState(objects)
    apply_lines(state, encode_tag("path", bad) + encode_info("d", bad) + encode_param("p", bad))
    assert state.tags == {"path": "caf\\xe9"}
    assert state.info["description"] == "caf\\xe9" and state.params == {"p": "caf\\xe9"}
    state.build_tree()  # and the record can be written


# -- coverage ---------------------------------------------------------------------------------

writer_ids = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True)
coverages = st.dictionaries(writer_ids, st.tuples(st.integers(0, 10**6), st.integers(0, 2**40)))


# what str.splitlines splits at
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
other_lines = st.lists(
    st.text(st.characters(blacklist_characters=_LINE_BREAKS), max_size=30).filter(
        lambda s: not s.startswith("journal: ")
    ),
    max_size=4,
)


@given(covered=coverages, before=other_lines, after=other_lines)
def test_coverage_round_trips_through_a_commit_message(
    covered: dict, before: list[str], after: list[str]
) -> None:
    text = format_coverage(covered)
    assert text.count("\n") == len(covered)
    message = "vtrack run x\n\n" + "".join(f"{ln}\n" for ln in before) + text + "\n".join(after)
    assert parse_coverage(message) == covered


def test_coverage_ignores_lines_that_only_look_like_it() -> None:
    message = (
        "journal: w1 1\njournal: w2 x 3\njournal: w3 2 -1\n journal: w4 1 2\njournal: w5 4 5\n"
    )
    assert parse_coverage(message) == {"w5": (4, 5)}


def test_coverage_survives_a_real_commit(repo: Path) -> None:
    store = Store.open(str(repo))
    state = RecordState(store.objects)
    state.info = {"id": "a" * 32, "name": "x", "status": "RUNNING"}
    state.covered = {"host-1-abc": (3, 1234), "host-2-def": (0, 0)}
    sha = store.write_run_commit(state, [], None)
    loaded, _, _ = store.read_run_commit(sha)
    assert loaded.covered == state.covered


def write_segments(run_dir: Path, writer_id: str, segments: list[bytes], first: int = 0) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(segments, first):
        (run_dir / f"{writer_id}.{i:06d}.journal").write_bytes(data)


line_text = st.text(
    st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=12
)
segment_lines = st.lists(st.lists(line_text, max_size=6), min_size=1, max_size=4)


@given(
    segments=segment_lines, first=st.integers(0, 3), pick=st.integers(0, 100),
    torn=st.binary(max_size=5).filter(lambda b: b"\n" not in b),
)  # fmt: skip
def test_read_new_skips_exactly_the_covered_bytes(
    tmp_path_factory: pytest.TempPathFactory, segments: list, first: int, pick: int, torn: bytes
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    raw = [b"".join(f"{line}\n".encode() for line in seg) for seg in segments]
    raw[-1] += torn  # the last segment may end in a write cut short
    write_segments(run_dir, "w", raw, first)
    (w,) = list_writers(run_dir)
    assert [segment_seq(s) for s in w.segments] == list(range(first, first + len(raw)))
    # every line boundary of every segment is a coverage a commit may record
    bounds = [(i, 0) for i in range(len(raw))] + [
        (i, len("".join(f"{ln}\n" for ln in seg[: j + 1]).encode()))
        for i, seg in enumerate(segments)
        for j in range(len(seg))
    ]
    i, offset = sorted(bounds)[pick % len(bounds)]
    text, reached = w.read_new((first + i, offset))
    expected = raw[i][offset:] + b"".join(raw[i + 1 :])
    assert text.encode() == expected[: len(expected) - len(torn)]
    last_whole = len(raw[-1]) - len(torn)
    assert reached == (first + len(raw) - 1, last_whole)
    everything, _ = w.read_new(None)
    assert everything.encode() == b"".join(raw)[: len(b"".join(raw)) - len(torn)]
    assert w.read_new((first + len(raw), 0)) == ("", None)  # a newer segment covers all


# -- replay -----------------------------------------------------------------------------------


def make_run(repo: Path, lines: list[str]) -> tuple[Store, str, Path]:
    """A run commit covering the first two lines of a dead-looking writer's journal."""
    store = Store.open(str(repo))
    run_dir = store.run_live_dir("b" * 32)
    text = "".join(lines)
    write_segments(run_dir, "w1", [text.encode()])
    state = RecordState(store.objects)
    state.info = {"id": "b" * 32, "name": "r", "status": "RUNNING"}
    apply_lines(state, "".join(lines[:2]))
    state.covered = {"w1": (0, len("".join(lines[:2]).encode()))}
    return store, store.write_run_commit(state, [], None), run_dir


LINES = [
    "p\tlr\t0.1\n",
    "m\tloss\t0\t100\t1.0\n",
    "m\tloss\t1\t101\t0.5\n",
    't\tphase\t"train"\n',
    "m\tloss\t2\t102\t0.25\n",
]


def test_replay_applies_only_what_the_commit_does_not_cover(repo: Path) -> None:
    store, sha, run_dir = make_run(repo, LINES)
    state, _, _ = store.read_run_commit(sha)
    assert replay(state, list_writers(run_dir)) == []
    assert [r[0] for r in state.iter_history("loss")] == [0, 1, 2]  # step 0 once
    assert state.tags == {"phase": "train"} and state.metrics == {"loss": 0.25}


def test_replayed_state_committed_with_its_coverage_replays_to_the_same_state(
    repo: Path,
) -> None:
    store, sha, run_dir = make_run(repo, LINES)
    once, _, _ = store.read_run_commit(sha)
    writers = list_writers(run_dir)
    replay(once, writers)
    _, reached = writers[0].read_new(once.covered["w1"])
    once.covered["w1"] = reached  # what recovery records
    again, _, _ = store.read_run_commit(store.write_run_commit(once, [], None))
    replay(again, list_writers(run_dir))
    assert snapshot(again) == snapshot(once)


def test_replay_twice_on_one_state_applies_the_journal_once(repo: Path) -> None:
    # replay's promise: "Idempotent: text that the commit behind state already holds is
    # skipped" -- the second call finds the text the first one applied
    store, sha, run_dir = make_run(repo, LINES)
    once, _, _ = store.read_run_commit(sha)
    replay(once, list_writers(run_dir))
    twice, _, _ = store.read_run_commit(sha)
    replay(twice, list_writers(run_dir))
    replay(twice, list_writers(run_dir))
    assert snapshot(twice) == snapshot(once)


@pytest.fixture(scope="module")
def bare_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("replay") / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return Store.open(str(path))


@settings(max_examples=40)  # two commits per example
@given(ops=st.lists(ops, min_size=1, max_size=25), split=st.integers(0, 25))
def test_replaying_onto_the_commit_that_recorded_a_replay_changes_nothing(
    bare_store: Store, ops: list, split: int
) -> None:
    run_id = uuid.uuid4().hex
    lines = [encode(op) for op in ops]
    split = min(split, len(lines))
    write_segments(bare_store.run_live_dir(run_id), "w1", ["".join(lines).encode()])
    state = RecordState(bare_store.objects)
    state.info = {"id": run_id, "name": "r", "status": "RUNNING"}
    apply_lines(state, "".join(lines[:split]))
    state.covered = {"w1": (0, len("".join(lines[:split]).encode()))}
    first, _, _ = bare_store.read_run_commit(bare_store.write_run_commit(state, [], None))
    writers = list_writers(bare_store.run_live_dir(run_id))
    replay(first, writers)
    _, reached = writers[0].read_new(first.covered["w1"])
    if reached is not None:
        first.covered["w1"] = reached  # what recovery records
    committed = bare_store.write_run_commit(first, [], None)
    again, _, _ = bare_store.read_run_commit(committed)
    expected = snapshot(again)
    assert replay(again, writers) == []
    assert snapshot(again) == expected
    whole = RecordState(bare_store.objects)
    whole.info = {"id": run_id, "name": "r", "status": "RUNNING"}
    apply_lines(whole, "".join(lines))
    assert snapshot(again) == snapshot(
        bare_store.read_run_commit(bare_store.write_run_commit(whole, [], None))[0]
    )  # split or not, the journal is applied once


# -- the writer's side ------------------------------------------------------------------------


def test_journal_segments_owner_file_rotation_and_removal(tmp_path: Path) -> None:
    run_dir = tmp_path / "live" / ("c" * 32)
    j = Journal(run_dir, "w1")
    j.open()
    owner = json.loads(j.owner_path.read_text())
    assert owner["pid"] == os.getpid() and owner["writer_id"] == "w1"
    j.append("p\ta\t1\n")
    j.append("")
    j.append('t\tb\t"\u00e9"\n')
    assert j.coverage() == (0, len('p\ta\t1\nt\tb\t"\u00e9"\n'.encode()))
    j.rotate()
    assert j.coverage() == (1, 0)
    assert not j.segment_path(0).exists() and j.segment_path(1).exists()
    j.append("T\tb\n")
    (w,) = list_writers(run_dir)
    assert w.is_alive() and [segment_seq(s) for s in w.segments] == [1]
    assert w.read_text() == "T\tb\n\n"
    j.close(remove=True)
    assert not run_dir.exists()


def test_foreign_writer_is_alive_only_while_its_owner_runs(
    tmp_path: Path, dead_owner: Owner, live_owner: Owner
) -> None:
    run_dir = tmp_path / "run"
    write_segments(run_dir, "dead", [b"p\ta\t1\n"])
    write_segments(run_dir, "live", [b"p\tb\t2\n"])
    write_segments(run_dir, "nobody", [b"p\tc\t3\n"])
    (run_dir / "dead.owner").write_bytes(dead_owner.to_json())
    (run_dir / "live.owner").write_bytes(live_owner.to_json())
    found = {w.writer_id: w for w in list_writers(run_dir)}
    assert {k: w.is_alive() for k, w in found.items()} == {
        "dead": False, "live": True, "nobody": False,
    }  # fmt: skip
    found["dead"].remove()
    assert sorted(os.listdir(run_dir)) == [
        "live.000000.journal", "live.owner", "nobody.000000.journal",
    ]  # fmt: skip
    assert isinstance(found["live"], ForeignWriter)


_FULL_DISK = """
import json, os, resource, signal, sys
from pathlib import Path
from vtrack.store.journal import Journal, JournalWriteError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
j = Journal(Path(sys.argv[1]), "w1")
j.open()
j.append("p\\ta\\t1\\n")
size = os.path.getsize(j.segment_path(0))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, hard))
try:
    j.append("m\\tloss\\t1\\t2\\t" + "9" * 100 + "\\n")
    error = None
except JournalWriteError as exc:
    error = str(exc)
torn = os.path.getsize(j.segment_path(0))
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
if sys.argv[2] == "append":
    j.append("p\\tb\\t2\\n")
print(json.dumps({"error": error, "size": size, "torn": torn, "coverage": j.coverage()}))
"""


@pytest.mark.parametrize("then", ["append", "exit"])
def test_write_cut_short_by_a_full_file_is_repaired_by_the_next_append(
    tmp_path: Path, objects: GitObjects, then: str
) -> None:
    run_dir = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(run_dir), then],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["error"] and "File too large" in out["error"] and "w1.000000.journal" in out["error"]
    assert out["torn"] == out["size"] + 10  # a real partial write happened
    segment = (run_dir / "w1.000000.journal").read_bytes()
    (w,) = list_writers(run_dir)
    text, reached = w.read_new(None)
    state = RecordState(objects)
    apply_lines(state, text + "\n")
    assert state.metrics == {}  # nothing of the failed call
    if then == "append":
        assert segment == b"p\ta\t1\np\tb\t2\n"
        assert state.params == {"a": 1, "b": 2}
        assert out["coverage"] == [0, len(segment)] and reached == (0, len(segment))
    else:  # the writer died before it could repair: the torn bytes are ignored
        assert segment.startswith(b"p\ta\t1\nm\tloss") and not segment.endswith(b"\n")
        assert state.params == {"a": 1} and reached == (0, out["size"])


def test_numbers_survive_the_journal_exactly(objects: GitObjects) -> None:
    state = RecordState(objects)
    values = [0.1, -0.0, 1e308, 5e-324, float("inf"), float("-inf"), 2**53 + 1]
    apply_lines(state, "".join(encode_param(f"p{i}", v) for i, v in enumerate(values)))
    apply_lines(state, encode_param("nan", float("nan")))
    for i, v in enumerate(values):
        got = state.params[f"p{i}"]
        assert type(got) is type(v) and repr(got) == repr(v)
    assert math.isnan(state.params["nan"])
    assert isinstance(state.params["p6"], int)
    assert apply_lines(state, "") == []
