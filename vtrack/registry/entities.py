"""Registry entities shaped like MLflow's: :class:`RegisteredModel`, :class:`ModelVersion`.

Field names and value types follow what MLflow 3's ``MlflowClient`` returns (``version``
is an ``int``; ``aliases`` of a registered model is ``{alias: version}``, of a version a
list of names; ``current_stage`` is always ``"None"`` since stages are deprecated;
``status`` is ``"READY"``). vtrack adds ``digest`` (of the model folder's bytes),
``lineage`` and ``deprecated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One numbered version of a registered model."""

    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None
    user_id: str | None
    source: str | None
    run_id: str | None
    model_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    current_stage: str = "None"
    status: str = "READY"
    status_message: str | None = None
    run_link: str | None = None
    #: vtrack: the digest of the model folder's bytes (a version always means these bytes)
    digest: str | None = None
    #: vtrack: run, code commit and dirty flag, dataset digests, signature, metrics
    lineage: dict[str, Any] = field(default_factory=dict)
    #: vtrack: marked deprecated (still loadable)
    deprecated: bool = False

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its tags, aliases and latest version."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    #: ``{alias: version number}``
    aliases: dict[str, int] = field(default_factory=dict)
    #: the newest version (MLflow: the latest of each stage; with no stages, one)
    latest_versions: list[ModelVersion] = field(default_factory=list)


def version_entity(doc: dict[str, Any], aliases: list[str]) -> ModelVersion:
    """The entity of a cached version record."""
    return ModelVersion(
        name=str(doc["name"]), version=int(doc["version"]),
        creation_timestamp=int(doc["creation_timestamp"]),
        last_updated_timestamp=int(doc["last_updated_timestamp"]),
        description=doc.get("description") or None, user_id=doc.get("user_id") or None,
        source=doc.get("source"), run_id=doc.get("run_id"), model_id=doc.get("model_id"),
        tags=dict(doc.get("tags") or {}), aliases=list(aliases), digest=doc.get("digest"),
        lineage=dict(doc.get("lineage") or {}), deprecated=bool(doc.get("deprecated")),
    )  # fmt: skip
