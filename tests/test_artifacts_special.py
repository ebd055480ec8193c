"""Special files (FIFOs, devices, sockets, links to them) are refused before a byte is read.

Every test here carries a timeout: the defects they guard against are a copy that never
ends (``/dev/zero``) and an open that never returns (a FIFO without a writer).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import vtrack
from vtrack.errors import ValidationError
from vtrack.store.objects import ObjectStore

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """Files over 1 KiB go to the large-object store (set before the store is opened)."""
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", "1024")
    return 1024


def _temp_files(repo: Path) -> list[str]:
    tmp = repo / ".git" / "vtrack" / "objects" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


def _objects(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / ".git" / "vtrack" / "objects").glob("??/*") if p.is_file())


def test_log_artifact_of_a_fifo_is_refused_without_blocking(repo: Path) -> None:
    fifo = repo / "pipe"
    os.mkfifo(fifo)
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match=r"pipe.*FIFO \(named pipe\), not a regular file"):
            vtrack.log_artifact(str(fifo))
    assert vtrack.get_run(run.info.run_id).inputs.artifacts == {}


@pytest.mark.parametrize("threshold", ["1024", "0"])
def test_log_artifact_of_dev_zero_is_refused_before_reading(
    repo: Path, monkeypatch: pytest.MonkeyPatch, threshold: str
) -> None:
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", threshold)
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError, match=r"/dev/zero.*character device") as info:
            vtrack.log_artifact("/dev/zero")
    assert info.value.fields["path"] == "/dev/zero"
    assert vtrack.get_run(run.info.run_id).inputs.artifacts == {}
    assert _temp_files(repo) == [] and _objects(repo) == []


def test_log_artifact_of_a_symlink_to_a_device_names_link_and_target(repo: Path) -> None:
    link = repo / "zeros.bin"
    link.symlink_to("/dev/zero")
    with vtrack.start_run() as run:
        with pytest.raises(ValidationError) as info:
            vtrack.log_artifact(str(link))
    msg = str(info.value)
    assert "zeros.bin" in msg and "/dev/zero" in msg and "character device" in msg
    assert vtrack.get_run(run.info.run_id).inputs.artifacts == {}


def test_log_artifact_of_a_socket_is_refused(tmp_path: Path, repo: Path) -> None:
    sock_dir = Path("/tmp") / f"vt-sock-{os.getpid()}"  # AF_UNIX names are short
    sock_dir.mkdir(exist_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_dir / "s"))
        with vtrack.start_run():
            with pytest.raises(ValidationError, match="socket"):
                vtrack.log_artifact(str(sock_dir / "s"))
    finally:
        sock.close()
        (sock_dir / "s").unlink(missing_ok=True)
        sock_dir.rmdir()


def test_log_artifacts_names_every_special_entry_and_stores_nothing(
    repo: Path, tmp_path: Path, small_threshold: int
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(4 * small_threshold))
    (folder / "ok.txt").write_text("ok")
    os.mkfifo(folder / "pipe-a")
    (folder / "sub").mkdir()
    os.mkfifo(folder / "sub" / "pipe-b")
    (folder / "sub" / "link-to-pipe").symlink_to(folder / "pipe-a")
    with vtrack.start_run() as run:
        vtrack.log_text("kept", "before.txt")
        with pytest.raises(ValidationError) as info:
            vtrack.log_artifacts(str(folder))
    msg = str(info.value)
    for name in ("pipe-a", "sub/pipe-b", "sub/link-to-pipe"):
        assert name in msg
    assert "FIFO" in msg and "big.bin" not in msg
    assert sorted(info.value.fields["paths"]) == sorted(
        str(folder / p) for p in ("pipe-a", "sub/pipe-b", "sub/link-to-pipe")
    )
    assert list(vtrack.get_run(run.info.run_id).inputs.artifacts) == ["before.txt"]
    assert _objects(repo) == []  # the large file was not stored either


def test_put_file_refuses_special_files_before_reading(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path / "objects")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError, match="FIFO"):
        store.put_file(fifo)
    with pytest.raises(ValidationError, match="character device"):
        store.put_file("/dev/zero")
    assert list(store.iter_digests()) == []
    tmp = tmp_path / "objects" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []
