"""MLflow's module-level registry calls (``mlflow.register_model`` and friends).

Each goes to the model registry of the store the fluent API uses
(:class:`~vtrack.registry.service.ModelRegistry`). ``set_registered_model_alias`` and
``delete_registered_model_alias`` are vtrack's additions at module level (MLflow has
them on the client only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vtrack import fluent
from vtrack.registry.entities import ModelVersion, RegisteredModel
from vtrack.registry.service import ModelRegistry

__all__ = [
    "delete_registered_model_alias",
    "register_model",
    "search_model_versions",
    "search_registered_models",
    "set_model_version_tag",
    "set_registered_model_alias",
]


def _registry() -> ModelRegistry:
    return fluent.tracking_client().model_registry


def register_model(model_uri: str, name: str, await_registration_for: int = 0, *,
                   tags: Mapping[str, Any] | None = None, **_: Any) -> ModelVersion:  # fmt: skip
    """Register the model at ``model_uri`` (``runs:/<run>/<path>`` or ``models:/<model_id>``)
    as the next version of ``name``, creating the registered model if needed."""
    return _registry().register_model(model_uri, name, tags)


def search_registered_models(max_results: int | None = None, filter_string: str | None = None,
                             order_by: Sequence[str] | None = None,
                             **_: Any) -> list[RegisteredModel]:  # fmt: skip
    """Registered models matching ``filter_string`` (``name``, ``tags.<key>``)."""
    return _registry().search_registered_models(filter_string, max_results, order_by)


def search_model_versions(max_results: int | None = None, filter_string: str | None = None,
                          order_by: Sequence[str] | None = None,
                          **_: Any) -> list[ModelVersion]:  # fmt: skip
    """Model versions matching ``filter_string`` (``name``, ``run_id``, ``tags.<key>``, …)."""
    return _registry().search_model_versions(filter_string, max_results, order_by)


def set_model_version_tag(name: str, version: Any = None, key: str | None = None,
                          value: Any = None, stage: str | None = None) -> None:  # fmt: skip
    """Set a tag on one version of a registered model."""
    _registry().set_model_version_tag(name, version, str(key), value)


def set_registered_model_alias(name: str, alias: str, version: Any) -> None:
    """Point ``alias`` of ``name`` at ``version`` (recorded in the alias's history)."""
    _registry().set_registered_model_alias(name, alias, version)


def delete_registered_model_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``."""
    _registry().delete_registered_model_alias(name, alias)
