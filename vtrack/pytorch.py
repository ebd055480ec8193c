"""``vtrack.pytorch``: the PyTorch flavor under MLflow's module name.

``log_model``, ``save_model``, ``load_model`` and ``load_model_from_dir`` are the
flavor's (:mod:`vtrack.models.pytorch`): a ``torch.jit.ScriptModule`` is saved as
TorchScript, a module whose class lives in the training script is pickled by value, as
MLflow does. :func:`autolog` is not offered: use ``vtrack.integrations.pytorch.TrainLoop``
or the Lightning logger. Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any

from vtrack.errors import NotSupportedError
from vtrack.models.pytorch import FLAVOR, load_model, load_model_from_dir, log_model, save_model


def autolog(**kwargs: Any) -> None:
    """MLflow's PyTorch autologging (of Lightning) is not offered under this name."""
    raise NotSupportedError(
        "vtrack.pytorch.autolog() is not supported",
        hint="use vtrack.integrations.lightning.VtrackLogger or vtrack.integrations.pytorch.TrainLoop",
    )


__all__ = ["FLAVOR", "autolog", "load_model", "load_model_from_dir", "log_model", "save_model"]
