"""The sklearn flavor and the shared model-folder rules (vtrack.models, vtrack.models.sklearn)."""

from __future__ import annotations

import platform
import sys
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import vtrack.models
from vtrack.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    MissingDependencyError,
    ValidationError,
)
from vtrack.models import load_input_example, read_model_meta
from vtrack.models import sklearn as vsk
from vtrack.models.signature import ColumnSpec, TensorSpec


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(
        n_samples=80, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    return pd.DataFrame(X, columns=["f0", "f1", "f2", "f3"]), y


def _fit(kind: str, data):
    X, y = data
    model = (
        LogisticRegression(max_iter=500)
        if kind == "logreg"
        else RandomForestClassifier(n_estimators=15, random_state=0)
    )
    return model.fit(X, y)


def _edit_yaml(folder: Path, **changes) -> None:
    path = folder / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if name in p.name)


@pytest.mark.parametrize("kind", ["logreg", "forest"])
def test_saved_estimator_loads_back_with_identical_predictions(tmp_path, data, kind):
    X, _ = data
    model = _fit(kind, data)
    vsk.save_model(model, tmp_path / "m", input_example=X.head(5))

    loaded = vsk.load_model_from_dir(tmp_path / "m")

    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_model_yaml_records_flavor_versions_requirements_and_signature(tmp_path, data):
    X, _ = data
    vsk.save_model(_fit("logreg", data), tmp_path / "m", input_example=X.head(3))

    doc = yaml.safe_load((tmp_path / "m" / "model.yaml").read_text())
    assert doc["flavor"] == "sklearn"
    assert doc["vtrack_model_format"] == 1
    assert doc["framework"] == {"name": "scikit-learn", "version": sklearn.__version__}
    assert doc["python_version"] == platform.python_version()
    assert f"scikit-learn=={sklearn.__version__}" in doc["pip_requirements"]
    assert any(r.startswith("joblib==") for r in doc["pip_requirements"])
    assert doc["signature"] == {
        "inputs": [{"name": f"f{i}", "dtype": "float64"} for i in range(4)],
        "outputs": {"dtype": "int64", "shape": [-1]},
    }
    assert doc["input_example"] == "input_example.json"
    assert doc["model_file"] == "model.joblib" and doc["serialization"] == "joblib"
    created = datetime.fromisoformat(doc["created"].replace("Z", "+00:00"))
    assert created.utcoffset().total_seconds() == 0
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["input_example.json", "model.joblib", "model.yaml", "requirements.txt"]
    assert (tmp_path / "m" / "requirements.txt").read_text().splitlines() == doc["pip_requirements"]


def test_read_model_meta_and_input_example_match_what_was_saved(tmp_path, data):
    X, _ = data
    vsk.save_model(
        _fit("logreg", data), tmp_path / "m", input_example=X.head(4), metadata={"team": "risk"}
    )

    meta = read_model_meta(tmp_path / "m")
    assert meta.flavor == "sklearn" and meta.framework == "scikit-learn"
    assert meta.signature.inputs[0] == ColumnSpec("f0", "float64")
    assert meta.signature.outputs == TensorSpec("int64", (-1,))
    assert meta.metadata == {"team": "risk"}
    pd.testing.assert_frame_equal(load_input_example(tmp_path / "m"), X.head(4))


def test_numpy_example_gives_tensor_signature_and_npy_file(tmp_path, data):
    X, y = data
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
    vsk.save_model(model, tmp_path / "m", input_example=X.to_numpy()[:2])

    meta = read_model_meta(tmp_path / "m")
    assert meta.input_example == "input_example.npy"
    assert meta.signature.inputs == TensorSpec("float64", (-1, 4))
    np.testing.assert_array_equal(load_input_example(tmp_path / "m"), X.to_numpy()[:2])


def test_without_example_there_is_no_signature_unless_given(tmp_path, data):
    model = _fit("logreg", data)
    vsk.save_model(model, tmp_path / "a")
    assert read_model_meta(tmp_path / "a").signature is None
    assert load_input_example(tmp_path / "a") is None

    given = {"inputs": {"dtype": "float64", "shape": [-1, 4]}, "outputs": None}
    vsk.save_model(model, tmp_path / "b", signature=given)
    assert read_model_meta(tmp_path / "b").signature.inputs == TensorSpec("float64", (-1, 4))


def test_generic_loader_dispatches_on_the_flavor_in_model_yaml(tmp_path, data):
    X, _ = data
    model = _fit("forest", data)
    vsk.save_model(model, tmp_path / "m")

    for loaded in (
        vtrack.models.load_model_from_dir(tmp_path / "m"),
        vtrack.models.load_model(str(tmp_path / "m")),
        vsk.load_model(f"file://{tmp_path / 'm'}"),
    ):
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_framework_version_mismatch_warns_and_still_loads(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    _edit_yaml(tmp_path / "m", framework={"name": "scikit-learn", "version": "0.0.1"})

    with pytest.warns(UserWarning, match="0.0.1"):
        loaded = vsk.load_model_from_dir(tmp_path / "m")
    assert isinstance(loaded, LogisticRegression)


def test_python_minor_version_mismatch_warns(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    _edit_yaml(tmp_path / "m", python_version="2.7.18")

    with pytest.warns(UserWarning, match="Python 2.7.18"):
        vsk.load_model_from_dir(tmp_path / "m")


def test_missing_folder_or_model_yaml_raises_not_found(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="no model folder"):
        vsk.load_model_from_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactNotFoundError, match="model.yaml"):
        vtrack.models.load_model_from_dir(tmp_path / "empty")


def test_unknown_flavor_raises_artifact_error_naming_it(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    _edit_yaml(tmp_path / "m", flavor="tensorflow")

    with pytest.raises(ArtifactError, match="unknown model flavor 'tensorflow'"):
        vtrack.models.load_model_from_dir(tmp_path / "m")
    with pytest.raises(ArtifactError, match="'tensorflow' model, not a 'sklearn'"):
        vsk.load_model_from_dir(tmp_path / "m")


def test_newer_model_format_is_refused_with_upgrade_hint(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    _edit_yaml(tmp_path / "m", vtrack_model_format=2)

    with pytest.raises(ArtifactError, match="upgrade vtrack"):
        vsk.load_model_from_dir(tmp_path / "m")


def test_model_file_outside_the_folder_is_refused(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    _edit_yaml(tmp_path / "m", model_file="../elsewhere.joblib")

    with pytest.raises(ArtifactError, match="plain file name"):
        vsk.load_model_from_dir(tmp_path / "m")


def test_saving_over_a_non_empty_folder_raises_and_keeps_its_contents(tmp_path, data):
    target = tmp_path / "m"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")

    with pytest.raises(ValidationError, match="not empty"):
        vsk.save_model(_fit("logreg", data), target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_model_folder_gets_the_same_permissions_as_a_plain_new_folder(tmp_path, data):
    vsk.save_model(_fit("logreg", data), tmp_path / "m")
    (tmp_path / "plain").mkdir()
    assert (tmp_path / "m").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_saving_onto_a_file_or_under_a_file_raises(tmp_path, data):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValidationError, match="not a folder"):
        vsk.save_model(_fit("logreg", data), tmp_path / "f")
    with pytest.raises(ArtifactError, match="cannot create"):
        vsk.save_model(_fit("logreg", data), tmp_path / "f" / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_unsupported_input_example_is_refused_before_anything_is_written(tmp_path, data):
    with pytest.raises(ValidationError, match="input_example|DataFrame"):
        vsk.save_model(_fit("logreg", data), tmp_path / "m", input_example=[[1, 2, 3, 4]])
    assert list(tmp_path.iterdir()) == []


def test_saving_into_an_empty_folder_or_new_nested_path_works(tmp_path, data):
    (tmp_path / "empty").mkdir()
    vsk.save_model(_fit("logreg", data), tmp_path / "empty")
    vsk.save_model(_fit("logreg", data), tmp_path / "a" / "b" / "m")
    assert (tmp_path / "empty" / "model.yaml").is_file()
    assert (tmp_path / "a" / "b" / "m" / "model.yaml").is_file()


def test_failed_save_leaves_no_folder_behind(tmp_path, data):
    model = _fit("logreg", data)
    model.lock_ = threading.Lock()  # cannot be pickled

    with pytest.raises(ArtifactError, match="could not serialize"):
        vsk.save_model(model, tmp_path / "new" / "deeper" / "m")
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError):
        vsk.save_model(model, tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
    assert _leftovers(tmp_path, "empty") == ["empty"]


def test_requirements_can_be_replaced_or_extended_but_not_both(tmp_path, data):
    model = _fit("logreg", data)
    vsk.save_model(model, tmp_path / "a", pip_requirements=["scikit-learn>=1.3"])
    assert read_model_meta(tmp_path / "a").pip_requirements == ("scikit-learn>=1.3",)

    vsk.save_model(model, tmp_path / "b", extra_pip_requirements=["lightgbm==4.0"])
    reqs = read_model_meta(tmp_path / "b").pip_requirements
    assert reqs[-1] == "lightgbm==4.0" and f"scikit-learn=={sklearn.__version__}" in reqs

    with pytest.raises(ValidationError, match="not both"):
        vsk.save_model(model, tmp_path / "c", pip_requirements=["x"], extra_pip_requirements=["y"])
    with pytest.raises(ValidationError, match="list of non-empty"):
        vsk.save_model(model, tmp_path / "c", pip_requirements="scikit-learn")
    assert not (tmp_path / "c").exists()


def test_metadata_must_be_plain_yaml_values(tmp_path, data):
    with pytest.raises(ValidationError, match="metadata"):
        vsk.save_model(_fit("logreg", data), tmp_path / "m", metadata={"when": object()})
    assert not (tmp_path / "m").exists()


def test_non_estimator_is_refused_with_pyfunc_hint(tmp_path):
    with pytest.raises(ValidationError, match="pyfunc"):
        vsk.save_model(object(), tmp_path / "m")


def test_unsupported_uri_scheme_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="unsupported model URI"):
        vsk.load_model("s3://bucket/model")


def test_missing_scikit_learn_raises_missing_dependency_with_install_hint(
    tmp_path, data, monkeypatch
):
    model = _fit("logreg", data)
    vsk.save_model(model, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "sklearn", None)

    with pytest.raises(MissingDependencyError, match=r"vtrack\[sklearn\]"):
        vsk.save_model(model, tmp_path / "other")
    with pytest.raises(MissingDependencyError, match=r"vtrack\[sklearn\]"):
        vsk.load_model_from_dir(tmp_path / "m")
