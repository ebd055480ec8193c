"""Signature inference and input-example storage (vtrack.models.signature)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vtrack.errors import ValidationError
from vtrack.models.signature import (
    EXAMPLE_JSON,
    EXAMPLE_NPY,
    ColumnSpec,
    Signature,
    TensorSpec,
    coerce_signature,
    infer_schema,
    infer_signature,
    read_input_example,
    write_input_example,
)

ROOT = Path(__file__).resolve().parents[2]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype="int32"),
            "income": [52.5, 0.1 + 0.2, float("nan")],
            "ratio": np.array([1 / 3, 2 / 3, 1e-30], dtype="float32"),
            "city": pd.Series(["Oslo", "Lima", "Pune"], dtype="string"),
            "member": [True, False, True],
            "tier": pd.Categorical(["a", "b", "a"]),
            "joined": pd.to_datetime(["2020-01-02", "2021-06-30", "2022-12-31"]),
        }
    )


def test_dataframe_schema_lists_column_names_and_dtypes_in_order():
    schema = infer_schema(_frame())
    assert schema == (
        ColumnSpec("age", "int32"),
        ColumnSpec("income", "float64"),
        ColumnSpec("ratio", "float32"),
        ColumnSpec("city", "string"),
        ColumnSpec("member", "bool"),
        ColumnSpec("tier", "category"),
        ColumnSpec("joined", str(_frame()["joined"].dtype)),
    )


def test_array_schema_has_dtype_and_shape_with_free_batch_dimension():
    assert infer_schema(np.zeros((5, 3, 2), dtype=np.float32)) == TensorSpec("float32", (-1, 3, 2))
    assert infer_schema(np.arange(7)) == TensorSpec("int64", (-1,))


def test_torch_tensor_schema_uses_dtype_name_without_torch_prefix():
    assert infer_schema(torch.zeros(2, 4)) == TensorSpec("float32", (-1, 4))


def test_series_schema_is_a_one_dimensional_tensor():
    assert infer_schema(pd.Series([1.0, 2.0])) == TensorSpec("float64", (-1,))


@pytest.mark.parametrize("value", [[1, 2, 3], {"a": 1}, "text", 3.0])
def test_unsupported_example_type_raises_validation_error(value):
    with pytest.raises(ValidationError, match="DataFrame"):
        infer_schema(value)


def test_infer_signature_covers_inputs_and_outputs():
    sig = infer_signature(_frame()[["age", "income"]], np.array([0, 1, 0]))
    assert sig.inputs == (ColumnSpec("age", "int32"), ColumnSpec("income", "float64"))
    assert sig.outputs == TensorSpec("int64", (-1,))


def test_signature_round_trips_through_its_yaml_mapping():
    sig = Signature(
        inputs=(ColumnSpec("a", "float64"), ColumnSpec("b", "str")),
        outputs=TensorSpec("float32", (-1, 3)),
    )
    data = sig.to_dict()
    assert data == {
        "inputs": [{"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "str"}],
        "outputs": {"dtype": "float32", "shape": [-1, 3]},
    }
    assert Signature.from_dict(data) == sig
    assert coerce_signature(data) == sig
    assert Signature.from_dict({"inputs": None, "outputs": None}) == Signature()


@pytest.mark.parametrize(
    "bad",
    [
        {"inputs": {"dtype": "float32"}},
        {"inputs": {"dtype": "float32", "shape": [-2]}},
        {"inputs": [{"name": "a"}]},
        {"inputs": "float32"},
        {"colour": "blue"},
        ["inputs"],
    ],
)
def test_malformed_signature_mapping_raises_validation_error(bad):
    with pytest.raises(ValidationError):
        coerce_signature(bad)


def test_dataframe_example_round_trips_through_json_with_dtypes(tmp_path):
    frame = _frame()
    name = write_input_example(frame, tmp_path)
    assert name == EXAMPLE_JSON
    back = read_input_example(tmp_path / name)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def test_array_example_round_trips_through_npy_exactly(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    name = write_input_example(arr, tmp_path)
    assert name == EXAMPLE_NPY
    back = read_input_example(tmp_path / name)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, arr)


def test_tensor_example_is_stored_as_numpy_array(tmp_path):
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    name = write_input_example(t, tmp_path)
    np.testing.assert_array_equal(read_input_example(tmp_path / name), t.numpy())


def test_object_array_example_is_refused_rather_than_pickled(tmp_path):
    with pytest.raises(ValidationError, match="without pickle"):
        write_input_example(np.array([{"a": 1}, None], dtype=object), tmp_path)
    assert not (tmp_path / EXAMPLE_NPY).exists()


def test_importing_the_model_modules_loads_no_framework():
    code = (
        "import sys\n"
        "import vtrack.models, vtrack.models.signature, vtrack.models.sklearn\n"
        "import vtrack.models.pytorch, vtrack.models.pyfunc\n"
        "heavy = [m for m in ('numpy', 'pandas', 'torch', 'sklearn', 'joblib', 'cloudpickle')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
