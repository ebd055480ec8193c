"""Hugging Face Transformers: a ``TrainerCallback`` for ``transformers.Trainer``.

Either pass it, ``Trainer(..., callbacks=[VtrackCallback()])``, or, once this module's
:func:`register` ran (``import vtrack.integrations.transformers as vt; vt.register()``),
name it the way Transformers names its own trackers: ``TrainingArguments(report_to="vtrack")``.

- params: the ``TrainingArguments`` (plain values) and the model's config as
  ``model.<key>``, at ``on_train_begin``;
- metrics: everything ``Trainer`` logs (``loss``, ``learning_rate``, ``grad_norm``,
  ``eval_*``, ``train_runtime`` …) at ``state.global_step``;
- with ``log_model=True``: the trained model (and the tokenizer or processor, if the
  trainer has one) saved with ``save_pretrained`` as the artifact folder ``model``;
- into the active run, or one started at ``on_train_begin`` and ended at ``on_train_end``.

Only the main process (``state.is_world_process_zero``) logs. transformers is imported
when ``VtrackCallback`` is first used.
"""

from __future__ import annotations

import tempfile
from typing import Any

from vtrack.integrations._common import RunScope

#: The name under which :func:`register` adds the callback to ``report_to``.
REPORT_TO_NAME = "vtrack"


def _callback_class() -> type:
    from transformers import TrainerCallback

    class VtrackCallback(TrainerCallback):
        """Logs a ``Trainer`` run (see :mod:`vtrack.integrations.transformers`)."""

        def __init__(self, *, log_model: bool = False, run_name: str | None = None,
                     silent: bool = False) -> None:  # fmt: skip
            self.log_model = log_model
            self.scope = RunScope(run_name=run_name, silent=silent,
                                  tags={"vtrack.integration": "transformers"})  # fmt: skip

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                           **kwargs: Any) -> None:  # fmt: skip
            if not state.is_world_process_zero:
                return
            self.scope.ensure()
            params = {k: v for k, v in args.to_dict().items()
                      if v is None or isinstance(v, (int, float, str, bool))}  # fmt: skip
            config = getattr(model, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                conf = config.to_dict()
                params.update({f"model.{k}": v for k, v in conf.items()
                               if v is None or isinstance(v, (int, float, str, bool))})  # fmt: skip
            self.scope.log_params(params)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:  # fmt: skip
            if state.is_world_process_zero and logs:
                self.scope.log_metrics(logs, state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None,
                         **kwargs: Any) -> None:  # fmt: skip
            if not state.is_world_process_zero:
                return
            if self.log_model and model is not None:
                processor = kwargs.get("processing_class") or kwargs.get("tokenizer")
                self.scope.call("the model", _log_pretrained, model, processor)
            self.scope.end()

    return VtrackCallback


def _log_pretrained(model: Any, processor: Any) -> None:
    from vtrack import fluent

    with tempfile.TemporaryDirectory(prefix="vtrack-hf-") as tmp:
        model.save_pretrained(tmp)
        if processor is not None and hasattr(processor, "save_pretrained"):
            processor.save_pretrained(tmp)
        fluent.log_artifacts(tmp, artifact_path="model")


def register() -> None:
    """Make ``report_to="vtrack"`` select :class:`VtrackCallback` in ``TrainingArguments``."""
    from transformers.integrations import integration_utils

    integration_utils.INTEGRATION_TO_CALLBACK[REPORT_TO_NAME] = __getattr__("VtrackCallback")


def __getattr__(name: str) -> Any:
    if name == "VtrackCallback":
        cls = _callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
