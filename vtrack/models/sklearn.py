"""The scikit-learn flavor: estimators and pipelines serialized with joblib.

joblib (a pickle) runs code from the file when it loads: load only models from runs you
trust. ``docs/models.md`` explains why joblib and not skops.
"""

from __future__ import annotations

import os
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

FLAVOR = "sklearn"
#: Name of the serialized estimator inside the model folder.
MODEL_FILE = "model.joblib"
_INSTALL_HINT = "pip install 'vtrack[sklearn]'"


def _import_sklearn() -> tuple[Any, Any]:
    try:
        import joblib
        import sklearn
    except ImportError as exc:
        raise MissingDependencyError(
            "the sklearn model flavor needs scikit-learn and joblib", hint=_INSTALL_HINT
        ) from exc
    return sklearn, joblib


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``sk_model`` (anything with a ``fit`` method) as a model folder at ``path``.

    ``path`` must not exist or be an empty folder; on failure nothing is left behind.
    The signature is inferred from ``input_example`` (outputs from ``predict``) unless
    given. Raises ValidationError for bad arguments, ArtifactError if the model cannot
    be serialized, MissingDependencyError without scikit-learn.
    """
    sklearn, joblib = _import_sklearn()
    if not callable(getattr(sk_model, "fit", None)):
        raise ValidationError(
            f"the sklearn flavor saves estimators (objects with fit), got {type(sk_model).__name__}",
            hint="use vtrack.models.pyfunc for other objects with a predict method",
        )

    def write(folder: Path) -> dict[str, Any]:
        joblib.dump(sk_model, folder / MODEL_FILE)
        return {"model_file": MODEL_FILE, "serialization": "joblib"}

    save_model_dir(
        path,
        flavor=FLAVOR,
        framework=("scikit-learn", sklearn.__version__),
        write_model=write,
        predict=getattr(sk_model, "predict", None),
        default_requirements=pinned_requirements(["scikit-learn", "joblib", "numpy"]),
        input_example=input_example,
        signature=signature,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def load_model_from_dir(path: str | os.PathLike[str]) -> Any:
    """Load the estimator saved in the local folder ``path``.

    Warns (UserWarning) if it was saved with another scikit-learn version. Raises
    ArtifactNotFoundError for a missing folder or file, ArtifactError if the folder
    holds another flavor or cannot be read, MissingDependencyError without scikit-learn.
    """
    meta = read_model_meta(path)
    expect_flavor(meta, FLAVOR, path)
    sklearn, joblib = _import_sklearn()
    serialization = meta.flavor_fields.get("serialization", "joblib")
    if serialization != "joblib":
        raise ArtifactError(
            f"{path}: unknown sklearn serialization {serialization!r}", hint="upgrade vtrack"
        )
    file = model_file(meta, path)
    warn_on_version_mismatch(meta, sklearn.__version__)
    try:
        return joblib.load(file)
    except Exception as exc:
        raise ArtifactError(f"cannot load the sklearn model {file}: {exc}", path=str(file)) from exc


def log_model(
    sk_model: Any, artifact_path: str | None = None, *, input_example: Any = None, **kw: Any
) -> ModelInfo:
    """Save ``sk_model`` (see :func:`save_model` for ``kw``) and log it to the active run."""
    return log_model_with(save_model, sk_model, artifact_path, input_example=input_example, **kw)


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load an sklearn model from ``runs:/<run>/<path>`` or a local folder."""
    return load_model_with(load_model_from_dir, model_uri)
