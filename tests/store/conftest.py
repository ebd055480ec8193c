"""Store plumbing fixtures: owner records of real live and real dead processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vtrack.store.owner import Owner, parse_owner

# Prints its own owner record (as vtrack writes it into lock and owner files), then
# lives until its stdin closes.
_OWNER_SCRIPT = (
    "import sys\n"
    "from vtrack.store.owner import this_process\n"
    "print(this_process(sys.argv[1]).to_json().decode(), flush=True)\n"
    "sys.stdin.read()\n"
)


def _spawn(writer_id: str) -> tuple[subprocess.Popen[str], Owner]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, writer_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    owner = parse_owner(proc.stdout.readline())
    assert owner is not None and owner.pid == proc.pid
    return proc, owner


@pytest.fixture
def dead_owner() -> Owner:
    """The owner record of a real process that has exited (and been reaped)."""
    proc, owner = _spawn("dead-writer")
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not owner.is_alive()
    return owner


@pytest.fixture
def live_owner() -> Iterator[Owner]:
    """The owner record of a real process that runs until the test ends."""
    proc, owner = _spawn("live-writer")
    try:
        assert owner.is_alive()
        yield owner
    finally:
        proc.communicate(timeout=60)


@pytest.fixture
def git_dir(repo: Path) -> Path:
    """The ``.git`` folder of the ``repo`` fixture."""
    return repo / ".git"
