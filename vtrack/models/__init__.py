"""Model folders: the ``model.yaml`` format, atomic saving, and loading by flavor.

The metadata (``model.yaml``, flavors, checks) lives in :mod:`vtrack.models.meta`; saving,
logging and loading in :mod:`vtrack.models.save`. Each flavor module
(:mod:`vtrack.models.sklearn`, :mod:`vtrack.models.pytorch`, :mod:`vtrack.models.pyfunc`)
writes and reads its own model file through them; :func:`load_model_from_dir` and
:func:`load_model` pick the flavor from ``model.yaml``. This package re-exports their
public names.

Frameworks are imported only inside the flavor functions that need them.
"""

from __future__ import annotations

from vtrack.models.meta import (
    FLAVORS,
    MODEL_FORMAT_VERSION,
    MODEL_YAML,
    REQUIREMENTS_TXT,
    ModelInfo,
    ModelMeta,
    check_yaml_values,
    expect_flavor,
    flavor_module,
    model_file,
    pinned_requirements,
    read_model_meta,
    warn_on_version_mismatch,
)
from vtrack.models.save import (
    load_input_example,
    load_model,
    load_model_from_dir,
    load_model_with,
    log_model_with,
    save_model_dir,
)
from vtrack.models.signature import Signature, infer_signature

#: MLflow's name for a model signature.
ModelSignature = Signature

__all__ = [
    "FLAVORS",
    "MODEL_FORMAT_VERSION",
    "MODEL_YAML",
    "REQUIREMENTS_TXT",
    "ModelInfo",
    "ModelMeta",
    "ModelSignature",
    "Signature",
    "check_yaml_values",
    "expect_flavor",
    "flavor_module",
    "infer_signature",
    "load_input_example",
    "load_model",
    "load_model_from_dir",
    "load_model_with",
    "log_model_with",
    "model_file",
    "pinned_requirements",
    "read_model_meta",
    "save_model_dir",
    "warn_on_version_mismatch",
]
