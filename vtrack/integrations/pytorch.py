"""A helper for plain PyTorch training loops.

>>> with TrainLoop(model, optimizer, params={"epochs": 5}) as loop:   # doctest: +SKIP
...     for epoch in range(5):
...         for x, y in loader:
...             loss = step(x, y)
...             loop.step(loss=loss)          # global step + 1; tensors become floats
...         loop.epoch(val_accuracy=acc)      # logged at the epoch's index

On entry the run is the active one (or one started here) and gets the params, the
optimizer's class and hyperparameters (``optimizer``, ``optimizer.lr``, …) and the
model's parameter count (``model.num_parameters``). ``step`` logs its metrics and the
learning rate of each parameter group (``lr``, or ``lr/<i>``) at the global step, every
``log_every_n_steps`` steps; ``epoch`` logs at the epoch number. On a normal exit the
model is logged with the pytorch flavor (:mod:`vtrack.models.pytorch`): as a state dict
when its class can be imported and rebuilt with ``model_kwargs``, else as TorchScript.
A run started here ends with the block (FAILED on an exception, which goes on).
torch is imported only when the model is logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from vtrack.integrations._common import RunScope, to_float


class TrainLoop:
    """Tracks one training loop (see the module docstring)."""

    def __init__(
        self,
        model: Any = None,
        optimizer: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        log_every_n_steps: int = 1,
        log_model: bool = True,
        model_path: str = "model",
        model_kwargs: Mapping[str, Any] | None = None,
        input_example: Any = None,
        run_name: str | None = None,
        silent: bool = False,
    ) -> None:
        if not isinstance(log_every_n_steps, int) or log_every_n_steps < 1:
            from vtrack.errors import ValidationError

            raise ValidationError(
                f"log_every_n_steps must be a positive integer, not {log_every_n_steps!r}"
            )
        self.model = model
        self.optimizer = optimizer
        self.params = dict(params or {})
        self.log_every_n_steps = log_every_n_steps
        self.log_model = log_model
        self.model_path = model_path
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None
        self.input_example = input_example
        self.scope = RunScope(
            run_name=run_name, tags={"vtrack.integration": "pytorch"}, silent=silent
        )
        #: steps taken (``step`` calls) and epochs ended (``epoch`` calls)
        self.global_step = 0
        self.epochs_done = 0

    @property
    def run_id(self) -> str | None:
        """The run logged into (still known after the loop ended)."""
        return self.scope.last_run_id

    def __enter__(self) -> TrainLoop:
        self.scope.ensure()
        params = dict(self.params)
        if self.optimizer is not None:
            params["optimizer"] = type(self.optimizer).__name__
            defaults = getattr(self.optimizer, "defaults", {}) or {}
            params.update({f"optimizer.{k}": v for k, v in defaults.items()
                           if isinstance(v, (int, float, str, bool)) or v is None})  # fmt: skip
        if self.model is not None and hasattr(self.model, "parameters"):
            params["model.class"] = type(self.model).__name__
            params["model.num_parameters"] = sum(p.numel() for p in self.model.parameters())
        self.scope.log_params(params)
        return self

    def step(self, **metrics: Any) -> None:
        """One optimisation step: log ``metrics`` (and the learning rates) at the global step."""
        self.global_step += 1
        if self.global_step % self.log_every_n_steps:
            return
        values = dict(metrics)
        groups = getattr(self.optimizer, "param_groups", None) or []
        for i, group in enumerate(groups):
            lr = to_float(group.get("lr"))
            if lr is not None:
                values["lr" if len(groups) == 1 else f"lr/{i}"] = lr
        self.scope.log_metrics(values, self.global_step)

    def epoch(self, **metrics: Any) -> None:
        """The end of an epoch: log ``metrics`` at its index (0 for the first)."""
        self.scope.log_metrics(metrics, self.epochs_done)
        self.epochs_done += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        if exc_type is None and self.log_model and self.model is not None:
            self.scope.call("the model", log_module, self.model, self.model_path,
                            model_kwargs=self.model_kwargs, input_example=self.input_example)  # fmt: skip
        self.scope.end(failed=exc_type is not None)


def log_module(model: Any, path: str, *, model_kwargs: Mapping[str, Any] | None = None,
               input_example: Any = None, metadata: Mapping[str, Any] | None = None,
               torchscript_fallback: bool = True) -> Any:  # fmt: skip
    """Log ``model`` with the pytorch flavor: a state dict when its class can be rebuilt
    (importable, with ``model_kwargs``), else TorchScript (traced on ``input_example`` if
    given, else scripted) unless ``torchscript_fallback`` is false (ValidationError then).
    Returns the ModelInfo; raises what the flavor raises."""
    import warnings

    from vtrack.errors import ValidationError
    from vtrack.models import pytorch as flavor

    try:
        flavor.class_reference(type(model))
        state_dict_ok = model_kwargs is not None or _takes_no_arguments(type(model))
    except ValidationError:
        state_dict_ok = False
    if state_dict_ok:
        try:
            return flavor.log_model(model, path, format="state_dict", model_kwargs=model_kwargs,
                                    input_example=input_example, metadata=metadata)  # fmt: skip
        except ValidationError:
            if not torchscript_fallback:
                raise  # model_kwargs that YAML cannot hold, for example
    elif not torchscript_fallback:
        raise ValidationError(
            f"model class {type(model).__qualname__} cannot be rebuilt from a state dict"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit
        method = "trace" if input_example is not None else "script"
        return flavor.log_model(model, path, format="torchscript", torchscript_method=method,
                                input_example=input_example, metadata=metadata)  # fmt: skip


def _takes_no_arguments(cls: type) -> bool:
    import inspect

    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    # *args would have to be known again (nn.Sequential): such a class is not rebuilt
    return all(p.default is not p.empty or p.kind is p.VAR_KEYWORD
               for p in sig.parameters.values())  # fmt: skip
