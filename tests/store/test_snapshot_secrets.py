"""Snapshots leave secret-looking untracked files out and record remotes without credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vtrack
from tests.conftest import git

SECRET_FILES = {
    ".env": "OPENAI_API_KEY=sk-live\n",
    "conf/.env.production": "DB_PASSWORD=hunter2\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "tls/server.pem": "-----BEGIN PRIVATE KEY-----\n",
    "credentials.json": '{"secret": 1}\n',
    ".netrc": "machine h login a password p\n",
    "service-account-prod.json": "{}\n",
}


def _tree_files(repo: Path, run_id: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", f"refs/vtrack/runs/{run_id}").splitlines()


def _write(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_untracked_secret_files_are_left_out_and_listed(repo: Path) -> None:
    _write(repo, SECRET_FILES)
    _write(repo, {"notes.txt": "fine\n", ".env.example": "OPENAI_API_KEY=\n"})
    with vtrack.start_run() as run:
        pass
    files = _tree_files(repo, run.info.run_id)
    assert "notes.txt" in files and ".env.example" in files
    for rel in SECRET_FILES:
        assert rel not in files
    skipped = vtrack.get_run(run.info.run_id).info.source["skipped_files"]
    assert sorted(skipped, key=lambda s: s["path"]) == sorted(
        ({"path": rel, "reason": "looks like a secret"} for rel in SECRET_FILES),
        key=lambda s: s["path"],
    )


def test_a_tracked_secret_looking_file_stays_in_the_snapshot(repo: Path) -> None:
    _write(repo, {".env": "DEBUG=1\n"})
    git(repo, "add", ".env")
    git(repo, "commit", "-q", "-m", "env")
    (repo / ".env").write_text("DEBUG=2\n")  # an uncommitted edit of a tracked file
    with vtrack.start_run() as run:
        pass
    assert git(repo, "show", f"refs/vtrack/runs/{run.info.run_id}:.env") == "DEBUG=2"
    assert "skipped_files" not in vtrack.get_run(run.info.run_id).info.source


def test_the_setting_puts_secret_files_into_the_snapshot(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTRACK_SNAPSHOT_INCLUDE_SECRETS", "1")
    _write(repo, SECRET_FILES)
    with vtrack.start_run() as run:
        pass
    files = _tree_files(repo, run.info.run_id)
    assert all(rel in files for rel in SECRET_FILES)
    assert "skipped_files" not in vtrack.get_run(run.info.run_id).info.source


def test_a_bad_setting_value_is_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtrack.config import load_settings
    from vtrack.errors import ValidationError

    monkeypatch.setenv("VTRACK_SNAPSHOT_INCLUDE_SECRETS", "maybe")
    with pytest.raises(ValidationError, match="VTRACK_SNAPSHOT_INCLUDE_SECRETS"):
        load_settings()


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        ("https://alice:ghp_s3cr3t@github.com/acme/r.git", "https://github.com/acme/r.git"),
        ("https://ghp_s3cr3t@github.com/acme/r.git", "https://github.com/acme/r.git"),
        ("git@github.com:acme/r.git", "git@github.com:acme/r.git"),
    ],
)
def test_the_remote_url_is_recorded_without_credentials(
    repo: Path, remote: str, recorded: str
) -> None:
    git(repo, "remote", "add", "origin", remote)
    with vtrack.start_run() as run:
        pass
    assert vtrack.get_run(run.info.run_id).info.source["remote_url"] == recorded
    record = git(repo, "show", f"refs/vtrack/runs/{run.info.run_id}:.vtrack/run.yaml")
    assert "s3cr3t" not in record


def test_a_skipped_file_whose_name_is_not_utf8_is_recorded_escaped(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTRACK_SNAPSHOT_MAX_FILE_BYTES", "100")
    name = os.fsdecode(b"big-\xff.bin")
    (repo / name).write_bytes(b"x" * 1000)
    (repo / os.fsdecode(b".env.\xfe")).write_text("K=v\n")
    with vtrack.start_run() as run:
        pass
    skipped = vtrack.get_run(run.info.run_id).info.source["skipped_files"]
    assert {"path": "big-\\xff.bin", "size": 1000} in skipped
    assert {"path": ".env.\\xfe", "reason": "looks like a secret"} in skipped
