"""What a model version records about where it came from, read from its run at registration.

A version's source is a model folder logged to a run (``runs:/<run>/<path>``, or a
logged model's ``models:/<model_id>``). At registration the registry reads, once:

- ``digest``: one digest over the folder's files (sorted ``path<TAB>digest`` lines of
  the run's artifact manifest), so a version always names the same bytes;
- ``lineage``: the run (id, name, experiment, the run commit), the code commit it ran
  on and whether the working tree was dirty, each dataset input with its digest, the
  model's flavor and signature (from ``model.yaml``), and the run's params and latest
  metrics at that moment.
"""

from __future__ import annotations

from typing import Any

import yaml

from vtrack.errors import ArtifactNotFoundError, ValidationError
from vtrack.hashing import hash_bytes
from vtrack.store.runs import RunRepository


def source_of(repo: RunRepository, model_uri: str) -> tuple[str, str, str | None]:
    """``(run id, artifact path, model id or None)`` of the model folder ``model_uri`` names.

    ``runs:/<run>/<path>`` (any run spec) or ``models:/<model_id>`` (a logged model).
    ValidationError for other forms, RunNotFoundError / ArtifactNotFoundError when absent.
    """
    if not isinstance(model_uri, str):
        raise ValidationError(f"model_uri must be a string, got {type(model_uri).__name__}")
    if model_uri.startswith("models:/m-"):
        from vtrack.models.logged import find_logged_model

        found = find_logged_model(repo, model_uri[len("models:/") :].strip("/"))
        return found.source_run_id, found.artifact_path, found.model_id
    if model_uri.startswith("runs:/"):
        from vtrack.artifacts.read import split_runs_uri

        run_id, path = split_runs_uri(repo, model_uri)
        if not path:
            raise ValidationError(f"{model_uri!r} names a run, not a model folder in it",
                                  hint="write runs:/<run>/<model path>")  # fmt: skip
        return run_id, path, _model_id_at(repo, run_id, path)
    raise ValidationError(
        f"cannot register {model_uri!r}: the registry records models logged to runs",
        hint="log the model with log_model, then register runs:/<run>/<path> or models:/<model_id>",
    )


def _model_id_at(repo: RunRepository, run_id: str, path: str) -> str | None:
    from vtrack.models.logged import logged_models_of

    for m in logged_models_of(repo.get(run_id)):
        if m.artifact_path == path:
            return m.model_id
    return None


def folder_digest(repo: RunRepository, run_id: str, path: str) -> str:
    """The digest of the model folder ``path`` of run ``run_id`` (its files' digests)."""
    from vtrack.artifacts.read import manifest

    entries = {p: e for p, e in manifest(repo, run_id).items() if p.startswith(path + "/")}
    if not entries:
        raise ArtifactNotFoundError(f"run {run_id} has no model folder {path!r}",
                                    run_id=run_id, path=path)  # fmt: skip
    lines = "".join(f"{p[len(path) + 1 :]}\t{e.digest}\n" for p, e in sorted(entries.items()))
    return hash_bytes(lines.encode("utf-8"))


def lineage_of(repo: RunRepository, run_id: str, path: str) -> dict[str, Any]:
    """The lineage a version registered from run ``run_id``'s folder ``path`` records."""
    from vtrack.artifacts.read import read_bytes

    state = repo.state(run_id, deleted_ok=True)
    run = state.to_run()
    source = dict(run.info.source or {})
    code_commit = None
    if state.commit is not None:
        parents = repo.store.objects.read_commit(state.commit)["parents"]
        code_commit = parents[0] if parents else None
    meta: dict[str, Any] = {}
    try:
        loaded = yaml.safe_load(read_bytes(repo, run_id, f"{path}/model.yaml"))
        meta = loaded if isinstance(loaded, dict) else {}
    except ArtifactNotFoundError:
        meta = {}
    datasets = [
        {"name": d.name, "context": d.context, "kind": d.kind, "source": d.source,
         "digest": None if d.digest is None else str(d.digest)}
        for d in run.inputs.datasets
    ]  # fmt: skip
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        # a live run's commit is a checkpoint that the next one replaces: only an ended
        # run's commit is stable enough to name
        "run_commit": state.commit if run.info.status != "RUNNING" else None,
        "code_commit": code_commit,
        "dirty": source.get("dirty"),
        "artifact_path": path,
        "flavor": meta.get("flavor"),
        "signature": meta.get("signature"),
        "datasets": datasets,
        "params": {k: str(v) for k, v in run.data.params.items()},
        "metrics": dict(run.data.metrics),
    }


def model_folder(repo: RunRepository, uri: str) -> tuple[str, str]:
    """``(run id, artifact path)`` of the model folder a ``models:/`` URI names.

    ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/latest``
    (the registry) or ``models:/<model_id>`` (a logged model). For a registered version
    the folder's digest is checked against the one recorded at registration
    (CorruptObjectError if the run's files changed since).
    """
    from vtrack.errors import CorruptObjectError
    from vtrack.registry.service import ModelRegistry, is_registry_uri

    if not is_registry_uri(uri):
        run_id, path, _ = source_of(repo, uri)
        return run_id, path
    version = ModelRegistry(repo).resolve(uri)
    run_id, path, _ = source_of(repo, str(version.source))
    if version.digest is not None and folder_digest(repo, run_id, path) != version.digest:
        raise CorruptObjectError(
            f"{uri} (version {version.version} of {version.name}) no longer has the bytes it "
            f"was registered with: run {run_id} folder {path!r} changed",
            hint="register the folder again as a new version",
            path=path,
            run_id=run_id,
        )
    return run_id, path
