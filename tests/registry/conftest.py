"""Helpers for registry tests: real git repositories, models logged by real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli.conftest import Result, subprocess_env

#: Logs a pyfunc model (predicting a constant) with metric auc=argv[1]; registers it as
#: argv[2] when given; prints the run id, then the registered version (or -).
LOG_MODEL = """\
import sys, vtrack
class Const:
    def __init__(self, v): self.v = v
    def predict(self, x): return [self.v] * len(x)
auc = float(sys.argv[1])
name = sys.argv[2] if len(sys.argv) > 2 else None
with vtrack.start_run() as run:
    vtrack.log_metric("auc", auc)
    if len(sys.argv) > 3:
        vtrack.log_input(sys.argv[3], context="training")
    info = vtrack.pyfunc.log_model(python_model=Const(auc), name="model",
                                   registered_model_name=name)
print(run.info.run_id)
print(info.registered_model_version or "-")
"""


def py(cwd: Path, code: str, *args: str, timeout: float = 120) -> Result:
    """Run python ``code`` with ``args`` in a fresh process in ``cwd``."""
    res = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                         text=True, env=subprocess_env(cwd.parent), timeout=timeout)  # fmt: skip
    return Result(res.returncode, res.stdout, res.stderr)


def log_model(
    repo: Path, auc: float, name: str | None = None, data: str | None = None
) -> tuple[str, str]:
    """``(run id, registered version or "-")`` of a model logged by a real process."""
    args = [str(auc)] + ([name] if name else []) + ([data] if data else [])
    if data and not name:
        raise AssertionError("give a name with data")
    res = py(repo, LOG_MODEL, *args)
    assert res.exit_code == 0, res.stderr
    run_id, version = res.stdout.strip().splitlines()[-2:]
    return run_id, version


def jsonout(res: Result) -> Any:
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)
