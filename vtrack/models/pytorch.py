"""The PyTorch flavor: ``torch.nn.Module`` models as a state dict or a TorchScript archive.

``format="state_dict"`` stores the weights (read back with ``weights_only=True``, which
runs no pickled code) plus the model's class as ``module:QualName`` and the keyword
arguments to build it; loading imports that class, which must be importable where the
model is loaded. ``format="torchscript"`` stores a self-contained ``torch.jit`` archive
that needs no Python class (torch 2.13 marks ``torch.jit`` as deprecated and warns so).
Models always load on the CPU and in eval mode.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from vtrack.errors import (
    ArtifactError,
    MissingDependencyError,
    NotSupportedError,
    ValidationError,
)
from vtrack.models import (
    ModelInfo,
    check_yaml_values,
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

FLAVOR = "pytorch"
#: Model file for ``format="state_dict"``.
STATE_DICT_FILE = "state_dict.pt"
#: Model file for ``format="torchscript"``.
TORCHSCRIPT_FILE = "model.torchscript.pt"
#: Whole pickled module (format ``pickle``): classes from ``__main__`` are pickled by value.
PICKLE_FILE = "model.pth"
FORMATS = ("state_dict", "torchscript", "pickle")
_INSTALL_HINT = "pip install 'vtrack[torch]'"


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "the pytorch model flavor needs torch", hint=_INSTALL_HINT
        ) from exc
    return torch


def _as_tensor(torch: Any, example: Any) -> Any:
    return example if isinstance(example, torch.Tensor) else torch.as_tensor(example)


def _forward(torch: Any, model: Any, example: Any) -> Any:
    # Eval mode and no_grad, so that predicting on the example neither updates batch-norm
    # statistics nor applies dropout; the caller's training flag is put back afterwards.
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(_as_tensor(torch, example))
    finally:
        model.train(was_training)


def class_reference(cls: type) -> str:
    """Return ``module:QualName`` for ``cls``; raise ValidationError if it cannot be re-imported."""
    ref = f"{cls.__module__}:{cls.__qualname__}"
    hint = "define the class at the top level of an importable module, or use format='torchscript'"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ValidationError(f"model class {ref} cannot be imported when loading", hint=hint)
    try:
        found = _resolve(ref)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"model class {ref} cannot be imported: {exc}", hint=hint) from exc
    if found is not cls:
        raise ValidationError(f"{ref} names another object than the model's class", hint=hint)
    return ref


def _resolve(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def save_model(
    pytorch_model: Any,
    path: str | os.PathLike[str],
    *,
    format: Literal["state_dict", "torchscript", "pickle"] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    torchscript_method: Literal["script", "trace"] = "script",
    serialization_format: str | None = None,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``pytorch_model`` (a ``torch.nn.Module``) as a model folder at ``path``.

    MLflow's ``serialization_format`` may be ``"pickle"`` (the same choice as
    ``format=None``); ``"pt2"`` raises NotSupportedError. ``format=None`` (the default) chooses: a ``torch.jit.ScriptModule`` is saved as
    TorchScript; a module whose class is importable and that ``model_kwargs`` (or no
    arguments) rebuild is saved as a state dict; any other module (a class defined in the
    training script, ``__main__``, or one that needs constructor arguments) is pickled
    whole with cloudpickle, which stores ``__main__`` classes by value, as MLflow does.

    ``state_dict``: loading calls ``ModelClass(**model_kwargs)`` and loads the weights,
    so the class must be importable and ``model_kwargs`` plain YAML values.
    ``torchscript``: the model is compiled with ``torch.jit.script`` or, with
    ``torchscript_method="trace"``, traced on ``input_example`` (in eval mode); an
    already scripted module is saved as is. ``input_example`` is a tensor or numpy
    array; the output signature comes from a forward pass in eval mode without grad.
    ``path`` must not exist or be an empty folder; on failure nothing is left behind.
    Raises ValidationError for bad arguments, ArtifactError if serialization fails,
    MissingDependencyError without torch.
    """
    if serialization_format not in (None, "pickle"):
        raise NotSupportedError(
            f"serialization_format={serialization_format!r} is not supported",
            hint="vtrack saves state dicts, TorchScript or cloudpickle (serialization_format='pickle')",
        )
    torch = _import_torch()
    if not isinstance(pytorch_model, torch.nn.Module):
        raise ValidationError(
            f"the pytorch flavor saves torch.nn.Module objects, got {type(pytorch_model).__name__}"
        )
    if input_example is not None and not isinstance(input_example, torch.Tensor):
        np_mod = sys.modules.get("numpy")
        if np_mod is None or not isinstance(input_example, np_mod.ndarray):
            raise ValidationError(
                f"a pytorch input_example must be a torch tensor or a numpy array, "
                f"got {type(input_example).__name__}"
            )
    is_scripted = isinstance(pytorch_model, torch.jit.ScriptModule)
    if format is None:
        format = _auto_format(pytorch_model, is_scripted, model_kwargs)
    if format not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")

    if format == "pickle":
        if model_kwargs is not None:
            raise ValidationError("model_kwargs only applies to format='state_dict'")
        if is_scripted:
            raise ValidationError("a scripted module is saved with format='torchscript'")

        def write(folder: Path) -> dict[str, Any]:
            import cloudpickle

            torch.save(pytorch_model, folder / PICKLE_FILE, pickle_module=cloudpickle)
            return {"format": "pickle", "model_file": PICKLE_FILE, "serializer": "cloudpickle"}

    elif format == "state_dict":
        if is_scripted:
            raise ValidationError(
                "a scripted module has no importable Python class",
                hint="save it with format='torchscript'",
            )
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            raise ValidationError("model_kwargs must be a mapping of keyword arguments")
        kwargs = dict(model_kwargs or {})
        check_yaml_values(kwargs, "model_kwargs")
        ref = class_reference(type(pytorch_model))

        def write(folder: Path) -> dict[str, Any]:
            torch.save(pytorch_model.state_dict(), folder / STATE_DICT_FILE)
            return {
                "format": "state_dict",
                "model_file": STATE_DICT_FILE,
                "model_class": ref,
                "model_kwargs": kwargs,
            }

    else:
        if model_kwargs is not None:
            raise ValidationError("model_kwargs only applies to format='state_dict'")
        if torchscript_method not in ("script", "trace"):
            raise ValidationError(
                f"torchscript_method must be 'script' or 'trace', got {torchscript_method!r}"
            )
        if torchscript_method == "trace" and input_example is None and not is_scripted:
            raise ValidationError("torchscript_method='trace' needs an input_example to trace")

        def write(folder: Path) -> dict[str, Any]:
            if is_scripted:
                compiled, method = pytorch_model, "script"
            elif torchscript_method == "script":
                compiled, method = torch.jit.script(pytorch_model), "script"
            else:
                compiled, method = _trace(torch, pytorch_model, input_example), "trace"
            torch.jit.save(compiled, str(folder / TORCHSCRIPT_FILE))
            return {
                "format": "torchscript",
                "model_file": TORCHSCRIPT_FILE,
                "torchscript_method": method,
            }

    save_model_dir(
        path,
        flavor=FLAVOR,
        framework=("torch", torch.__version__),
        write_model=write,
        predict=lambda example: _forward(torch, pytorch_model, example),
        default_requirements=pinned_requirements(["torch"]),
        input_example=input_example,
        signature=signature,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def _auto_format(model: Any, is_scripted: bool, model_kwargs: Any) -> Any:
    if is_scripted:
        return "torchscript"
    if model_kwargs is not None:
        return "state_dict"
    try:
        class_reference(type(model))
    except ValidationError:
        return "pickle"
    return "state_dict" if _takes_no_arguments(type(model)) else "pickle"


def _takes_no_arguments(cls: type) -> bool:
    import inspect

    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


def _trace(torch: Any, model: Any, example: Any) -> Any:
    was_training = model.training
    model.eval()  # trace what inference runs: no dropout, fixed batch-norm statistics
    try:
        with torch.no_grad():
            return torch.jit.trace(model, _as_tensor(torch, example))
    finally:
        model.train(was_training)


def load_model_from_dir(path: str | os.PathLike[str]) -> Any:
    """Load the model saved in the local folder ``path`` on the CPU, in eval mode.

    A state-dict model imports and instantiates its recorded class, which must be a
    ``torch.nn.Module`` subclass. Warns (UserWarning) if saved with another torch
    version. Raises ArtifactNotFoundError for a missing folder or file, ArtifactError if
    the folder holds another flavor, an unknown format, an unimportable class or weights
    that do not fit it, MissingDependencyError without torch.
    """
    meta = read_model_meta(path)
    expect_flavor(meta, FLAVOR, path)
    torch = _import_torch()
    fmt = meta.flavor_fields.get("format")
    if fmt not in FORMATS:
        raise ArtifactError(f"{path}: unknown pytorch format {fmt!r}", hint="upgrade vtrack")
    file = model_file(meta, path)
    warn_on_version_mismatch(meta, torch.__version__)
    if fmt == "torchscript":
        try:
            model = torch.jit.load(str(file), map_location="cpu")
        except Exception as exc:
            raise ArtifactError(
                f"cannot load TorchScript model {file}: {exc}", path=str(file)
            ) from exc
        return model.eval()
    if fmt == "pickle":
        try:
            # the trust model of the pyfunc flavor: loading a pickled model runs its code
            model = torch.load(file, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ArtifactError(f"cannot unpickle the pytorch model {file}: {exc}") from exc
        if not isinstance(model, torch.nn.Module):
            raise ArtifactError(f"{file} does not hold a torch.nn.Module", path=str(file))
        return model.eval()
    return _load_state_dict_model(torch, meta.flavor_fields, file)


def _load_state_dict_model(torch: Any, fields: Mapping[str, Any], file: Path) -> Any:
    ref, kwargs = fields.get("model_class"), fields.get("model_kwargs") or {}
    if not isinstance(ref, str) or ":" not in ref:
        raise ArtifactError(f"{file.parent}: model_class must look like 'module:QualName'")
    if not isinstance(kwargs, dict):
        raise ArtifactError(f"{file.parent}: model_kwargs must be a mapping")
    try:
        cls = _resolve(ref)
    except (ImportError, AttributeError) as exc:
        raise ArtifactError(
            f"cannot import the model class {ref}: {exc}",
            hint="install or add to sys.path the module that defines it",
        ) from exc
    # model.yaml may come from someone else's run: only ever call a Module subclass with it.
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ArtifactError(f"{ref} is not a torch.nn.Module subclass; refusing to call it")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        model = cls(**kwargs)
        model.load_state_dict(state)
    except Exception as exc:
        raise ArtifactError(
            f"cannot rebuild {ref}(**{kwargs!r}) from {file}: {exc}", path=str(file)
        ) from exc
    return model.eval()


def log_model(
    pytorch_model: Any, artifact_path: str | None = None, *, input_example: Any = None, **kw: Any
) -> ModelInfo:
    """Save ``pytorch_model`` (see :func:`save_model` for ``kw``) and log it to the active run."""
    return log_model_with(
        save_model, pytorch_model, artifact_path, input_example=input_example, **kw
    )


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load a pytorch model from ``runs:/<run>/<path>`` or a local folder."""
    return load_model_with(load_model_from_dir, model_uri)
