"""Reading artifacts: the manifest, listings, verified bytes, downloads, ``runs:/`` URIs."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vtrack.artifacts.render import is_yaml
from vtrack.artifacts.storage import FileInfo, object_store
from vtrack.entities import ArtifactEntry
from vtrack.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    CorruptObjectError,
    ValidationError,
)
from vtrack.hashing import hash_bytes
from vtrack.pathsafety import normalize_artifact_path
from vtrack.store.record import run_inputs

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.objects import ObjectStore
    from vtrack.store.runs import RunRepository


def manifest(repo: RunRepository, run_id: str) -> dict[str, ArtifactEntry]:
    """The run's artifact manifest (path -> typed entry), live journals included.

    A deleted run (in the trash) is read from its last commit. RunNotFoundError if
    there is no such run.
    """
    return run_inputs((), repo.state(run_id, deleted_ok=True).record.artifacts).artifacts


def _optional_path(path: str | None) -> str:
    """Normalize a folder argument where None, "" and "." mean the root ("")."""
    if path is None or path in ("", ".", "/"):
        return ""
    return normalize_artifact_path(path)


def list_artifacts(repo: RunRepository, run_id: str, path: str | None = None) -> list[FileInfo]:
    """The files and folders directly inside the folder ``path`` (the root by default).

    Sorted by path; paths are relative to the run's artifact root. A path that is a
    file or does not exist gives ``[]`` (as MLflow does).
    """
    prefix = _optional_path(path)
    children: dict[str, FileInfo] = {}
    for name, entry in manifest(repo, run_id).items():
        if prefix:
            if not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 :]
        else:
            rest = name
        head, sep, _ = rest.partition("/")
        full = f"{prefix}/{head}" if prefix else head
        if sep:
            children[full] = FileInfo(full, True, None)
        else:
            children[full] = FileInfo(full, False, entry.size)
    return [children[k] for k in sorted(children)]


def _select(entries: dict[str, ArtifactEntry], path: str, run_id: str) -> dict[str, ArtifactEntry]:
    """The entries at or under ``path`` ("" = all); ArtifactNotFoundError if none."""
    if not path:
        return entries
    if path in entries:
        return {path: entries[path]}
    found = {p: e for p, e in entries.items() if p.startswith(path + "/")}
    if not found:
        raise ArtifactNotFoundError(
            f"run {run_id} has no artifact {path!r}", path=path, run_id=run_id
        )
    return found


def _checked_path(path: str) -> str:
    """A manifest path (possibly from someone else's store) checked before it names a file."""
    try:
        return normalize_artifact_path(path)
    except ValidationError as e:
        raise CorruptObjectError(
            f"the artifact manifest holds a path that the rules refuse: {e.message}", path=path
        ) from None


def _git_bytes(store: Store, path: str, entry: ArtifactEntry) -> bytes:
    if not isinstance(entry.blob, str):
        raise CorruptObjectError(
            f"artifact {path!r} has no git blob in its manifest entry", path=path
        )
    data = store.objects.read_blob(entry.blob)
    digest = None if entry.digest is None else str(entry.digest)
    if hash_bytes(data) != digest:
        raise CorruptObjectError(
            f"artifact {path!r} (git blob {entry.blob}) does not match its digest {digest}",
            path=path,
            digest=digest,
        )
    return data


def _large_object(
    repo: RunRepository, objects: ObjectStore, run_id: str, path: str, entry: ArtifactEntry
) -> str:
    """The digest of a large artifact, its bytes made local first.

    The one place where large objects are read: an object this clone lacks (a run
    pulled from a teammate) is fetched from a remote's object store, verified, and
    cached here (:func:`vtrack.sharing.fetch_missing`), so downloads, checkouts,
    ``load_model`` and the UI all fetch lazily.
    """
    digest = str(entry.digest)
    if not objects.exists(digest):
        from vtrack.sharing import fetch_missing

        fetch_missing(repo.store, objects, digest, run_id, path)
    return digest


def read_bytes(repo: RunRepository, run_id: str, path: str) -> bytes:
    """The verified bytes of the artifact file ``path``.

    ArtifactNotFoundError if the run has no such file (or its large object is not in
    this store), CorruptObjectError if the stored bytes do not match the digest.
    """
    norm = normalize_artifact_path(path)
    entry = manifest(repo, run_id).get(norm)
    if entry is None:
        raise ArtifactNotFoundError(
            f"run {run_id} has no artifact file {norm!r}", path=norm, run_id=run_id
        )
    if entry.is_large:
        objects = object_store(repo.store)
        with objects.open(_large_object(repo, objects, run_id, norm, entry)) as f:
            return f.read()
    return _git_bytes(repo.store, norm, entry)


def artifact_entry(repo: RunRepository, run_id: str, path: str) -> ArtifactEntry:
    """The manifest entry of the artifact file ``path`` (size, digest, storage, …).

    ValidationError for a path the rules refuse (``..``, absolute, …),
    ArtifactNotFoundError if the run has no such file.
    """
    norm = normalize_artifact_path(path)
    entry = manifest(repo, run_id).get(norm)
    if entry is None:
        raise ArtifactNotFoundError(
            f"run {run_id} has no artifact file {norm!r}", path=norm, run_id=run_id
        )
    return entry


def open_artifact(repo: RunRepository, run_id: str, path: str) -> BinaryIO:
    """A binary stream of the artifact file ``path``, so big files are never read whole.

    Large objects stream from the object store (reading to the end verifies the
    digest); files kept as git blobs are small by design and are read and verified
    in memory. Errors as :func:`artifact_entry`.
    """
    entry = artifact_entry(repo, run_id, path)
    if entry.is_large:
        objects = object_store(repo.store)
        return objects.open(_large_object(repo, objects, run_id, entry.path, entry))
    return io.BytesIO(_git_bytes(repo.store, entry.path, entry))


def load_text(repo: RunRepository, run_id: str, path: str) -> str:
    """The artifact file ``path`` decoded as UTF-8 (ArtifactError if it is not text)."""
    data = read_bytes(repo, run_id, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtifactError(f"artifact {path!r} is not UTF-8 text: {e}", path=path) from e


def load_dict(repo: RunRepository, run_id: str, path: str) -> Any:
    """The artifact file ``path`` parsed as YAML (``.yaml``/``.yml``) or else as JSON."""
    text = load_text(repo, run_id, path)
    try:
        if is_yaml(path):
            from vtrack.store.record import load_yaml

            return load_yaml(text)
        return json.loads(text)
    except ValueError as e:
        raise ArtifactError(f"artifact {path!r} cannot be parsed: {e}", path=path) from e
    except Exception as e:  # yaml.YAMLError
        raise ArtifactError(f"artifact {path!r} cannot be parsed: {e}", path=path) from e


def download_artifacts(
    repo: RunRepository,
    run_id: str,
    path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
) -> str:
    """Copy the artifact file or folder ``path`` (all artifacts by default) to ``dst_path``.

    Returns the absolute local path of what was downloaded: ``<dst_path>/<path>``
    (``dst_path`` itself for the whole tree). ``dst_path`` is created if missing; by default it is a
    new temporary folder. Existing files are replaced. Each file appears atomically and
    only with verified bytes: a digest mismatch raises CorruptObjectError (that file is
    not written). ArtifactNotFoundError if there is no such artifact.
    """
    norm = _optional_path(path)
    entries = _select(manifest(repo, run_id), norm, run_id)
    dst = (
        Path(dst_path)
        if dst_path is not None
        else Path(tempfile.mkdtemp(prefix="vtrack-artifacts-"))
    )
    objects = object_store(repo.store)
    try:
        dst.mkdir(parents=True, exist_ok=True)
        for name in sorted(entries):
            entry = entries[name]
            target = dst.joinpath(*_checked_path(name).split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.is_large:
                objects.copy_to(_large_object(repo, objects, run_id, name, entry), target)
            else:
                from vtrack.store.fileio import atomic_write

                atomic_write(target, _git_bytes(repo.store, name, entry))
    except OSError as e:
        raise ArtifactError(f"cannot write artifacts to {os.fspath(dst)!r}: {e}") from e
    local = dst.joinpath(*norm.split("/")) if norm else dst
    return os.path.abspath(local)


def split_runs_uri(repo: RunRepository, uri: str) -> tuple[str, str]:
    """Split ``runs:/<run>/<path>`` into ``(run id, normalized path)``; path "" for the root.

    ``<run>`` is anything :func:`vtrack.resolve.resolve_run_id` accepts (a full id, a
    unique id prefix, a run name, ``@``; a deleted run only by its full id). ValidationError for a URI
    of another form, RunNotFoundError or AmbiguousRunSpecError from the resolver.
    """
    from vtrack.resolve import parse_runs_uri

    run_id, path = parse_runs_uri(uri, repo)
    return run_id, _optional_path(path)


def locate(
    repo: RunRepository,
    artifact_uri: str | None,
    run_id: str | None,
    artifact_path: str | None,
    default_run_id: str | None = None,
) -> tuple[str, str]:
    """Turn the fluent API's ``(artifact_uri | run_id, artifact_path)`` into ``(run id, path)``.

    Exactly one of ``artifact_uri`` and ``run_id`` may be given; with neither,
    ``default_run_id`` (the active run) is used, and ValidationError raised if it is None.
    """
    if artifact_uri is not None:
        if run_id is not None or artifact_path is not None:
            raise ValidationError("pass artifact_uri, or run_id and artifact_path, not both")
        if isinstance(artifact_uri, str) and artifact_uri.startswith("models:/"):
            from vtrack.registry.lineage import model_folder

            return model_folder(repo, artifact_uri)
        return split_runs_uri(repo, artifact_uri)
    rid = run_id if run_id is not None else default_run_id
    if rid is None:
        raise ValidationError(
            "name the artifacts with artifact_uri='runs:/<run>/<path>' or run_id=",
            hint="or call this inside an active run",
        )
    return rid, _optional_path(artifact_path)
