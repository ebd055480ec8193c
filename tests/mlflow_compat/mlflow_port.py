"""Helpers of the MLflow drop-in tests: port a script mechanically and run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

SCRIPTS = Path(__file__).parent / "scripts"


def port(source: str) -> str:
    """``source`` with its MLflow imports replaced, and nothing else changed.

    ``import mlflow`` -> ``import vtrack as mlflow``; ``import mlflow.X`` -> ``import
    vtrack.X``; ``from mlflow[.X] import …`` -> ``from vtrack[.X] import …``.
    """
    source = re.sub(r"^import mlflow$", "import vtrack as mlflow", source, flags=re.M)
    source = re.sub(r"^import mlflow\.", "import vtrack.", source, flags=re.M)
    return re.sub(r"^from mlflow(\.[\w.]+)? import", r"from vtrack\1 import", source, flags=re.M)


def run_file(
    path: Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> dict[str, Any]:
    """Run the script ``path`` in ``cwd``; return the JSON it printed after ``RESULT ``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VTRACK_", "MLFLOW_"))}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, str(path)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0][len("RESULT ") :])
