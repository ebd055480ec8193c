"""The target of vtrack's ``mlflow.tracking_store`` entry point (scheme ``vtrack``).

MLflow loads its entry points while ``mlflow`` itself is being imported; this module
imports nothing of MLflow, so loading it never meets a half-initialized module (as
pointing the entry point at :class:`~vtrack.integrations.mlflow_store.VtrackStore`,
whose module imports MLflow, would when that module is the first to import MLflow).
MLflow calls the builder with ``store_uri`` and ``artifact_uri``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtrack.integrations.mlflow_store import VtrackStore


def vtrack_store(store_uri: str | None = None, artifact_uri: str | None = None) -> VtrackStore:
    """A :class:`~vtrack.integrations.mlflow_store.VtrackStore` for ``vtrack:///path``."""
    from vtrack.integrations.mlflow_store import VtrackStore

    return VtrackStore(store_uri=store_uri, artifact_uri=artifact_uri)
