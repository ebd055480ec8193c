"""The targets of vtrack's MLflow entry points: ``mlflow.tracking_store`` (scheme
``vtrack``) and ``mlflow.artifact_repository`` (scheme ``vtrack-artifacts``).

MLflow loads its entry points while ``mlflow`` itself is being imported; this module
imports nothing of MLflow, so loading it never meets a half-initialized module (as
pointing the entry point at :class:`~vtrack.integrations.mlflow_store.VtrackStore`,
whose module imports MLflow, would when that module is the first to import MLflow).
MLflow calls the builder with ``store_uri`` and ``artifact_uri``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtrack.integrations.mlflow_artifacts import VtrackArtifactRepository
    from vtrack.integrations.mlflow_store import VtrackStore


def vtrack_store(store_uri: str | None = None, artifact_uri: str | None = None) -> VtrackStore:
    """A :class:`~vtrack.integrations.mlflow_store.VtrackStore` for ``vtrack:///path``."""
    from vtrack.integrations.mlflow_store import VtrackStore

    return VtrackStore(store_uri=store_uri, artifact_uri=artifact_uri)


def vtrack_artifacts(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> VtrackArtifactRepository:
    """The ``vtrack-artifacts:`` repository (entry point ``mlflow.artifact_repository``)."""
    from vtrack.integrations.mlflow_artifacts import VtrackArtifactRepository

    return VtrackArtifactRepository(artifact_uri, tracking_uri=tracking_uri,
                                    registry_uri=registry_uri)  # fmt: skip
