"""The generic python-function flavor: any object with a ``predict`` method, pickled.

The object is written with cloudpickle when it is installed (it can carry functions and
classes defined in ``__main__`` or a notebook by value) and with the standard pickle
otherwise (classes are then stored by reference and must be importable at load time).

Trust model: unpickling runs code chosen by whoever wrote the file. Loading a pyfunc
model from a run is as safe as running a script from that run's author: load only
models from stores and remotes you trust.
"""

from __future__ import annotations

import os
import pickle
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtrack.errors import ArtifactError, MissingDependencyError, ValidationError
from vtrack.models import (
    ModelInfo,
    expect_flavor,
    load_model_with,
    log_model_with,
    model_file,
    pinned_requirements,
    read_model_meta,
    save_model_dir,
    warn_on_version_mismatch,
)
from vtrack.models.signature import Signature

FLAVOR = "pyfunc"
#: Name of the pickled object inside the model folder.
MODEL_FILE = "model.pkl"
SERIALIZERS = ("cloudpickle", "pickle")


def _python_minor() -> str:
    # The stdlib pickle's "version" is the Python it ships with; patch releases don't matter.
    return ".".join(platform.python_version_tuple()[:2])


def _serializer() -> tuple[str, str, Any]:
    """Return (name, version, module) of the serializer to write with."""
    try:
        import cloudpickle
    except ImportError:
        return "pickle", _python_minor(), pickle
    return "cloudpickle", cloudpickle.__version__, cloudpickle


def save_model(
    python_model: Any,
    path: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Pickle ``python_model`` (any object with a callable ``predict``) into a folder at ``path``.

    ``path`` must not exist or be an empty folder; on failure nothing is left behind.
    The signature is inferred from ``input_example`` (outputs from ``predict``) unless
    given. Raises ValidationError for an object without ``predict`` and ArtifactError
    if it cannot be pickled.
    """
    if not callable(getattr(python_model, "predict", None)):
        raise ValidationError(
            f"the pyfunc flavor saves objects with a predict method, got {type(python_model).__name__}"
        )
    name, version, module = _serializer()

    def write(folder: Path) -> dict[str, Any]:
        with open(folder / MODEL_FILE, "wb") as f:
            module.dump(python_model, f, protocol=pickle.DEFAULT_PROTOCOL)
        return {"model_file": MODEL_FILE, "serializer": name}

    save_model_dir(
        path,
        flavor=FLAVOR,
        framework=(name, version),
        write_model=write,
        predict=python_model.predict,
        default_requirements=pinned_requirements(["cloudpickle"] if name == "cloudpickle" else []),
        input_example=input_example,
        signature=signature,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def load_model_from_dir(path: str | os.PathLike[str]) -> Any:
    """Unpickle the object saved in the local folder ``path``; it has a ``predict`` method.

    This runs code from the model file (see the module's trust model). Warns
    (UserWarning) if saved with another serializer or Python version. Raises
    ArtifactNotFoundError for a missing folder or file, ArtifactError if the folder holds
    another flavor or the object cannot be rebuilt, MissingDependencyError if it was
    written with cloudpickle and cloudpickle is missing.
    """
    meta = read_model_meta(path)
    expect_flavor(meta, FLAVOR, path)
    serializer = meta.flavor_fields.get("serializer")
    if serializer not in SERIALIZERS:
        raise ArtifactError(
            f"{path}: unknown pyfunc serializer {serializer!r}", hint="upgrade vtrack"
        )
    file = model_file(meta, path)
    if serializer == "cloudpickle":
        try:
            import cloudpickle
        except ImportError as exc:
            raise MissingDependencyError(
                f"the model in {path} was written with cloudpickle", hint="pip install cloudpickle"
            ) from exc
        installed = cloudpickle.__version__
    else:
        installed = _python_minor()
    warn_on_version_mismatch(meta, installed)
    try:
        with open(file, "rb") as f:
            obj = pickle.load(f)  # cloudpickle output is read by the standard unpickler
    except Exception as exc:
        raise ArtifactError(
            f"cannot unpickle the pyfunc model {file}: {exc}", path=str(file)
        ) from exc
    if not callable(getattr(obj, "predict", None)):
        raise ArtifactError(f"the object in {file} has no predict method", path=str(file))
    return obj


def log_model(
    python_model: Any, artifact_path: str | None = None, *, input_example: Any = None, **kw: Any
) -> ModelInfo:
    """Save ``python_model`` (see :func:`save_model` for ``kw``) and log it to the active run."""
    return log_model_with(
        save_model, python_model, artifact_path, input_example=input_example, **kw
    )


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load a pyfunc model from ``runs:/<run>/<path>`` or a local folder."""
    return load_model_with(load_model_from_dir, model_uri)
