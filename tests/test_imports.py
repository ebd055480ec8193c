"""Import hygiene: `import vtrack` and `vtrack --help` stay light."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = [
    "pandas",
    "numpy",
    "torch",
    "sklearn",
    "plotly",
    "fsspec",
    "git",
    "starlette",
    "uvicorn",
    "matplotlib",
    "PIL",
    "dulwich",
    "lark",
]


def _loaded_after(code: str) -> set[str]:
    probe = f"""
import sys
{code}
import json
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))
"""
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def test_import_vtrack_loads_no_heavy_module() -> None:
    loaded = _loaded_after("import vtrack")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_loads_no_heavy_module_and_no_rich() -> None:
    loaded = _loaded_after(
        "from vtrack.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    assert not loaded & set(HEAVY + ["rich"]), loaded & set(HEAVY + ["rich"])
