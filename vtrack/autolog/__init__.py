"""Autologging: training calls of scikit-learn, XGBoost and LightGBM recorded unchanged.

``vtrack.autolog()`` turns autologging on for every supported framework: at once for
those already imported, at their import for the others (so it imports none that the
script does not use). Each framework also has its own switch with its own flags:
``vtrack.sklearn.autolog()`` (:mod:`vtrack.autolog.sklearn`),
``vtrack.integrations.xgboost.autolog()`` and ``vtrack.integrations.lightgbm.autolog()``.

This package can be called: ``vtrack.autolog(...)`` is :func:`autolog`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from vtrack.autolog.patching import AutologWarning, cancel_import_hooks, when_imported

#: framework module -> the module whose ``autolog(**flags)`` turns it on
INTEGRATIONS = {
    "sklearn": "vtrack.autolog.sklearn",
    "xgboost": "vtrack.integrations.xgboost",
    "lightgbm": "vtrack.integrations.lightgbm",
}
#: the flags every integration's autolog() takes
COMMON_FLAGS = ("log_models", "log_datasets", "log_input_examples", "silent", "extra_tags")


def autolog(
    *,
    log_models: bool = True,
    log_datasets: bool = True,
    log_input_examples: bool = True,
    disable: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Turn autologging on (``disable=True``: off) for every supported framework.

    The flags are passed to each framework's own ``autolog``; ``exclude_flavors`` names
    frameworks (``"sklearn"``, ``"xgboost"``, ``"lightgbm"``) to leave alone.
    """
    flags: dict[str, Any] = {
        "log_models": log_models, "log_datasets": log_datasets,
        "log_input_examples": log_input_examples, "silent": silent, "extra_tags": extra_tags,
    }  # fmt: skip
    skip = set(exclude_flavors or ())
    for framework, module in INTEGRATIONS.items():
        if framework in skip:
            continue
        if disable:
            cancel_import_hooks(framework)
            if framework in sys.modules:
                importlib.import_module(module).autolog(disable=True)
            continue
        when_imported(framework, _enabler(module, flags))


def _enabler(module: str, flags: dict[str, Any]) -> Any:
    def enable(_framework: types.ModuleType) -> None:
        importlib.import_module(module).autolog(**flags)

    return enable


class _CallableModule(types.ModuleType):
    def __call__(self, **kwargs: Any) -> None:
        autolog(**kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["INTEGRATIONS", "AutologWarning", "autolog"]
