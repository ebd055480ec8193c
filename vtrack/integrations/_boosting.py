"""Autologging for gradient-boosting libraries whose training goes through one ``train``.

XGBoost and LightGBM both train through a module-level ``train(params, train_set,
num_boost_round, …, callbacks=…)`` that their scikit-learn wrappers call too, so
patching it covers ``xgb.train``, ``lgb.train`` and ``XGBClassifier.fit`` /
``LGBMClassifier.fit`` alike. A patched call logs the params (the ``params`` mapping and
``num_boost_round``, plus early stopping when given) before training, adds the
library's vtrack callback so that each evaluation result is logged at its iteration,
and afterwards logs ``best_iteration`` (early stopping) and the trained booster as a
model of the pyfunc flavor (``model``, pickled; it loads back as the library's Booster).
It returns what ``train`` returns and raises what it raises.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from vtrack.autolog import patching
from vtrack.autolog.patching import Patches, best_effort, managed_run
from vtrack.integrations._common import flat_params, to_float


@dataclass(frozen=True)
class BoostingConfig:
    """The flags of a boosting library's ``autolog``."""

    log_models: bool = True
    silent: bool = False
    extra_tags: dict[str, str] = field(default_factory=dict)


class BoostingAutolog:
    """The autologging switch of one library (its ``train`` functions and callback)."""

    def __init__(self, library: str, make_callback: Callable[[], Any]) -> None:
        self.library = library
        self.make_callback = make_callback
        self.config: BoostingConfig | None = None
        self.patches = Patches()
        self.lock = threading.Lock()

    def enable(self, modules: Iterable[ModuleType], config: BoostingConfig) -> None:
        """Patch ``train`` wherever ``modules`` bind the library's training function."""
        with self.lock:
            self.config = config
            for mod in modules:
                if callable(getattr(mod, "train", None)):
                    self.patches.patch(mod, "train", self._wrap)

    def disable(self) -> None:
        """Put the original ``train`` functions back."""
        with self.lock:
            self.config = None
            self.patches.undo()

    def _wrap(self, original: Any) -> Any:
        sig = inspect.signature(original)

        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            cfg = self.config
            if cfg is None or patching.TRAINING.active:
                return original(*args, **kwargs)
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError:
                return original(*args, **kwargs)  # the library will say what is wrong
            with patching.TRAINING.enter():
                return self._train(cfg, original, bound)

        return train

    def _train(self, cfg: BoostingConfig, original: Any, bound: inspect.BoundArguments) -> Any:
        tags = {"vtrack.autolog": self.library, **cfg.extra_tags}
        with managed_run(tags, silent=cfg.silent) as run_id:
            if run_id is None:
                return original(*bound.args, **bound.kwargs)
            best_effort("params", _log_params, bound, silent=cfg.silent)
            callbacks = list(bound.arguments.get("callbacks") or [])
            callback = best_effort("the metrics callback", self.make_callback, silent=cfg.silent)
            if callback is not None:
                bound.arguments["callbacks"] = [*callbacks, callback]
            booster = original(*bound.args, **bound.kwargs)
            best_effort("best_iteration", _log_best_iteration, booster, self.library,
                        silent=cfg.silent)  # fmt: skip
            if cfg.log_models:
                best_effort("the model", _log_booster, booster, self.library, silent=cfg.silent)
            return booster


def _log_params(bound: inspect.BoundArguments) -> None:
    from vtrack import fluent

    args = bound.arguments
    params = dict(args.get("params") or {})
    for name in ("num_boost_round", "early_stopping_rounds", "maximize"):
        if args.get(name) is not None:
            params[name] = args[name]
    if params:
        fluent.log_params(flat_params(params))


def _log_best_iteration(booster: Any, library: str) -> None:
    from vtrack import fluent

    best = getattr(booster, "best_iteration", None)  # XGBoost: set by early stopping only
    value = to_float(best) if not callable(best) else None
    if value is not None and value >= (1 if library == "lightgbm" else 0):  # LightGBM: 0 = none
        fluent.log_metric("best_iteration", value)


def _log_booster(booster: Any, library: str) -> None:
    from vtrack.models import pyfunc

    pyfunc.log_model(booster, "model", metadata={"library": library,
                                                 "booster": type(booster).__name__})  # fmt: skip
