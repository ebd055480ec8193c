"""The installed distributions a process uses, by the names pip installs them under.

A run's environment lists ``scikit-learn==1.9.1``, not ``sklearn``: pip cannot install an
import name. :func:`imported_distributions` maps every top-level module the process has
imported (whether or not it has a ``__version__``) to the distributions that provide it
(:func:`importlib.metadata.packages_distributions`) and their installed versions.

Building that map reads every installed distribution's file list (a third of a second
with a few hundred installed); it is cached in memory and, when a cache folder is
given, on disk, keyed by the interpreter and the modification times of the folders on
``sys.path`` (installing or removing a distribution changes them) except the running
script's own folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

_memo: dict[str, dict[str, list[list[str]]]] = {}


def _fingerprint() -> str:
    parts = [sys.executable, sys.version]
    # the script's own folder (sys.path[0]) changes with every file written there and
    # holds no installed distributions worth a third of a second to re-read
    main_dir = os.path.dirname(
        os.path.abspath(getattr(sys.modules.get("__main__"), "__file__", "") or "")
    )
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == main_dir:
            continue
        try:
            parts.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}:-")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _build() -> dict[str, list[list[str]]]:
    import importlib.metadata as md

    out: dict[str, list[list[str]]] = {}
    versions: dict[str, str] = {}
    for top, dists in md.packages_distributions().items():
        for dist in dists:
            if dist not in versions:
                try:
                    versions[dist] = md.version(dist)
                except md.PackageNotFoundError:  # pragma: no cover - racing an uninstall
                    continue
            out.setdefault(top, []).append([dist, versions[dist]])
    return out


def module_map(cache_dir: Path | None = None) -> dict[str, list[list[str]]]:
    """``{top-level module: [[distribution, version], ...]}`` of this interpreter."""
    key = _fingerprint()
    found = _memo.get(key)
    if found is not None:
        return found
    path = cache_dir / f"distributions-{key}.json" if cache_dir is not None else None
    if path is not None:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
    if not isinstance(found, dict):
        found = _build()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(found, sort_keys=True), encoding="utf-8")
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only store still records; only the next run pays again
    _memo.clear()
    _memo[key] = found
    return found


def imported_distributions(cache_dir: Path | None = None) -> dict[str, str]:
    """``{distribution name: version}`` of every distribution this process imported from."""
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    mapping = module_map(cache_dir)
    out: dict[str, str] = {}
    for name in list(sys.modules):
        if "." in name or name in stdlib or name == "__main__":
            continue
        for dist, version in mapping.get(name, ()):
            out[dist] = version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def requirements_text(packages: dict[str, str], *, header: str = "") -> str:
    """A pip requirements file pinning ``packages`` (``name==version`` lines)."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    lines += [
        f"{name}=={version}"
        for name, version in sorted(packages.items(), key=lambda kv: kv[0].lower())
    ]
    return "\n".join(lines) + "\n"
