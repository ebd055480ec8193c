"""Settings are injected: a client made after a setting changed uses it (no frozen store)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vtrack
from vtrack.config import Settings


def _storage(client: vtrack.TrackingClient, run_id: str, name: str) -> str:
    return str(client.get_run(run_id).inputs.artifacts[name]["storage"])


def test_a_new_client_sees_a_changed_large_file_threshold(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores were cached for the life of the process with the settings read when first
    built, so a new client ignored a changed VTRACK_LARGE_FILE_THRESHOLD."""
    (tmp_path / "blob.bin").write_bytes(b"x" * 50_000)
    first = vtrack.TrackingClient()
    run_a = first.create_run().info.run_id
    first.log_artifact(run_a, tmp_path / "blob.bin")
    assert _storage(first, run_a, "blob.bin") == "git"
    monkeypatch.setenv("VTRACK_LARGE_FILE_THRESHOLD", "1000")
    second = vtrack.TrackingClient()
    run_b = second.create_run().info.run_id
    second.log_artifact(run_b, tmp_path / "blob.bin")
    assert _storage(second, run_b, "blob.bin") == "large"
    first.log_artifact(run_a, tmp_path / "blob.bin", artifact_path="again")
    assert _storage(first, run_a, "again/blob.bin") == "git"  # the old client keeps its own
    for c, r in ((first, run_a), (second, run_b)):
        c.set_terminated(r)


def test_settings_can_be_given_explicitly(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "small.bin").write_bytes(b"y" * 200)
    client = vtrack.TrackingClient(settings=Settings(large_file_threshold=100))
    run_id = client.create_run().info.run_id
    client.log_artifact(run_id, tmp_path / "small.bin")
    assert _storage(client, run_id, "small.bin") == "large"
    client.set_terminated(run_id)
