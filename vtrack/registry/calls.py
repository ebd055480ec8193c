"""MLflow's ``MlflowClient`` registry methods, mixed into the tracking client.

Each method delegates to :class:`~vtrack.registry.service.ModelRegistry` over the
client's run repository; the logic, checks and errors live there. The registry's modules
are imported on first use (``import vtrack.client`` does not load them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use, so that the client's import does not pay for them
    from vtrack.registry.entities import ModelVersion, RegisteredModel
    from vtrack.registry.service import ModelRegistry
    from vtrack.store.runs import RunRepository


class RegistryCalls:
    """The registry half of ``MlflowClient`` (needs ``self.repo``)."""

    @property
    def repo(self) -> RunRepository:  # the client's run repository
        raise NotImplementedError

    @property
    def model_registry(self) -> ModelRegistry:
        """The model registry of this client's store."""
        from vtrack.registry.service import ModelRegistry

        reg = self.__dict__.get("_model_registry")
        if reg is None or reg.repo is not self.repo:
            reg = self.__dict__["_model_registry"] = ModelRegistry(self.repo)
        return reg

    def create_registered_model(self, name: str, tags: Mapping[str, Any] | None = None,
                                description: str | None = None, **_: Any) -> RegisteredModel:  # fmt: skip
        """Create an empty registered model (RegisteredModelExistsError if it exists)."""
        return self.model_registry.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``."""
        return self.model_registry.get_registered_model(name)

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int | None = None,
                                 order_by: Sequence[str] | None = None, **_: Any) -> list[RegisteredModel]:  # fmt: skip
        """Registered models matching the filter, by name."""
        return self.model_registry.search_registered_models(filter_string, max_results, order_by)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        """Change a registered model's description."""
        return self.model_registry.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model, its versions and aliases."""
        self.model_registry.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        self.model_registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Delete a tag from a registered model."""
        self.model_registry.delete_registered_model_tag(name, key)

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Mapping[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None, await_creation_for: int = 0,
                             model_id: str | None = None) -> ModelVersion:  # fmt: skip
        """Register ``source`` (``runs:/…`` or ``models:/<model_id>``) as the next version."""
        return self.model_registry.create_model_version(name, source, run_id, tags, description,
                                                        model_id)  # fmt: skip

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        """One version of a registered model."""
        return self.model_registry.get_model_version(name, version)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version (vtrack has no stages)."""
        return self.model_registry.get_latest_versions(name, stages)

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int | None = None,
                              order_by: Sequence[str] | None = None, **_: Any) -> list[ModelVersion]:  # fmt: skip
        """Model versions matching the filter (newest first within a model)."""
        return self.model_registry.search_model_versions(filter_string, max_results, order_by)

    def update_model_version(
        self, name: str, version: Any, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description."""
        return self.model_registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: Any) -> None:
        """Delete a version (its number is never given again)."""
        self.model_registry.delete_model_version(name, version)

    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        """Point ``alias`` at ``version`` (recorded in the alias's history)."""
        self.model_registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self.model_registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self.model_registry.get_model_version_by_alias(name, alias)

    def set_model_version_tag(self, name: str, version: Any = None, key: str | None = None,
                              value: Any = None, stage: str | None = None) -> None:  # fmt: skip
        """Set a tag on one version."""
        self.model_registry.set_model_version_tag(name, version, str(key), value)

    def delete_model_version_tag(self, name: str, version: Any = None, key: str | None = None,
                                 stage: str | None = None) -> None:  # fmt: skip
        """Delete a tag from one version."""
        self.model_registry.delete_model_version_tag(name, version, str(key))

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """The source URI of a version's model folder."""
        return str(self.model_registry.get_model_version(name, version).source)
