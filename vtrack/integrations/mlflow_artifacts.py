"""``vtrack-artifacts:`` — MLflow's artifact repository for runs of a ``vtrack://`` store.

The ``vtrack://`` tracking store gives each run the artifact URI
``vtrack-artifacts:<run id>@<repository path>``; MLflow (its server's artifact list and
download endpoints, ``MlflowClient.list_artifacts`` and ``download_artifacts``) finds
this repository through the ``mlflow.artifact_repository`` entry point. It reads through
:class:`~vtrack.client.TrackingClient` (verified bytes, large objects included) and is
read-only: logging artifacts raises "not supported by the vtrack store".
"""

from __future__ import annotations

import os
from typing import Any

from mlflow.entities import FileInfo  # noqa: TID253 - MLflow loads this module
from mlflow.exceptions import MlflowException  # noqa: TID253
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE  # noqa: TID253
from mlflow.store.artifact.artifact_repo import ArtifactRepository  # noqa: TID253

from vtrack.client import TrackingClient
from vtrack.integrations.mlflow_entities import ARTIFACT_SCHEME as SCHEME
from vtrack.integrations.mlflow_entities import artifact_uri, not_supported

__all__ = ["VtrackArtifactRepository", "artifact_uri", "parse_uri"]


def parse_uri(uri: str) -> tuple[str, str]:
    """``(run id, repository path)`` of a ``vtrack-artifacts:`` URI."""
    text = uri[len(SCHEME) + 1 :] if uri.startswith(SCHEME + ":") else ""
    run_id, sep, repo = text.partition("@")
    if not sep or not run_id or not repo:
        raise MlflowException(f"not a vtrack artifact URI: {uri!r}",
                              error_code=INVALID_PARAMETER_VALUE)  # fmt: skip
    return run_id, repo


class VtrackArtifactRepository(ArtifactRepository):
    """The artifacts of one vtrack run, read-only, for MLflow."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None,
                 registry_uri: str | None = None) -> None:  # fmt: skip
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.run_id, repo = parse_uri(artifact_uri)
        self.client = TrackingClient(repo)

    def list_artifacts(self, path: str | None = None) -> list[Any]:
        return [FileInfo(f.path, f.is_dir, f.file_size)
                for f in self.client.list_artifacts(self.run_id, path or None)]  # fmt: skip

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        data = _read(self.client, self.run_id, remote_file_path.strip("/"))
        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        with open(local_path, "wb") as f:
            f.write(data)

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        raise not_supported("logging artifacts")

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        raise not_supported("logging artifacts")

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        raise not_supported("deleting artifacts")


def _read(client: TrackingClient, run_id: str, path: str) -> bytes:
    from vtrack.artifacts.read import read_bytes

    return read_bytes(client.repo, run_id, path)
