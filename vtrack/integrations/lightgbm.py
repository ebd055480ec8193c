"""LightGBM: a training callback and ``autolog()``.

``lgb.train(params, train_set, valid_sets=[val], callbacks=[VtrackCallback()])`` logs
every evaluation result at its iteration as ``<data>-<metric>`` (``valid_0-l2``, MLflow's
names), into the active run or one the callback starts (ended after the last iteration,
or at process exit when early stopping ends training sooner). :func:`autolog` patches
``lightgbm.train`` (and so ``LGBMClassifier.fit`` and the other scikit-learn wrappers) to
log params, metrics, ``best_iteration`` and the booster as a model (see
:mod:`vtrack.integrations._boosting`). The callback needs no LightGBM import; ``autolog``
imports it.
"""

from __future__ import annotations

from typing import Any

from vtrack.integrations._boosting import BoostingAutolog, BoostingConfig
from vtrack.integrations._common import RunScope


class VtrackCallback:
    """Logs each iteration's evaluation results (see :mod:`vtrack.integrations.lightgbm`)."""

    order = 25  # after LightGBM's own evaluation logging (10) and before early stopping (30)
    before_iteration = False

    def __init__(self, *, run_name: str | None = None, silent: bool = False) -> None:
        self.scope = RunScope(run_name=run_name, silent=silent,
                              tags={"vtrack.integration": "lightgbm"})  # fmt: skip

    def __call__(self, env: Any) -> None:
        metrics = {}
        for entry in env.evaluation_result_list or []:
            data, metric, value = entry[0], entry[1], entry[2]
            metrics[f"{data}-{metric}"] = value
        self.scope.log_metrics(metrics, env.iteration)
        if env.iteration + 1 >= env.end_iteration:
            self.scope.end()


_switch = BoostingAutolog("lightgbm", VtrackCallback)


def autolog(*, log_models: bool = True, disable: bool = False, silent: bool = False,
            extra_tags: dict[str, str] | None = None, **_ignored: Any) -> None:  # fmt: skip
    """Log every ``lightgbm.train`` (and scikit-learn wrapper ``fit``); ``disable=True`` undoes it.

    Flags that only other frameworks use are accepted and ignored (see ``vtrack.autolog``).
    """
    if disable:
        _switch.disable()
        return
    import lightgbm
    import lightgbm.engine
    import lightgbm.sklearn

    _switch.enable([lightgbm, lightgbm.engine, lightgbm.sklearn],
                   BoostingConfig(log_models, silent, dict(extra_tags or {})))  # fmt: skip
