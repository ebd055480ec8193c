"""Dataset inputs of runs: logging every kind, idempotence and conflicts, audit, lineage."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import vtrack
from tests.conftest import ROOT, assert_fsck_clean, git, run_script, warm_store_stat_cache
from vtrack.datasets import folder_digest, manifest_from_tsv
from vtrack.errors import DatasetError, InputConflictError, RunNotFoundError, ValidationError
from vtrack.hashing import hash_file
from vtrack.provenance import manifest_path

FAST = {"VTRACK_FLUSH_SECONDS": "0.05", "VTRACK_CHECKPOINT_SECONDS": "600"}


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def show(repo: Path, run_id: str, path: str) -> str:
    return git(repo, "show", f"refs/vtrack/runs/{run_id}:.vtrack/{path}")


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in results}


# --------------------------------------------------------------------------- logging


def test_every_kind_is_recorded_and_read_back(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("a,b\n1,x\n2,y\n")
    make_tree(repo / "data" / "images", {"cat/1.png": b"c1", "dog/2.png": b"d22", "3.png": b""})
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]})
    with vtrack.start_run() as run:
        f = vtrack.log_input("data/train.csv", name="train", context="training", tags={"v": 2})
        d = vtrack.log_input(repo / "data" / "images", name="images", context="training")
        fr = vtrack.log_input(
            df, name="holdout", context="evaluation", source="s3://bucket/holdout.csv"
        )
        a = vtrack.log_input(np.arange(12).reshape(3, 4), name="emb")
        u = vtrack.log_input("hf://datasets/org/corpus", context="pretrain")
        live = {e["name"]: e for e in vtrack.get_run(run.info.run_id).inputs.datasets}
    run_id = run.info.run_id
    datasets = {e["name"]: e for e in vtrack.get_run(run_id).inputs.datasets}
    assert datasets == live
    assert list(datasets) == ["train", "images", "holdout", "emb", "corpus"]
    assert datasets["train"] == f and f["kind"] == "file" and f["tags"] == {"v": "2"}
    assert f["digest"] == hash_file(repo / "data" / "train.csv")[0] and f["rows"] == 2
    assert f["schema"]["columns"][0] == {"name": "a", "dtype": "int64"}
    assert f["repo_path"] == "data/train.csv" and f["path"] == str(repo / "data" / "train.csv")
    assert d["kind"] == "folder" and d["file_count"] == 3 and d["size"] == 5
    assert d["manifest"] == "inputs/images.tsv" and "files" not in datasets["images"]
    manifest = manifest_from_tsv(show(repo, run_id, "inputs/images.tsv") + "\n")
    assert [m[0] for m in manifest] == ["3.png", "cat/1.png", "dog/2.png"]
    assert folder_digest(manifest) == d["digest"]
    assert fr["kind"] == "dataframe" and fr["rows"] == 3 and fr["verifiable"] is False
    assert fr["source"] == "s3://bucket/holdout.csv"
    assert a["kind"] == "array" and a["schema"] == {"dtype": "int64", "shape": [3, 4]}
    assert u == datasets["corpus"] and u["kind"] == "uri" and u["digest"] is None
    # the record is plain YAML in the run commit
    on_disk = yaml.safe_load(show(repo, run_id, "inputs.yaml"))
    assert [e["name"] for e in on_disk] == list(datasets)
    assert_fsck_clean(repo)


def test_client_logs_inputs_by_run_id(repo: Path) -> None:
    (repo / "a.txt").write_text("A")
    (repo / "b.txt").write_text("B")
    c = vtrack.TrackingClient()
    run_id = c.create_run().info.run_id
    got = c.log_inputs(run_id, [repo / "a.txt", {"data": str(repo / "b.txt"), "context": "eval"}])
    assert [(e["name"], e["context"]) for e in got] == [("a.txt", None), ("b.txt", "eval")]
    c.set_terminated(run_id)
    assert [e["name"] for e in c.get_run(run_id).inputs.datasets] == ["a.txt", "b.txt"]
    with pytest.raises(RunNotFoundError):
        c.log_input("0" * 32, repo / "a.txt")


def test_same_input_logged_twice_is_recorded_once(repo: Path) -> None:
    make_tree(repo / "d", {"x.txt": b"x", "y.txt": b"y"})
    df = pd.DataFrame({"v": [1.5, float("nan")]})
    with vtrack.start_run() as run:
        first = vtrack.log_input("d", context="train")
        tip = git(repo, "rev-parse", f"refs/vtrack/runs/{run.info.run_id}")
        again = vtrack.log_input(repo / "d", context="train", tags={"ignored": "yes"})
        vtrack.log_input(df, name="frame")
        vtrack.log_input(df.copy(), name="frame")
        vtrack.log_input("s3://b/k.csv", context="x")
        vtrack.log_input("s3://b/k.csv", context="x")
    assert again == first and "ignored" not in again["tags"]
    entries = vtrack.get_run(run.info.run_id).inputs.datasets
    assert [e["name"] for e in entries] == ["d", "frame", "k.csv"]
    assert tip  # the run existed before the re-log


def test_same_name_with_other_content_raises_and_records_nothing(repo: Path) -> None:
    (repo / "a.csv").write_text("a\n1\n")
    (repo / "b.csv").write_text("a\n2\n")
    with vtrack.start_run() as run:
        vtrack.log_input("a.csv", name="train", context="training")
        with pytest.raises(InputConflictError, match="train") as info:
            vtrack.log_input("b.csv", name="train", context="training")
        assert info.value.exit_code == 4 and isinstance(info.value, ValidationError)
        # a batch with one conflict records none of its inputs
        with pytest.raises(InputConflictError):
            vtrack.log_inputs(
                [
                    {"data": "b.csv", "name": "other"},
                    {"data": "b.csv", "name": "train", "context": "training"},
                ]
            )
        with pytest.raises(InputConflictError):  # a conflict inside the batch itself
            vtrack.log_inputs([{"data": "a.csv", "name": "x"}, {"data": "b.csv", "name": "x"}])
        # the same name in another context is another input
        vtrack.log_input("b.csv", name="train", context="validation")
    entries = vtrack.get_run(run.info.run_id).inputs.datasets
    assert [(e["name"], e["context"]) for e in entries] == [
        ("train", "training"),
        ("train", "validation"),
    ]
    assert entries[0]["digest"] == hash_file(repo / "a.csv")[0]


def test_folder_inputs_with_one_name_in_two_contexts_keep_two_manifests(repo: Path) -> None:
    make_tree(repo / "v1", {"a": b"1"})
    make_tree(repo / "v2", {"a": b"2", "b": b"3"})
    with vtrack.start_run() as run:
        one = vtrack.log_input("v1", name="shards", context="train")
        two = vtrack.log_input("v2", name="shards", context="eval")
    assert one["manifest"] == "inputs/shards.tsv"
    assert two["manifest"] == "inputs/shards@eval.tsv"
    assert len(manifest_from_tsv(show(repo, run.info.run_id, "inputs/shards@eval.tsv") + "\n")) == 2
    assert {r["status"] for r in vtrack.audit(run.info.run_id)} == {"unchanged"}


def test_manifest_names_are_path_safe() -> None:
    assert manifest_path("train set.v2", None) == "inputs/train%20set.v2.tsv"
    assert manifest_path(".hidden", "x") == "inputs/%2Ehidden.tsv"
    assert manifest_path("données", None) == "inputs/donn%C3%A9es.tsv"
    assert manifest_path("a", "b c", taken=["inputs/a.tsv"]) == "inputs/a@b%20c.tsv"


@pytest.mark.parametrize(
    "kw",
    [{"name": "bad?name"}, {"name": "a/b"}, {"name": ""}, {"context": "tr ain!"}, {"context": 3}],
)
def test_bad_names_and_contexts_are_refused(repo: Path, kw: dict) -> None:
    (repo / "a.txt").write_text("x")
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError):
            vtrack.log_input("a.txt", **kw)
    assert vtrack.get_run(run.info.run_id).inputs.datasets == []


def test_missing_input_raises_naming_the_path_and_records_nothing(repo: Path) -> None:
    with vtrack.start_run() as run:
        with pytest.raises(DatasetError, match="nope.csv"):
            vtrack.log_input("nope.csv")
        with pytest.raises(ValidationError):
            vtrack.log_inputs("a.csv")  # a single path is not a list
        with pytest.raises(ValidationError, match="log_input"):
            vtrack.log_inputs(pd.DataFrame({"a": [1]}))  # nor is a DataFrame (its columns)
        with pytest.raises(ValidationError, match="unknown: nme"):
            vtrack.log_inputs([{"data": "a.csv", "nme": "typo"}])
    assert vtrack.get_run(run.info.run_id).inputs.datasets == []


def test_unreadable_file_gives_an_error_naming_it_and_records_nothing(repo: Path) -> None:
    """A real EACCES (chmod 000). Root ignores file modes, so the logging process runs
    with DAC override dropped from its capability bounding set (util-linux setpriv)."""
    make_tree(repo / "d", {"ok.txt": b"1", "secret.txt": b"2"})
    (repo / "d" / "secret.txt").chmod(0)
    code = """
        import vtrack
        from vtrack.errors import DatasetError
        with vtrack.start_run() as run:
            try:
                vtrack.log_input("d")
            except DatasetError as exc:
                print("ERROR", exc)
        print("RUN", run.info.run_id)
        """
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to test EACCES as root"
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    try:
        res = subprocess.run(
            [*prefix, sys.executable, "-c", textwrap.dedent(code)],
            cwd=repo,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (repo / "d" / "secret.txt").chmod(0o644)
    assert res.returncode == 0, res.stderr
    assert (
        "ERROR" in res.stdout and "secret.txt" in res.stdout and "Permission denied" in res.stdout
    )
    run_id = res.stdout.split("RUN ")[1].split()[0]
    assert vtrack.get_run(run_id).inputs.datasets == []


def test_input_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "elsewhere", {"x.bin": b"xx", "y.bin": b"yyy"})
    with vtrack.start_run() as run:
        e = vtrack.log_input(outside, name="ext")
    assert "repo_path" not in e and e["path"] == str(outside)
    assert vtrack.audit(run.info.run_id)[0]["status"] == "unchanged"
    (outside / "y.bin").write_bytes(b"zzz")
    res = vtrack.audit(run.info.run_id)[0]
    assert res["status"] == "changed" and res["modified"] == ["y.bin"]
    [hit] = vtrack.lineage(outside / "y.bin")
    assert hit["run_id"] == run.info.run_id and hit["data_status"] == "changed"


def test_run_killed_after_log_input_keeps_it_after_recovery(repo: Path) -> None:
    make_tree(repo / "d", {"a.txt": b"a", "b/c.txt": b"c"})
    res = run_script(
        """
        import os, signal, vtrack
        run = vtrack.start_run()
        vtrack.log_input("d", name="data", context="train")
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        cwd=repo,
        env=FAST,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr  # type: ignore[union-attr]
    run_id = res.stdout.split()[0]  # type: ignore[union-attr]
    run = vtrack.get_run(run_id)  # recovers the run from its journal
    assert run.info.status == "KILLED"
    [entry] = run.inputs.datasets
    assert entry["name"] == "data" and entry["file_count"] == 2
    assert manifest_from_tsv(show(repo, run_id, "inputs/data.tsv") + "\n")[1][0] == "b/c.txt"
    assert vtrack.audit(run_id)[0]["status"] == "unchanged"
    assert_fsck_clean(repo)


def test_public_audit_and_lineage_stay_functions_after_their_modules_load() -> None:
    import vtrack.provenance  # noqa: F401
    import vtrack.provenance.drift  # noqa: F401 - a submodule named audit would replace vtrack.audit

    assert callable(vtrack.audit) and callable(vtrack.lineage)
    assert vtrack.audit.__module__ == "vtrack.fluent"


# --------------------------------------------------------------------------- audit


@pytest.fixture
def aged_run(repo: Path) -> tuple[Path, str]:
    """A run with a file and a folder input whose stat-cache entries are trusted (old enough)."""
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_bytes(b"a,b\n1,2\n")
    make_tree(repo / "data" / "imgs", {"1.png": b"one", "2.png": b"two", "sub/3.png": b"three"})
    warm_store_stat_cache(repo, repo / "data" / "train.csv", repo / "data" / "imgs")
    with vtrack.start_run() as run:
        vtrack.log_input("data/train.csv", name="train")
        vtrack.log_input("data/imgs", name="imgs")
        vtrack.log_input(pd.DataFrame({"a": [1]}), name="frame", source="data/train.csv")
        vtrack.log_input("s3://bucket/x.parquet", name="remote")
    return repo, run.info.run_id


def test_audit_of_untouched_data_says_unchanged_from_the_stat_cache(aged_run) -> None:
    repo, run_id = aged_run
    res = by_name(vtrack.audit(run_id))
    assert {k: r["status"] for k, r in res.items()} == {
        "train": "unchanged",
        "imgs": "unchanged",
        "frame": "unchanged",
        "remote": "unverifiable",
    }
    assert res["imgs"]["path"] == str(repo / "data" / "imgs")
    assert res["remote"]["path"] is None
    assert (repo / ".git" / "vtrack" / "statcache.sqlite").exists()


def test_audit_catches_every_kind_of_drift(aged_run) -> None:
    repo, run_id = aged_run
    data = repo / "data"
    # same size, mtime put back: only ctime moves, so the warm stat cache must not vouch
    st = (data / "train.csv").stat()
    (data / "train.csv").write_bytes(b"a,b\n9,2\n")
    os.utime(data / "train.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    (data / "imgs" / "1.png").write_bytes(b"ONE")  # same-size content change
    (data / "imgs" / "2.png").rename(data / "imgs" / "2-renamed.png")
    (data / "imgs" / "new.png").write_bytes(b"new")
    (data / "imgs" / "sub" / "3.png").chmod(0o600)  # permissions only: not drift
    res = by_name(vtrack.audit(run_id))
    assert res["train"]["status"] == "changed" and res["frame"]["status"] == "changed"
    imgs = res["imgs"]
    assert imgs["status"] == "changed" and imgs["actual_digest"] is None
    assert imgs["added"] == ["2-renamed.png", "new.png"]
    assert imgs["removed"] == ["2.png"] and imgs["modified"] == ["1.png"]
    (data / "train.csv").unlink()
    assert by_name(vtrack.audit(run_id))["train"]["status"] == "missing"


def test_permission_only_change_is_unchanged(aged_run) -> None:
    repo, run_id = aged_run
    (repo / "data" / "train.csv").chmod(0o600)
    os.chmod(repo / "data" / "imgs" / "1.png", stat.S_IRUSR)
    assert {r["status"] for r in vtrack.audit(run_id)} == {"unchanged", "unverifiable"}


def test_audit_accepts_run_specs_and_checks_the_clone_it_runs_in(aged_run, tmp_path, monkeypatch):
    repo, run_id = aged_run
    assert vtrack.audit(run_id[:6]) == vtrack.audit("@")
    # another clone with the runs fetched audits its own checkout through repo_path
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/vtrack/*:refs/vtrack/*")
    make_tree(
        clone / "data",
        {
            "train.csv": b"a,b\n1,2\n",
            "imgs/1.png": b"one",
            "imgs/2.png": b"two",
            "imgs/sub/3.png": b"three",
        },
    )
    monkeypatch.chdir(clone)
    vtrack.set_tracking_uri(None)
    res = by_name(vtrack.audit(run_id))
    assert res["imgs"]["path"] == str(clone / "data" / "imgs")
    assert res["train"]["status"] == res["imgs"]["status"] == "unchanged"
    (clone / "data" / "imgs" / "1.png").write_bytes(b"uno")
    assert by_name(vtrack.audit(run_id))["imgs"]["modified"] == ["1.png"]


# --------------------------------------------------------------------------- lineage


def test_lineage_through_files_folders_and_digests(repo: Path) -> None:
    make_tree(repo / "data", {"shared.csv": b"s\n1\n", "imgs/a.png": b"a", "imgs/b/c.png": b"c"})
    with vtrack.start_run(run_name="direct") as r1:
        vtrack.log_input("data/shared.csv", name="train", context="training")
    time.sleep(0.01)
    with vtrack.start_run(run_name="folder") as r2:
        vtrack.log_input("data", name="everything", context="training")
    time.sleep(0.01)
    with vtrack.start_run(run_name="frame") as r3:
        vtrack.log_input(
            pd.DataFrame({"s": [1]}), name="df", context="eval", source="data/shared.csv"
        )
    time.sleep(0.01)
    with vtrack.start_run(run_name="images") as r4:
        vtrack.log_input("data/imgs", name="imgs")
    with vtrack.start_run(run_name="deleted") as r5:
        vtrack.log_input("data/shared.csv")
    vtrack.delete_run(r5.info.run_id)

    hits = vtrack.lineage("data/shared.csv")  # newest first, deleted runs left out
    assert [h["run_name"] for h in hits] == ["frame", "folder", "direct"]
    assert [h["context"] for h in hits] == ["eval", "training", "training"]
    assert {h["status"] for h in hits} == {"FINISHED"}
    assert hits[1]["files"] == ["shared.csv"] and hits[1]["path"] == str(repo / "data")
    assert {h["data_status"] for h in hits} == {"unchanged"}
    digest = hash_file(repo / "data" / "shared.csv")[0]
    assert {h["digest"] for h in hits} == {digest}

    by_digest = vtrack.lineage(digest)
    assert [h["run_name"] for h in by_digest] == ["frame", "folder", "direct"]
    assert [h["run_name"] for h in vtrack.lineage(digest[:16])] == ["frame", "folder", "direct"]
    folder_digest_ = vtrack.get_run(r2.info.run_id).inputs.datasets[0]["digest"]
    assert [h["run_name"] for h in vtrack.lineage(folder_digest_)] == ["folder"]

    nested = vtrack.lineage(repo / "data" / "imgs" / "b" / "c.png")
    assert [(h["run_name"], h["files"]) for h in nested] == [
        ("images", ["b/c.png"]),
        ("folder", ["imgs/b/c.png"]),
    ]
    under = vtrack.lineage(repo / "data" / "imgs")  # a folder: runs that read files below it
    assert [(h["run_name"], h["files"]) for h in under] == [
        ("images", []),
        ("folder", ["imgs/a.png", "imgs/b/c.png"]),  # itself; files of a parent
    ]
    assert under[0]["digest"] == vtrack.get_run(r4.info.run_id).inputs.datasets[0]["digest"]
    assert under[1]["digest"] is None and under[1]["path"] == str(repo / "data")
    assert [h["run_name"] for h in vtrack.lineage(repo / "data")] == [
        "images",
        "frame",
        "folder",
        "direct",
    ]

    (repo / "data" / "shared.csv").write_bytes(b"s\n2\n")
    assert {h["data_status"] for h in vtrack.lineage("data/shared.csv")} == {"changed"}
    (repo / "data" / "shared.csv").unlink()
    assert {h["data_status"] for h in vtrack.lineage("data/shared.csv")} == {"missing"}
    assert vtrack.lineage("data/never.csv") == []
    assert r1.info.run_id and r3.info.run_id
    with pytest.raises(ValidationError, match="too short"):
        vtrack.lineage("xxh3-128:ab")


def test_lineage_sees_a_live_run(repo: Path) -> None:
    make_tree(repo / "d", {"f.txt": b"f"})
    with vtrack.start_run() as run:
        vtrack.log_input("d", name="d")
        [hit] = vtrack.lineage("d/f.txt")
        assert hit["run_id"] == run.info.run_id and hit["status"] == "RUNNING"
