"""The pytorch flavor (vtrack.models.pytorch): state dicts and TorchScript archives."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import vtrack.models
from vtrack.errors import ArtifactError, MissingDependencyError, ValidationError
from vtrack.models import pytorch as vpt
from vtrack.models import read_model_meta
from vtrack.models.signature import TensorSpec

HERE = Path(__file__).resolve().parent

# torch 2.13 deprecates torch.jit (script, trace, save, load); the format still works.
jit_deprecation = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


@pytest.fixture
def nets(monkeypatch):
    """The importable module that defines the test networks."""
    monkeypatch.syspath_prepend(str(HERE))
    return importlib.import_module("torch_nets")


@pytest.fixture
def net(nets):
    torch.manual_seed(0)
    model = nets.TinyNet(n_in=4, n_hidden=6, n_out=3)
    model.train()
    model(torch.randn(32, 4))  # one training-mode pass so batch-norm statistics are not trivial
    return model


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(10, 4, generator=torch.Generator().manual_seed(1))


def _expected(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out


def _edit_yaml(folder: Path, **changes) -> None:
    path = folder / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_state_dict_model_is_rebuilt_from_its_class_and_kwargs(tmp_path, nets, x):
    torch.manual_seed(0)
    model = nets.TinyNet(n_in=4, n_hidden=5, n_out=2, p_drop=0.25)
    vpt.save_model(
        model, tmp_path / "m", model_kwargs={"n_in": 4, "n_hidden": 5, "n_out": 2, "p_drop": 0.25}
    )

    loaded = vpt.load_model_from_dir(tmp_path / "m")

    assert type(loaded) is nets.TinyNet and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), _expected(model, x))
    doc = yaml.safe_load((tmp_path / "m" / "model.yaml").read_text())
    assert doc["format"] == "state_dict"
    assert doc["model_class"] == "torch_nets:TinyNet"
    assert doc["model_kwargs"] == {"n_in": 4, "n_hidden": 5, "n_out": 2, "p_drop": 0.25}
    assert doc["model_file"] == "state_dict.pt"
    assert doc["framework"] == {"name": "torch", "version": torch.__version__}
    assert f"torch=={torch.__version__.split('+')[0]}" in doc["pip_requirements"]


def test_state_dict_signature_is_inferred_from_a_forward_pass(tmp_path, net, x):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6}, input_example=x[:3])

    meta = read_model_meta(tmp_path / "m")
    assert meta.signature.inputs == TensorSpec("float32", (-1, 4))
    assert meta.signature.outputs == TensorSpec("float32", (-1, 3))
    assert meta.input_example == "input_example.npy"
    np.testing.assert_array_equal(vtrack.models.load_input_example(tmp_path / "m"), x[:3].numpy())


def test_saving_leaves_the_models_mode_and_batch_norm_statistics_untouched(tmp_path, net, x):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6}, input_example=x)

    assert net.training
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_numpy_input_example_is_accepted(tmp_path, net, x):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6}, input_example=x.numpy())
    assert read_model_meta(tmp_path / "m").signature.outputs == TensorSpec("float32", (-1, 3))


@jit_deprecation
@pytest.mark.parametrize("method", ["script", "trace"])
def test_torchscript_model_loads_without_its_python_class(tmp_path, net, x, method):
    vpt.save_model(
        net, tmp_path / "m", format="torchscript", torchscript_method=method, input_example=x[:2]
    )

    loaded = vtrack.models.load_model_from_dir(tmp_path / "m")

    assert isinstance(loaded, torch.jit.ScriptModule) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), _expected(net, x))
    doc = yaml.safe_load((tmp_path / "m" / "model.yaml").read_text())
    assert doc["format"] == "torchscript" and doc["torchscript_method"] == method
    assert doc["model_file"] == "model.torchscript.pt"
    assert "model_class" not in doc
    assert net.training


@jit_deprecation
def test_already_scripted_module_is_saved_as_is(tmp_path, net, x):
    scripted = torch.jit.script(net)
    vpt.save_model(scripted, tmp_path / "m", format="torchscript")
    with torch.no_grad():
        assert torch.equal(vpt.load_model_from_dir(tmp_path / "m")(x), _expected(net, x))
    with pytest.raises(ValidationError, match="format='torchscript'"):
        vpt.save_model(scripted, tmp_path / "other", format="state_dict")


@jit_deprecation
def test_scripted_module_is_detected_and_saved_as_torchscript_without_a_flag(tmp_path, net, x):
    # MLflow scripts log a ScriptModule with no format argument; it used to be refused
    vpt.save_model(torch.jit.script(net), tmp_path / "m")
    assert read_model_meta(tmp_path / "m").flavor_fields["format"] == "torchscript"
    with torch.no_grad():
        assert torch.equal(vpt.load_model_from_dir(tmp_path / "m")(x), _expected(net, x))


def test_trace_without_example_is_refused(tmp_path, net):
    with pytest.raises(ValidationError, match="needs an input_example"):
        vpt.save_model(net, tmp_path / "m", format="torchscript", torchscript_method="trace")
    assert not (tmp_path / "m").exists()


def test_class_that_cannot_be_reimported_is_refused_and_nothing_is_written(tmp_path):
    class Local(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValidationError, match="cannot be imported"):
        vpt.save_model(Local(), tmp_path / "m", format="state_dict")
    assert list(tmp_path.iterdir()) == []


def test_class_that_cannot_be_reimported_is_pickled_by_value_by_default(tmp_path, x):
    class Local(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(scale))

        def forward(self, inp):
            return inp * self.scale

    vpt.save_model(Local(3.0), tmp_path / "m")
    assert read_model_meta(tmp_path / "m").flavor_fields["format"] == "pickle"
    with torch.no_grad():
        assert torch.equal(vpt.load_model_from_dir(tmp_path / "m")(x), x * 3.0)


def test_bad_arguments_raise_validation_error(tmp_path, net):
    with pytest.raises(ValidationError, match="torch.nn.Module"):
        vpt.save_model(object(), tmp_path / "m")
    with pytest.raises(ValidationError, match="format must be"):
        vpt.save_model(net, tmp_path / "m", format="onnx")
    with pytest.raises(ValidationError, match="model_kwargs"):
        vpt.save_model(net, tmp_path / "m", model_kwargs={"act": torch.nn.ReLU()})
    with pytest.raises(ValidationError, match="tensor or a numpy array"):
        vpt.save_model(net, tmp_path / "m", input_example=[[1.0, 2.0, 3.0, 4.0]])
    assert not (tmp_path / "m").exists()


def test_torch_version_mismatch_warns(tmp_path, net):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    _edit_yaml(tmp_path / "m", framework={"name": "torch", "version": "1.0.0"})

    with pytest.warns(UserWarning, match="torch 1.0.0"):
        vpt.load_model_from_dir(tmp_path / "m")


def test_local_version_label_difference_does_not_warn(tmp_path, net, recwarn):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    public = torch.__version__.split("+")[0]
    _edit_yaml(tmp_path / "m", framework={"name": "torch", "version": public + "+cu999"})

    vpt.load_model_from_dir(tmp_path / "m")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_model_class_that_is_not_a_module_is_never_called(tmp_path, net):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    _edit_yaml(tmp_path / "m", model_class="os:system", model_kwargs={"command": "echo pwned"})

    with pytest.raises(ArtifactError, match="refusing to call it"):
        vpt.load_model_from_dir(tmp_path / "m")


def test_unimportable_model_class_raises_with_hint(tmp_path, net):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    _edit_yaml(tmp_path / "m", model_class="no_such_module_xyz:Net")

    with pytest.raises(ArtifactError, match="sys.path"):
        vpt.load_model_from_dir(tmp_path / "m")


def test_weights_that_do_not_fit_the_class_raise_artifact_error(tmp_path, net):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    _edit_yaml(tmp_path / "m", model_kwargs={"n_hidden": 7})

    with pytest.raises(ArtifactError, match="cannot rebuild"):
        vpt.load_model_from_dir(tmp_path / "m")


def test_unknown_format_is_refused(tmp_path, net):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    _edit_yaml(tmp_path / "m", format="onnx")

    with pytest.raises(ArtifactError, match="unknown pytorch format"):
        vpt.load_model_from_dir(tmp_path / "m")


def test_missing_torch_raises_missing_dependency_with_install_hint(tmp_path, net, monkeypatch):
    vpt.save_model(net, tmp_path / "m", model_kwargs={"n_hidden": 6})
    monkeypatch.setitem(sys.modules, "torch", None)

    with pytest.raises(MissingDependencyError, match=r"vtrack\[torch\]"):
        vpt.load_model_from_dir(tmp_path / "m")
    with pytest.raises(MissingDependencyError, match=r"vtrack\[torch\]"):
        vpt.save_model(net, tmp_path / "other")
