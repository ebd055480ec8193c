"""XGBoost: a training callback and ``autolog()``.

``xgb.train(params, dtrain, evals=[(dval, "val")], callbacks=[VtrackCallback()])`` logs
every evaluation result at its boosting round as ``<data>-<metric>`` (``val-logloss``,
MLflow's names), into the active run or one the callback starts and ends with training.
:func:`autolog` patches ``xgboost.train`` (and so ``XGBClassifier.fit`` and the other
scikit-learn wrappers) to log params, metrics, ``best_iteration`` and the booster as a
model (see :mod:`vtrack.integrations._boosting`). xgboost is imported when
``VtrackCallback`` or ``autolog`` is first used.
"""

from __future__ import annotations

import sys
from typing import Any

from vtrack.integrations._boosting import BoostingAutolog, BoostingConfig
from vtrack.integrations._common import RunScope


def _callback_class() -> type:
    import xgboost as xgb

    class VtrackCallback(xgb.callback.TrainingCallback):
        """Logs each round's evaluation results (see :mod:`vtrack.integrations.xgboost`)."""

        def __init__(self, *, run_name: str | None = None, silent: bool = False) -> None:
            super().__init__()
            self.scope = RunScope(run_name=run_name, silent=silent,
                                  tags={"vtrack.integration": "xgboost"})  # fmt: skip

        def before_training(self, model: Any) -> Any:
            self.scope.ensure()
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            metrics = {}
            for data, per_metric in evals_log.items():
                for metric, values in per_metric.items():
                    last = values[-1]
                    metrics[f"{data}-{metric}"] = last[0] if isinstance(last, tuple) else last
            self.scope.log_metrics(metrics, epoch)
            return False  # never stops training

        def after_training(self, model: Any) -> Any:
            self.scope.end()
            return model

    return VtrackCallback


_switch = BoostingAutolog("xgboost", lambda: __getattr__("VtrackCallback")())


def autolog(*, log_models: bool = True, disable: bool = False, silent: bool = False,
            extra_tags: dict[str, str] | None = None, **_ignored: Any) -> None:  # fmt: skip
    """Log every ``xgboost.train`` (and scikit-learn wrapper ``fit``); ``disable=True`` undoes it.

    Flags that only other frameworks use (``log_datasets``, ``log_input_examples``) are
    accepted and ignored, so ``vtrack.autolog(...)`` can pass its flags to every framework.
    """
    if disable:
        _switch.disable()
        return
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    mods = [xgboost, xgboost.training, xgboost.sklearn, sys.modules.get("xgboost.dask")]
    _switch.enable([m for m in mods if m is not None],
                   BoostingConfig(log_models, silent, dict(extra_tags or {})))  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "VtrackCallback":
        cls = _callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
