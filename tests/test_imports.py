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


def test_every_public_name_resolves_from_the_module_its_lazy_map_names() -> None:
    """``vtrack.__all__`` and the lazy map agree: each name loads, from the module it names."""
    import importlib

    import vtrack

    lazy = vtrack._NON_FLUENT  # the package's own map, read by its test
    for name in vtrack.__all__:
        if name in vtrack._LAZY_SUBMODULES:  # vtrack.autolog: a callable package
            assert getattr(vtrack, name) is importlib.import_module(vtrack._LAZY_SUBMODULES[name])
            continue
        module = importlib.import_module(lazy.get(name, "vtrack.fluent"))
        assert getattr(vtrack, name) is getattr(module, name), name
    assert set(lazy) <= set(vtrack.__all__), sorted(set(lazy) - set(vtrack.__all__))


def test_the_mlflow_named_fluent_functions_are_all_public_on_vtrack() -> None:
    """A function added to ``vtrack.fluent_mlflow.__all__`` is also a ``vtrack.<name>``.

    ``vtrack/__init__.py`` repeats the list because importing it must not import that
    module; this keeps the two lists equal (helpers for other modules excepted).
    """
    import vtrack
    from vtrack import fluent_mlflow

    helpers = {"link_metric", "image_series_path"}  # used by vtrack.fluent, not MLflow names
    names = set(fluent_mlflow.__all__) - helpers
    assert {n for n, m in vtrack._NON_FLUENT.items() if m == "vtrack.fluent_mlflow"} == names
