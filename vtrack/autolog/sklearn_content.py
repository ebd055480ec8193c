"""What scikit-learn autologging records for one ``fit``, under MLflow's names.

- params: ``get_params(deep=True)`` (``deep=False`` for a parameter search, whose seed
  estimator's untuned params would mislead); values that are not YAML scalars are
  stored as their ``repr``, cut at the param length limit;
- tags: ``estimator_name``, ``estimator_class``;
- training metrics on the data given to ``fit``: ``training_score`` and, for
  classifiers, ``training_{accuracy,precision,recall,f1}_score`` (weighted), plus
  ``training_log_loss`` and ``training_roc_auc`` with ``predict_proba``; for regressors
  ``training_{mean_squared_error,root_mean_squared_error,mean_absolute_error,r2_score}``;
- the fitted model (sklearn flavor) with its signature and the first rows as input example;
- the training data as dataset inputs (context ``train``: features, and targets if given);
- for ``GridSearchCV``/``RandomizedSearchCV``: ``best_<param>`` params, ``best_cv_score``,
  the ``best_estimator`` model, ``cv_results.csv``, and a child run per candidate (the
  best ``max_tuning_runs`` by rank) with its params and mean/std scores and times.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vtrack.limits import MAX_PARAM_VALUE_LENGTH

#: Rows of the training data kept as the model's input example.
INPUT_EXAMPLE_ROWS = 5
TRAINING_PREFIX = "training_"


@dataclass(frozen=True)
class SklearnConfig:
    """The flags of :func:`vtrack.autolog.sklearn.autolog`."""

    log_models: bool = True
    log_datasets: bool = True
    log_input_examples: bool = True
    log_model_signatures: bool = True
    log_training_metrics: bool = True
    max_tuning_runs: int | None = 5
    silent: bool = False
    extra_tags: Mapping[str, str] = field(default_factory=dict)


def param_value(value: Any) -> Any:
    """A value ``log_params`` accepts: YAML scalars kept, anything else as a bounded repr."""
    if value is None or type(value) in (bool, int, float, str):
        return value if not isinstance(value, str) else value[:MAX_PARAM_VALUE_LENGTH]
    if isinstance(value, numbers.Number) and hasattr(value, "item"):
        return value.item()
    text = repr(value)
    return (
        text if len(text) <= MAX_PARAM_VALUE_LENGTH else text[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
    )


def estimator_params(est: Any) -> dict[str, Any]:
    """The params autologging records for ``est``."""
    deep = not is_search(est)
    return {str(k): param_value(v) for k, v in est.get_params(deep=deep).items()}


def estimator_tags(est: Any) -> dict[str, str]:
    """MLflow's two estimator tags."""
    cls = type(est)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def is_search(est: Any) -> bool:
    """True for a parameter search (``GridSearchCV``, ``RandomizedSearchCV``, halving ones)."""
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(est, BaseSearchCV)


def loggable_data(data: Any) -> Any:
    """``data`` as a DataFrame, Series or numpy array, or None (sparse, lists of strings…)."""
    if data is None:
        return None
    mod = type(data).__module__.split(".")[0]
    if mod in ("pandas", "numpy"):
        return data
    if mod == "scipy":
        return None
    try:
        import numpy as np

        arr = np.asarray(data)
    except Exception:  # noqa: BLE001 - not array-like: nothing to log
        return None
    return arr if arr.dtype != object else None


def head(data: Any, n: int = INPUT_EXAMPLE_ROWS) -> Any:
    """The first ``n`` rows of a DataFrame or array (a copy)."""
    if hasattr(data, "iloc"):
        return data.iloc[:n].copy()
    return data[:n].copy()


# -- training metrics ----------------------------------------------------------------
def training_metrics(est: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    """The training metrics of a fitted estimator (each one that fails is left out).

    The arguments are the ones ``fit`` just accepted, so scikit-learn's argument
    validation is skipped while they are computed: it cost more than the metrics.
    """
    import sklearn

    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        return _training_metrics(est, X, y, sample_weight)


def _training_metrics(est: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    from sklearn import metrics as skm
    from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

    out: dict[str, float] = {}
    kw = {"sample_weight": sample_weight} if sample_weight is not None else {}

    def put(name: str, fn: Any) -> None:
        try:
            value = float(fn())
        except Exception:  # noqa: BLE001 - a metric that does not apply is left out
            return
        out[TRAINING_PREFIX + name] = value

    if y is None:
        if hasattr(est, "score"):
            put("score", lambda: est.score(X))
        return out
    y_pred = None
    if hasattr(est, "predict") and (is_classifier(est) or is_regressor(est)):
        try:
            y_pred = est.predict(X)
        except Exception:  # noqa: BLE001
            y_pred = None
    # Each metric is computed once from one prediction: score() of a plain classifier or
    # regressor is accuracy or R², and precision, recall and F1 come from one call (the
    # values precision_score, recall_score and f1_score would return, at a third the cost).
    score_impl = getattr(type(est), "score", None)
    if y_pred is not None and score_impl is ClassifierMixin.score:
        put("score", lambda: skm.accuracy_score(y, y_pred, **kw))
    elif y_pred is not None and score_impl is RegressorMixin.score:
        put("score", lambda: skm.r2_score(y, y_pred, **kw))
    elif hasattr(est, "score"):
        put("score", lambda: est.score(X, y, **kw))
    if y_pred is None:
        return out
    if is_classifier(est):
        try:
            prf = skm.precision_recall_fscore_support(y, y_pred, average="weighted", **kw)
        except Exception:  # noqa: BLE001 - multilabel-indicator targets and the like
            prf = None
        if prf is not None:
            for name, value in zip(
                ("precision_score", "recall_score", "f1_score"), prf[:3], strict=True
            ):
                put(name, lambda v=value: v)
        if score_impl is ClassifierMixin.score and TRAINING_PREFIX + "score" in out:
            out[TRAINING_PREFIX + "accuracy_score"] = out[TRAINING_PREFIX + "score"]
        else:
            put("accuracy_score", lambda: skm.accuracy_score(y, y_pred, normalize=True, **kw))
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
            except Exception:  # noqa: BLE001
                proba = None
            if proba is not None:
                put("log_loss", lambda: skm.log_loss(y, proba, labels=est.classes_, **kw))
                if proba.shape[1] == 2:
                    put("roc_auc", lambda: skm.roc_auc_score(y, proba[:, 1], **kw))
                else:
                    put("roc_auc", lambda: skm.roc_auc_score(
                        y, proba, average="weighted", multi_class="ovo", labels=est.classes_, **kw))  # fmt: skip
    elif is_regressor(est):
        mo = {"multioutput": "uniform_average", **kw}
        mse = None
        try:
            mse = float(skm.mean_squared_error(y, y_pred, **mo))
            out[TRAINING_PREFIX + "mean_squared_error"] = mse
        except Exception:  # noqa: BLE001
            pass
        if mse is not None:
            out[TRAINING_PREFIX + "root_mean_squared_error"] = math.sqrt(mse)
        put("mean_absolute_error", lambda: skm.mean_absolute_error(y, y_pred, **mo))
        put("r2_score", lambda: skm.r2_score(y, y_pred, **mo))
    return out


# -- parameter search ----------------------------------------------------------------
def search_candidates(search: Any, max_runs: int | None) -> list[dict[str, Any]]:
    """One ``{"index", "params", "metrics"}`` per candidate to record, best rank first.

    Metrics are the numeric columns of ``cv_results_`` other than ``param_*`` and the
    per-split ones, as MLflow logs them.
    """
    results = search.cv_results_
    n = len(results["params"])
    rank_key = "rank_test_score" if "rank_test_score" in results else next(
        (k for k in results if k.startswith("rank_test_")), None)  # fmt: skip
    order = list(range(n))
    if rank_key is not None:
        order.sort(key=lambda i: (int(results[rank_key][i]), i))
    if max_runs is not None:
        order = order[:max_runs]
    out = []
    for i in order:
        metrics = {}
        for key, column in results.items():
            if key.startswith(("param", "split")):
                continue
            value = column[i]
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                metrics[key] = float(value)
        out.append({"index": i, "params": dict(results["params"][i]), "metrics": metrics})
    return out


def cv_results_csv(search: Any) -> str:
    """``cv_results_`` as CSV text (one row per candidate), without needing pandas."""
    results = search.cv_results_
    keys = list(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for i in range(len(results["params"])):
        w.writerow([_cell(results[k][i]) for k in keys])
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    return value if isinstance(value, (int, float, str)) else repr(value)
