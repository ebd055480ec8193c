"""The generic python-function flavor (vtrack.models.pyfunc)."""

from __future__ import annotations

import pickle
import platform
import sys
import threading
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import yaml

import vtrack.models
from vtrack.errors import ArtifactError, MissingDependencyError, ValidationError
from vtrack.models import pyfunc as vpf
from vtrack.models import read_model_meta
from vtrack.models.signature import ColumnSpec, TensorSpec


class Doubler:
    """A model defined in an importable module: pickled by reference."""

    def __init__(self, factor: float = 2.0):
        self.factor = factor

    def predict(self, X):
        return np.asarray(X, dtype=float).sum(axis=1) * self.factor


def _edit_yaml(folder: Path, **changes) -> None:
    path = folder / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_object_with_predict_round_trips_with_identical_predictions(tmp_path):
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.25, 0.0]})
    model = Doubler(3.0)
    vpf.save_model(model, tmp_path / "m", input_example=X)

    loaded = vpf.load_model_from_dir(tmp_path / "m")

    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    doc = yaml.safe_load((tmp_path / "m" / "model.yaml").read_text())
    assert doc["flavor"] == "pyfunc"
    assert doc["serializer"] == "cloudpickle" and doc["model_file"] == "model.pkl"
    assert doc["framework"] == {"name": "cloudpickle", "version": cloudpickle.__version__}
    assert f"cloudpickle=={cloudpickle.__version__}" in doc["pip_requirements"]
    meta = read_model_meta(tmp_path / "m")
    assert meta.signature.inputs == (ColumnSpec("a", "float64"), ColumnSpec("b", "float64"))
    assert meta.signature.outputs == TensorSpec("float64", (-1,))


def test_class_defined_inside_a_function_is_stored_by_value(tmp_path):
    offset = 10

    class Shift:
        def predict(self, X):
            return np.asarray(X) + offset

    vpf.save_model(Shift(), tmp_path / "m")
    loaded = vtrack.models.load_model_from_dir(tmp_path / "m")

    np.testing.assert_array_equal(loaded.predict(np.arange(3)), np.arange(3) + 10)


def test_without_cloudpickle_the_standard_pickle_is_used(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    vpf.save_model(Doubler(), tmp_path / "m")

    meta = read_model_meta(tmp_path / "m")
    assert meta.flavor_fields["serializer"] == "pickle"
    assert meta.framework == "pickle"
    assert meta.framework_version == ".".join(platform.python_version_tuple()[:2])
    assert not any(r.startswith("cloudpickle") for r in meta.pip_requirements)
    np.testing.assert_array_equal(
        vpf.load_model_from_dir(tmp_path / "m").predict([[1, 2]]), np.array([6.0])
    )


def test_cloudpickled_model_without_cloudpickle_raises_missing_dependency(tmp_path, monkeypatch):
    vpf.save_model(Doubler(), tmp_path / "m")
    monkeypatch.setitem(sys.modules, "cloudpickle", None)

    with pytest.raises(MissingDependencyError, match="pip install cloudpickle"):
        vpf.load_model_from_dir(tmp_path / "m")


def test_object_without_predict_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="predict"):
        vpf.save_model(object(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_unpicklable_object_raises_artifact_error_and_leaves_nothing(tmp_path):
    model = Doubler()
    model.lock = threading.Lock()

    with pytest.raises(ArtifactError, match="could not serialize the pyfunc model"):
        vpf.save_model(model, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_failing_predict_on_the_example_warns_and_keeps_the_input_signature(tmp_path):
    class Broken:
        def predict(self, X):
            raise RuntimeError("boom")

    with pytest.warns(UserWarning, match="boom"):
        vpf.save_model(Broken(), tmp_path / "m", input_example=np.zeros((2, 3)))
    sig = read_model_meta(tmp_path / "m").signature
    assert sig.inputs == TensorSpec("float64", (-1, 3)) and sig.outputs is None


def test_stored_object_without_predict_is_refused_at_load(tmp_path):
    vpf.save_model(Doubler(), tmp_path / "m")
    (tmp_path / "m" / "model.pkl").write_bytes(pickle.dumps({"not": "a model"}))

    with pytest.raises(ArtifactError, match="no predict method"):
        vpf.load_model_from_dir(tmp_path / "m")


def test_serializer_version_mismatch_warns(tmp_path):
    vpf.save_model(Doubler(), tmp_path / "m")
    _edit_yaml(tmp_path / "m", framework={"name": "cloudpickle", "version": "0.1.0"})

    with pytest.warns(UserWarning, match="cloudpickle 0.1.0"):
        vpf.load_model_from_dir(tmp_path / "m")


def test_unknown_serializer_is_refused(tmp_path):
    vpf.save_model(Doubler(), tmp_path / "m")
    _edit_yaml(tmp_path / "m", serializer="dill")

    with pytest.raises(ArtifactError, match="unknown pyfunc serializer"):
        vpf.load_model_from_dir(tmp_path / "m")
