"""Logging artifacts: store the bytes (git blob or large object), then journal the entry.

The bytes of every artifact are stored completely before its manifest entry is
journaled, so an interrupted upload leaves no entry and never a partial object; a
folder's entries are recorded only after all of its files are stored.
"""

from __future__ import annotations

import itertools
import os
import stat
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vtrack.artifacts.render import dict_bytes, figure_bytes, image_bytes
from vtrack.artifacts.storage import (
    ARTIFACTS_DIR,
    STORAGE_GIT,
    STORAGE_LARGE,
    object_store,
    pointer_bytes,
)
from vtrack.entities import ArtifactEntry, Digest
from vtrack.errors import ArtifactError, ValidationError
from vtrack.hashing import hash_bytes
from vtrack.pathsafety import (
    join_artifact_path,
    normalize_artifact_path,
    special_file_error,
    stat_loggable,
    walk_folder,
)
from vtrack.store.gitobj import BLOB_MODE

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.objects import ObjectStore
    from vtrack.store.runs import RunRepository
    from vtrack.store.writer import RunWriter

#: Attempts to store a large object that a concurrent gc keeps collecting.
_PUT_ATTEMPTS = 3
#: Opening never blocks (a file swapped for a FIFO after its check); fstat decides.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS |= getattr(os, "O_BINARY", 0)


def _put_large(objects: ObjectStore, local: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream ``local`` into the object store; return ``(digest, size)``.

    The put freshens an object it finds already stored; if a concurrent gc removed the
    object just then, the put is repeated.
    """
    for _ in range(_PUT_ATTEMPTS):
        digest, size = objects.put_file(local)
        if objects.freshen(digest):
            return digest, size
    raise ArtifactError(
        f"could not store {os.fspath(local)!r}: the object kept disappearing",
        hint="is a 'vtrack gc --grace 0' running in a loop?",
        path=os.fspath(local),
    )


@dataclass(frozen=True)
class _Stored:
    """An artifact whose bytes are stored, ready for its manifest entry."""

    path: str
    entry: ArtifactEntry
    blob: tuple[str, int, str]
    source: str | None  # local file to put again if its large object vanished meanwhile


def _store_bytes(store: Store, path: str, data: bytes | bytearray) -> _Stored:
    """Store in-memory ``data`` as the artifact ``path`` (git blob or large object)."""
    digest = hash_bytes(data)
    if len(data) <= store.settings.large_file_threshold:
        # no compression at logging time (MLflow copies a file; so do we): git gc packs
        # and compresses these blobs later
        sha = store.objects.write_blob(bytes(data), compress=False)
        entry = ArtifactEntry(path, Digest.parse(digest), len(data), STORAGE_GIT, sha)
        return _Stored(path, entry, (f"{ARTIFACTS_DIR}/{path}", BLOB_MODE, sha), None)
    objects = object_store(store)
    for _ in range(_PUT_ATTEMPTS):
        objects.put_bytes(data)
        if objects.freshen(digest):
            return _large(store, path, digest, len(data), None)
    raise ArtifactError(f"could not store artifact {path!r}: the object kept disappearing")


def _store_file(store: Store, path: str, local: str | os.PathLike[str]) -> _Stored:
    """Store the local file ``local`` as the artifact ``path``; streamed when it is large.

    The file is opened without blocking and refused (ValidationError) unless it is a
    regular file, so one swapped for a FIFO or a device after its check is never read.
    """
    threshold = store.settings.large_file_threshold
    data: bytearray | None = None
    try:
        fd = os.open(local, _OPEN_FLAGS)
        with open(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise special_file_error(os.fspath(local), st)
            os.set_blocking(fd, True)
            size = st.st_size
            if size <= threshold:
                data = bytearray(size)
                got = f.readinto(data) or 0
                while got < size:  # short reads
                    n = f.readinto(memoryview(data)[got:]) or 0
                    if not n:
                        del data[got:]  # shrank while we read: store what was there
                        break
                    got += n
                if f.read(1):
                    data = None  # grew while we read: stream it instead
    except OSError as e:
        raise ArtifactError(
            f"cannot read {os.fspath(local)!r}: {e.strerror or e}", path=os.fspath(local)
        ) from e
    if data is not None:
        return _store_bytes(store, path, data)
    # Large (or grew past the threshold while we looked): stream it, memory stays flat.
    digest, size = _put_large(object_store(store), local)
    return _large(store, path, digest, size, os.fspath(local))


def _large(store: Store, path: str, digest: str, size: int, source: str | None) -> _Stored:
    sha = store.objects.write_blob(pointer_bytes(digest, size))
    entry = ArtifactEntry(path, Digest.parse(digest), size, STORAGE_LARGE)
    return _Stored(path, entry, (f"{ARTIFACTS_DIR}/{path}", BLOB_MODE, sha), source)


def _record(repo: RunRepository, writer: RunWriter, items: list[_Stored]) -> None:
    """Journal the manifest entries of stored artifacts, refusing file/folder clashes.

    Large objects are freshened first, so a gc that started before this call cannot
    remove them (one that removed them already makes them be put again).
    """
    objects = object_store(repo.store)
    for item in items:
        if item.entry.is_large and not objects.freshen(str(item.entry.digest)):
            if item.source is None:
                raise ArtifactError(f"artifact {item.path!r} vanished before it was recorded")
            _put_large(objects, item.source)
    with writer.lock:
        _check_clashes(writer, [item.path for item in items])
        for item in items:
            writer.add_artifact(item.path, item.entry, item.blob)


def _check_clashes(writer: RunWriter, paths: list[str]) -> None:
    """Raise ValidationError if a new path is a logged folder or lies under a logged file."""
    with writer.lock:  # the manifest only changes under this lock
        manifest = writer.state.artifacts
        folders = _folders(writer)
        _check_paths(manifest, folders, paths)


def _check_paths(manifest: dict[str, Any], folders: set[str], paths: list[str]) -> None:
    for path in paths:
        if path in folders:
            raise ValidationError(
                f"artifact path {path!r} is a folder of artifacts in this run; "
                "it cannot also be a file",
                path=path,
            )
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in manifest:
                raise ValidationError(
                    f"cannot log {path!r}: {parent!r} is a file artifact of this run, not a folder",
                    path=path,
                )


#: writer -> (the record its folders were computed from, manifest length then, folders)
_FOLDER_CACHE: weakref.WeakKeyDictionary[RunWriter, tuple[Any, int, set[str]]] = (
    weakref.WeakKeyDictionary()
)


def _folders(writer: RunWriter) -> set[str]:
    """Every folder that holds artifacts of the writer's run, kept up to date incrementally.

    Call with ``writer.lock`` held.

    Manifest entries are only ever added or replaced, and dicts keep insertion order, so
    the entries added since the last call are the ones past the remembered length.
    """
    state = writer.state
    manifest = state.artifacts
    cached = _FOLDER_CACHE.get(writer)
    if cached is not None and cached[0] is state and cached[1] <= len(manifest):
        _, seen, folders = cached
        new: Iterator[str] = itertools.islice(manifest, seen, None)
    else:
        folders, new = set(), iter(manifest)
    for existing in new:
        parts = existing.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    _FOLDER_CACHE[writer] = (state, len(manifest), folders)
    return folders


def log_artifact(
    repo: RunRepository,
    run_id: str,
    local_path: str | os.PathLike[str],
    artifact_path: str | None = None,
) -> str:
    """Log the local file ``local_path`` as ``<artifact_path>/<its name>``; return that path.

    Logging a path again replaces the artifact. A symbolic link is followed (its target's
    bytes are stored). Raises ValidationError for a path the rules refuse (absolute,
    ``..``, NUL, backslash, ``.git``), for a folder (use :func:`log_artifacts`) or a
    missing file, for a FIFO, socket or device (or a link to one; such a file is never
    opened), and for a path that clashes with a logged folder or file;
    ArtifactError if the file cannot be read or stored; RunNotFoundError for an unknown
    run. On any error nothing is recorded.
    """
    local = os.fspath(local_path)
    path = join_artifact_path(artifact_path, os.path.basename(os.path.abspath(local)))
    writer = repo.writer(run_id)
    if stat.S_ISDIR(stat_loggable(local).st_mode):
        raise ValidationError(
            f"{local!r} is a folder", hint="use log_artifacts to log a folder", path=local
        )
    _check_clashes(writer, [path])
    with writer.pending():  # blobs in a kept pack until the next checkpoint
        stored = [_store_file(repo.store, path, local)]
    _record(repo, writer, stored)
    return path


def log_artifacts(
    repo: RunRepository,
    run_id: str,
    local_dir: str | os.PathLike[str],
    artifact_path: str | None = None,
) -> list[str]:
    """Log every file under ``local_dir`` below ``artifact_path``; return the paths logged.

    Symbolic links to files or folders inside ``local_dir`` are followed and stored as
    regular files; a link leading outside it (or nowhere, or in a cycle), a special file
    and a refused name raise ValidationError before anything is stored (see
    :func:`vtrack.pathsafety.walk_folder`). All files are stored before any manifest entry
    is written, so a failure leaves the run's manifest as it was. An empty folder logs
    nothing.
    """
    folder = "" if artifact_path in (None, "", ".", "/") else normalize_artifact_path(artifact_path)
    writer = repo.writer(run_id)
    files = walk_folder(local_dir)
    paths = [f"{folder}/{rel}" if folder else rel for rel, _ in files]
    _check_clashes(writer, paths)
    with writer.pending():  # blobs in a kept pack until the next checkpoint
        stored = [
            _store_file(repo.store, path, real)
            for path, (_, real) in zip(paths, files, strict=True)
        ]
    _record(repo, writer, stored)
    return paths


def log_bytes(repo: RunRepository, run_id: str, data: bytes, artifact_file: str) -> str:
    """Log ``data`` as the artifact ``artifact_file``; return its normalized path."""
    path = normalize_artifact_path(artifact_file)
    writer = repo.writer(run_id)
    _check_clashes(writer, [path])
    with writer.pending():  # blobs in a kept pack until the next checkpoint
        stored = [_store_bytes(repo.store, path, bytes(data))]
    _record(repo, writer, stored)
    return path


def log_text(repo: RunRepository, run_id: str, text: str, artifact_file: str) -> str:
    """Log ``text`` (UTF-8) as the artifact ``artifact_file``; return its path."""
    if not isinstance(text, str):
        raise ValidationError(f"log_text needs a str, got {type(text).__name__}")
    return log_bytes(repo, run_id, text.encode("utf-8"), artifact_file)


def log_dict(repo: RunRepository, run_id: str, dictionary: Any, artifact_file: str) -> str:
    """Log ``dictionary`` as YAML (``.yaml``/``.yml``) or else as JSON; return its path.

    Keys keep their order. Raises ValidationError for values the format cannot hold.
    """
    path = normalize_artifact_path(artifact_file)
    return log_bytes(repo, run_id, dict_bytes(dictionary, path), path)


def log_figure(
    repo: RunRepository,
    run_id: str,
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
) -> str:
    """Log a matplotlib or plotly figure rendered by :func:`figure_bytes`; return its path."""
    path = normalize_artifact_path(artifact_file)
    return log_bytes(repo, run_id, figure_bytes(figure, path, save_kwargs), path)


def log_image(repo: RunRepository, run_id: str, image: Any, artifact_file: str) -> str:
    """Log a numpy array or PIL image encoded by :func:`image_bytes`; return its path."""
    path = normalize_artifact_path(artifact_file)
    return log_bytes(repo, run_id, image_bytes(image, path), path)


def store_folder(
    store: Store, local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[tuple[str, ArtifactEntry, tuple[str, int, str]]]:
    """Store every file under ``local_dir`` below ``artifact_path`` for a record built in
    bulk (:meth:`~vtrack.store.runs.RunRepository.create_runs`), recording nothing.

    Returns ``(path, manifest entry, record blob)`` per file, for the record's
    ``add_artifact`` and ``add_file``. Call it inside the ``create_runs`` block: small
    files become git blobs in the block's pack, large ones objects of the object store
    (freshened, so a gc started meanwhile keeps them). The same path rules as
    :func:`log_artifacts`.
    """
    folder = "" if artifact_path in (None, "", ".", "/") else normalize_artifact_path(artifact_path)
    files = walk_folder(local_dir)
    out = []
    for rel, real in files:
        path = f"{folder}/{rel}" if folder else rel
        item = _store_file(store, path, real)
        out.append((item.path, item.entry, item.blob))
    return out
