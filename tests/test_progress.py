"""Progress of long operations: reported by the index, drawn by the CLI on terminals only."""

from __future__ import annotations

from pathlib import Path

import pytest

import vtrack
from vtrack import progress
from vtrack.cli import _TerminalProgress


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
