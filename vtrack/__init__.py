"""vtrack: an experiment tracker that lives inside git.

>>> import vtrack
>>> with vtrack.start_run(run_name="baseline"):
...     vtrack.log_params({"lr": 0.01})
...     vtrack.log_metric("loss", 0.3, step=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vtrack.errors import VtrackError

__version__ = "0.1.0"

#: Where the public names that are not fluent functions live. Every public name is
#: imported on first use, so ``import vtrack`` costs next to nothing and pulls in no
#: storage code; names in ``__all__`` not listed here come from ``vtrack.fluent``.
_NON_FLUENT = {
    "VtrackError": "vtrack.errors",
    "TrackingClient": "vtrack.client",
    "Experiment": "vtrack.entities",
    "Metric": "vtrack.entities",
    "Param": "vtrack.entities",
    "Run": "vtrack.entities",
    "RunData": "vtrack.entities",
    "RunInfo": "vtrack.entities",
    "RunStatus": "vtrack.entities",
    "MlflowClient": "vtrack.tracking",
    "ViewType": "vtrack.entities",
    "RunTag": "vtrack.entities",
    "LoggedModel": "vtrack.entities",
    "enable_system_metrics_logging": "vtrack.sysmetrics",
    "disable_system_metrics_logging": "vtrack.sysmetrics",
    "set_system_metrics_sampling_interval": "vtrack.sysmetrics",
    "set_system_metrics_node_id": "vtrack.sysmetrics",
    **{
        name: "vtrack.fluent_mlflow"
        for name in (
            "delete_experiment_tag",
            "get_artifact_uri",
            "get_logged_model",
            "get_parent_run",
            "is_tracking_uri_set",
            "last_logged_model",
            "load_table",
            "log_table",
            "register_model",
            "search_logged_models",
            "set_experiment_tag",
            "set_experiment_tags",
        )
    },
    **{
        name: "vtrack.fluent_registry"
        for name in (
            "delete_registered_model_alias",
            "search_model_versions",
            "search_registered_models",
            "set_model_version_tag",
            "set_registered_model_alias",
        )
    },
}
#: Submodules reachable as attributes, imported on first use. ``vtrack.autolog`` is a
#: package that can be called: ``vtrack.autolog()`` turns on every autologging integration.
_LAZY_SUBMODULES = {
    "sklearn": "vtrack.sklearn",
    "pytorch": "vtrack.pytorch",
    "pyfunc": "vtrack.pyfunc",
    "models": "vtrack.models",
    "data": "vtrack.data",
    "tracking": "vtrack.tracking",
    "entities": "vtrack.entities",
    "artifacts": "vtrack.artifacts",
    "autolog": "vtrack.autolog",
    "integrations": "vtrack.integrations",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from vtrack.client import TrackingClient
    from vtrack.entities import (
        Experiment,
        LoggedModel,
        Metric,
        Param,
        Run,
        RunData,
        RunInfo,
        RunStatus,
        RunTag,
        ViewType,
    )
    from vtrack.fluent import (
        ActiveRun,
        active_run,
        audit,
        create_experiment,
        delete_experiment,
        delete_run,
        delete_tag,
        download_artifacts,
        end_run,
        get_experiment,
        get_experiment_by_name,
        get_metric_history,
        get_run,
        get_tracking_uri,
        last_active_run,
        lineage,
        list_artifacts,
        load_dict,
        load_text,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_image,
        log_input,
        log_inputs,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
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
    from vtrack.fluent_mlflow import (
        delete_experiment_tag,
        get_artifact_uri,
        get_logged_model,
        get_parent_run,
        is_tracking_uri_set,
        last_logged_model,
        load_table,
        log_table,
        register_model,
        search_logged_models,
        set_experiment_tag,
        set_experiment_tags,
    )
    from vtrack.fluent_registry import (
        delete_registered_model_alias,
        search_model_versions,
        search_registered_models,
        set_model_version_tag,
        set_registered_model_alias,
    )
    from vtrack.sysmetrics import (
        disable_system_metrics_logging,
        enable_system_metrics_logging,
        set_system_metrics_node_id,
        set_system_metrics_sampling_interval,
    )
    from vtrack.tracking import MlflowClient


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(_LAZY_SUBMODULES[name])
    module = _NON_FLUENT.get(name, "vtrack.fluent") if name in __all__ else None
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vtrack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAZY_SUBMODULES))


__all__ = [
    "ActiveRun",
    "Experiment",
    "LoggedModel",
    "Metric",
    "MlflowClient",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "TrackingClient",
    "ViewType",
    "VtrackError",
    "active_run",
    "audit",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "disable_system_metrics_logging",
    "download_artifacts",
    "enable_system_metrics_logging",
    "end_run",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_logged_model",
    "get_metric_history",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "lineage",
    "list_artifacts",
    "load_dict",
    "load_table",
    "load_text",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "register_model",
    "delete_registered_model_alias",
    "search_model_versions",
    "search_registered_models",
    "set_model_version_tag",
    "set_registered_model_alias",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_logged_models",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_system_metrics_node_id",
    "set_system_metrics_sampling_interval",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
