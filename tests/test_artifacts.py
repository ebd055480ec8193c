"""Artifacts: logging files, folders, text, dicts, figures and images; listing, reading, downloading."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vtrack
from tests.conftest import assert_fsck_clean, git, run_script
from vtrack import artifacts
from vtrack.artifacts import FileInfo
from vtrack.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    CorruptObjectError,
    RunNotFoundError,
    ValidationError,
)
from vtrack.hashing import hash_bytes, hash_file

MiB = 1024 * 1024


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """Files over 1 KiB go to the large-object store (set before the store is opened)."""
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", "1024")
    return 1024


def _objects_dir(repo: Path) -> Path:
    return repo / ".git" / "vtrack" / "objects"


def _object_files(repo: Path) -> list[Path]:
    root = _objects_dir(repo)
    if not root.exists():
        return []
    return sorted(p for p in root.glob("??/*") if p.is_file())


def _show(repo: Path, run_id: str, path: str) -> str:
    return git(repo, "show", f"refs/vtrack/runs/{run_id}:{path}")


def _manifest(run_id: str) -> dict:
    return vtrack.get_run(run_id).inputs.artifacts


# --- files and folders ------------------------------------------------------------------


def test_small_file_is_a_git_blob_listed_with_its_digest_and_round_trips(repo: Path) -> None:
    (repo / "confusion.txt").write_text("tp fp\nfn tn\n")
    with vtrack.start_run() as run:
        vtrack.log_artifact("confusion.txt")
        vtrack.log_artifact(repo / "confusion.txt", artifact_path="eval/plots")
    run_id = run.info.run_id
    entry = _manifest(run_id)["confusion.txt"]
    digest, size = hash_file(repo / "confusion.txt")
    assert entry["digest"] == digest and entry["size"] == size and entry["storage"] == "git"
    assert _show(repo, run_id, ".vtrack/artifacts/confusion.txt") == "tp fp\nfn tn"
    assert _show(repo, run_id, ".vtrack/artifacts/eval/plots/confusion.txt") == "tp fp\nfn tn"
    assert "confusion.txt:" in _show(repo, run_id, ".vtrack/artifacts.yaml")
    local = vtrack.download_artifacts(
        run_id=run_id, artifact_path="confusion.txt", dst_path=repo / "dl"
    )
    assert Path(local) == repo / "dl" / "confusion.txt"
    assert Path(local).read_text() == "tp fp\nfn tn\n"
    assert _object_files(repo) == []  # nothing went to the large-object store
    assert_fsck_clean(repo)


def test_folder_is_logged_recursively_listed_and_downloaded(repo: Path) -> None:
    out = repo / "outputs"
    (out / "sub" / "deeper").mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (out / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (out / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)))
    with vtrack.start_run() as run:
        vtrack.log_artifacts("outputs", artifact_path="eval")
        assert vtrack.list_artifacts() == [FileInfo("eval", True, None)]
    run_id = run.info.run_id
    assert vtrack.list_artifacts(run_id=run_id, artifact_path="eval") == [
        FileInfo("eval/a.txt", False, 1),
        FileInfo("eval/sub", True, None),
    ]
    assert vtrack.list_artifacts(f"runs:/{run_id}/eval/sub") == [
        FileInfo("eval/sub/b.csv", False, 8),
        FileInfo("eval/sub/deeper", True, None),
    ]
    assert vtrack.list_artifacts(run_id=run_id, artifact_path="eval/a.txt") == []  # a file
    assert vtrack.list_artifacts(run_id=run_id, artifact_path="nothing/here") == []
    local = Path(vtrack.download_artifacts(f"runs:/{run_id}/eval/sub", dst_path=repo / "dl"))
    assert local == repo / "dl" / "eval" / "sub"
    assert (local / "b.csv").read_text() == "x,y\n1,2\n"
    assert (local / "deeper" / "c.bin").read_bytes() == bytes(range(256))
    assert not (repo / "dl" / "eval" / "a.txt").exists()
    everything = Path(vtrack.download_artifacts(run_id=run_id))  # a new temporary folder
    assert sorted(
        p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()
    ) == [
        "eval/a.txt",
        "eval/sub/b.csv",
        "eval/sub/deeper/c.bin",
    ]


def test_artifact_path_root_forms_are_equivalent_and_empty_folder_logs_nothing(repo: Path) -> None:
    (repo / "f.txt").write_text("f")
    (repo / "empty").mkdir()
    with vtrack.start_run() as run:
        for root in (None, "", "."):
            vtrack.log_artifact("f.txt", artifact_path=root)
        vtrack.log_artifacts("empty")
    assert list(_manifest(run.info.run_id)) == ["f.txt"]


def test_large_file_is_streamed_to_the_object_store_with_a_pointer_in_the_tree(
    repo: Path, small_threshold: int
) -> None:
    data = os.urandom(5000)
    (repo / "weights.bin").write_bytes(data)
    with vtrack.start_run() as run:
        vtrack.log_artifact("weights.bin", artifact_path="model")
    run_id = run.info.run_id
    entry = _manifest(run_id)["model/weights.bin"]
    assert entry == {"digest": hash_bytes(data), "size": 5000, "storage": "large"}
    [obj] = _object_files(repo)
    assert obj.read_bytes() == data
    assert obj.parent.name + obj.name == entry["digest"].split(":")[1]
    pointer = _show(repo, run_id, ".vtrack/artifacts/model/weights.bin")
    assert f"digest: {entry['digest']}" in pointer and "size: 5000" in pointer
    local = vtrack.download_artifacts(f"runs:/{run_id}/model/weights.bin", dst_path=repo / "dl")
    assert Path(local).read_bytes() == data
    assert_fsck_clean(repo)


def test_file_exactly_at_the_threshold_is_a_git_blob(repo: Path, small_threshold: int) -> None:
    (repo / "edge.bin").write_bytes(b"e" * small_threshold)
    (repo / "over.bin").write_bytes(b"o" * (small_threshold + 1))
    with vtrack.start_run() as run:
        vtrack.log_artifact("edge.bin")
        vtrack.log_artifact("over.bin")
    m = _manifest(run.info.run_id)
    assert m["edge.bin"]["storage"] == "git" and m["over.bin"]["storage"] == "large"


def test_identical_bytes_in_several_runs_are_stored_once(repo: Path, small_threshold: int) -> None:
    big = os.urandom(4096)
    (repo / "big.bin").write_bytes(big)
    (repo / "small.txt").write_text("same")
    runs = []
    for _ in range(3):
        with vtrack.start_run() as run:
            vtrack.log_artifact("big.bin")
            vtrack.log_artifact("small.txt")
            vtrack.log_text("same", "copy-of-small.txt")
        runs.append(run.info.run_id)
    assert len(_object_files(repo)) == 1
    blobs = {_manifest(r)["small.txt"]["blob"] for r in runs}
    blobs |= {_manifest(r)["copy-of-small.txt"]["blob"] for r in runs}
    assert len(blobs) == 1


def test_relogging_a_path_replaces_it_even_across_storage_kinds(
    repo: Path, small_threshold: int
) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("small", "x.bin")
        vtrack.log_text("L" * 3000, "x.bin")
    run_id = run.info.run_id
    assert _manifest(run_id)["x.bin"]["storage"] == "large"
    assert vtrack.load_text(f"runs:/{run_id}/x.bin") == "L" * 3000
    # the tree holds the pointer now, not the stale small blob
    assert "digest: xxh3-128:" in _show(repo, run_id, ".vtrack/artifacts/x.bin")


def test_a_path_cannot_be_both_a_file_and_a_folder(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("file", "a")
        with pytest.raises(ValidationError, match="'a' is a file artifact"):
            vtrack.log_text("inside", "a/b.txt")
        vtrack.log_text("x", "d/e.txt")
        with pytest.raises(ValidationError, match="is a folder of artifacts"):
            vtrack.log_text("clash", "d")
    assert sorted(_manifest(run.info.run_id)) == ["a", "d/e.txt"]


# --- safety -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "artifact_path",
    ["/etc", "../outside", "a/../../b", "C:/x", "a\\b", "a\x00b", ".git", "x/.GIT/hooks"],
)
def test_traversal_attempts_in_artifact_path_are_refused(repo: Path, artifact_path: str) -> None:
    (repo / "f.txt").write_text("f")
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match="refused"):
            vtrack.log_artifact("f.txt", artifact_path=artifact_path)
        with pytest.raises(ValidationError, match="refused"):
            vtrack.log_text("t", f"{artifact_path}/t.txt")
    assert _manifest(run.info.run_id) == {}


def test_symlink_out_of_the_folder_is_refused_and_nothing_is_stored(
    repo: Path, tmp_path: Path, small_threshold: int
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not log me" * 200)
    out = repo / "out"
    out.mkdir()
    (out / "ok.bin").write_bytes(os.urandom(4000))
    (out / "zz-link").symlink_to(secret)
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match="points outside the folder"):
            vtrack.log_artifacts("out")
    assert _manifest(run.info.run_id) == {}
    assert _object_files(repo) == []  # refused before any byte was stored


def test_symlinks_inside_the_folder_are_stored_as_regular_files(repo: Path) -> None:
    out = repo / "out"
    (out / "real").mkdir(parents=True)
    (out / "real" / "data.txt").write_text("payload")
    (out / "alias.txt").symlink_to(out / "real" / "data.txt")
    (out / "dirlink").symlink_to(out / "real", target_is_directory=True)
    with vtrack.start_run() as run:
        vtrack.log_artifacts(out)
    m = _manifest(run.info.run_id)
    assert sorted(m) == ["alias.txt", "dirlink/data.txt", "real/data.txt"]
    assert len({e["digest"] for e in m.values()}) == 1
    mode = git(
        repo, "ls-tree", f"refs/vtrack/runs/{run.info.run_id}", ".vtrack/artifacts/alias.txt"
    )
    assert mode.startswith("100644 blob")


def test_bad_local_paths_are_refused(repo: Path) -> None:
    (repo / "folder").mkdir()
    with vtrack.start_run():
        with pytest.raises(ValidationError, match="use log_artifacts"):
            vtrack.log_artifact("folder")
        with pytest.raises(ValidationError, match="no such file"):
            vtrack.log_artifact("missing.txt")
        with pytest.raises(ValidationError, match="not a directory"):
            vtrack.log_artifacts("missing-dir")


def test_failed_upload_records_nothing_not_even_part_of_a_folder(
    repo: Path, small_threshold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = repo / "out"
    out.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        (out / name).write_bytes(os.urandom(3000))
    real_put = artifacts.ObjectStore.put_file
    calls = []

    def failing_put(self, path):
        calls.append(path)
        if len(calls) == 2:
            raise ArtifactError("disk full (simulated)")
        return real_put(self, path)

    monkeypatch.setattr(artifacts.ObjectStore, "put_file", failing_put)
    with vtrack.start_run() as run:
        with pytest.raises(ArtifactError, match="disk full"):
            vtrack.log_artifacts(out)
    assert _manifest(run.info.run_id) == {}
    assert_fsck_clean(repo)


def test_logging_starts_a_run_when_none_is_active_and_needs_an_existing_run_id(repo: Path) -> None:
    (repo / "f.txt").write_text("f")
    vtrack.log_artifact("f.txt")  # no active run: one is started, as in MLflow
    implicit = vtrack.active_run()
    assert implicit is not None
    vtrack.end_run()
    assert vtrack.load_text(run_id=implicit.info.run_id, artifact_path="f.txt") == "f"
    with pytest.raises(RunNotFoundError):
        vtrack.TrackingClient().log_artifact("0" * 32, "f.txt")


# --- text, dicts, figures, images ---------------------------------------------------------


def test_log_text_and_load_text_round_trip_unicode(repo: Path) -> None:
    report = "# Report\n\naccuracy: 0.93 ✓ — naïve\n"
    with vtrack.start_run() as run:
        vtrack.log_text(report, "report.md")
        assert vtrack.load_text(f"runs:/{run.info.run_id}/report.md") == report  # live
    assert vtrack.load_text(run_id=run.info.run_id, artifact_path="report.md") == report
    with pytest.raises(ValidationError, match="needs a str"):
        vtrack.TrackingClient().log_text(run.info.run_id, b"bytes", "x.txt")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["config.yaml", "config.yml", "config.json"])
def test_log_dict_and_load_dict_round_trip_keeping_key_order(repo: Path, name: str) -> None:
    cfg = {"model": {"layers": [64, 32], "dropout": 0.1}, "lr": 1e-3, "name": "ünï", "flag": True}
    with vtrack.start_run() as run:
        vtrack.log_dict(cfg, name)
    uri = f"runs:/{run.info.run_id}/{name}"
    loaded = vtrack.load_dict(uri)
    assert loaded == cfg and list(loaded) == list(cfg)
    text = vtrack.load_text(uri)
    if name.endswith(".json"):
        assert json.loads(text) == cfg
    else:
        assert text.startswith("model:\n")


def test_log_dict_refuses_values_the_format_cannot_hold(repo: Path) -> None:
    with vtrack.start_run():
        with pytest.raises(ValidationError):
            vtrack.log_dict({"x": object()}, "bad.json")
        with pytest.raises(ValidationError):
            vtrack.log_dict({"x": object()}, "bad.yaml")


def test_load_dict_of_unparsable_file_raises_artifact_error(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("{not json", "x.json")
    with pytest.raises(ArtifactError, match="cannot be parsed"):
        vtrack.load_dict(f"runs:/{run.info.run_id}/x.json")


@pytest.mark.parametrize(
    ("name", "magic"), [("roc.png", b"\x89PNG"), ("roc.svg", b"<?xml"), ("roc.pdf", b"%PDF")]
)
def test_log_figure_saves_matplotlib_figures_by_extension(
    repo: Path, name: str, magic: bytes
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 0.5, 1], [0, 0.8, 1])
    with vtrack.start_run() as run:
        vtrack.log_figure(fig, name)
    plt.close(fig)
    client = vtrack.TrackingClient()
    data = artifacts.read_bytes(client.repo, run.info.run_id, name)
    assert data.startswith(magic)


def test_log_figure_refuses_unknown_objects_and_formats(repo: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match="matplotlib or plotly"):
            vtrack.log_figure([1, 2, 3], "x.png")
        with pytest.raises(ValidationError, match="cannot save the figure"):
            vtrack.log_figure(fig, "x.notaformat")
        with pytest.raises(ValidationError, match="no extension"):
            vtrack.log_figure(fig, "plot")
    plt.close(fig)
    assert _manifest(run.info.run_id) == {}


class _FakePlotlyFigure:
    """Stands in for plotly.graph_objects.Figure (plotly is not a test dependency)."""

    def to_html(self, include_plotlyjs="cdn", full_html=True, **kw):
        return f"<html><!-- plotlyjs={include_plotlyjs} full={full_html} --></html>"

    def to_json(self, **kw):
        return '{"data": []}'


_FakePlotlyFigure.__module__ = "plotly.graph_objs._figure"


def test_log_figure_writes_plotly_figures_as_html(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_figure(_FakePlotlyFigure(), "interactive.html")
        vtrack.log_figure(
            _FakePlotlyFigure(), "standalone.html", save_kwargs={"include_plotlyjs": True}
        )
        vtrack.log_figure(_FakePlotlyFigure(), "fig.json")
    uri = f"runs:/{run.info.run_id}"
    assert (
        vtrack.load_text(f"{uri}/interactive.html")
        == "<html><!-- plotlyjs=cdn full=True --></html>"
    )
    assert "plotlyjs=True" in vtrack.load_text(f"{uri}/standalone.html")
    assert vtrack.load_dict(f"{uri}/fig.json") == {"data": []}


def test_log_figure_with_real_plotly(repo: Path) -> None:
    import plotly.graph_objects as go  # a test dependency ([dev] extra)

    fig = go.Figure(data=[go.Scatter(x=[1, 2], y=[3, 4])])
    with vtrack.start_run() as run:
        vtrack.log_figure(fig, "plot.html")
    assert "plotly" in vtrack.load_text(f"runs:/{run.info.run_id}/plot.html").lower()


def _decode(run_id: str, name: str):
    import numpy as np
    from PIL import Image

    data = artifacts.read_bytes(vtrack.TrackingClient().repo, run_id, name)
    return np.asarray(Image.open(io.BytesIO(data)))


def test_log_image_round_trips_arrays_and_pil_images(repo: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(4, 5, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(7, 3), dtype=np.int64)
    unit = rng.random((5, 5))
    mask = rng.random((3, 4)) > 0.5
    with vtrack.start_run() as run:
        vtrack.log_image(rgb, "rgb.png")
        vtrack.log_image(rgba, "rgba.png")
        vtrack.log_image(gray, "gray.png")
        vtrack.log_image(gray[:, :, None], "gray1.png")
        vtrack.log_image(unit, "unit.png")
        vtrack.log_image(mask, "mask.png")
        vtrack.log_image(Image.fromarray(rgb), "pil.png")
        vtrack.log_image(rgba, "photo.jpg")  # alpha dropped for JPEG
    run_id = run.info.run_id
    assert (_decode(run_id, "rgb.png") == rgb).all()
    assert (_decode(run_id, "rgba.png") == rgba).all()
    assert (_decode(run_id, "gray.png") == gray).all()
    assert (_decode(run_id, "gray1.png") == gray).all()
    assert (_decode(run_id, "unit.png") == np.round(unit * 255).astype(np.uint8)).all()
    assert (_decode(run_id, "mask.png") == mask.astype(np.uint8) * 255).all()
    assert (_decode(run_id, "pil.png") == rgb).all()
    assert _decode(run_id, "photo.jpg").shape == (4, 5, 3)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda np: np.zeros((2, 2, 2), dtype=np.uint8), "HxW"),
        (lambda np: np.zeros((2,), dtype=np.uint8), "HxW"),
        (lambda np: np.full((2, 2), 300), "0..255"),
        (lambda np: np.full((2, 2), -1), "0..255"),
        (lambda np: np.full((2, 2), 1.5), "0.0..1.0"),
        (lambda np: np.full((2, 2), np.nan), "finite"),
        (lambda np: np.zeros((0, 3)), "empty"),
        (lambda np: np.array([["a", "b"]]), "dtype"),
    ],
)
def test_log_image_refuses_arrays_that_are_not_images(repo: Path, make, match: str) -> None:
    import numpy as np

    with vtrack.start_run():
        with pytest.raises(ValidationError, match=match):
            vtrack.log_image(make(np), "x.png")


def test_log_image_refuses_other_objects_and_formats(repo: Path) -> None:
    import numpy as np

    with vtrack.start_run():
        with pytest.raises(ValidationError, match="numpy array or a PIL image"):
            vtrack.log_image([[0, 1]], "x.png")
        with pytest.raises(ValidationError, match="cannot write an image"):
            vtrack.log_image(np.zeros((2, 2), dtype=np.uint8), "x.svg")


def test_log_image_without_pillow_raises_missing_dependency(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    monkeypatch.setitem(sys.modules, "PIL", None)
    with vtrack.start_run():
        with pytest.raises(vtrack.errors.MissingDependencyError, match="vtrack\\[plots\\]"):
            vtrack.log_image(np.zeros((2, 2), dtype=np.uint8), "x.png")


# --- reading, runs, clients ---------------------------------------------------------------


def test_live_artifacts_are_readable_at_once_and_committed_at_the_next_checkpoint(
    repo: Path,
) -> None:
    with vtrack.start_run() as run:
        run_id = run.info.run_id
        vtrack.log_text("live", "live.txt")
        assert vtrack.load_text(f"runs:/{run_id}/live.txt") == "live"
        # not in the run commit yet; another process reads it from the journal
        assert "live.txt" not in git(repo, "ls-tree", "-r", f"refs/vtrack/runs/{run_id}")
        res = run_script(
            f"import vtrack; print(vtrack.load_text('runs:/{run_id}/live.txt'))", cwd=repo
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "live"
        vtrack.TrackingClient().checkpoint(run_id)
        assert _show(repo, run_id, ".vtrack/artifacts/live.txt") == "live"


def test_client_logs_to_a_finished_run_by_id(repo: Path, small_threshold: int) -> None:
    with vtrack.start_run() as run:
        pass
    run_id = run.info.run_id
    client = vtrack.TrackingClient()
    (repo / "late.bin").write_bytes(os.urandom(2048))
    client.log_artifact(run_id, str(repo / "late.bin"), artifact_path="extra")
    client.log_text(run_id, "t", "t.txt")
    client.log_dict(run_id, {"a": 1}, "d.json")
    assert [f.path for f in client.list_artifacts(run_id)] == ["d.json", "extra", "t.txt"]
    assert client.load_dict(run_id, "d.json") == {"a": 1}
    assert client.load_text(run_id, "t.txt") == "t"
    client.detach(run_id)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert sorted(_manifest(run_id)) == ["d.json", "extra/late.bin", "t.txt"]
    dst = client.download_artifacts(run_id, "extra", repo / "dl")
    assert (Path(dst) / "late.bin").read_bytes() == (repo / "late.bin").read_bytes()
    assert_fsck_clean(repo)


def test_runs_uri_accepts_a_run_name_and_an_id_prefix(repo: Path) -> None:
    with vtrack.start_run(run_name="named-run") as run:
        vtrack.log_text("by name", "x.txt")
    assert vtrack.load_text("runs:/named-run/x.txt") == "by name"
    assert vtrack.load_text(f"runs:/{run.info.run_id[:8]}/x.txt") == "by name"
    with pytest.raises(RunNotFoundError):
        vtrack.load_text("runs:/no-such-run/x.txt")
    with pytest.raises(ValidationError):
        vtrack.download_artifacts("s3://bucket/x")
    with pytest.raises(ValidationError, match="not both"):
        vtrack.download_artifacts("runs:/named-run/x.txt", run_id=run.info.run_id)
    with pytest.raises(ValidationError, match="artifact_uri"):
        vtrack.download_artifacts()  # no run active, none named


def test_artifacts_of_a_deleted_run_stay_readable_by_full_id(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("kept", "x.txt")
    vtrack.delete_run(run.info.run_id)
    assert vtrack.load_text(f"runs:/{run.info.run_id}/x.txt") == "kept"
    assert vtrack.list_artifacts(run_id=run.info.run_id) == [FileInfo("x.txt", False, 4)]


def test_missing_artifact_raises_not_found(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("x", "dir/x.txt")
    uri = f"runs:/{run.info.run_id}"
    with pytest.raises(ArtifactNotFoundError, match="nope"):
        vtrack.download_artifacts(f"{uri}/nope")
    with pytest.raises(ArtifactNotFoundError):
        vtrack.load_text(f"{uri}/dir")  # a folder is not a file


def test_download_replaces_existing_files_atomically(repo: Path) -> None:
    with vtrack.start_run() as run:
        vtrack.log_text("new", "x.txt")
    (repo / "dl").mkdir()
    (repo / "dl" / "x.txt").write_text("old content")
    vtrack.download_artifacts(f"runs:/{run.info.run_id}/x.txt", dst_path=repo / "dl")
    assert (repo / "dl" / "x.txt").read_text() == "new"
    assert os.listdir(repo / "dl") == ["x.txt"]  # no temp files left


def test_corrupt_large_object_is_reported_never_served(repo: Path, small_threshold: int) -> None:
    data = os.urandom(4096)
    (repo / "w.bin").write_bytes(data)
    with vtrack.start_run() as run:
        vtrack.log_artifact("w.bin")
    [obj] = _object_files(repo)
    obj.chmod(0o644)
    obj.write_bytes(b"\x00" + data[1:])  # same size, one byte flipped
    uri = f"runs:/{run.info.run_id}/w.bin"
    with pytest.raises(CorruptObjectError, match="corrupt"):
        vtrack.download_artifacts(uri, dst_path=repo / "dl")
    assert not (repo / "dl" / "w.bin").exists()
    assert os.listdir(repo / "dl") == []
    with pytest.raises(CorruptObjectError):
        vtrack.load_text(uri)


def test_manifest_entry_that_does_not_match_its_git_blob_is_reported(repo: Path) -> None:
    client = vtrack.TrackingClient()
    with vtrack.start_run() as run:
        vtrack.log_text("truth", "x.txt")
        w = client.repo.writer(run.info.run_id)
        entry = dict(w.state.artifacts["x.txt"])
        entry["digest"] = hash_bytes(b"something else")
        w.add_artifact("x.txt", entry, None)
    with pytest.raises(CorruptObjectError, match="does not match"):
        vtrack.load_text(f"runs:/{run.info.run_id}/x.txt")


def test_manifest_path_that_breaks_the_rules_is_never_written(repo: Path) -> None:
    client = vtrack.TrackingClient()
    with vtrack.start_run() as run:
        vtrack.log_text("x", "x.txt")
        w = client.repo.writer(run.info.run_id)
        w.add_artifact("../escape.txt", dict(w.state.artifacts["x.txt"]), None)
    with pytest.raises(CorruptObjectError, match="refuse"):
        vtrack.download_artifacts(run_id=run.info.run_id, dst_path=repo / "dl" / "inner")
    assert not (repo / "dl" / "escape.txt").exists()


def test_missing_large_object_says_where_to_fetch_it(repo: Path, small_threshold: int) -> None:
    (repo / "w.bin").write_bytes(os.urandom(4096))
    with vtrack.start_run() as run:
        vtrack.log_artifact("w.bin")
    for obj in _object_files(repo):
        obj.chmod(0o644)
        obj.unlink()
    with pytest.raises(ArtifactNotFoundError, match="not in the object store of this clone") as e:
        vtrack.download_artifacts(f"runs:/{run.info.run_id}/w.bin", dst_path=repo / "dl")
    # where to fetch it: no remote has an object store, so the hint names the command that
    # configures one, and the message names the local store that lacks the bytes
    assert "vtrack remote set-objects" in str(e.value) and "no remote" in str(e.value)
    assert str(repo / ".git" / "vtrack" / "objects") in str(e.value)


# --- big files ----------------------------------------------------------------------------


def _disk_usage(root: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)
        f.write(block[: size % MiB])


@pytest.mark.slow
def test_300mb_file_logged_by_three_runs_is_stored_once(repo: Path, tmp_path: Path) -> None:
    size = 300 * 1000 * 1000
    src = tmp_path / "big.bin"
    _write_random(src, size)
    try:
        before = _disk_usage(repo / ".git")
        runs = []
        for _ in range(3):
            with vtrack.start_run() as run:
                vtrack.log_artifact(src)
            runs.append(run.info.run_id)
        growth = _disk_usage(repo / ".git") - before
        assert size <= growth <= 1.05 * size, growth
        assert {_manifest(r)["big.bin"]["digest"] for r in runs} == {hash_file(src)[0]}
    finally:
        src.unlink()


@pytest.mark.slow
@pytest.mark.processes
def test_1gib_artifact_is_logged_with_bounded_memory(repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "huge.bin"
    _write_random(src, 1024 * MiB)
    try:
        res = run_script(
            f"""
            import json, resource, vtrack
            with vtrack.start_run() as run:
                vtrack.log_text("warm up", "warm.txt")
                before = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
                vtrack.log_artifact({str(src)!r}, artifact_path="big")
                after = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
            probe = bytearray(128 * 1024 * 1024)  # the measure must see a real allocation
            probed = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
            print(json.dumps({{"growth_kib": after - before, "probe_kib": probed - after,
                              "run": run.info.run_id}}))
            """,
            cwd=repo,
        )
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["probe_kib"] >= 100 * 1024, out  # a 128 MiB allocation is visible
        assert out["growth_kib"] * 1024 <= 64 * 1000 * 1000, out
        entry = _manifest(out["run"])["big/huge.bin"]
        assert entry["size"] == 1024 * MiB and entry["storage"] == "large"
    finally:
        src.unlink()
        for obj in _object_files(repo):
            obj.chmod(0o644)
            obj.unlink()


def test_mid_size_blobs_compressible_or_not_are_read_back_by_git(
    repo: Path, tmp_path: Path
) -> None:
    noise = os.urandom(3 * 65535 + 17)  # stored uncompressed inside the zlib stream
    text = ("step,loss\n" + "".join(f"{i},{1 / (i + 1):.6f}\n" for i in range(20000))).encode()
    (tmp_path / "noise.bin").write_bytes(noise)
    (tmp_path / "log.csv").write_bytes(text)
    with vtrack.start_run() as run:
        vtrack.log_artifact(tmp_path / "noise.bin")
        vtrack.log_artifact(tmp_path / "log.csv")
    m = _manifest(run.info.run_id)
    for name, data in (("noise.bin", noise), ("log.csv", text)):
        assert m[name]["storage"] == "git"
        out = subprocess.run(
            ["git", "cat-file", "blob", m[name]["blob"]], cwd=repo, capture_output=True, check=True
        ).stdout
        assert out == data
    assert_fsck_clean(repo)
    # logging stores blobs uncompressed; git's own packing compresses the text later
    subprocess.run(["git", "gc", "-q"], cwd=repo, check=True)
    sizes = subprocess.run(
        ["git", "verify-pack", "-v", *map(str, (repo / ".git/objects/pack").glob("*.idx"))],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packed = {ln.split()[0]: int(ln.split()[3]) for ln in sizes.splitlines() if " blob " in ln}
    assert packed[m["log.csv"]["blob"]] < len(text) / 3
