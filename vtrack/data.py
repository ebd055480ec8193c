"""``vtrack.data``: MLflow's dataset constructors, mapped onto vtrack's provenance entries.

``from_pandas`` and ``from_numpy`` wrap in-memory data in a :class:`Dataset`; passing one
to ``log_input`` records an ordinary vtrack input entry (kind ``dataframe`` or ``array``)
whose digest is vtrack's content digest of the data (``xxh3-128:…``), so the run's
dataset is auditable and searchable like any other input. The dataset's ``name`` and
``source`` become the entry's; ``targets`` (a column name, or an array for numpy) is kept
as the entry tag ``mlflow.targets`` (numpy targets are recorded as a second input,
``<name>-targets``).

pandas and numpy are never imported here.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import Any

from vtrack.entities import Dataset as DatasetEntity
from vtrack.errors import ValidationError

__all__ = ["Dataset", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]


class Dataset:
    """In-memory data with a name, a source and a content digest (MLflow's ``Dataset``)."""

    #: the provenance kind the data is recorded as
    kind = "data"

    def __init__(
        self,
        data: Any,
        *,
        name: str | None,
        source: str | os.PathLike[str] | None = None,
        targets: Any = None,
        digest: str | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise ValidationError(f"dataset name {name!r} must be a string")
        self._data = data
        self._name = name
        self._source = None if source is None else _source_text(source)
        self.targets = targets
        self._digest_override = digest

    @cached_property
    def _entry(self) -> dict[str, Any]:
        from vtrack.datasets import describe_input

        return describe_input(self._data, name=self.name, source=self._source)

    @property
    def name(self) -> str:
        """The dataset's name (``"dataset"`` when none was given, as in MLflow)."""
        return self._name or "dataset"

    @property
    def digest(self) -> str:
        """vtrack's content digest of the data (or the digest given to the constructor)."""
        return self._digest_override or str(self._entry["digest"])

    @property
    def source(self) -> str | None:
        """Where the data came from (a path or URI), as given."""
        return self._source

    @property
    def schema(self) -> dict[str, Any] | None:
        """Columns and dtypes (DataFrames) or dtype and shape (arrays)."""
        return self._entry.get("schema")

    @property
    def profile(self) -> dict[str, Any]:
        """Row count and size in bytes of the canonical form."""
        return {"num_rows": self._entry.get("rows"), "num_bytes": self._entry.get("size")}

    def to_entity(self) -> DatasetEntity:
        """MLflow's dataset entity: name, digest, source type, source, schema, profile (JSON)."""
        return DatasetEntity(
            name=self.name,
            digest=self.digest,
            source_type="local" if self._source and not _is_uri(self._source) else "code",
            source=json.dumps({"uri": self._source} if self._source else {}),
            schema=json.dumps(self.schema) if self.schema is not None else None,
            profile=json.dumps(self.profile),
        )

    def to_dict(self) -> dict[str, Any]:
        """The entity's fields as a dict of strings (MLflow's ``Dataset.to_dict``)."""
        e = self.to_entity()
        return {"name": e.name, "digest": e.digest, "source_type": e.source_type,
                "source": e.source, "schema": e.schema, "profile": e.profile}  # fmt: skip

    def input_specs(self, context: str | None, tags: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The ``log_inputs`` specs that record this dataset."""
        all_tags = dict(tags or {})
        if isinstance(self.targets, str):
            all_tags["mlflow.targets"] = self.targets
        spec = {"data": self._data, "name": self.name, "context": context,
                "source": self._source, "tags": all_tags or None}  # fmt: skip
        return [spec]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class PandasDataset(Dataset):
    """A DataFrame as a dataset (``vtrack.data.from_pandas``)."""

    kind = "dataframe"

    @property
    def df(self) -> Any:
        """The DataFrame."""
        return self._data


class NumpyDataset(Dataset):
    """Numpy features (and optional targets) as a dataset (``vtrack.data.from_numpy``)."""

    kind = "array"

    @property
    def features(self) -> Any:
        """The feature array."""
        return self._data

    def input_specs(self, context: str | None, tags: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The features, and the targets as ``<name>-targets`` when they are an array."""
        specs = super().input_specs(context, tags)
        if self.targets is not None and not isinstance(self.targets, str):
            specs.append({"data": self.targets, "name": f"{self.name}-targets",
                          "context": context, "tags": tags or None})  # fmt: skip
        return specs


def from_pandas(
    df: Any,
    source: str | os.PathLike[str] | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A dataset of the DataFrame ``df`` (MLflow's ``mlflow.data.from_pandas``)."""
    if not hasattr(df, "columns"):
        raise ValidationError(f"from_pandas needs a pandas DataFrame, got {type(df).__name__}")
    if targets is not None and targets not in df.columns:
        raise ValidationError(f"targets column {targets!r} is not a column of the DataFrame")
    return PandasDataset(df, name=name, source=source, targets=targets, digest=digest)


def from_numpy(
    features: Any,
    source: str | os.PathLike[str] | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A dataset of the array ``features`` and optional ``targets`` (``mlflow.data.from_numpy``)."""
    if not hasattr(features, "dtype"):
        raise ValidationError(f"from_numpy needs a numpy array, got {type(features).__name__}")
    return NumpyDataset(features, name=name, source=source, targets=targets, digest=digest)


def _source_text(source: Any) -> str:
    uri = getattr(source, "uri", None) or getattr(source, "url", None)
    return (
        str(uri)
        if uri is not None
        else os.fspath(source)
        if isinstance(source, os.PathLike)
        else str(source)
    )


def _is_uri(text: str) -> bool:
    head, sep, _ = text.partition("://")
    return bool(sep) and head.isalnum()
