"""``.vtrack/summary.json`` (issue 15, point 3): the index reads it instead of the YAML,
and gets exactly what the YAML says — or falls back to the YAML when it cannot be sure.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vtrack
from tests.conftest import git
from vtrack.client import TrackingClient
from vtrack.store import index_keys, index_records, summary
from vtrack.store.record import dump_yaml, load_yaml
from vtrack.store.summary import SUMMARY_FILE, decode, encode, fast_loads, same_floats

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)  # fmt: skip
_docs = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(min_value=2**62, max_value=2**65).map(lambda i: i * (1 if i % 2 else -1)),
    st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip


@given(st.recursive(st.one_of(_numbers, st.text(max_size=30), st.none(), st.booleans()),
                    lambda kids: st.one_of(st.lists(kids, max_size=4),
                                           st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                    max_leaves=20))  # fmt: skip
def test_the_fast_json_reader_reads_exactly_what_json_reads(doc: Any) -> None:
    """orjson (when installed) reads -9223372036854775809 as a float: such text goes to json."""
    summary._calls = max(summary._calls, summary.ORJSON_AFTER)  # orjson from the first call
    data = json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()
    assert same_floats(fast_loads(data), json.loads(data))
    assert repr(fast_loads(data)) == repr(json.loads(data))


def test_the_fast_json_reader_keeps_integers_beyond_64_bits() -> None:
    for _ in range(summary.ORJSON_AFTER):  # past the documents read before orjson is imported
        fast_loads(b"1")
    for n in (-(2**63) - 1, 2**64, -(2**70), 10**30):
        text = json.dumps({"v": [n, 0.5, "x"]}).encode()
        assert fast_loads(text) == {"v": [n, 0.5, "x"]}
        assert type(fast_loads(text)["v"][0]) is int


@given(st.dictionaries(st.text(max_size=10), _docs, max_size=6))
def test_a_summary_holds_exactly_what_the_yaml_reloads_as(params: dict[str, Any]) -> None:
    yaml_bytes = dump_yaml(params)
    data = encode({"params.yaml": (params, "a" * 40)})
    assert data is not None
    docs = decode(data, {"params.yaml": "a" * 40})
    assert docs is not None
    reloaded = load_yaml(yaml_bytes)
    assert same_floats(docs["params.yaml"], reloaded)
    assert list(docs["params.yaml"]) == list(reloaded)  # key order too (search results)


def test_values_json_cannot_mirror_get_no_summary() -> None:
    assert encode({"params.yaml": ({"t": (1, 2)}, "a" * 40)}) is None
    assert encode({"params.yaml": ({"s": "bad \udcff"}, "a" * 40)}) is None
    assert encode({"params.yaml": ({1: "int key"}, "a" * 40)}) is None


def test_a_summary_of_other_sources_is_refused() -> None:
    data = encode({"params.yaml": ({"a": 1}, "a" * 40)})
    assert data is not None
    assert decode(data, {"params.yaml": "b" * 40}) is None  # the YAML changed since
    assert decode(data, {"params.yaml": "a" * 40, "inputs.yaml": "c" * 40}) is None
    assert decode(b"{not json", {"params.yaml": "a" * 40}) is None
    assert decode(json.dumps({"v": 99}).encode(), {}) is None


def _varied_runs(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with vtrack.start_run(run_name=f"r{i}") as run:
            vtrack.log_params({"lr": 0.1 * i, "name": f"m{i}", "layers": i, "flag": i % 2 == 0,
                               "date_like": "2024-01-01", "num_like": "1e3", "none": None})  # fmt: skip
            vtrack.log_metrics({"acc": i / 3, "nan": math.nan, "neg0": -0.0}, step=i)
            vtrack.set_tags({"team": "nlp" if i % 2 else "cv"})
            Path("a.txt").write_text(f"{i}\n")
            vtrack.log_artifact("a.txt")
            ids.append(run.info.run_id)
    return ids


def _dump(index_file: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of an index, rows keyed by run id (row numbers differ between builds)."""
    conn = sqlite3.connect(index_file)
    ids = dict(conn.execute("SELECT id, run_id FROM runs"))
    out: dict[str, list[tuple[Any, ...]]] = {}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in sorted(t for t in tables if t != "meta"):
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        rows = []
        for row in conn.execute(f"SELECT * FROM {table}"):
            named = dict(zip(cols, row, strict=True))
            if table == "runs":
                named.pop("id")
            elif "run" in named:
                named["run"] = ids[named["run"]]
            if table == "records":  # its encoding may differ: what it decodes to may not
                rec = index_records.IndexedRecord.from_body("", "", "", named["body"])
                named["body"] = (rec.info, rec.params, rec.metrics, rec.tags, rec.inputs,
                                 rec.artifacts)  # fmt: skip
            rows.append(tuple(sorted((k, repr(v)) for k, v in named.items())))
        out[table] = sorted(rows)
    conn.close()
    return out


def _index_file(repo: Path) -> Path:
    return repo / ".git" / "vtrack" / "index.sqlite"


def test_a_fresh_clones_index_equals_one_rebuilt_from_the_yaml(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _varied_runs(index_records.BATCH_READ_THRESHOLD + 4)  # the batch-pipe path
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "fetch", "-q", "origin", "+refs/vtrack/*:refs/vtrack/*")
    monkeypatch.chdir(clone)
    fresh = TrackingClient(str(clone))
    assert sorted(r.info.run_id for r in fresh.search_runs(["0"])) == sorted(ids)
    # value rows of the keys queried (the others are left out until a query names them)
    fresh.search_runs(["0"], "params.lr > 0 and tags.team = 'nlp'", order_by=["metrics.nan"])
    fresh.search_runs(["0"], "params.none IS NULL", order_by=["metrics.neg0 DESC"])
    from_summaries = _dump(_index_file(clone))
    assert len(from_summaries["metrics"]) == 2 * len(ids)
    assert len(from_summaries["params"]) == 2 * len(ids)
    # the same clone, its index rebuilt from the YAML alone
    monkeypatch.setattr(index_records, "decode_summary", lambda data, shas: None)
    TrackingClient(str(clone)).repo.index().rebuild()
    assert _dump(_index_file(clone)) == from_summaries
    # and the in-process path (few runs) agrees with both
    monkeypatch.setattr(index_records, "BATCH_READ_THRESHOLD", 10**9)
    TrackingClient(str(clone)).repo.index().rebuild()
    assert _dump(_index_file(clone)) == from_summaries


def test_value_rows_written_on_demand_equal_those_a_rebuild_writes(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys are filled from the stored bodies by SQLite (bodies it can read) or Python
    (bodies holding NaN, keys a JSON path cannot name); a rebuild writes them from the
    records. Both must give the same rows, value types and -0.0 included."""
    odd = ["plain", "no-path here", "dot.key", "a/b c-d"]
    values: list[Any] = [2**63 - 1, -(2**63) - 1, 2**70, 0.1 + 0.2, -0.0, 1e-310, None, True,
                         "x\"y", "éè", "12", [1, "a"], {"n": 1}]  # fmt: skip
    for i in range(index_records.BATCH_READ_THRESHOLD + 3):
        with vtrack.start_run(run_name=f"v{i}"):
            vtrack.log_params({k: values[(i + j) % len(values)] for j, k in enumerate(odd)})
            vtrack.log_metrics({k: (i - 3) / 7 + j for j, k in enumerate(odd)}, step=i)
            if i % 4 == 0:
                vtrack.log_metric("sometimes_nan", math.nan if i % 8 == 0 else -0.0)
            vtrack.set_tags({k: f"t{i % 3}" for k in odd})
    c = TrackingClient(str(repo))
    names = [*odd, "sometimes_nan"]
    # keys a JSON path could not name (hand-edited records): pretend two of these are
    monkeypatch.setattr(index_keys, "_PATH_SAFE", re.compile(r"plain|dot\.key|sometimes_nan"))
    c.run_index().ensure_keys([(e, k) for e in ("params", "metrics", "tags") for k in names])
    on_demand = _dump(_index_file(repo))
    assert len(on_demand["tags"]) == len(odd) * (index_records.BATCH_READ_THRESHOLD + 3)
    assert len(on_demand["params"]) > 3 * (index_records.BATCH_READ_THRESHOLD + 3)
    c.repo.index().rebuild()
    assert _dump(_index_file(repo)) == on_demand


def test_a_record_edited_behind_the_summarys_back_is_read_from_the_yaml(repo: Path) -> None:
    """A hand edit (or an older vtrack carrying summary.json along) leaves it stale."""
    ids = _varied_runs(index_records.BATCH_READ_THRESHOLD + 2)
    rid = ids[0]
    ref = f"refs/vtrack/runs/{rid}"
    tip = git(repo, "rev-parse", ref)
    assert SUMMARY_FILE in git(repo, "ls-tree", "--name-only", f"{tip}:.vtrack")
    edited = git(repo, "show", f"{tip}:.vtrack/params.yaml").replace("name: m0", "name: edited")
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=edited,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    entries = git(repo, "ls-tree", f"{tip}:.vtrack").splitlines()
    entries = [e.replace(e.split()[2], blob) if e.endswith("\tparams.yaml") else e for e in entries]
    record = subprocess.run(["git", "mktree"], cwd=repo, input="\n".join(entries) + "\n",
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    root = [
        e.replace(e.split()[2], record) if e.endswith("\t.vtrack") else e
        for e in git(repo, "ls-tree", tip).splitlines()
    ]
    root_sha = subprocess.run(["git", "mktree"], cwd=repo, input="\n".join(root) + "\n",
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    commit = git(repo, "commit-tree", root_sha, "-p", f"{tip}^", "-m", f"edit\n\nrun: {rid}\n")
    git(repo, "update-ref", ref, commit, tip)
    client = TrackingClient()
    client.repo.index().rebuild()
    found = client.search_runs(["0"], filter_string="params.name = 'edited'")
    assert [r.info.run_id for r in found] == [rid]
    assert client.get_run(rid).data.params["name"] == "edited"
