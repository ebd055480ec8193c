"""Odd input and odd stores: lone surrogates, keys ending in a newline, broken refs, races."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vtrack
from tests.conftest import ROOT, git, reap
from vtrack import validation as v
from vtrack.errors import ValidationError

SURROGATE = "bad\udcffname"  # what os.listdir gives for the bytes b"bad\xffname"


@pytest.mark.parametrize(
    "call",
    [
        lambda: vtrack.log_param("p", SURROGATE),
        lambda: vtrack.log_params({"p": SURROGATE}),
        lambda: vtrack.set_tag("t", SURROGATE),
        lambda: vtrack.set_tags({"t": SURROGATE}),
    ],
    ids=["log_param", "log_params", "set_tag", "set_tags"],
)
def test_values_that_are_not_valid_unicode_are_refused_and_leave_no_trace(repo: Path, call) -> None:
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match="not valid Unicode"):
            call()
        vtrack.log_param("fine", 1)
    got = vtrack.get_run(run.info.run_id)
    assert got.data.params == {"fine": 1} and "t" not in got.data.tags


def test_names_that_are_not_valid_unicode_are_refused(repo: Path) -> None:
    with pytest.raises(ValidationError, match="not valid Unicode"):
        vtrack.start_run(run_name=SURROGATE)
    with pytest.raises(ValidationError, match="not valid Unicode"):
        vtrack.create_experiment(SURROGATE)
    with pytest.raises(ValidationError, match="not valid Unicode"):
        vtrack.start_run(description=SURROGATE)
    assert git(repo, "for-each-ref", "refs/vtrack/runs/") == ""


def test_an_old_journal_holding_a_lone_surrogate_breaks_no_command(repo: Path) -> None:
    """A journal line with a lone surrogate (written before validation refused them) made
    `vtrack ls`, `show` of any run, `recover`, `index rebuild` and `search_runs` fail with
    UnicodeEncodeError until the journal was deleted by hand."""
    with vtrack.start_run(run_name="healthy") as good:
        vtrack.log_metric("acc", 0.9)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import time, vtrack
            run = vtrack.start_run(run_name="victim")
            vtrack.log_metric("m", 1.0, synchronous=True)
            print("RUN", run.info.run_id, flush=True)
            time.sleep(600)
            """)],
        cwd=repo, env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().split()[1]
    proc.kill()
    reap(proc)
    [segment] = (repo / ".git/vtrack/live" / run_id).glob("*.journal")
    with open(segment, "a", encoding="utf-8") as f:
        f.write('t\tfile\t"data/bad\\udcffname.csv"\n')  # JSON escapes it, as json.dumps did
    for args in (["ls"], ["show", good.info.run_id], ["show", run_id], ["recover"],
                 ["index", "rebuild"], ["ls", "--json"]):  # fmt: skip
        res = subprocess.run(["vtrack", *args], cwd=repo, capture_output=True, text=True)
        assert res.returncode == 0, (args, res.stderr)
        assert "Traceback" not in res.stderr and "UnicodeEncodeError" not in res.stderr
    runs = vtrack.search_runs(search_all_experiments=True, output_format="list")
    assert {r.info.run_name for r in runs} == {"healthy", "victim"}
    victim = vtrack.get_run(run_id)
    assert victim.info.status == "KILLED"
    assert victim.data.tags["file"] == "data/bad\\xffname.csv"  # escaped, readable


@pytest.mark.parametrize("key", ["loss\n", "a\nb", "x\r", "\n"])
def test_keys_with_a_newline_are_refused_everywhere(repo: Path, key: str) -> None:
    """The key pattern used `$`, which matches before a final newline: `loss\\n` passed,
    split the journal line, and a SIGKILL then dropped what it logged."""
    with vtrack.start_run():
        for call in (lambda: vtrack.log_metric(key, 1.0), lambda: vtrack.log_param(key, 1),
                     lambda: vtrack.set_tag(key, "v")):  # fmt: skip
            with pytest.raises(ValidationError):
                call()


def test_ids_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(ValidationError):
        v.validate_run_id("0" * 32 + "\n")
    with pytest.raises(ValidationError):
        v.validate_experiment_id("abc\n")


_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./ ")


@given(st.text(max_size=30))
def test_key_validation_matches_its_documented_rule(key: str) -> None:
    parts = key.split("/")
    ok = (
        0 < len(key) <= 250 and set(key) <= _KEY_CHARS and ".." not in key
        and not key.startswith("/") and not key.endswith("/")
        and all(p not in ("", ".") and p.strip() for p in parts)
    )  # fmt: skip
    if ok:
        assert v.validate_key(key) == key
    else:
        with pytest.raises(ValidationError):
            v.validate_key(key)


@given(st.text(max_size=40))
def test_accepted_texts_are_always_storable(text: str) -> None:
    """Whatever a validator accepts can be written as UTF-8 (YAML, JSON, SQLite)."""
    for check in (lambda t: v.validate_tag("k", t)[1], lambda t: v.normalize_param_value("k", t),
                  v.validate_description, v.validate_run_name, v.validate_experiment_name):  # fmt: skip
        try:
            out = check(text)
        except ValidationError:
            continue
        if isinstance(out, str):
            out.encode("utf-8")


def test_a_key_accepted_as_a_tag_is_still_checked_as_a_metric_key(repo: Path) -> None:
    """One validation cache for every rule let `loss/000000.tsv` in as a metric key once it
    had been a tag key: the tree then had duplicate entries that `git fsck` rejects."""
    with vtrack.start_run():
        vtrack.set_tag("loss/000000.tsv", "x")
        with pytest.raises(ValidationError, match="chunk file name"):
            vtrack.log_metric("loss/000000.tsv", 1.0)
        vtrack.log_metric("loss", 1.0)
    res = subprocess.run(["git", "fsck", "--full"], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_a_ref_to_a_missing_object_is_left_out_with_a_warning(repo: Path) -> None:
    """`vtrack ls` printed a `None None None` row, exit 0, for a ref pointing at a missing
    object."""
    with vtrack.start_run(run_name="fine"):
        vtrack.log_metric("acc", 0.5)
    broken = "ab" * 16
    (repo / ".git/refs/vtrack/runs" / broken).write_text("1" * 40 + "\n")
    res = subprocess.run(["vtrack", "ls"], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "None" not in res.stdout and "fine" in res.stdout
    assert broken in res.stderr and "unreadable" in res.stderr
    rows = subprocess.run(["vtrack", "ls", "--json"], cwd=repo, capture_output=True, text=True)
    assert [r["run_name"] for r in json.loads(rows.stdout)] == ["fine"]


def test_commands_on_a_packed_repository_exit_without_noise(repo: Path) -> None:
    """Once objects were packed, every command printed `Exception ignored in: <function
    PackBasedObjectStore.__del__ ...> ImportError: sys.meta_path is None` at exit."""
    with vtrack.start_run(run_name="packed") as run:
        for i in range(30):
            vtrack.log_metric("loss", 1 / (i + 1), step=i)
    git(repo, "gc", "-q", "--aggressive")  # deltified entries: read through dulwich
    for args in (["show", run.info.run_id], ["metrics", run.info.run_id, "--csv"]):
        res = subprocess.run(["vtrack", *args], cwd=repo, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert "Exception ignored" not in res.stderr and res.stderr == "", res.stderr


def test_a_corrupt_packed_refs_line_is_a_vtrack_error(repo: Path) -> None:
    """A corrupt packed-refs line gave a raw binascii.Error traceback."""
    with vtrack.start_run(run_name="r") as run:
        pass
    git(repo, "pack-refs", "--all")
    lines = (repo / ".git/packed-refs").read_text().splitlines(keepends=True)
    lines = ["z" * 40 + ln[40:] if run.info.run_id in ln else ln for ln in lines]
    (repo / ".git/packed-refs").write_text("".join(lines))
    res = subprocess.run(["vtrack", "show", run.info.run_id], cwd=repo, capture_output=True,
                         text=True)  # fmt: skip
    assert "Traceback" not in res.stderr and "binascii" not in res.stderr
    assert res.returncode == 5 and "packed-refs" in res.stderr


def test_processes_creating_one_experiment_at_once_converge(tmp_path: Path) -> None:
    """A process losing the creation race fell through to a random id: two experiments with
    one name in 2 of 10 fresh repositories, and `vtrack ls -e conc` then showed 350 of 400
    runs."""
    code = """
        import sys, time, vtrack
        from pathlib import Path
        go = Path(sys.argv[1])
        while not go.exists():
            time.sleep(0.0005)
        exp = vtrack.set_experiment("conc")
        with vtrack.start_run():
            pass
        print(exp.experiment_id)
        """
    for n in range(6):
        repo = tmp_path / f"r{n}"
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "commit", "-q", "--allow-empty", "-m", "init")
        go = repo / "go"
        procs = [
            subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(go)], cwd=repo,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(8)
        ]  # fmt: skip
        go.touch()
        ids = set()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            ids.add(out.strip())
        assert len(ids) == 1, f"repository {n}: {len(ids)} experiments named 'conc'"
        names = [e.name for e in vtrack.TrackingClient(str(repo)).search_experiments()]
        assert names.count("conc") == 1
        assert len(vtrack.TrackingClient(str(repo)).search_runs(list(ids))) == 8
