"""The git-native model registry (DESIGN.md §16; docs/registry.md).

- :mod:`~vtrack.registry.events` — what one event commit says, and the name rules;
- :mod:`~vtrack.registry.log` — the event log on ``refs/vtrack/registry``, appended by CAS;
- :mod:`~vtrack.registry.fold` — the state as a fold of the log, per model;
- :mod:`~vtrack.registry.cache` — that fold cached in SQLite, keyed by the ref's commit;
- :mod:`~vtrack.registry.service` — :class:`ModelRegistry`, MLflow's registry calls;
- :mod:`~vtrack.registry.lineage` — digest and lineage read from the run at registration;
- :mod:`~vtrack.registry.policy` — promotion policy, evidence and the post-promote hook;
- :mod:`~vtrack.registry.history` — alias history, ``--at DATE`` and rollback;
- :mod:`~vtrack.registry.merge` — merging two clones' diverged logs (on pull).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrack.registry.entities import ModelVersion, RegisteredModel
    from vtrack.registry.service import ModelRegistry, is_registry_uri, parse_models_uri

#: public name -> module; imported on first use (the client imports this package).
_LAZY = {"ModelRegistry": "service", "is_registry_uri": "service", "parse_models_uri": "service",
         "ModelVersion": "entities", "RegisteredModel": "entities"}  # fmt: skip

__all__ = [
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "is_registry_uri",
    "parse_models_uri",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vtrack.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vtrack.registry.{_LAZY[name]}"), name)
