"""Model signatures and input examples: what a model takes and what it returns.

A :class:`Signature` has ``inputs`` and ``outputs``; each is a *schema* or ``None``:

* a **column schema** (a pandas DataFrame) is a tuple of :class:`ColumnSpec`, written to
  ``model.yaml`` as a list of ``{name, dtype}`` mappings;
* a **tensor schema** (a numpy array, a torch tensor or a pandas Series) is a
  :class:`TensorSpec`, written as a ``{dtype, shape}`` mapping whose first dimension is
  ``-1``: the batch size is free.

The input example itself is stored beside ``model.yaml``: a DataFrame as
``input_example.json`` (readable and diffable in git), an array or tensor as
``input_example.npy`` (exact dtype and shape, written and read without pickle).

numpy, pandas and torch are never imported here unless the value at hand already
belongs to them or a stored example needs them to be read back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from vtrack.errors import ArtifactError, MissingDependencyError, ValidationError

#: File name of an input example stored as JSON (DataFrames).
EXAMPLE_JSON = "input_example.json"
#: File name of an input example stored in numpy's ``.npy`` format (arrays, tensors).
EXAMPLE_NPY = "input_example.npy"
#: The batch dimension in a tensor shape.
BATCH_DIM = -1


@dataclass(frozen=True)
class ColumnSpec:
    """One named column of tabular input or output, with its pandas dtype name."""

    name: str
    dtype: str


@dataclass(frozen=True)
class TensorSpec:
    """An array or tensor: its dtype name and shape, ``-1`` marking the batch dimension."""

    dtype: str
    shape: tuple[int, ...]


#: A column schema (tabular data) or a tensor schema.
Schema: TypeAlias = tuple[ColumnSpec, ...] | TensorSpec


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and returns (``outputs``); either may be unknown."""

    inputs: Schema | None = None
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the plain ``{inputs, outputs}`` mapping written to ``model.yaml``."""
        return {"inputs": _schema_to_obj(self.inputs), "outputs": _schema_to_obj(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Parse the mapping written by :meth:`to_dict`; raise ValidationError if malformed."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"a signature must be a mapping, got {type(data).__name__}")
        unknown = set(data) - {"inputs", "outputs"}
        if unknown:
            raise ValidationError(
                f"unknown signature keys {sorted(unknown)}; expected inputs, outputs"
            )
        return cls(
            inputs=_schema_from_obj(data.get("inputs"), "inputs"),
            outputs=_schema_from_obj(data.get("outputs"), "outputs"),
        )


def _module_type(value: Any, module: str, name: str) -> bool:
    # A value can only be a pandas/numpy/torch object if that package is already loaded,
    # so looking in sys.modules tells the type without importing anything.
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return isinstance(cls, type) and isinstance(value, cls)


def _batch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (BATCH_DIM, *(int(d) for d in shape[1:])) if shape else ()


def infer_schema(value: Any) -> Schema:
    """Return the schema of a DataFrame, Series, numpy array or torch tensor.

    Raises ValidationError for any other type.
    """
    if _module_type(value, "pandas", "DataFrame"):
        return tuple(ColumnSpec(str(name), str(dtype)) for name, dtype in value.dtypes.items())
    if _module_type(value, "pandas", "Series"):
        return TensorSpec(str(value.dtype), (BATCH_DIM,))
    if _module_type(value, "numpy", "ndarray"):
        return TensorSpec(str(value.dtype), _batch_shape(value.shape))
    if _module_type(value, "torch", "Tensor"):
        return TensorSpec(str(value.dtype).removeprefix("torch."), _batch_shape(tuple(value.shape)))
    raise ValidationError(
        f"cannot infer a schema from a {type(value).__module__}.{type(value).__qualname__}",
        hint="use a pandas DataFrame, a numpy array or a torch tensor",
    )


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """Return the signature of an input example and, if given, the model's output on it.

    Raises ValidationError if either value is of a type :func:`infer_schema` rejects.
    """
    return Signature(
        inputs=infer_schema(model_input),
        outputs=None if model_output is None else infer_schema(model_output),
    )


def coerce_signature(value: Signature | Mapping[str, Any] | None) -> Signature | None:
    """Accept a Signature, its ``to_dict`` mapping or None; raise ValidationError otherwise."""
    if value is None or isinstance(value, Signature):
        return value
    if isinstance(value, Mapping):
        return Signature.from_dict(value)
    raise ValidationError(
        f"signature must be a vtrack Signature or a mapping, got {type(value).__name__}"
    )


def _schema_to_obj(schema: Schema | None) -> Any:
    if schema is None:
        return None
    if isinstance(schema, TensorSpec):
        return {"dtype": schema.dtype, "shape": list(schema.shape)}
    return [{"name": c.name, "dtype": c.dtype} for c in schema]


def _schema_from_obj(obj: Any, where: str) -> Schema | None:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        dtype, shape = obj.get("dtype"), obj.get("shape")
        if not isinstance(dtype, str) or not isinstance(shape, (list, tuple)):
            raise ValidationError(
                f"signature {where}: a tensor needs a dtype string and a shape list"
            )
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape):
            raise ValidationError(f"signature {where}: shape {shape!r} must hold integers >= -1")
        return TensorSpec(dtype, tuple(shape))
    if isinstance(obj, (list, tuple)):
        cols = []
        for col in obj:
            if not (
                isinstance(col, Mapping)
                and isinstance(col.get("name"), str)
                and isinstance(col.get("dtype"), str)
            ):
                raise ValidationError(
                    f"signature {where}: each column needs a name and a dtype string"
                )
            cols.append(ColumnSpec(col["name"], col["dtype"]))
        return tuple(cols)
    raise ValidationError(
        f"signature {where} must be a list of columns or a tensor mapping, got {type(obj).__name__}"
    )


# --- input examples ---------------------------------------------------------------------


def write_input_example(value: Any, folder: Path) -> str:
    """Write ``value`` into ``folder``; return the file name used.

    DataFrames go to :data:`EXAMPLE_JSON`, numpy arrays and torch tensors to
    :data:`EXAMPLE_NPY`. Raises ValidationError for other types and for arrays that
    cannot be stored without pickle (object dtype).
    """
    if _module_type(value, "pandas", "DataFrame"):
        payload = json.loads(
            value.to_json(orient="split", index=False, date_format="iso", date_unit="ns")
        )
        for j, dtype in enumerate(value.dtypes):
            if getattr(dtype, "kind", "") == "f":
                # to_json rounds floats to 10 digits; Python's float repr round-trips exactly
                for row, v in zip(payload["data"], value.iloc[:, j].to_numpy(), strict=True):
                    row[j] = None if v != v else float(v)
        doc = {
            "type": "dataframe",
            "columns": payload["columns"],
            "dtypes": [str(d) for d in value.dtypes],
            "data": payload["data"],
        }
        (folder / EXAMPLE_JSON).write_text(json.dumps(doc) + "\n", encoding="utf-8")
        return EXAMPLE_JSON
    if _module_type(value, "torch", "Tensor"):
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:
            raise ValidationError(
                f"input_example tensor of dtype {value.dtype} has no numpy equivalent",
                hint="pass a float32/float64/integer tensor",
            ) from exc
    if _module_type(value, "numpy", "ndarray"):
        import numpy as np

        try:
            np.save(folder / EXAMPLE_NPY, value, allow_pickle=False)
        except ValueError as exc:
            (folder / EXAMPLE_NPY).unlink(missing_ok=True)
            raise ValidationError(
                f"input_example array of dtype {value.dtype} cannot be stored without pickle",
                hint="convert it to a numeric array or a pandas DataFrame",
            ) from exc
        return EXAMPLE_NPY
    raise ValidationError(
        f"input_example must be a pandas DataFrame, a numpy array or a torch tensor, "
        f"got {type(value).__module__}.{type(value).__qualname__}"
    )


def read_input_example(path: Path) -> Any:
    """Read an example written by :func:`write_input_example`.

    Returns a DataFrame (dtypes restored where pandas can) or a numpy array. Raises
    ArtifactError if the file is unreadable and MissingDependencyError if pandas or
    numpy is needed and missing.
    """
    if path.suffix == ".npy":
        np = _require("numpy", "pip install numpy")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read input example {path}: {exc}") from exc
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read input example {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("type") != "dataframe":
            raise ArtifactError(f"input example {path} is not a stored DataFrame")
        pd = _require("pandas", "pip install 'vtrack[pandas]'")
        frame = pd.DataFrame(doc.get("data", []), columns=doc.get("columns", []))
        for col, dtype in zip(frame.columns, doc.get("dtypes", []), strict=False):
            try:
                frame[col] = frame[col].astype(dtype)
            except (TypeError, ValueError):
                pass  # JSON lost the type (e.g. an exotic extension dtype); keep pandas' guess
        return frame
    raise ArtifactError(f"input example {path} has an unknown format (expected .json or .npy)")


def _require(module: str, hint: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading this input example needs {module}", hint=hint
        ) from exc
