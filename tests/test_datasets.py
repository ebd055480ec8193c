"""Provenance entries: every kind of input, folder manifests and digests, canonical bytes."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import past_racy_margin
from vtrack import datasets as ds
from vtrack import progress
from vtrack.cli import _TerminalProgress
from vtrack.datasets import (
    array_digest,
    dataframe_digest,
    describe_input,
    folder_digest,
    manifest_from_tsv,
    manifest_to_tsv,
)
from vtrack.errors import DatasetError, ValidationError
from vtrack.hashing import hash_bytes, hash_file
from vtrack.statcache import RACY_MARGIN_NS, NoStatCache, StatCache

ROOT = Path(__file__).resolve().parent.parent
COMMON_KEYS = {
    "name",
    "context",
    "source",
    "kind",
    "digest",
    "size",
    "format",
    "verifiable",
    "tags",
}


def yaml_ready(entry: dict) -> dict:
    """The entry as the caller writes it: ``files`` goes to a TSV, the rest to YAML."""
    rest = {k: v for k, v in entry.items() if k != "files"}
    assert yaml.safe_load(yaml.safe_dump(rest, sort_keys=True)) == rest
    return rest


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


# --------------------------------------------------------------------------- files
def test_csv_file_entry(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_text(
        "id,score,label,ok,day\n1,0.5,cat,true,2024-01-02\n2,3,dog,false,2024-02-03\n3,,,true,\n"
    )
    e = describe_input(p, context="train", tags={"split": "a", "n": 3})
    assert COMMON_KEYS <= e.keys()
    assert e["name"] == "train.csv" and e["context"] == "train"
    assert e["kind"] == "file" and e["format"] == "csv" and e["file_count"] == 1
    assert e["source"] == e["path"] == str(p) and os.path.isabs(e["source"])
    assert (e["digest"], e["size"]) == hash_file(p)
    assert e["verifiable"] is True
    assert e["tags"] == {"n": "3", "split": "a"}
    assert e["rows"] == 3
    assert e["schema"]["columns"] == [
        {"name": "id", "dtype": "int64"},
        {"name": "score", "dtype": "float64"},
        {"name": "label", "dtype": "string"},
        {"name": "ok", "dtype": "bool"},
        {"name": "day", "dtype": "datetime64"},
    ]
    yaml_ready(e)


def test_csv_rows_are_exact_with_quoted_newlines_and_no_trailing_newline(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text('a,b\n1,"two\nlines"\n2,x\n\n3,y')
    e = describe_input(p)
    assert e["rows"] == 3
    assert [c["name"] for c in e["schema"]["columns"]] == ["a", "b"]


def test_semicolon_csv_and_tsv_schema(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("a;b\n1;x\n2;y\n")
    e = describe_input(tmp_path / "s.csv")
    assert e["schema"]["delimiter"] == ";" and e["schema"]["columns"][0] == {
        "name": "a",
        "dtype": "int64",
    }
    (tmp_path / "t.tsv").write_text("a\tb,c\n1\tx,y\n")
    e = describe_input(tmp_path / "t.tsv")
    assert e["format"] == "tsv" and [c["name"] for c in e["schema"]["columns"]] == ["a", "b,c"]
    assert e["rows"] == 1


def test_large_csv_gets_no_row_count(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "big.csv"
    p.write_text("a\n" + "1\n" * 1000)
    monkeypatch.setattr(ds.schema, "CSV_ROW_COUNT_MAX_BYTES", 100)
    e = describe_input(p)
    assert "rows" not in e and e["schema"]["columns"] == [{"name": "a", "dtype": "int64"}]


def test_parquet_schema_and_rows_from_metadata(tmp_path: Path) -> None:
    p = tmp_path / "d.parquet"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}).to_parquet(p)
    e = describe_input(p)
    assert e["format"] == "parquet" and e["rows"] == 3
    assert [c["name"] for c in e["schema"]["columns"]] == ["a", "b"]
    assert e["schema"]["columns"][0]["dtype"] == "int64"


def test_file_that_is_not_what_its_extension_says_still_gets_a_digest(tmp_path: Path) -> None:
    p = tmp_path / "fake.parquet"
    p.write_bytes(b"not parquet")
    e = describe_input(p)
    assert e["digest"] == hash_file(p)[0] and "schema" not in e and "rows" not in e


def test_npy_header_gives_schema_without_loading(tmp_path: Path) -> None:
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((7, 3), dtype=np.float32))
    e = describe_input(p)
    assert e["format"] == "npy" and e["rows"] == 7
    assert e["schema"] == {"dtype": "float32", "shape": [7, 3]}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.npz", "npz"),
        ("a.txt", "txt"),
        ("a.csv.gz", "csv.gz"),
        ("a.PARQUET", "parquet"),
        ("a.weird", "weird"),
        ("noext", None),
    ],
)
def test_format_by_extension(tmp_path: Path, name: str, fmt: str | None) -> None:
    p = tmp_path / name
    p.write_bytes(b"{}\n")
    e = describe_input(p)
    assert e["format"] == fmt and e["kind"] == "file"


def test_source_and_name_override(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("x")
    e = describe_input(str(p), name="train-set", source="s3://bucket/a.txt")
    assert e["name"] == "train-set" and e["source"] == "s3://bucket/a.txt" and e["path"] == str(p)


def test_arguments_are_normalised_for_yaml(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("x")
    (tmp_path / "b.tmp").write_text("y")
    df = pd.DataFrame({"a": [1]})
    e = describe_input(df, source=p)
    assert e["source"] == str(p) and isinstance(e["source"], str)
    assert describe_input(tmp_path, exclude="*.tmp")["files"] == [("a.txt", 1, hash_file(p)[0])]
    with pytest.raises(ValidationError, match="context"):
        describe_input(p, context=3)


def test_file_uri_is_a_local_file(tmp_path: Path) -> None:
    p = tmp_path / "a b.txt"
    p.write_text("x")
    e = describe_input("file://" + str(p).replace(" ", "%20"))
    assert e["kind"] == "file" and e["path"] == str(p)


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x\ny", "c\\d"])
def test_bad_names_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValidationError):
        describe_input(tmp_path / "a.txt", name=bad)


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="list"):
        describe_input([1, 2, 3])


# --------------------------------------------------------------------------- errors
def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nothere.csv") as info:
        describe_input(tmp_path / "nothere.csv")
    assert info.value.fields["reason"] == "missing"


UNREADABLE_SCRIPT = """
import sys
from vtrack.datasets import describe_input
from vtrack.errors import DatasetError
try:
    describe_input(sys.argv[1])
except DatasetError as exc:
    print("DatasetError:", exc)
    sys.exit(3)
print("read it")
"""


def test_unreadable_file_raises_dataset_error_naming_it(tmp_path: Path) -> None:
    """A real EACCES: chmod 000. Root ignores file modes, so as root the check runs in
    a child process whose capability bounding set lacks DAC override (util-linux
    setpriv), which makes the kernel enforce the mode for root as well."""
    p = tmp_path / "secret.csv"
    p.write_text("a\n1\n")
    p.chmod(0)
    try:
        if os.geteuid() != 0:
            with pytest.raises(DatasetError, match=r"secret\.csv.*Permission denied"):
                describe_input(p)
            return
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        res = subprocess.run(
            [
                setpriv,
                "--bounding-set",
                "-dac_override,-dac_read_search",
                sys.executable,
                "-c",
                UNREADABLE_SCRIPT,
                str(p),
            ],
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if "Operation not permitted" in res.stderr:
            pytest.skip(f"setpriv cannot drop capabilities here: {res.stderr.strip()}")
        assert res.returncode == 3, res.stdout + res.stderr
        assert f"cannot read input file {p}: Permission denied" in res.stdout
    finally:
        p.chmod(0o644)


def test_dangling_symlink_inside_folder_is_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"ok.txt": b"1"})
    (root / "broken.csv").symlink_to(root / "gone.csv")
    with pytest.raises(DatasetError, match=r"broken\.csv is a dangling symbolic link"):
        describe_input(root)


@pytest.mark.timeout(20)
def test_fifo_inside_folder_is_named_and_does_not_hang(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"ok.txt": b"1"})
    os.mkfifo(root / "pipe")
    with pytest.raises(DatasetError, match="pipe is not a regular file"):
        describe_input(root)
    assert describe_input(root, exclude=["pipe"])["file_count"] == 1


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"sub/a.txt": b"1"})
    (root / "sub" / "up").symlink_to(root)
    with pytest.raises(DatasetError, match="loops back"):
        describe_input(root)


# --------------------------------------------------------------------------- folders
def test_folder_entry_and_manifest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", {"b.csv": b"x\n1\n", "a/c.csv": b"y\n", "a/z/d.csv": b""})
    e = describe_input(root, context="eval")
    assert e["kind"] == "folder" and e["name"] == "data" and e["format"] == "csv"
    assert e["file_count"] == 3 and e["size"] == 6
    assert [f[0] for f in e["files"]] == ["a/c.csv", "a/z/d.csv", "b.csv"]
    for rel, size, digest in e["files"]:
        assert (digest, size) == hash_file(root / rel)
    assert (
        e["digest"] == folder_digest(e["files"]) == hash_bytes(manifest_to_tsv(e["files"]).encode())
    )
    assert (
        manifest_to_tsv(e["files"]).splitlines()[0]
        == f"a/c.csv\t2\t{hash_file(root / 'a/c.csv')[0]}"
    )
    assert manifest_from_tsv(manifest_to_tsv(e["files"])) == e["files"]
    yaml_ready(e)


def test_folder_with_mixed_formats_and_empty_folder(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "m", {"a.csv": b"1", "b.json": b"{}"})
    assert describe_input(root)["format"] == "mixed"
    (tmp_path / "empty").mkdir()
    e = describe_input(tmp_path / "empty")
    assert e["file_count"] == 0 and e["files"] == [] and e["digest"] == hash_bytes(b"")


def test_folder_follows_file_symlinks(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"shared")
    root = make_tree(tmp_path / "d", {})
    root.mkdir(exist_ok=True)
    (root / "link.bin").symlink_to(blob)
    assert describe_input(root)["files"] == [("link.bin", 6, hash_file(blob)[0])]


def test_folder_exclude_patterns(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "d",
        {
            "keep.csv": b"1",
            "x.tmp": b"2",
            "sub/y.tmp": b"3",
            "cache/a.csv": b"4",
            "sub/cache/b.csv": b"5",
            "logs/run.log": b"6",
            "sub/logs": b"a file named logs",
            "top.txt": b"7",
            "sub/top.txt": b"8",
        },
    )
    e = describe_input(root, exclude=["*.tmp", "cache", "logs/", "/top.txt"])
    assert [f[0] for f in e["files"]] == ["keep.csv", "sub/logs", "sub/top.txt"]
    assert e["exclude"] == ["*.tmp", "cache", "logs/", "/top.txt"]
    deep = describe_input(root, exclude=["**/top.txt", "sub/*"])
    assert "top.txt" not in [f[0] for f in deep["files"]]
    assert not any(f[0].startswith("sub/") for f in deep["files"])
    with pytest.raises(ValidationError, match="negation"):
        describe_input(root, exclude=["!keep.csv"])


def test_manifest_escapes_awkward_names_and_round_trips(tmp_path: Path) -> None:
    names = ["tab\there", "new\nline", "back\\slash", "ünïcode", os.fsdecode(b"caf\xe9")]
    root = tmp_path / "w"
    root.mkdir()
    for n in names:
        with open(os.path.join(os.fsencode(root), os.fsencode(n)), "wb") as f:
            f.write(n.encode("utf-8", "surrogateescape"))
    e = describe_input(root)
    text = manifest_to_tsv(e["files"])
    assert len(text.splitlines()) == len(names)
    text.encode("utf-8")  # storable as a git blob
    assert manifest_from_tsv(text) == e["files"]


def test_manifest_rejects_malformed_lines() -> None:
    with pytest.raises(ValidationError, match="line 2"):
        manifest_from_tsv(f"a\t1\txxh3-128:{'0' * 32}\nbroken line\n")
    with pytest.raises(ValidationError):
        manifest_from_tsv("a\t1\tmd5:abc\n")
    with pytest.raises(ValidationError, match="twice"):
        manifest_to_tsv([("a", 1, "xxh3-128:" + "0" * 32)] * 2)


_names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
_manifests = st.dictionaries(
    _names, st.tuples(st.integers(0, 2**40), st.binary(min_size=16, max_size=16)), max_size=30
).map(lambda d: [(k, s, "xxh3-128:" + b.hex()) for k, (s, b) in d.items()])


@given(files=_manifests, seed=st.integers(0, 2**32))
def test_folder_digest_ignores_listing_order(files, seed: int) -> None:
    shuffled = list(files)
    random.Random(seed).shuffle(shuffled)
    assert folder_digest(shuffled) == folder_digest(files)
    assert manifest_from_tsv(manifest_to_tsv(shuffled)) == sorted(files)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contents=st.dictionaries(
        st.from_regex(r"[a-c]{1,2}(/[a-c]{1,2}){0,2}\.bin", fullmatch=True),
        st.binary(max_size=64),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**32),
)
def test_folder_digest_is_independent_of_hashing_order(contents: dict, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        written = {}
        for rel, data in contents.items():  # folders never end in .bin: no clashes
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            written[rel] = data
        order = list(written)
        random.Random(seed).shuffle(order)
        by_hand = [(rel, len(written[rel]), hash_bytes(written[rel])) for rel in order]
        assert describe_input(root)["digest"] == folder_digest(by_hand)


def test_folder_hashes_large_and_small_files_alike(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {f"s{i}": os.urandom(100) for i in range(5)})
    for i in range(3):
        (root / f"L{i}").write_bytes(os.urandom(2 * 2**20 + i))
    e = describe_input(root)
    assert e["files"] == [(p.name, *reversed(hash_file(p))) for p in sorted(root.iterdir())]


def collecting_reports(seen: list) -> contextlib.AbstractContextManager:
    """Install a progress reporter that appends every report to ``seen`` (removed after)."""

    @contextlib.contextmanager
    def installed():
        progress.set_reporter(lambda *report: seen.append(report))
        try:
            yield seen
        finally:
            progress.set_reporter(None)

    return installed()


def test_no_progress_output_when_stderr_is_not_a_tty(tmp_path: Path, capfd) -> None:
    root = make_tree(tmp_path / "d", {f"{i}.txt": b"x" for i in range(50)})
    seen: list = []
    with collecting_reports(seen):
        describe_input(root)
    assert capfd.readouterr().err == ""  # the storage layer only reports; it never draws
    assert {task for task, _, _ in seen} == {"hashing d"}
    assert all(total == 50 and 0 < done <= 50 for _, done, total in seen)
    assert seen[-1] == ("hashing d", 50, 50)


def test_a_failed_folder_hash_still_reports_its_end_so_a_bar_is_erased(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {f"{i}.txt": b"x" for i in range(5)})
    os.mkfifo(root / "pipe")
    seen: list = []
    with collecting_reports(seen), pytest.raises(DatasetError, match="not a regular file"):
        describe_input(root)
    assert seen == [("hashing d", 6, 6)]


def test_progress_bar_appears_only_after_the_delay(tmp_path: Path, capsys) -> None:
    root = make_tree(tmp_path / "d", {f"{i}.txt": b"x" for i in range(10)})
    for delay, drawn in ((60.0, False), (0.0, True)):
        bar = _TerminalProgress(delay=delay)
        progress.set_reporter(bar)
        try:
            describe_input(root)
        finally:
            progress.set_reporter(None)
        err = capsys.readouterr().err
        assert ("hashing d [" in err) is drawn
        assert err.endswith("\r\x1b[2K") is drawn  # a drawn bar is erased at the end
        assert not bar.shown and not bar.started


def test_deleting_the_cache_changes_no_folder_result(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {f"{i}.txt": b"%d" % i for i in range(30)})
    db = tmp_path / "c.sqlite"
    clock = lambda: time.time_ns() + 2 * RACY_MARGIN_NS  # noqa: E731 - entries get stored
    with StatCache(db, clock=clock) as cache:
        first = describe_input(root, cache=cache)
        assert cache.stored == 30
        assert describe_input(root, cache=cache) == first and cache.hits == 30
    db.unlink()
    with StatCache(db) as cache:
        assert describe_input(root, cache=cache) == first
    assert describe_input(root, cache=NoStatCache()) == describe_input(root) == first


@pytest.mark.slow
@pytest.mark.timeout(900)  # 100,000 real files twice: minutes on a loaded 2-core machine
def test_100k_file_folder_second_pass_is_served_from_the_stat_cache(tmp_path: Path) -> None:
    root = tmp_path / "many"
    n = 100_000
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range(100):
        sub = root / f"{d:02d}"
        sub.mkdir(parents=True)
        base = os.fspath(sub)
        for i in range(n // 100):
            fd = os.open(f"{base}/{i}.txt", flags, 0o644)
            os.write(fd, b"%d" % (d * 1000 + i))
            os.close(fd)
    try:  # a cache for which every file has left the racy window
        with StatCache(tmp_path / "c.sqlite", clock=past_racy_margin()) as cache:
            first = describe_input(root, cache=cache)
            assert (cache.misses, cache.stored, cache.hits) == (n, n, 0)
            second = describe_input(root, cache=cache)
            assert cache.hits == n and cache.misses == n
        assert second == first and first["file_count"] == n
    finally:
        shutil.rmtree(root)  # spare later sessions the cleanup of 100k files


# --------------------------------------------------------------------------- DataFrames
def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, np.nan, -2.0],
            "s": ["a", None, "ç"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "tz": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-02 00:00", "2024-01-03 00:00"]
            ).tz_localize("Europe/Paris"),
            "c": pd.Categorical(["x", "y", "x"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "o": [{"k": 1}, (1, 2), None],
        }
    )


def test_dataframe_entry(tmp_path: Path) -> None:
    df = sample_frame()
    e = describe_input(df, context="train")
    assert e["kind"] == "dataframe" and e["format"] == "pandas" and e["source"] is None
    assert e["rows"] == 3 and e["verifiable"] is False
    assert e["digest"] == dataframe_digest(df)[0] and e["size"] == dataframe_digest(df)[1]
    assert e["name"] == "dataframe-" + e["digest"].split(":")[1][:8]
    assert [c["name"] for c in e["schema"]["columns"]] == list(df.columns)
    assert e["schema"]["columns"][7] == {"name": "n", "dtype": "Int64"}
    yaml_ready(e)


def test_dataframe_digest_is_pinned() -> None:
    """Changing this value breaks every recorded digest: bump the canonical version instead."""
    df = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, float("nan"), -2.0], "label": ["a", None, "ç"]})
    assert dataframe_digest(df) == ("xxh3-128:caf06cb2c3bbf6afb167dd9fda00cb93", 190)


def test_dataframe_digest_stable_across_row_equal_frames() -> None:
    df = sample_frame()
    d = dataframe_digest(df)[0]
    assert dataframe_digest(df.copy(deep=True))[0] == d
    assert dataframe_digest(pd.concat([df.iloc[:2], df.iloc[2:]]))[0] == d
    filtered = pd.concat([df.iloc[:1], df]).iloc[1:]  # index 0,1,2 but rebuilt
    assert dataframe_digest(filtered)[0] == d
    # memory layout: C- vs Fortran-ordered blocks
    values = np.arange(12, dtype=np.float64).reshape(4, 3)
    a = pd.DataFrame(np.ascontiguousarray(values), columns=list("xyz"))
    b = pd.DataFrame(np.asfortranarray(values), columns=list("xyz"))
    assert dataframe_digest(a) == dataframe_digest(b)
    # object-of-str (pandas 2 style) and str/string dtypes hash alike
    s1 = pd.DataFrame({"s": pd.Series(["a", None], dtype=object)})
    s2 = pd.DataFrame({"s": pd.Series(["a", None], dtype="string")})
    assert dataframe_digest(s1) == dataframe_digest(s2)
    # NaN payloads do not matter
    odd_nan = np.frombuffer(np.uint64(0x7FF8000000000123).tobytes(), dtype=np.float64)[0]
    assert np.isnan(odd_nan)
    assert dataframe_digest(pd.DataFrame({"f": [odd_nan]})) == dataframe_digest(
        pd.DataFrame({"f": [np.nan]})
    )


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        ("i", 0, 9),
        ("f", 2, -2.5),
        ("s", 0, "b"),
        ("b", 1, True),
        ("t", 0, pd.Timestamp("2025-01-01")),
        ("tz", 0, pd.Timestamp("2024-01-01 10:00:01", tz="Europe/Paris")),
        ("c", 1, "x"),
        ("n", 1, 2),
        ("o", 0, {"k": 2}),
    ],
)
def test_dataframe_digest_changes_when_one_value_changes(column: str, row: int, value) -> None:
    df = sample_frame()
    before = dataframe_digest(df)[0]
    changed = df.copy()
    changed.at[row, column] = value
    assert dataframe_digest(changed)[0] != before


def test_dataframe_digest_changes_with_names_dtypes_order_and_index() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    d = dataframe_digest(df)[0]
    assert dataframe_digest(df.rename(columns={"a": "A"}))[0] != d
    assert dataframe_digest(df.astype({"a": "float64"}))[0] != d
    assert dataframe_digest(df[["b", "a"]])[0] != d
    assert dataframe_digest(df.iloc[::-1].reset_index(drop=True))[0] != d
    assert dataframe_digest(df.set_index("a"))[0] != dataframe_digest(df.set_index("b"))[0]
    assert (
        dataframe_digest(df.set_axis(["r1", "r2"]))[0]
        != dataframe_digest(df.set_axis(["r1", "r3"]))[0]
    )


def test_series_is_described_as_a_one_column_frame() -> None:
    e = describe_input(pd.Series([1, 2, 3], name="y"))
    assert e["kind"] == "dataframe" and e["rows"] == 3


def test_dataframe_with_local_source_file_is_verifiable(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_text("a\n1\n")
    df = pd.read_csv(p)
    e = describe_input(df, source=str(p))
    assert e["verifiable"] is True and e["path"] == str(p)
    assert (e["source_digest"], e["source_size"]) == hash_file(p)
    e2 = describe_input(df, source="s3://bucket/train.csv")
    assert e2["verifiable"] is False and "source_digest" not in e2


# --------------------------------------------------------------------------- arrays
def test_array_entry() -> None:
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    e = describe_input(a, name="features")
    assert e["kind"] == "array" and e["format"] == "numpy" and e["name"] == "features"
    assert e["schema"] == {"dtype": "float32", "shape": [4, 3]} and e["rows"] == 4
    assert e["digest"] == array_digest(a)[0]
    yaml_ready(e)
    scalar = describe_input(np.float64(3.0))
    assert "rows" not in scalar and scalar["schema"] == {"dtype": "float64", "shape": []}
    assert scalar["digest"] == describe_input(np.array(3.0))["digest"]


def test_array_digest_is_pinned() -> None:
    assert array_digest(np.arange(6, dtype="<i4").reshape(2, 3)) == (
        "xxh3-128:ff19fafe03fb0e2ef6adeeab9f2cbf30",
        75,
    )


def test_array_digest_ignores_layout_and_byte_order_but_not_values() -> None:
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    d = array_digest(a)[0]
    assert array_digest(np.asfortranarray(a))[0] == d
    assert array_digest(a.astype(">f8"))[0] == d
    assert array_digest(np.ascontiguousarray(a[:, ::1]))[0] == d
    b = a.copy()
    b[3, 5] = -1
    assert array_digest(b)[0] != d
    assert array_digest(a.reshape(6, 4))[0] != d
    assert array_digest(a.astype(np.float32))[0] != d
    assert array_digest(a.T)[0] != d


def test_object_and_structured_arrays() -> None:
    o = np.array(["a", 1, None, 2.5], dtype=object)
    assert array_digest(o) == array_digest(o.copy())
    o2 = o.copy()
    o2[1] = 2
    assert array_digest(o2) != array_digest(o)
    rec = np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")])
    assert array_digest(rec) == array_digest(rec.copy())


# --------------------------------------------------------------------------- URIs
@pytest.mark.parametrize(
    ("uri", "name", "fmt"),
    [
        ("s3://bucket/data/train.parquet", "train.parquet", "parquet"),
        ("gs://b/x.csv", "x.csv", "csv"),
        ("https://example.com/files/data.jsonl?x=1", "data.jsonl", "jsonl"),
        ("hf://datasets/user/name", "name", None),
        ("http://host", "host", None),
    ],
)
def test_remote_uri_is_recorded_without_hashing(uri: str, name: str, fmt: str | None) -> None:
    e = describe_input(uri, context="train")
    assert e["kind"] == "uri" and e["source"] == uri and e["name"] == name
    assert e["digest"] is None and e["size"] is None and e["verifiable"] is False
    assert e["format"] == fmt
    yaml_ready(e)


# --------------------------------------------------------------------------- imports
def test_importing_and_describing_files_loads_no_heavy_module(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    make_tree(tmp_path / "d", {"x.txt": b"1"})
    code = textwrap.dedent(
        f"""
        import sys, json
        import vtrack.statcache, vtrack.datasets, vtrack.provenance.drift
        from vtrack.datasets import describe_input
        describe_input({str(tmp_path / "a.csv")!r})
        describe_input({str(tmp_path / "d")!r})
        heavy = ["pandas", "numpy", "pyarrow", "rich"]
        print(json.dumps([m for m in heavy if m in sys.modules]))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
