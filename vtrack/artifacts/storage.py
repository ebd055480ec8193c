"""Where artifact bytes live: storage kinds, the large-object store handle, pointer blobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vtrack.entities import STORAGE_GIT as STORAGE_GIT  # re-exported: artifacts' storage kinds
from vtrack.entities import STORAGE_LARGE as STORAGE_LARGE
from vtrack.store.objects import ObjectStore

if TYPE_CHECKING:
    from vtrack.store import Store

#: Folder of the run record (``.vtrack/``) that holds artifact blobs and pointers.
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class FileInfo:
    """One entry of ``list_artifacts``: a file (with its size) or a folder (size None)."""

    path: str
    is_dir: bool
    file_size: int | None


def object_store(store: Store) -> ObjectStore:
    """The large-object store of ``store`` (``.git/vtrack/objects``)."""
    return ObjectStore.local(
        store.location.vtrack_dir / "objects", fsync=store.settings.fsync_objects
    )


def pointer_bytes(digest: str, size: int) -> bytes:
    """The text of the pointer blob that stands in the run tree for a large artifact."""
    return (
        "# vtrack large artifact: the bytes are in .git/vtrack/objects, not in git.\n"
        "# Fetch them with: vtrack pull (shared stores) or vtrack.download_artifacts.\n"
        f"digest: {digest}\nsize: {size}\n"
    ).encode()
