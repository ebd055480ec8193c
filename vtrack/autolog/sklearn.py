"""scikit-learn autologging: every ``fit`` of an estimator recorded, without changing it.

:func:`autolog` patches ``fit``, ``fit_transform`` and ``fit_predict`` of every
estimator class (``BaseEstimator`` subclasses that define them, user-defined ones
included, and classes defined later through a subclass hook), except those of XGBoost
and LightGBM, which have their own autologging. Only the outermost call is recorded: a
pipeline's steps and a search's candidates fitting inside it are not. What is recorded
is listed in :mod:`vtrack.autolog.sklearn_content`.

The patched method calls the original with the same arguments and returns what it
returns; its exceptions propagate unchanged. Logging happens before (params, tags,
datasets) and after (metrics, models, search results) the original call and never
raises: a failure is one :class:`~vtrack.autolog.patching.AutologWarning`. Inside an
active run everything goes into that run; otherwise a run is started for the call and
ended with it (FAILED if ``fit`` raised).
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from vtrack.autolog import patching
from vtrack.autolog.patching import Patches, best_effort, managed_run
from vtrack.autolog.sklearn_content import (
    SklearnConfig,
    cv_results_csv,
    estimator_params,
    estimator_tags,
    head,
    is_search,
    loggable_data,
    search_candidates,
    training_metrics,
)

#: Methods patched on each estimator class that defines them.
PATCHED_METHODS = ("fit", "fit_transform", "fit_predict")
#: Modules whose estimators have their own autologging (not patched here).
EXCLUDED_MODULES = ("xgboost", "lightgbm")

_config: SklearnConfig | None = None
_patches = Patches()
_lock = threading.RLock()
_hook_installed = False


def autolog(
    *,
    log_models: bool = True,
    log_datasets: bool = True,
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_training_metrics: bool = True,
    max_tuning_runs: int | None = 5,
    disable: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Record every scikit-learn ``fit`` (see the module docstring); ``disable=True`` undoes it.

    ``log_models``, ``log_datasets``, ``log_input_examples``, ``log_model_signatures``
    and ``log_training_metrics`` turn those parts off; ``max_tuning_runs`` bounds the
    child runs of a parameter search (None: one per candidate); ``silent`` turns
    autologging's warnings into debug log lines; ``extra_tags`` go on every run it
    starts. Calling it again replaces the flags. Imports scikit-learn.
    """
    global _config
    from vtrack.errors import ValidationError

    if max_tuning_runs is not None and (
        isinstance(max_tuning_runs, bool)
        or not isinstance(max_tuning_runs, int)
        or max_tuning_runs < 0
    ):
        raise ValidationError(
            f"max_tuning_runs must be a non-negative integer or None, not {max_tuning_runs!r}"
        )
    with _lock:
        if disable:
            _config = None
            _unpatch_all()
            return
        _config = SklearnConfig(
            log_models=log_models, log_datasets=log_datasets,
            log_input_examples=log_input_examples, log_model_signatures=log_model_signatures,
            log_training_metrics=log_training_metrics, max_tuning_runs=max_tuning_runs,
            silent=silent, extra_tags=dict(extra_tags or {}),
        )  # fmt: skip
        _patch_all()


def is_enabled() -> bool:
    """True while scikit-learn autologging is on."""
    return _config is not None


# -- patching ------------------------------------------------------------------------
def _patch_all() -> None:
    global _hook_installed
    from sklearn.base import BaseEstimator

    stack = list(BaseEstimator.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        _patch_class(cls)
    if not _hook_installed:

        def __init_subclass__(cls: type, **kwargs: Any) -> None:  # noqa: N807
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
            if _config is not None:
                _patch_class(cls)

        BaseEstimator.__init_subclass__ = classmethod(__init_subclass__)
        _hook_installed = True


def _unpatch_all() -> None:
    global _hook_installed
    _patches.undo()
    if _hook_installed:
        from sklearn.base import BaseEstimator

        del BaseEstimator.__init_subclass__
        _hook_installed = False


def _patch_class(cls: type) -> None:
    if cls.__module__.split(".")[0] in EXCLUDED_MODULES:
        return
    for name in PATCHED_METHODS:
        if callable(cls.__dict__.get(name)):
            with _lock:
                _patches.patch(cls, name, _wrap)


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        cfg = _config
        if cfg is None or patching.TRAINING.active:
            return original(self, *args, **kwargs)
        with patching.TRAINING.enter():
            return _fit_and_log(cfg, original, self, args, kwargs)

    return patched


def _fit_inputs(
    original: Any, est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) as passed to the fit method."""
    try:
        bound = inspect.signature(original).bind_partial(est, *args, **kwargs).arguments
    except (TypeError, ValueError):
        return (args[0] if args else kwargs.get("X")), None, None
    names = list(inspect.signature(original).parameters)[1:]
    X = bound.get(names[0]) if names else None
    y = bound.get(names[1]) if len(names) > 1 and names[1] in ("y", "Y") else bound.get("y")
    sw = bound.get("sample_weight")
    if sw is None and isinstance(bound.get("kwargs"), dict):  # **fit_params
        sw = bound["kwargs"].get("sample_weight")
    return X, y, sw


def _fit_and_log(cfg: SklearnConfig, original: Any, est: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:  # fmt: skip
    X, y, sw = _fit_inputs(original, est, args, kwargs)
    tags = {"vtrack.autolog": "sklearn", **cfg.extra_tags}
    with managed_run(tags, silent=cfg.silent) as run_id:
        if run_id is not None:
            best_effort("params and tags", _before_fit, cfg, est, X, y, silent=cfg.silent)
        result = original(est, *args, **kwargs)
        if run_id is not None:
            _after_fit(cfg, run_id, est, X, y, sw)
        return result


# -- logging -------------------------------------------------------------------------
def _before_fit(cfg: SklearnConfig, est: Any, X: Any, y: Any) -> None:
    from vtrack import fluent

    fluent.log_params(estimator_params(est))
    fluent.set_tags(estimator_tags(est))
    if cfg.log_datasets:
        best_effort("the training dataset", _log_datasets, X, y, silent=cfg.silent)


def _log_datasets(X: Any, y: Any, run_id: str | None = None) -> None:
    from vtrack import fluent

    specs = []
    for data, role in ((X, "features"), (y, "targets")):
        data = loggable_data(data)
        if data is not None:
            specs.append({"data": data, "context": "train", "tags": {"role": role}})
    if specs:
        if run_id is None:
            fluent.log_inputs(specs)
        else:
            fluent.tracking_client().log_inputs(run_id, specs)


def _after_fit(cfg: SklearnConfig, run_id: str, est: Any, X: Any, y: Any, sw: Any) -> None:
    from vtrack import fluent

    quiet = cfg.silent
    if cfg.log_training_metrics:
        metrics = best_effort("training metrics", training_metrics, est, X, y, sw, silent=quiet)
        if metrics:
            best_effort("training metrics", fluent.log_metrics, metrics, silent=quiet)
    example = best_effort("the input example", _example, X, silent=quiet)
    if cfg.log_models:
        best_effort("the model", _log_model, cfg, est, example, "model", silent=quiet)
    if is_search(est):
        _after_search(cfg, run_id, est, X, y, example)


def _example(X: Any) -> Any:
    data = loggable_data(X)
    return None if data is None else head(data)


def _log_model(cfg: SklearnConfig, est: Any, example: Any, path: str) -> None:
    from vtrack.models import sklearn as flavor
    from vtrack.models.signature import Signature, infer_signature

    signature = None
    if not cfg.log_model_signatures:
        signature = Signature()
    elif example is not None and not cfg.log_input_examples:
        predict = getattr(est, "predict", None) or getattr(est, "transform", None)
        out = predict(example) if predict is not None else None
        signature = infer_signature(example, out)
    flavor.log_model(est, path, input_example=example if cfg.log_input_examples else None,
                     signature=signature)  # fmt: skip


def _after_search(
    cfg: SklearnConfig, run_id: str, search: Any, X: Any, y: Any, example: Any
) -> None:
    from vtrack import fluent

    quiet = cfg.silent
    if cfg.log_models and hasattr(search, "best_estimator_"):
        best_effort("the best estimator", _log_model, cfg, search.best_estimator_, example,
                    "best_estimator", silent=quiet)  # fmt: skip
    if hasattr(search, "best_score_"):
        best_effort("best_cv_score", fluent.log_metric, "best_cv_score", float(search.best_score_),
                    silent=quiet)  # fmt: skip
    if hasattr(search, "best_params_"):
        best = {f"best_{k}": v for k, v in search.best_params_.items()}
        best_effort("the best params", fluent.log_params,
                    {k: _param(v) for k, v in best.items()}, silent=quiet)  # fmt: skip
    if hasattr(search, "cv_results_"):
        best_effort("cv_results.csv", fluent.log_text, cv_results_csv(search), "cv_results.csv",
                    silent=quiet)  # fmt: skip
        best_effort("the child runs of the search", _child_runs, cfg, run_id, search, X, y,
                    silent=quiet)  # fmt: skip


def _param(value: Any) -> Any:
    from vtrack.autolog.sklearn_content import param_value

    return param_value(value)


def _child_runs(cfg: SklearnConfig, parent_id: str, search: Any, X: Any, y: Any) -> None:
    """A child run of ``parent_id`` per recorded candidate, ended FINISHED at once."""
    from vtrack import fluent

    client = fluent.tracking_client()
    parent = client.get_run(parent_id)
    seed = search.estimator
    base = {str(k): v for k, v in seed.get_params(deep=not is_search(seed)).items()}
    for cand in search_candidates(search, cfg.max_tuning_runs):
        tags = {**estimator_tags(seed), "vtrack.autolog": "sklearn",
                "vtrack.autolog.candidate": str(cand["index"]), **cfg.extra_tags}  # fmt: skip
        child = client.create_run(experiment_id=parent.info.experiment_id, tags=tags,
                                  parent_run_id=parent_id)  # fmt: skip
        cid = child.info.run_id
        try:
            params = {**base, **cand["params"]}
            client.log_params(cid, {k: _param(v) for k, v in params.items()})
            client.log_metrics(cid, cand["metrics"])
            if cfg.log_datasets:
                best_effort("the candidate's dataset", _log_datasets, X, y, cid, silent=cfg.silent)
        finally:
            client.set_terminated(cid, "FINISHED")
