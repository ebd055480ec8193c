"""Progress of long operations: reported by the index, drawn by the CLI on terminals only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vtrack
from vtrack import progress
from vtrack.cli import _progress_for, _TerminalProgress


def test_index_sync_reports_progress_to_an_installed_reporter(repo: Path) -> None:
    client = vtrack.TrackingClient()
    for i in range(30):
        rid = client.create_run(run_name=f"r{i}").info.run_id
        client.set_terminated(rid)
    index = repo / ".git" / "vtrack" / "index.sqlite"
    if index.exists():
        index.unlink()
    seen: list[tuple[str, int, int]] = []
    progress.set_reporter(lambda task, done, total: seen.append((task, done, total)))
    try:
        assert len(vtrack.TrackingClient().list_runs()) == 30
    finally:
        progress.set_reporter(None)
    assert seen and seen[-1][0] == "indexing runs"
    assert seen[-1][1] == seen[-1][2]  # the last report says the task is complete


def test_terminal_progress_waits_then_draws_then_clears(capsys: pytest.CaptureFixture[str]) -> None:
    bar = _TerminalProgress()
    bar("indexing runs", 10, 100)  # first report: under a second in, nothing drawn
    assert capsys.readouterr().err == ""
    bar.started["indexing runs"] -= 5  # as if it started five seconds ago
    bar("indexing runs", 50, 100)
    err = capsys.readouterr().err
    assert "indexing runs" in err and "50/100" in err and "#" * 15 in err
    bar("indexing runs", 100, 100)
    assert capsys.readouterr().err == "\r\x1b[2K"


def test_the_command_line_draws_progress_on_a_terminal_and_never_into_a_pipe() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as piped:
        assert _progress_for(piped) is None
    assert _progress_for(piped) is None  # closed
    assert _progress_for(None) is None
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as terminal:
            bar = _progress_for(terminal)
            assert isinstance(bar, _TerminalProgress) and bar.stream is terminal
            assert bar.delay == 1.0  # a bar only for tasks that take more than a second
            bar.delay = 0.0
            bar("hashing data", 1, 4)
            bar("hashing data", 4, 4)
        drawn = b""
        while True:  # everything written, then EIO once the terminal's other side is closed
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
    assert b"hashing data [" in drawn and b"1/4" in drawn and drawn.endswith(b"\r\x1b[2K")


def test_terminal_progress_redraws_at_most_ten_times_a_second(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = _TerminalProgress(delay=0.0)
    for done in range(1, 1000):
        bar("hashing data", done, 1000)
    assert capsys.readouterr().err.count("hashing data") <= 2  # not one write per file
