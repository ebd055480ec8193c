"""A run's environment as a pip requirements file (``vtrack checkout --requirements``).

The run recorded every distribution it imported from by its distribution name and
version (:mod:`vtrack.distributions`), so the file pins exactly those:
``pip install -r .vtrack/requirements.txt`` recreates the packages the code used. The
Python version and platform are written as comments (pip cannot install them). Runs
recorded before distribution names were used list import names (``sklearn``); those
that name no installable distribution are written as comments, not as lines pip fails on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtrack.entities import Run

REQUIREMENTS_FILE = "requirements.txt"


def requirements_for(run: Run) -> str:
    """The requirements text of ``run``'s recorded environment."""
    from vtrack.distributions import module_map, requirements_text

    env = run.info.environment or {}
    packages = {str(k): str(v) for k, v in (env.get("packages") or {}).items()}
    known = {dist.lower() for dists in module_map().values() for dist, _ in dists}
    pinned: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for name, version in packages.items():
        # an import name recorded by an older vtrack (sklearn) is no distribution name
        (pinned if name.lower() in known or name not in module_map() else unknown)[name] = version
    header = (
        f"requirements of vtrack run {run.info.run_id} ({run.info.run_name})\n"
        f"python {env.get('python', '?')} ({env.get('implementation', '?')}) "
        f"on {env.get('platform', '?')}"
    )
    for name, version in sorted(unknown.items()):
        header += f"\nnot a distribution name (recorded by an older vtrack): {name} {version}"
    return requirements_text(pinned, header=header)


def write_requirements(run: Run, checkout: Path) -> Path:
    """Write ``<checkout>/.vtrack/requirements.txt`` (outside the code snapshot); its path."""
    path = checkout / ".vtrack" / REQUIREMENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(requirements_for(run), encoding="utf-8")
    return path
