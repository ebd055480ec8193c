"""Model metadata: the ``model.yaml`` description of a model folder, its flavors and checks.

A model folder holds ``model.yaml`` (described in ``docs/models.md``), the serialized
model, ``requirements.txt`` and, when one was given, the input example. This module owns
what ``model.yaml`` says (:class:`ModelMeta`, the common keys, the flavor table) and the
checks every flavor applies when it reads one; :mod:`vtrack.models.save` writes and loads
model folders.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtrack.errors import ArtifactError, ArtifactNotFoundError, ValidationError
from vtrack.models.signature import Signature, coerce_signature

#: Name of the description file at the root of every model folder.
MODEL_YAML = "model.yaml"
#: Name of the pip requirements file written beside it.
REQUIREMENTS_TXT = "requirements.txt"
#: Version of the model folder layout; readers refuse versions they do not know.
MODEL_FORMAT_VERSION = 1
#: Flavor name in ``model.yaml`` -> module that saves and loads it.
FLAVORS: dict[str, str] = {
    "sklearn": "vtrack.models.sklearn",
    "pytorch": "vtrack.models.pytorch",
    "pyfunc": "vtrack.models.pyfunc",
}

COMMON_KEYS = (
    "flavor",
    "vtrack_model_format",
    "framework",
    "python_version",
    "created",
    "pip_requirements",
    "signature",
    "input_example",
    "metadata",
)


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` logged: where the model lives and how to load it back."""

    run_id: str
    artifact_path: str
    model_uri: str
    flavor: str
    signature: Signature | None
    #: MLflow 3's model id when the model was logged as a LoggedModel (``name=``), else None
    model_id: str | None = None
    #: the checkpoint step given to ``log_model(step=)``
    step: int | None = None
    #: the version ``log_model(registered_model_name=)`` registered, else None
    registered_model_version: int | None = None

    @property
    def artifact_uri(self) -> str:
        """``runs:/<run>/<artifact path>`` of the model folder."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


@dataclass(frozen=True)
class ModelMeta:
    """The parsed contents of a ``model.yaml``."""

    flavor: str
    format_version: int
    framework: str
    framework_version: str
    python_version: str
    created: str
    pip_requirements: tuple[str, ...]
    signature: Signature | None
    input_example: str | None
    metadata: Mapping[str, Any] | None
    #: The flavor's own keys (for example ``format`` and ``model_class`` for pytorch).
    flavor_fields: Mapping[str, Any] = field(default_factory=dict)


# --- reading ------------------------------------------------------------------------------


def read_model_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Read and check ``model.yaml`` in the folder ``path``.

    Raises ArtifactNotFoundError if the folder or its ``model.yaml`` is missing, and
    ArtifactError if the file is malformed or written in a newer format.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactNotFoundError(f"no model folder at {folder}", path=str(folder))
    yaml_path = folder / MODEL_YAML
    if not yaml_path.is_file():
        raise ArtifactNotFoundError(
            f"{folder} has no {MODEL_YAML}",
            hint="point at a folder written by save_model or log_model",
            path=str(folder),
        )
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArtifactError(f"cannot read {yaml_path}: {exc}", path=str(yaml_path)) from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{yaml_path} must hold a mapping", path=str(yaml_path))

    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"{yaml_path}: {what}", path=str(yaml_path))

    fmt = data.get("vtrack_model_format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise bad("vtrack_model_format must be a positive integer")
    if fmt > MODEL_FORMAT_VERSION:
        raise ArtifactError(
            f"{yaml_path} uses model format {fmt}; this vtrack reads up to {MODEL_FORMAT_VERSION}",
            hint="upgrade vtrack",
            path=str(yaml_path),
        )
    flavor = data.get("flavor")
    if not isinstance(flavor, str) or not flavor:
        raise bad("flavor must be a non-empty string")
    framework = data.get("framework")
    if not (
        isinstance(framework, dict)
        and isinstance(framework.get("name"), str)
        and isinstance(framework.get("version"), str)
    ):
        raise bad("framework must be a mapping with name and version strings")
    reqs = data.get("pip_requirements") or []
    if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
        raise bad("pip_requirements must be a list of strings")
    example = data.get("input_example")
    if example is not None:
        _check_file_name(example, "input_example", yaml_path)
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad("metadata must be a mapping")
    try:
        signature = coerce_signature(data.get("signature"))
    except ValidationError as exc:
        raise bad(str(exc)) from exc
    return ModelMeta(
        flavor=flavor,
        format_version=fmt,
        framework=framework["name"],
        framework_version=framework["version"],
        python_version=str(data.get("python_version", "")),
        created=str(data.get("created", "")),
        pip_requirements=tuple(reqs),
        signature=signature,
        input_example=example,
        metadata=metadata,
        flavor_fields={k: v for k, v in data.items() if k not in COMMON_KEYS},
    )


def _check_file_name(name: Any, key: str, yaml_path: Path) -> str:
    # model.yaml may come from someone else's run: never let it name a file outside the folder.
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
    ):
        raise ArtifactError(
            f"{yaml_path}: {key} must be a plain file name inside the model folder, got {name!r}",
            path=str(yaml_path),
        )
    return name


def expect_flavor(meta: ModelMeta, flavor: str, path: str | os.PathLike[str]) -> None:
    """Raise ArtifactError unless the folder at ``path`` holds a ``flavor`` model."""
    if meta.flavor != flavor:
        raise ArtifactError(
            f"{path} holds a {meta.flavor!r} model, not a {flavor!r} one",
            hint="use vtrack.models.load_model_from_dir to load any flavor",
            path=str(path),
        )


def model_file(meta: ModelMeta, path: str | os.PathLike[str], key: str = "model_file") -> Path:
    """Return the checked path of the file that ``model.yaml`` names under ``key``.

    Raises ArtifactError if the name is missing or not a plain file name, and
    ArtifactNotFoundError if the file is absent.
    """
    folder = Path(path)
    name = _check_file_name(meta.flavor_fields.get(key), key, folder / MODEL_YAML)
    file = folder / name
    if not file.is_file():
        raise ArtifactNotFoundError(f"model file {file} is missing", path=str(file))
    return file


def warn_on_version_mismatch(meta: ModelMeta, installed_version: str) -> None:
    """Warn (UserWarning) if the model was saved with another framework or Python version.

    Local version labels (``2.3.0+cpu`` vs ``2.3.0+cu121``) are ignored; Python is
    compared by major.minor.
    """
    if _public(meta.framework_version) != _public(installed_version):
        warnings.warn(
            f"this model was saved with {meta.framework} {meta.framework_version} but "
            f"{installed_version} is installed; loading may fail or behave differently",
            UserWarning,
            stacklevel=3,
        )
    saved_py = ".".join(meta.python_version.split(".")[:2])
    here_py = ".".join(platform.python_version().split(".")[:2])
    if saved_py and saved_py != here_py:
        warnings.warn(
            f"this model was saved with Python {meta.python_version} but this is Python "
            f"{platform.python_version()}; pickled models may not load",
            UserWarning,
            stacklevel=3,
        )


def _public(version: str) -> str:
    return version.split("+", 1)[0]


def flavor_module(flavor: str, path: str | os.PathLike[str] = "") -> Any:
    """Return the module implementing ``flavor``; raise ArtifactError if there is none."""
    name = FLAVORS.get(flavor)
    if name is None:
        raise ArtifactError(
            f"unknown model flavor {flavor!r}" + (f" in {path}" if path else ""),
            hint=f"this vtrack knows {', '.join(sorted(FLAVORS))}; a newer vtrack may know more",
            flavor=flavor,
        )
    return importlib.import_module(name)


def pinned_requirements(distributions: Iterable[str]) -> list[str]:
    """Return ``name==version`` for each installed distribution (local labels dropped).

    vtrack itself is pinned first when it is installed; missing distributions are skipped.
    """
    out = []
    for dist in ("vtrack", *distributions):
        try:
            out.append(f"{dist}=={_public(importlib.metadata.version(dist))}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def check_yaml_values(value: Any, what: str) -> None:
    """Raise ValidationError unless ``value`` can be written with YAML's safe dumper."""
    try:
        yaml.safe_dump(value)
    except yaml.YAMLError as exc:
        raise ValidationError(
            f"{what} must hold only YAML values (str, int, float, bool, None, lists, mappings)"
        ) from exc
