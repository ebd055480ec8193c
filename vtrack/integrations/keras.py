"""Keras: ``model.fit(..., callbacks=[VtrackCallback()])``.

- params: ``epochs``, ``steps`` (per epoch) and ``batch_size`` as Keras reports them,
  the optimizer's class and config (``optimizer.learning_rate``, …);
- metrics: every value in ``logs`` at the end of each epoch, at the epoch's index (Keras'
  own count, which ``initial_epoch`` continues); with ``log_every_n_steps=N`` also every
  N-th training batch as ``batch/<name>`` at Keras' batch count across epochs;
- the trained model in Keras' own ``.keras`` format as the artifact ``model/model.keras``
  (``log_model=False`` to skip), loadable with ``keras.saving.load_model``;
- into the active run, or one started at ``on_train_begin`` and ended at ``on_train_end``.

Works with every Keras 3 backend (TensorFlow, JAX, PyTorch: ``KERAS_BACKEND``).
keras is imported when ``VtrackCallback`` is first used.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from vtrack.integrations._common import RunScope


def _callback_class() -> type:
    import keras

    class VtrackCallback(keras.callbacks.Callback):
        """Logs a Keras ``fit`` (see :mod:`vtrack.integrations.keras`)."""

        def __init__(self, *, log_every_n_steps: int | None = None, log_model: bool = True,
                     run_name: str | None = None, silent: bool = False) -> None:  # fmt: skip
            super().__init__()
            self.log_every_n_steps = log_every_n_steps
            self.log_model = log_model
            self.scope = RunScope(run_name=run_name, silent=silent,
                                  tags={"vtrack.integration": "keras"})  # fmt: skip
            self._batches = 0

        @property
        def run_id(self) -> str | None:
            """The run logged into (still known after training ended)."""
            return self.scope.last_run_id

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.scope.ensure()
            params = {k: v for k, v in (self.params or {}).items()
                      if k in ("epochs", "steps", "batch_size", "verbose")}  # fmt: skip
            opt = getattr(self.model, "optimizer", None)
            if opt is not None:
                params["optimizer"] = type(opt).__name__
                cfg = self.scope.call("the optimizer config", opt.get_config) or {}
                params.update({f"optimizer.{k}": v for k, v in cfg.items()
                               if isinstance(v, (int, float, str, bool)) and k != "name"})  # fmt: skip
            self.scope.log_params(params)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self._batches += 1
            n = self.log_every_n_steps
            if n and logs and self._batches % n == 0:
                self.scope.log_metrics({f"batch/{k}": v for k, v in logs.items()}, self._batches)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.scope.log_metrics(logs or {}, epoch)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.log_model and self.model is not None:
                self.scope.call("the model", _log_keras_model, self.model)
            self.scope.end()

    return VtrackCallback


def _log_keras_model(model: Any) -> None:
    from vtrack import fluent

    with tempfile.TemporaryDirectory(prefix="vtrack-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        fluent.log_artifact(path, artifact_path="model")


def __getattr__(name: str) -> Any:
    if name == "VtrackCallback":
        cls = _callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
