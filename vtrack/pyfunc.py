"""``vtrack.pyfunc``: MLflow's generic python-function interface.

:func:`load_model` loads a model of any flavor (``models:/<model_id>``, ``runs:/…`` or a
folder) behind a :class:`PyFuncModel` with a ``predict`` method: scikit-learn and pyfunc
models predict as themselves, PyTorch modules run a forward pass in eval mode without
grad on the input converted to a float tensor (DataFrames and arrays alike) and return
a numpy array. :func:`log_model` and :func:`save_model` take MLflow's keywords
(``python_model=``, ``name=``/``artifact_path=``); :class:`PythonModel` is the base class
MLflow scripts subclass (``predict(self, context, model_input)``).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from vtrack.models import load_model as _load_any
from vtrack.models import pyfunc as _flavor
from vtrack.models.meta import ModelInfo

__all__ = ["PyFuncModel", "PythonModel", "load_model", "log_model", "save_model"]


class PythonModel:
    """Base class of custom python models: override ``predict(self, context, model_input)``.

    ``load_context`` is called with ``None`` when the model is loaded (vtrack keeps no
    separate artifact context: put what the model needs on the object).
    """

    def load_context(self, context: Any) -> None:
        """Called once after loading; does nothing by default."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Override: return predictions for ``model_input``."""
        raise NotImplementedError


def _takes_context(method: Any) -> bool:
    try:
        params = [p for p in inspect.signature(method).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[0].name == "context"


class PyFuncModel:
    """A loaded model of any flavor behind ``predict(data)``; ``unwrap_python_model()`` gives it back."""

    def __init__(self, model: Any) -> None:
        self._model = model
        if isinstance(model, PythonModel):
            model.load_context(None)

    def unwrap_python_model(self) -> Any:
        """The underlying model object."""
        return self._model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (see the module docstring for each flavor)."""
        model = self._model
        predict = getattr(model, "predict", None)
        if callable(predict):
            if _takes_context(predict):
                return predict(None, data, params) if params is not None else predict(None, data)
            return predict(data)
        return _torch_predict(model, data)

    def __getattr__(self, name: str) -> Any:
        # anything else is the wrapped model's (a Booster's best_iteration, a module's eval)
        if name.startswith("__") or name == "_model":
            raise AttributeError(name)
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return f"<PyFuncModel {type(self._model).__name__}>"


def _torch_predict(model: Any, data: Any) -> Any:
    import numpy as np
    import torch

    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    tensor = (
        data
        if isinstance(data, torch.Tensor)
        else torch.as_tensor(np.asarray(data, dtype=np.float32))
    )
    model.eval()
    with torch.no_grad():
        out = model(tensor)
    return out.numpy() if isinstance(out, torch.Tensor) else out


def load_model(model_uri: str | os.PathLike[str]) -> PyFuncModel:
    """Load a model of any flavor behind :class:`PyFuncModel`."""
    return PyFuncModel(_load_any(model_uri))


def log_model(
    artifact_path: str | None = None,
    python_model: Any = None,
    *,
    name: str | None = None,
    input_example: Any = None,
    **kw: Any,
) -> ModelInfo:
    """Log ``python_model`` (an object with ``predict``) with MLflow's keywords."""
    if python_model is None:
        from vtrack.errors import NotSupportedError

        raise NotSupportedError(
            "vtrack.pyfunc.log_model needs python_model= (loader_module and code_paths are not supported)"
        )
    return _flavor.log_model(
        python_model, artifact_path, name=name, input_example=input_example, **kw
    )


def save_model(path: str | os.PathLike[str], python_model: Any = None, **kw: Any) -> None:
    """Save ``python_model`` as a pyfunc model folder at ``path``."""
    _flavor.save_model(python_model, path, **kw)
