"""Artifacts of a run: logging files, folders and in-memory objects; listing, reading, downloading.

Storage rules (``docs/concepts/artifacts.md``):

- Every artifact is content-addressed by the xxh3-128 digest of its bytes and listed in
  the run's manifest (``.vtrack/artifacts.yaml``) as ``{digest, size, storage}``.
- A file of at most ``large_file_threshold`` bytes (``VTRACK_LARGE_FILE_THRESHOLD``,
  8 MiB by default) is a git blob at ``.vtrack/artifacts/<path>`` in the run tree
  (``storage: git``, ``blob: <sha>``); git stores identical blobs once.
- A larger file is streamed into the large-object store ``.git/vtrack/objects``
  (``storage: large``), which stores identical bytes once; the run tree holds a small
  pointer file at ``.vtrack/artifacts/<path>`` naming the digest, so that the tree
  always mirrors the manifest.
- The bytes are stored completely before the manifest entry is journaled, so an
  interrupted upload leaves no entry, and never a partial object.

Every function takes the :class:`~vtrack.client.TrackingClient` whose store holds the
run; the client and the fluent API are thin wrappers over this module.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    CorruptObjectError,
    MissingDependencyError,
    RunNotFoundError,
    ValidationError,
)
from vtrack.hashing import hash_bytes
from vtrack.pathsafety import join_artifact_path, normalize_artifact_path, walk_folder
from vtrack.store.gitobj import BLOB_MODE
from vtrack.store.objects import ObjectStore

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.store import Store
    from vtrack.store.writer import RunWriter

#: Folder of the run record (``.vtrack/``) that holds artifact blobs and pointers.
ARTIFACTS_DIR = "artifacts"
#: ``storage`` value of an artifact kept as a git blob in the run tree.
STORAGE_GIT = "git"
#: ``storage`` value of an artifact kept in the large-object store.
STORAGE_LARGE = "large"
#: Attempts to store a large object that a concurrent gc keeps collecting.
_PUT_ATTEMPTS = 3
_PLOTS_HINT = "pip install 'vtrack[plots]'"


@dataclass(frozen=True)
class FileInfo:
    """One entry of :func:`list_artifacts`: a file (with its size) or a folder (size None)."""

    path: str
    is_dir: bool
    file_size: int | None


# --- the stores ---------------------------------------------------------------------------


def object_store(store: Store) -> ObjectStore:
    """The large-object store of ``store`` (``.git/vtrack/objects``)."""
    return ObjectStore(store.location.vtrack_dir / "objects")


def pointer_bytes(digest: str, size: int) -> bytes:
    """The text of the pointer blob that stands in the run tree for a large artifact."""
    return (
        "# vtrack large artifact: the bytes are in .git/vtrack/objects, not in git.\n"
        "# Fetch them with: vtrack pull (shared stores) or vtrack.download_artifacts.\n"
        f"digest: {digest}\nsize: {size}\n"
    ).encode()


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
    entry: dict[str, Any]
    blob: tuple[str, int, str]
    source: str | None  # local file to put again if its large object vanished meanwhile


def _store_bytes(store: Store, path: str, data: bytes | bytearray) -> _Stored:
    """Store in-memory ``data`` as the artifact ``path`` (git blob or large object)."""
    digest = hash_bytes(data)
    if len(data) <= store.settings.large_file_threshold:
        sha = store.objects.write_blob(data)
        entry = {"digest": digest, "size": len(data), "storage": STORAGE_GIT, "blob": sha}
        return _Stored(path, entry, (f"{ARTIFACTS_DIR}/{path}", BLOB_MODE, sha), None)
    objects = object_store(store)
    for _ in range(_PUT_ATTEMPTS):
        objects.put_bytes(data)
        if objects.freshen(digest):
            return _large(store, path, digest, len(data), None)
    raise ArtifactError(f"could not store artifact {path!r}: the object kept disappearing")


def _store_file(store: Store, path: str, local: str | os.PathLike[str]) -> _Stored:
    """Store the local file ``local`` as the artifact ``path``; streamed when it is large."""
    threshold = store.settings.large_file_threshold
    data: bytearray | None = None
    try:
        with open(local, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
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
    entry = {"digest": digest, "size": size, "storage": STORAGE_LARGE}
    return _Stored(path, entry, (f"{ARTIFACTS_DIR}/{path}", BLOB_MODE, sha), source)


def _record(client: TrackingClient, writer: RunWriter, items: list[_Stored]) -> None:
    """Journal the manifest entries of stored artifacts, refusing file/folder clashes.

    Large objects are freshened first, so a gc that started before this call cannot
    remove them (one that removed them already makes them be put again).
    """
    objects = object_store(client.store)
    for item in items:
        if item.entry["storage"] == STORAGE_LARGE and not objects.freshen(item.entry["digest"]):
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
                    f"cannot log {path!r}: {parent!r} is a file artifact of this run, "
                    "not a folder",
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
        new = itertools.islice(manifest, seen, None)
    else:
        folders, new = set(), iter(manifest)
    for existing in new:
        parts = existing.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    _FOLDER_CACHE[writer] = (state, len(manifest), folders)
    return folders


# --- logging ------------------------------------------------------------------------------


def log_artifact(
    client: TrackingClient,
    run_id: str,
    local_path: str | os.PathLike[str],
    artifact_path: str | None = None,
) -> str:
    """Log the local file ``local_path`` as ``<artifact_path>/<its name>``; return that path.

    Logging a path again replaces the artifact. A symbolic link is followed (its target's
    bytes are stored). Raises ValidationError for a path the rules refuse (absolute,
    ``..``, NUL, backslash, ``.git``), for a folder (use :func:`log_artifacts`) or a
    missing file, and for a path that clashes with a logged folder or file;
    ArtifactError if the file cannot be read or stored; RunNotFoundError for an unknown
    run. On any error nothing is recorded.
    """
    local = os.fspath(local_path)
    path = join_artifact_path(artifact_path, os.path.basename(os.path.abspath(local)))
    writer = client._writer(run_id)
    if os.path.isdir(local):
        raise ValidationError(
            f"{local!r} is a folder", hint="use log_artifacts to log a folder", path=local
        )
    if not os.path.exists(local):
        raise ValidationError(f"cannot log {local!r}: no such file", path=local)
    _check_clashes(writer, [path])
    _record(client, writer, [_store_file(client.store, path, local)])
    return path


def log_artifacts(
    client: TrackingClient,
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
    folder = _optional_path(artifact_path)
    writer = client._writer(run_id)
    files = walk_folder(local_dir)
    paths = [f"{folder}/{rel}" if folder else rel for rel, _ in files]
    _check_clashes(writer, paths)
    stored = [
        _store_file(client.store, path, real) for path, (_, real) in zip(paths, files, strict=True)
    ]
    _record(client, writer, stored)
    return paths


def log_bytes(client: TrackingClient, run_id: str, data: bytes, artifact_file: str) -> str:
    """Log ``data`` as the artifact ``artifact_file``; return its normalized path."""
    path = normalize_artifact_path(artifact_file)
    writer = client._writer(run_id)
    _check_clashes(writer, [path])
    _record(client, writer, [_store_bytes(client.store, path, bytes(data))])
    return path


def log_text(client: TrackingClient, run_id: str, text: str, artifact_file: str) -> str:
    """Log ``text`` (UTF-8) as the artifact ``artifact_file``; return its path."""
    if not isinstance(text, str):
        raise ValidationError(f"log_text needs a str, got {type(text).__name__}")
    return log_bytes(client, run_id, text.encode("utf-8"), artifact_file)


def _is_yaml(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def log_dict(client: TrackingClient, run_id: str, dictionary: Any, artifact_file: str) -> str:
    """Log ``dictionary`` as YAML (``.yaml``/``.yml``) or else as JSON; return its path.

    Keys keep their order. Raises ValidationError for values the format cannot hold.
    """
    path = normalize_artifact_path(artifact_file)
    try:
        if _is_yaml(path):
            import yaml

            text = yaml.safe_dump(
                dictionary, default_flow_style=False, sort_keys=False, allow_unicode=True
            )
        else:
            text = json.dumps(dictionary, indent=2, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ValidationError(f"cannot write {artifact_file!r}: {e}", path=artifact_file) from e
    except Exception as e:  # yaml.YAMLError (yaml is imported lazily here)
        raise ValidationError(f"cannot write {artifact_file!r}: {e}", path=artifact_file) from e
    return log_bytes(client, run_id, text.encode("utf-8"), path)


def _extension(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        raise ValidationError(
            f"artifact file {path!r} has no extension; it picks the format (e.g. .png)",
            path=path,
        )
    return ext


def figure_bytes(figure: Any, artifact_file: str, save_kwargs: dict[str, Any] | None = None) -> bytes:
    """Render a matplotlib or plotly figure in the format named by the file's extension.

    matplotlib: any format its ``savefig`` knows (png, svg, pdf, jpg, …). plotly:
    ``.html`` (plotly.js loaded from its CDN unless ``save_kwargs`` says otherwise),
    ``.json``, or an image format (needs kaleido). Raises ValidationError for other
    objects and unknown formats.
    """
    ext = _extension(artifact_file)
    kwargs = dict(save_kwargs or {})
    module = type(figure).__module__ or ""
    try:
        if module.startswith("plotly"):
            if ext in ("html", "htm"):
                kwargs.setdefault("include_plotlyjs", "cdn")
                kwargs.setdefault("full_html", True)
                return str(figure.to_html(**kwargs)).encode("utf-8")
            if ext == "json":
                return str(figure.to_json(**kwargs)).encode("utf-8")
            return bytes(figure.to_image(format=ext, **kwargs))
        if callable(getattr(figure, "savefig", None)):
            buf = io.BytesIO()
            figure.savefig(buf, format=ext, **kwargs)
            return buf.getvalue()
    except (ValueError, TypeError) as e:
        raise ValidationError(
            f"cannot save the figure as {artifact_file!r}: {e}", path=artifact_file
        ) from e
    raise ValidationError(
        f"log_figure needs a matplotlib or plotly figure, got {type(figure).__name__}"
    )


def log_figure(
    client: TrackingClient,
    run_id: str,
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
) -> str:
    """Log a matplotlib or plotly figure rendered by :func:`figure_bytes`; return its path."""
    path = normalize_artifact_path(artifact_file)
    return log_bytes(client, run_id, figure_bytes(figure, path, save_kwargs), path)


_PIL_FORMATS = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP",
    "tif": "TIFF", "tiff": "TIFF", "webp": "WEBP",
}


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """Encode a numpy array or PIL image in the format named by the file's extension.

    Arrays are ``HxW`` (grayscale), ``HxWx1``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA);
    integers must lie in 0–255 and floats in 0.0–1.0 (scaled to 0–255); booleans become
    0 and 255. Anything else raises ValidationError; MissingDependencyError without Pillow.
    """
    ext = _extension(artifact_file)
    fmt = _PIL_FORMATS.get(ext)
    if fmt is None:
        raise ValidationError(
            f"cannot write an image as {artifact_file!r}; use one of "
            f"{', '.join(sorted(_PIL_FORMATS))}",
            path=artifact_file,
        )
    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependencyError("log_image needs Pillow", hint=_PLOTS_HINT) from e
    if isinstance(image, Image.Image):
        img = image
    elif hasattr(image, "__array_interface__") or type(image).__module__.startswith("numpy"):
        img = Image.fromarray(_to_uint8(image))
    else:
        raise ValidationError(
            f"log_image needs a numpy array or a PIL image, got {type(image).__name__}"
        )
    if fmt == "JPEG" and img.mode not in ("L", "RGB", "CMYK"):
        img = img.convert("RGB")  # JPEG has no alpha channel
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError) as e:
        raise ValidationError(f"cannot save the image as {artifact_file!r}: {e}") from e
    return buf.getvalue()


def _to_uint8(array: Any) -> Any:
    import numpy as np

    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValidationError(
            f"an image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValidationError("an image array must not be empty")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValidationError("integer image values must lie in 0..255")
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise ValidationError("float image values must be finite and lie in 0.0..1.0")
        return np.round(arr * 255.0).astype(np.uint8)
    raise ValidationError(f"cannot make an image of an array of dtype {arr.dtype}")


def log_image(client: TrackingClient, run_id: str, image: Any, artifact_file: str) -> str:
    """Log a numpy array or PIL image encoded by :func:`image_bytes`; return its path."""
    path = normalize_artifact_path(artifact_file)
    return log_bytes(client, run_id, image_bytes(image, path), path)


# --- reading ------------------------------------------------------------------------------


def manifest(client: TrackingClient, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's artifact manifest (path -> entry), live journals included.

    A deleted run (in the trash) is read from its last commit. RunNotFoundError if
    there is no such run.
    """
    try:
        _, state = client._state(run_id)
    except RunNotFoundError:
        trash = client.store.trash_tip(run_id)
        if trash is None:
            raise
        state, _, _ = client.store.read_run_commit(trash)
    return dict(state.artifacts)


def _optional_path(path: str | None) -> str:
    """Normalize a folder argument where None, "" and "." mean the root ("")."""
    if path is None or path in ("", ".", "/"):
        return ""
    return normalize_artifact_path(path)


def list_artifacts(client: TrackingClient, run_id: str, path: str | None = None) -> list[FileInfo]:
    """The files and folders directly inside the folder ``path`` (the root by default).

    Sorted by path; paths are relative to the run's artifact root. A path that is a
    file or does not exist gives ``[]`` (as MLflow does).
    """
    prefix = _optional_path(path)
    children: dict[str, FileInfo] = {}
    for name, entry in manifest(client, run_id).items():
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
            children[full] = FileInfo(full, False, int(entry.get("size", 0)))
    return [children[k] for k in sorted(children)]


def _select(entries: dict[str, dict[str, Any]], path: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The entries at or under ``path`` ("" = all); ArtifactNotFoundError if none."""
    if not path:
        return entries
    if path in entries:
        return {path: entries[path]}
    found = {p: e for p, e in entries.items() if p.startswith(path + "/")}
    if not found:
        raise ArtifactNotFoundError(f"run {run_id} has no artifact {path!r}", path=path, run_id=run_id)
    return found


def _checked_path(path: str) -> str:
    """A manifest path (possibly from someone else's store) checked before it names a file."""
    try:
        return normalize_artifact_path(path)
    except ValidationError as e:
        raise CorruptObjectError(
            f"the artifact manifest holds a path that the rules refuse: {e.message}", path=path
        ) from None


def _git_bytes(store: Store, path: str, entry: dict[str, Any]) -> bytes:
    data = store.objects.read_blob(str(entry["blob"]))
    if hash_bytes(data) != entry.get("digest"):
        raise CorruptObjectError(
            f"artifact {path!r} (git blob {entry['blob']}) does not match its digest "
            f"{entry.get('digest')}",
            path=path,
            digest=entry.get("digest"),
        )
    return data


def read_bytes(client: TrackingClient, run_id: str, path: str) -> bytes:
    """The verified bytes of the artifact file ``path``.

    ArtifactNotFoundError if the run has no such file (or its large object is not in
    this store), CorruptObjectError if the stored bytes do not match the digest.
    """
    norm = normalize_artifact_path(path)
    entry = manifest(client, run_id).get(norm)
    if entry is None:
        raise ArtifactNotFoundError(
            f"run {run_id} has no artifact file {norm!r}", path=norm, run_id=run_id
        )
    if entry.get("storage") == STORAGE_LARGE:
        with object_store(client.store).open(str(entry["digest"])) as f:
            return f.read()
    return _git_bytes(client.store, norm, entry)


def load_text(client: TrackingClient, run_id: str, path: str) -> str:
    """The artifact file ``path`` decoded as UTF-8 (ArtifactError if it is not text)."""
    data = read_bytes(client, run_id, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtifactError(f"artifact {path!r} is not UTF-8 text: {e}", path=path) from e


def load_dict(client: TrackingClient, run_id: str, path: str) -> Any:
    """The artifact file ``path`` parsed as YAML (``.yaml``/``.yml``) or else as JSON."""
    text = load_text(client, run_id, path)
    try:
        if _is_yaml(path):
            from vtrack.store.record import load_yaml

            return load_yaml(text)
        return json.loads(text)
    except ValueError as e:
        raise ArtifactError(f"artifact {path!r} cannot be parsed: {e}", path=path) from e
    except Exception as e:  # yaml.YAMLError
        raise ArtifactError(f"artifact {path!r} cannot be parsed: {e}", path=path) from e


def download_artifacts(
    client: TrackingClient,
    run_id: str,
    path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
) -> str:
    """Copy the artifact file or folder ``path`` (all artifacts by default) to ``dst_path``.

    Returns the local path of what was downloaded: ``<dst_path>/<path>`` (``dst_path``
    itself for the whole tree). ``dst_path`` is created if missing; by default it is a
    new temporary folder. Existing files are replaced. Each file appears atomically and
    only with verified bytes: a digest mismatch raises CorruptObjectError (that file is
    not written). ArtifactNotFoundError if there is no such artifact.
    """
    norm = _optional_path(path)
    entries = _select(manifest(client, run_id), norm, run_id)
    dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="vtrack-artifacts-"))
    objects = object_store(client.store)
    try:
        dst.mkdir(parents=True, exist_ok=True)
        for name in sorted(entries):
            entry = entries[name]
            target = dst.joinpath(*_checked_path(name).split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.get("storage") == STORAGE_LARGE:
                objects.copy_to(str(entry["digest"]), target)
            else:
                from vtrack.store.fileio import atomic_write

                atomic_write(target, _git_bytes(client.store, name, entry))
    except OSError as e:
        raise ArtifactError(f"cannot write artifacts to {os.fspath(dst)!r}: {e}") from e
    local = dst.joinpath(*norm.split("/")) if norm else dst
    return os.fspath(local)


# --- URIs ---------------------------------------------------------------------------------


def split_runs_uri(client: TrackingClient, uri: str) -> tuple[str, str]:
    """Split ``runs:/<run>/<path>`` into ``(run id, normalized path)``; path "" for the root.

    ``<run>`` is anything :func:`vtrack.resolve.resolve_run_id` accepts (a full id, a
    unique id prefix, a run name, ``@``; a deleted run only by its full id). ValidationError for a URI
    of another form, RunNotFoundError or AmbiguousRunSpecError from the resolver.
    """
    from vtrack.resolve import parse_runs_uri

    run_id, path = parse_runs_uri(uri, client)
    return run_id, _optional_path(path)


def locate(
    client: TrackingClient,
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
        return split_runs_uri(client, artifact_uri)
    rid = run_id if run_id is not None else default_run_id
    if rid is None:
        raise ValidationError(
            "name the artifacts with artifact_uri='runs:/<run>/<path>' or run_id=",
            hint="or call this inside an active run",
        )
    return rid, _optional_path(artifact_path)
