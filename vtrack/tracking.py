"""``vtrack.tracking``: MLflow's ``mlflow.tracking`` names.

``MlflowClient`` is :class:`vtrack.client.TrackingClient` under MLflow's name, so
``from vtrack.tracking import MlflowClient`` works in a ported script.
"""

from __future__ import annotations

from vtrack.client import TrackingClient

#: MLflow's name for the explicit client.
MlflowClient = TrackingClient


def get_tracking_uri() -> str:
    """The tracking URI in use (see :func:`vtrack.fluent.get_tracking_uri`)."""
    from vtrack import fluent

    return fluent.get_tracking_uri()


def set_tracking_uri(uri: str | None) -> None:
    """Use the store at ``uri`` (see :func:`vtrack.fluent.set_tracking_uri`)."""
    from vtrack import fluent

    fluent.set_tracking_uri(uri)


__all__ = ["MlflowClient", "TrackingClient", "get_tracking_uri", "set_tracking_uri"]
