"""Saving, logging and loading model folders.

:func:`save_model_dir` writes a complete model folder atomically (a flavor module supplies
the serializer), :func:`log_model_with` logs one to the active run, and
:func:`load_model_with` / :func:`load_model` read one back from ``runs:/`` URIs or local
folders, picking the flavor from ``model.yaml`` (:mod:`vtrack.models.meta`).

Frameworks are imported only inside the flavor functions that need them.
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from vtrack.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    ValidationError,
    VtrackError,
)
from vtrack.models.meta import (
    COMMON_KEYS,
    MODEL_FORMAT_VERSION,
    MODEL_YAML,
    REQUIREMENTS_TXT,
    ModelInfo,
    check_yaml_values,
    flavor_module,
    read_model_meta,
)
from vtrack.models.signature import (
    Signature,
    coerce_signature,
    infer_schema,
    read_input_example,
    write_input_example,
)

# --- saving ------------------------------------------------------------------------------


def _resolve_requirements(
    defaults: list[str], pip_requirements: Any, extra_pip_requirements: Any
) -> list[str]:
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise ValidationError(
            "pass pip_requirements (replaces the defaults) or extra_pip_requirements "
            "(adds to them), not both"
        )
    for name, value in (
        ("pip_requirements", pip_requirements),
        ("extra_pip_requirements", extra_pip_requirements),
    ):
        if value is not None and (
            isinstance(value, str) or not all(isinstance(r, str) and r.strip() for r in value)
        ):
            raise ValidationError(f"{name} must be a list of non-empty requirement strings")
    if pip_requirements is not None:
        return list(pip_requirements)
    return [*defaults, *(extra_pip_requirements or [])]


def _prepare_target(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ValidationError(f"cannot save a model to {path}: it exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise ValidationError(
            f"cannot save a model to {path}: the folder is not empty",
            hint="choose a new path or delete the folder first",
        )


def save_model_dir(
    path: str | os.PathLike[str],
    *,
    flavor: str,
    framework: tuple[str, str],
    write_model: Callable[[Path], dict[str, Any]],
    predict: Callable[[Any], Any] | None,
    default_requirements: list[str],
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write a complete model folder at ``path``, or nothing at all.

    ``write_model(folder)`` serializes the model into ``folder`` and returns the flavor's
    ``model.yaml`` fields. Everything is written to a temporary sibling folder that is
    renamed to ``path`` at the end; on any error the sibling and any parent folders made
    here are removed and ``path`` is left as it was. ``path`` must not exist or be an
    empty folder (ValidationError otherwise). Serialization failures become ArtifactError.
    When no signature is given it is inferred from ``input_example``, the outputs by
    calling ``predict`` on it (a UserWarning says so if that fails).
    """
    target = Path(path)
    sig = coerce_signature(signature)
    reqs = _resolve_requirements(default_requirements, pip_requirements, extra_pip_requirements)
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise ValidationError(f"metadata must be a mapping, got {type(metadata).__name__}")
        metadata = dict(metadata)
        check_yaml_values(metadata, "metadata")
    # Rejects unsupported example types before the (possibly slow) serialization.
    example_schema = None if input_example is None else infer_schema(input_example)
    _prepare_target(target)

    try:
        created_parents = _make_parents(target.parent)
        # Not tempfile.mkdtemp: its 0700 mode would stick to the renamed model folder.
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        tmp.mkdir()
    except OSError as exc:
        raise ArtifactError(f"cannot create the model folder {target}: {exc}") from exc
    removed_empty_target = False
    try:
        try:
            flavor_fields = write_model(tmp)
        except VtrackError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"could not serialize the {flavor} model for {target}: {exc}", path=str(target)
            ) from exc
        clash = set(flavor_fields) & set(COMMON_KEYS)
        if clash:  # a programming error in a flavor module, not a user error
            raise AssertionError(f"flavor fields {sorted(clash)} clash with common keys")
        example_file = None
        if input_example is not None:
            example_file = write_input_example(input_example, tmp)
            if sig is None:
                sig = Signature(example_schema, _infer_outputs(predict, input_example))
        doc: dict[str, Any] = {
            "flavor": flavor,
            "vtrack_model_format": MODEL_FORMAT_VERSION,
            # str(): torch.__version__ is a str subclass that the safe dumper refuses
            "framework": {"name": str(framework[0]), "version": str(framework[1])},
            "python_version": platform.python_version(),
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pip_requirements": reqs,
            "signature": None if sig is None else sig.to_dict(),
            "input_example": example_file,
            "metadata": metadata,
            **flavor_fields,
        }
        (tmp / MODEL_YAML).write_text(
            yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        (tmp / REQUIREMENTS_TXT).write_text("".join(r + "\n" for r in reqs), encoding="utf-8")
        try:
            if target.is_dir():
                target.rmdir()  # empty when checked; fails if another writer filled it since
                removed_empty_target = True
            tmp.rename(target)
        except OSError as exc:
            raise ArtifactError(
                f"could not move the model into {target}: {exc}", path=str(target)
            ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if removed_empty_target:
            target.mkdir(exist_ok=True)
        for parent in created_parents:
            try:
                parent.rmdir()
            except OSError:
                break  # someone else put something there meanwhile; leave it
        raise


def _make_parents(parent: Path) -> list[Path]:
    # Returns the folders created, deepest first, so a failed save can remove them again.
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    parent.mkdir(parents=True, exist_ok=True)
    return missing


def _infer_outputs(predict: Callable[[Any], Any] | None, example: Any) -> Any:
    if predict is None:
        return None
    try:
        output = predict(example)
    except Exception as exc:
        warnings.warn(
            f"the output signature was not inferred: predicting on the input example "
            f"failed ({type(exc).__name__}: {exc})",
            UserWarning,
            stacklevel=4,
        )
        return None
    try:
        return infer_schema(output)
    except ValidationError:
        return None


# --- loading --------------------------------------------------------------------------------


def load_input_example(path: str | os.PathLike[str]) -> Any:
    """Return the input example stored in the model folder ``path``, or None if there is none.

    A DataFrame comes back as a DataFrame, an array or tensor as a numpy array.
    """
    meta = read_model_meta(path)
    if meta.input_example is None:
        return None
    file = Path(path) / meta.input_example
    if not file.is_file():
        raise ArtifactNotFoundError(f"input example {file} is missing", path=str(file))
    return read_input_example(file)


def load_model_from_dir(path: str | os.PathLike[str]) -> Any:
    """Load the model in the local folder ``path`` with the flavor its ``model.yaml`` names.

    Raises ArtifactNotFoundError for a missing folder, ArtifactError for an unknown
    flavor or a malformed folder, MissingDependencyError if the framework is missing.
    """
    meta = read_model_meta(path)
    return flavor_module(meta.flavor, path).load_model_from_dir(path)


# --- runs ---------------------------------------------------------------------------------


def log_model_with(
    save_model: Callable[..., None],
    model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    step: int | None = None,
    registered_model_name: str | None = None,
    **kw: Any,
) -> ModelInfo:
    """Save ``model`` with a flavor's ``save_model`` and log the folder to the active run.

    MLflow 3's form names the model (``name=``); MLflow 2's gives ``artifact_path``;
    exactly one is needed. Every logged model gets a stable ``model_id`` (a
    :class:`~vtrack.entities.LoggedModel`, see :mod:`vtrack.models.logged`) with its
    ``params``, ``tags`` and checkpoint ``step``; a named model's ``model_uri`` is
    ``models:/<model_id>``, an ``artifact_path`` one's ``runs:/<run>/<path>``. A name
    already used in the run gets the folder ``<name>-step-<step>`` (or
    ``<name>-<id prefix>``). The folder is built in a temporary directory, then logged
    with ``vtrack.fluent.log_artifacts``; with no active run one is started, as in MLflow.
    ``registered_model_name`` registers the logged folder as the next version of that
    registered model (created if needed; :mod:`vtrack.registry`), its number in
    ``registered_model_version``.
    """
    if registered_model_name is not None:
        from vtrack.registry.events import check_model_name

        check_model_name(registered_model_name)  # before anything is logged
    if (artifact_path is None) == (name is None):
        raise ValidationError("log_model needs a name (MLflow 3) or an artifact_path, not both")
    path = artifact_path if artifact_path is not None else name
    if not isinstance(path, str) or not path.strip("/"):
        raise ValidationError(
            f"the model name or artifact_path must be a non-empty relative path, got {path!r}"
        )
    path = path.strip("/")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValidationError(f"step must be a non-negative integer, got {step!r}")
    if params is not None and not isinstance(params, Mapping):
        raise ValidationError("params must be a mapping")
    from vtrack import fluent
    from vtrack.models import logged

    model_id = logged.new_model_id()
    run = fluent.active_run() or fluent.start_run()
    run_id = run.info.run_id
    if fluent.list_artifacts(run_id=run_id, artifact_path=path) or _is_artifact_file(run_id, path):
        path = f"{path}-step-{step}" if step is not None else f"{path}-{model_id[2:10]}"
    with tempfile.TemporaryDirectory(prefix="vtrack-model-") as tmp:
        local = Path(tmp) / "model"
        save_model(model, local, **kw)
        meta = read_model_meta(local)
        fluent.log_artifacts(str(local), artifact_path=path)
    fluent.set_tag(
        logged.MODEL_TAG_PREFIX + model_id,
        logged.model_record(name=name or path, artifact_path=path, flavor=meta.flavor,
                            step=step or 0, created=int(time.time() * 1000), params=params,
                            tags=tags),
    )  # fmt: skip
    model_uri = f"models:/{model_id}" if name is not None else f"runs:/{run_id}/{path}"
    registered = None
    if registered_model_name is not None:
        from vtrack.registry import ModelRegistry

        registered = (
            ModelRegistry(fluent.tracking_client().repo)
            .register_model(f"runs:/{run_id}/{path}", registered_model_name)
            .version
        )
    return ModelInfo(
        run_id=run_id,
        artifact_path=path,
        model_uri=model_uri,
        flavor=meta.flavor,
        signature=meta.signature,
        model_id=model_id,
        step=step,
        registered_model_version=registered,
    )


def _is_artifact_file(run_id: str, path: str) -> bool:
    from vtrack import fluent

    parent, _, _ = path.rpartition("/")
    return any(
        f.path == path for f in fluent.list_artifacts(run_id=run_id, artifact_path=parent or None)
    )


def load_model_with(loader: Callable[[Path], Any], model_uri: str | os.PathLike[str]) -> Any:
    """Load ``model_uri`` (``runs:/<run>/<path>``, ``file://…`` or a local folder) with ``loader``.

    ``models:/<model_id>`` names a logged model (MLflow 3), ``models:/<name>/<version>``,
    ``models:/<name>@<alias>`` and ``models:/<name>/latest`` a registered version
    (:mod:`vtrack.registry`); each is read from its run. A
    ``runs:/`` model is downloaded into a temporary folder with
    ``vtrack.fluent.download_artifacts`` and loaded from there. Raises ValidationError for
    other URI schemes.
    """
    uri = os.fspath(model_uri)
    if uri.startswith("models:/"):
        from vtrack import fluent
        from vtrack.registry.lineage import model_folder

        run_id, sub = model_folder(fluent.tracking_client().repo, uri)
        uri = f"runs:/{run_id}/{sub}"
    if uri.startswith("runs:/"):
        run_id, _, sub = uri[len("runs:/") :].partition("/")
        if not run_id or not sub.strip("/"):
            raise ValidationError(f"model URI {uri!r} must look like runs:/<run>/<artifact path>")
        from vtrack import fluent

        with tempfile.TemporaryDirectory(prefix="vtrack-model-") as tmp:
            local = fluent.download_artifacts(artifact_uri=uri, dst_path=tmp)
            return loader(Path(local))
    if uri.startswith("file://"):
        return loader(Path(uri[len("file://") :]))
    scheme, sep, _ = uri.partition(":/")
    if sep and len(scheme) > 1 and scheme.isalnum():
        raise ValidationError(
            f"unsupported model URI {uri!r}", hint="use runs:/<run>/<path> or a local folder"
        )
    return loader(Path(uri))


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load a model of any flavor from ``runs:/<run>/<path>`` or a local folder.

    See :func:`load_model_with` for the URI forms and :func:`load_model_from_dir` for errors.
    """
    return load_model_with(load_model_from_dir, model_uri)
