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

Every function takes the :class:`~vtrack.store.runs.RunRepository` of the store that
holds the run; the client and the fluent API are thin wrappers over this module.

Modules: :mod:`~vtrack.artifacts.storage` (storage kinds, the object store handle),
:mod:`~vtrack.artifacts.write` (logging), :mod:`~vtrack.artifacts.read` (listing,
reading, downloading, URIs) and :mod:`~vtrack.artifacts.render` (dicts, figures and
images as bytes). Everything public is re-exported here.

``download_artifacts``, ``list_artifacts``, ``load_text`` and ``load_dict`` also answer
MLflow's ``mlflow.artifacts`` calls (``artifact_uri=``, ``run_id=``, ``artifact_path=``,
``dst_path=``) against the fluent API's store; given a RunRepository first they are the
service functions of :mod:`~vtrack.artifacts.read`.
"""

from __future__ import annotations

from typing import Any

from vtrack.artifacts import read as _read
from vtrack.artifacts.read import (
    artifact_entry,
    locate,
    manifest,
    open_artifact,
    read_bytes,
    split_runs_uri,
)
from vtrack.artifacts.render import dict_bytes, figure_bytes, image_bytes
from vtrack.artifacts.storage import (
    ARTIFACTS_DIR,
    STORAGE_GIT,
    STORAGE_LARGE,
    FileInfo,
    object_store,
    pointer_bytes,
)
from vtrack.artifacts.write import (
    log_artifact,
    log_artifacts,
    log_bytes,
    log_dict,
    log_figure,
    log_image,
    log_text,
)
from vtrack.store.objects import ObjectStore
from vtrack.store.runs import RunRepository

__all__ = [
    "ARTIFACTS_DIR",
    "STORAGE_GIT",
    "STORAGE_LARGE",
    "FileInfo",
    "ObjectStore",
    "artifact_entry",
    "dict_bytes",
    "download_artifacts",
    "figure_bytes",
    "image_bytes",
    "list_artifacts",
    "load_dict",
    "load_text",
    "locate",
    "log_artifact",
    "log_artifacts",
    "log_bytes",
    "log_dict",
    "log_figure",
    "log_image",
    "log_text",
    "manifest",
    "object_store",
    "open_artifact",
    "pointer_bytes",
    "read_bytes",
    "split_runs_uri",
]


def _fluent() -> Any:
    from vtrack import fluent  # MLflow's module-level form reads through the fluent store

    return fluent


def download_artifacts(*args: Any, **kw: Any) -> Any:
    """Service form ``(repo, run_id, path, dst)``, or MLflow's ``(artifact_uri=, run_id=,
    artifact_path=, dst_path=)``: download and return the local path."""
    if args and isinstance(args[0], RunRepository):
        return _read.download_artifacts(*args, **kw)
    return _fluent().download_artifacts(*args, **kw)


def list_artifacts(*args: Any, **kw: Any) -> Any:
    """Service form ``(repo, run_id, path)``, or MLflow's ``(artifact_uri=, run_id=,
    artifact_path=)``: the FileInfo entries directly inside a folder."""
    if args and isinstance(args[0], RunRepository):
        return _read.list_artifacts(*args, **kw)
    return _fluent().list_artifacts(*args, **kw)


def load_text(*args: Any, **kw: Any) -> Any:
    """Service form ``(repo, run_id, path)``, or MLflow's ``(artifact_uri)``: the file's text."""
    if args and isinstance(args[0], RunRepository):
        return _read.load_text(*args, **kw)
    return _fluent().load_text(*args, **kw)


def load_dict(*args: Any, **kw: Any) -> Any:
    """Service form ``(repo, run_id, path)``, or MLflow's ``(artifact_uri)``: the parsed file."""
    if args and isinstance(args[0], RunRepository):
        return _read.load_dict(*args, **kw)
    return _fluent().load_dict(*args, **kw)
