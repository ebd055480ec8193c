"""``vtrack diff`` names the files of a changed folder input, as ``vtrack audit`` does."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tests.cli.conftest import invoke, new_repo, train, vt

#: Logs the folder ``data`` as input ``images`` (context ``train``) and the file notes.txt.
LOG_FOLDER = textwrap.dedent(
    """\
    import sys
    import vtrack

    with vtrack.start_run(run_name=sys.argv[1]):
        vtrack.log_input("data", name="images", context="train")
        vtrack.log_input("notes.txt", name="notes")
        vtrack.log_param("n", len(sys.argv))
    """
)


def _two_runs(tmp_path: Path) -> tuple[Path, str, str]:
    repo = new_repo(tmp_path)
    (repo / "log_folder.py").write_text(LOG_FOLDER)
    data = repo / "data"
    (data / "sub").mkdir(parents=True)
    for name in ("keep.txt", "edit.txt", "gone.txt", "sub/deep.bin"):
        (data / name).write_text(f"{name}\n")
    (repo / "notes.txt").write_text("first\n")
    train(repo, "before", script="log_folder.py")
    (data / "edit.txt").write_text("edited\n")
    (data / "gone.txt").unlink()
    (data / "sub" / "new.bin").write_bytes(b"\x00\x01")
    (data / "sub" / "deep.bin").write_text("changed too\n")
    (repo / "notes.txt").write_text("second\n")
    train(repo, "after", script="log_folder.py")
    runs = invoke("--store", str(repo), "ls", "--json").json()
    by_name = {r["run_name"]: r["run_id"] for r in runs}
    return repo, by_name["before"], by_name["after"]


def test_a_changed_folder_input_lists_its_added_removed_and_modified_files(
    tmp_path: Path,
) -> None:
    repo, before, after = _two_runs(tmp_path)
    res = vt(repo, "diff", before, after, "--only", "datasets")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    start = lines.index("images (train): +1 added, -1 removed, ~2 modified")
    assert lines[start + 1 : start + 5] == [
        "  ~ edit.txt",
        "  - gone.txt",
        "  ~ sub/deep.bin",
        "  + sub/new.bin",
    ]
    assert "keep.txt" not in res.stdout
    assert "notes:" not in res.stdout  # a file input has no file list

    data = invoke("--store", str(repo), "diff", before, after, "--json").json()
    by_name = {d["name"]: d for d in data["datasets"]}
    images = by_name["images"]
    assert images["kind"] == "changed" and images["context"] == "train"
    assert images["added"] == ["sub/new.bin"]
    assert images["removed"] == ["gone.txt"]
    assert images["modified"] == ["edit.txt", "sub/deep.bin"]
    notes = by_name["notes"]
    assert notes["kind"] == "changed"
    assert notes["added"] is None and notes["removed"] is None and notes["modified"] is None


def test_file_lists_come_from_the_recorded_manifests_not_the_disk(tmp_path: Path) -> None:
    repo, before, after = _two_runs(tmp_path)
    # the folder is gone from disk and the older run is in the trash: both runs' records
    # still hold their manifests
    shutil.rmtree(repo / "data")
    assert vt(repo, "rm", before).exit_code == 0
    data = invoke("--store", str(repo), "diff", before, after, "--json", "--only", "datasets")
    images = next(d for d in data.json()["datasets"] if d["name"] == "images")
    assert images["removed"] == ["gone.txt"] and images["added"] == ["sub/new.bin"]


def test_an_unchanged_folder_shows_no_file_list(tmp_path: Path) -> None:
    repo, before, _ = _two_runs(tmp_path)
    res = invoke("--store", str(repo), "diff", before, before, "--all", "--json")
    images = next(d for d in res.json()["datasets"] if d["name"] == "images")
    assert images["kind"] == "unchanged" and images["added"] is None
