"""vtrack: an experiment tracker that lives inside git.

>>> import vtrack
>>> with vtrack.start_run(run_name="baseline"):
...     vtrack.log_params({"lr": 0.01})
...     vtrack.log_metric("loss", 0.3, step=1)
"""

from __future__ import annotations

from typing import Any

from vtrack.client import TrackingClient
from vtrack.entities import Experiment, Metric, Param, Run, RunData, RunInfo, RunStatus
from vtrack.errors import VtrackError
from vtrack.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    get_experiment,
    get_experiment_by_name,
    get_metric_history,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    restore_experiment,
    restore_run,
    search_experiments,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__version__ = "0.1.0"

_LAZY_SUBMODULES = {"sklearn", "pytorch", "pyfunc"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"vtrack.models.{name}")
    raise AttributeError(f"module 'vtrack' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "Experiment",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "TrackingClient",
    "VtrackError",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
