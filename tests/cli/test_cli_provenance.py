"""``vtrack audit`` and ``vtrack lineage``: tables, JSON, exit codes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import vtrack
from tests.cli.conftest import invoke, vt
from tests.conftest import warm_store_stat_cache
from vtrack.errors import EXIT_CONFLICT, EXIT_DRIFT, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from vtrack.hashing import hash_file


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    """Two runs: ``a`` reads data/train.csv and data/imgs, ``b`` data/train.csv and a URI."""
    make_tree(repo / "data", {"train.csv": b"x,y\n1,2\n", "imgs/1.png": b"1", "imgs/2.png": b"22"})
    with vtrack.start_run(run_name="a") as a:
        vtrack.log_input("data/train.csv", name="train", context="training")
        vtrack.log_input("data/imgs", name="imgs", context="training")
    time.sleep(0.01)
    with vtrack.start_run(run_name="b") as b:
        vtrack.log_input("data/train.csv", name="train", context="training")
        vtrack.log_input("s3://bucket/extra.csv", name="extra", context="training")
    return {"a": a.info.run_id, "b": b.info.run_id}


def test_audit_of_matching_data_exits_0(repo: Path, runs: dict[str, str]) -> None:
    res = invoke("audit", runs["a"][:8])
    assert res.exit_code == EXIT_OK, res.stderr
    assert "unchanged" in res.stdout and "imgs" in res.stdout and "ok: 2 inputs" in res.stdout
    data = invoke("audit", "a", "--json")
    assert data.exit_code == EXIT_OK
    items = data.json()
    assert [(i["name"], i["status"]) for i in items] == [
        ("train", "unchanged"),
        ("imgs", "unchanged"),
    ]
    assert items[0]["run_id"] == runs["a"] and items[0]["path"] == str(repo / "data" / "train.csv")
    # unverifiable inputs are not drift; the default run is the newest (b)
    default = invoke("audit", "--json")
    assert default.exit_code == EXIT_OK
    assert [i["status"] for i in default.json()] == ["unchanged", "unverifiable"]


def test_audit_reports_drift_with_exit_1_and_the_files(repo: Path, runs: dict[str, str]) -> None:
    (repo / "data" / "imgs" / "1.png").write_bytes(b"9")
    (repo / "data" / "imgs" / "3.png").write_bytes(b"new")
    (repo / "data" / "imgs" / "2.png").unlink()
    res = invoke("audit", "a")
    assert res.exit_code == EXIT_DRIFT
    assert "changed" in res.stdout and "+1 added, -1 removed, ~1 modified" in res.stdout
    lines = res.stdout.splitlines()
    assert any(ln.strip() == "+ 3.png" for ln in lines) and any(
        ln.strip() == "- 2.png" for ln in lines
    )
    assert "drift: 1 of 2 inputs changed or missing" in res.stdout
    data = invoke("audit", "a", "--json")
    assert data.exit_code == EXIT_DRIFT
    imgs = data.json()[1]
    assert (imgs["added"], imgs["removed"], imgs["modified"]) == (["3.png"], ["2.png"], ["1.png"])
    (repo / "data" / "train.csv").unlink()
    missing = invoke("audit", "b", "--json")
    assert missing.exit_code == EXIT_DRIFT and missing.json()[0]["status"] == "missing"


def test_audit_all_prints_a_summary_per_run(repo: Path, runs: dict[str, str]) -> None:
    ok = invoke("audit", "--all")
    assert ok.exit_code == EXIT_OK
    assert ok.stdout.count("ok") >= 2 and "verdict" in ok.stdout
    (repo / "data" / "imgs" / "1.png").write_bytes(b"9")
    res = invoke("audit", "--all")
    assert res.exit_code == EXIT_DRIFT
    row_a = next(ln for ln in res.stdout.splitlines() if ln.startswith(runs["a"][:8]))
    assert "drifted" in row_a
    assert "drifted inputs (1)" in res.stdout
    items = invoke("audit", "--all", "--json").json()
    assert sorted({i["run_id"] for i in items}) == sorted(runs.values()) and len(items) == 4


def test_audit_usage_errors_exit_2_and_unknown_runs_3(repo: Path, runs: dict[str, str]) -> None:
    assert invoke("audit", "a", "--all").exit_code == EXIT_USAGE
    assert invoke("audit", "--bogus").exit_code == EXIT_USAGE
    assert invoke("audit", "nosuchrun").exit_code == EXIT_NOT_FOUND


def test_lineage_lists_runs_newest_first(repo: Path, runs: dict[str, str]) -> None:
    res = invoke("lineage", "data/train.csv")
    assert res.exit_code == EXIT_OK
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith((runs["a"][:8], runs["b"][:8]))]
    assert [r[:8] for r in rows] == [runs["b"][:8], runs["a"][:8]]
    assert "training" in rows[0] and "FINISHED" in rows[0] and "unchanged" in rows[0]
    items = invoke("lineage", str(repo / "data" / "imgs" / "2.png"), "--json").json()
    assert [(i["run_name"], i["name"], i["files"]) for i in items] == [("a", "imgs", ["2.png"])]
    digest = hash_file(repo / "data" / "imgs" / "2.png")[0]
    assert invoke("lineage", digest, "--json").json()[0]["run_id"] == runs["a"]
    none = invoke("lineage", "data/other.csv")
    assert none.exit_code == EXIT_OK and none.stdout == "" and "no run consumed" in none.stderr
    assert invoke("lineage", "xxh3-128:a").exit_code == EXIT_USAGE


def test_exit_codes_through_the_real_command(repo: Path, runs: dict[str, str]) -> None:
    assert vt(repo, "audit", "a").exit_code == EXIT_OK
    (repo / "data" / "train.csv").write_bytes(b"x,y\n3,4\n")
    res = vt(repo, "audit", "--all", "--json")
    assert res.exit_code == EXIT_DRIFT, res.stderr
    lineage = vt(repo, "lineage", "data/train.csv", "--json")
    assert lineage.exit_code == EXIT_OK
    assert {i["data_status"] for i in lineage.json()} == {"changed"}
    assert os.path.exists(repo / ".git" / "vtrack" / "statcache.sqlite")


def test_relogging_other_content_is_a_conflict_exit_code(repo: Path) -> None:
    (repo / "a.txt").write_text("a")
    (repo / "b.txt").write_text("b")
    with vtrack.start_run():
        vtrack.log_input("a.txt", name="x")
        with pytest.raises(vtrack.VtrackError) as info:
            vtrack.log_input("b.txt", name="x")
    assert info.value.exit_code == EXIT_CONFLICT


def test_every_kind_of_drift_through_vtrack_audit(repo: Path) -> None:
    make_tree(repo / "data", {"train.csv": b"x,y\n1,2\n", "imgs/1.png": b"11", "imgs/2.png": b"22"})
    # old enough for the stat cache to vouch for them
    warm_store_stat_cache(repo, repo / "data" / "train.csv", repo / "data" / "imgs")
    with vtrack.start_run():
        vtrack.log_input("data/train.csv", name="train")
        vtrack.log_input("data/imgs", name="imgs")

    def audit() -> tuple[int, dict[str, dict]]:
        res = invoke("audit", "--json")
        return res.exit_code, {i["name"]: i for i in res.json()}

    assert audit()[0] == EXIT_OK  # also warms the stat cache
    train, img = repo / "data" / "train.csv", repo / "data" / "imgs"
    train.chmod(0o600)
    (img / "1.png").chmod(0o400)
    code, items = audit()
    assert code == EXIT_OK and {i["status"] for i in items.values()} == {"unchanged"}

    st = train.stat()
    train.write_bytes(b"x,y\n9,2\n")  # same size, mtime put back
    os.utime(train, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, items = audit()
    assert code == EXIT_DRIFT and items["train"]["status"] == "changed"
    train.write_bytes(b"x,y\n1,2\n")
    assert audit()[0] == EXIT_OK

    (img / "2.png").rename(img / "two.png")
    code, items = audit()
    assert code == EXIT_DRIFT
    assert (items["imgs"]["removed"], items["imgs"]["added"]) == (["2.png"], ["two.png"])
    (img / "two.png").rename(img / "2.png")
    (img / "3.png").write_bytes(b"33")
    code, items = audit()
    assert code == EXIT_DRIFT and items["imgs"]["added"] == ["3.png"]
    (img / "3.png").unlink()
    (img / "1.png").chmod(0o600)
    (img / "1.png").write_bytes(b"1!")
    code, items = audit()
    assert code == EXIT_DRIFT and items["imgs"]["modified"] == ["1.png"]
    (img / "1.png").write_bytes(b"11")
    assert audit()[0] == EXIT_OK

    train.unlink()
    code, items = audit()
    assert code == EXIT_DRIFT and items["train"]["status"] == "missing"
    assert items["imgs"]["status"] == "unchanged"
