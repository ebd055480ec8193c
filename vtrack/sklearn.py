"""``vtrack.sklearn``: the scikit-learn flavor under MLflow's module name, plus autologging.

``log_model``, ``save_model``, ``load_model`` and ``load_model_from_dir`` are the
flavor's (:mod:`vtrack.models.sklearn`); :func:`autolog` is scikit-learn autologging
(:mod:`vtrack.autolog.sklearn`), imported when first called. Importing this module
imports neither scikit-learn nor the autologging machinery.
"""

from __future__ import annotations

from typing import Any

from vtrack.models.sklearn import (
    FLAVOR,
    MODEL_FILE,
    load_model,
    load_model_from_dir,
    log_model,
    save_model,
)


def autolog(**kwargs: Any) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``).

    See :func:`vtrack.autolog.sklearn.autolog` for what is logged and the flags.
    """
    from vtrack.autolog.sklearn import autolog as _autolog

    _autolog(**kwargs)


__all__ = [
    "FLAVOR",
    "MODEL_FILE",
    "autolog",
    "load_model",
    "load_model_from_dir",
    "log_model",
    "save_model",
]
