"""A PyTorch Lightning logger: ``Trainer(logger=VtrackLogger())``.

- hyperparameters (``save_hyperparameters()``, the datamodule's) as params;
- every metric Lightning logs (``self.log``), at the trainer's global step;
- checkpoints as models of the pytorch flavor: with ``log_model=True`` (the default)
  the best checkpoint of the ``ModelCheckpoint`` callback (or the final weights when
  there is none) as ``model`` when training ends; with ``log_model="all"`` also every
  checkpoint when it is saved, as ``checkpoints/<checkpoint name>``; ``False`` logs none.
  A checkpoint is stored as a state dict when the module's class can be imported and
  rebuilt from its hyperparameters, else as TorchScript (``to_torchscript``);
- the run: the active one, or one started by the logger and ended by ``finalize``
  (FAILED when training failed). Its id is the logger's ``version``.

Only global rank 0 logs, as for Lightning's own loggers. ``lightning`` (or the older
``pytorch_lightning``) is imported when ``VtrackLogger`` is first used.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from vtrack.integrations._common import RunScope
from vtrack.integrations.pytorch import log_module


def _lightning() -> Any:
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl  # type: ignore[no-redef]
        except ImportError as exc:
            from vtrack.errors import MissingDependencyError

            raise MissingDependencyError(
                "VtrackLogger needs PyTorch Lightning", hint="pip install 'vtrack[integrations]'"
            ) from exc
    return pl


def _logger_class() -> type:
    pl = _lightning()
    rank_zero_only = pl.utilities.rank_zero_only
    base = pl.loggers.Logger

    class VtrackLogger(base):  # type: ignore[misc, valid-type]
        """Logs a Lightning run into vtrack (see :mod:`vtrack.integrations.lightning`)."""

        def __init__(self, *, run_name: str | None = None, log_model: bool | str = True,
                     tags: dict[str, str] | None = None, silent: bool = False) -> None:  # fmt: skip
            super().__init__()
            if log_model not in (True, False, "all"):
                from vtrack.errors import ValidationError

                raise ValidationError(f"log_model must be True, False or 'all', not {log_model!r}")
            self.log_model = log_model
            self.scope = RunScope(run_name=run_name, silent=silent,
                                  tags={"vtrack.integration": "lightning", **(tags or {})})  # fmt: skip
            self._module: Any = None
            self._checkpointer: Any = None
            self._logged_checkpoints: set[str] = set()

        @property
        def name(self) -> str:
            return "vtrack"

        @property
        def version(self) -> str:
            if rank_zero_only.rank != 0:
                return ""
            return self.scope.ensure() or ""

        @property
        def run_id(self) -> str | None:
            """The run logged into (still known after training ended)."""
            return self.scope.last_run_id

        @rank_zero_only
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            if not isinstance(params, dict):
                params = vars(params) if hasattr(params, "__dict__") else dict(params)
            self.scope.log_params(params)

        @rank_zero_only
        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            self.scope.log_metrics(metrics, step)

        def log_graph(self, model: Any, input_array: Any = None) -> None:
            # Lightning hands the module over here at the start of fit: kept (weakly) to
            # log checkpoints as models
            self._module = weakref.ref(model)

        @rank_zero_only
        def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
            self._checkpointer = checkpoint_callback
            if self.log_model != "all":
                return
            module = self._module() if self._module is not None else None
            path = getattr(checkpoint_callback, "last_model_path", "") or getattr(
                checkpoint_callback, "best_model_path", "")  # fmt: skip
            if module is None or not path:
                return
            name = os.path.splitext(os.path.basename(path))[0]
            if name in self._logged_checkpoints:
                return
            self._logged_checkpoints.add(name)
            self.scope.call("a checkpoint", _log_lightning_module, module,
                            f"checkpoints/{_artifact_name(name)}", _meta(checkpoint_callback))  # fmt: skip

        @rank_zero_only
        def finalize(self, status: str) -> None:
            failed = status == "failed"
            module = self._module() if self._module is not None else None
            if self.log_model and not failed and module is not None and self.scope.run_id:
                self.scope.call("the model", _log_best, module, self._checkpointer)
            self.scope.end(failed=failed)

    return VtrackLogger


def _artifact_name(name: str) -> str:
    from vtrack.integrations._common import metric_key

    return metric_key(name.replace("=", "_"))


def _meta(checkpointer: Any) -> dict[str, Any]:
    from vtrack.integrations._common import to_float

    out: dict[str, Any] = {}
    if checkpointer is None:
        return out
    monitor = getattr(checkpointer, "monitor", None)
    if monitor:
        out["monitor"] = str(monitor)
        best = to_float(getattr(checkpointer, "best_model_score", None))
        if best is not None:
            out["best_model_score"] = best
    return out


def _log_lightning_module(module: Any, path: str, metadata: dict[str, Any]) -> Any:
    hparams = dict(getattr(module, "hparams", {}) or {})
    try:
        return log_module(module, path, model_kwargs=hparams or None, metadata=metadata or None,
                          torchscript_fallback=False)  # fmt: skip
    except Exception:  # noqa: BLE001 - the class cannot be rebuilt: TorchScript instead
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = module.to_torchscript()
        from vtrack.models import pytorch as flavor

        return flavor.log_model(scripted, path, format="torchscript", metadata=metadata or None)


def _log_best(module: Any, checkpointer: Any) -> Any:
    """The best checkpoint's weights (or the current ones) as the run's ``model``."""
    best = getattr(checkpointer, "best_model_path", "") if checkpointer is not None else ""
    if best and os.path.isfile(best):
        import torch

        try:
            ckpt = torch.load(best, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - Lightning put other objects in it; we wrote it
            ckpt = torch.load(best, map_location="cpu", weights_only=False)
        # the module itself holds the best weights while it is logged (a copy would
        # drag the trainer along), then gets its final weights back
        current = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(ckpt["state_dict"])
        try:
            meta = {**_meta(checkpointer), "checkpoint": os.path.basename(best)}
            return _log_lightning_module(module, "model", meta)
        finally:
            module.load_state_dict(current)
    return _log_lightning_module(module, "model", {})


def __getattr__(name: str) -> Any:
    if name == "VtrackLogger":
        cls = _logger_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
