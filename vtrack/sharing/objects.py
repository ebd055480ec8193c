"""Large objects of shared runs: which a run needs, uploading them, fetching them on read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vtrack import gitcmd, progress
from vtrack.errors import ArtifactNotFoundError, CorruptObjectError
from vtrack.store import Store
from vtrack.store.record import RECORD_DIR, load_yaml

if TYPE_CHECKING:
    from vtrack.store.transfer import TransferReport

#: ``storage`` of a manifest entry whose bytes are in the large-object store.
_LARGE = "large"


def read_paths(store: Store, names: list[str]) -> dict[str, bytes | None]:
    """``{"<commit>:<path>": content or None}`` through one pipelined ``git cat-file``."""
    found = gitcmd.batch_objects(store.location.git_dir, names, "reading run records")
    return {name: None if got is None else got[1] for name, got in zip(names, found, strict=True)}


def large_objects(store: Store, commits: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """``{digest: [(run_id, artifact path)]}`` of the large objects ``{run_id: commit}`` reference."""
    names = {run_id: f"{sha}:{RECORD_DIR}/artifacts.yaml" for run_id, sha in commits.items()}
    blobs = read_paths(store, sorted(set(names.values())))
    out: dict[str, list[tuple[str, str]]] = {}
    for run_id, name in names.items():
        data = blobs.get(name)
        manifest: Any = load_yaml(data) if data else None
        if not isinstance(manifest, dict):
            continue
        for path, entry in manifest.items():
            if (
                isinstance(entry, dict)
                and entry.get("storage") == _LARGE
                and isinstance(entry.get("digest"), str)
            ):
                out.setdefault(entry["digest"], []).append((run_id, str(path)))
    return out


def upload(
    store: Store, local: Any, remote: Any, needed: dict[str, list[tuple[str, str]]]
) -> TransferReport:
    """Copy the objects in ``needed`` that ``remote`` lacks, with a progress report."""
    from vtrack.store.transfer import transfer

    return transfer(
        local, remote, list(needed),
        progress=lambda done, total: progress.report("uploading large objects", done, total),
    )  # fmt: skip


def fetch_missing(store: Store, local: Any, digest: str, run_id: str, path: str) -> None:
    """Fetch ``digest`` (needed by ``run_id``'s artifact ``path``) from a remote's object store.

    Remotes are tried in order: the default remote first, then the others. Raises
    CorruptObjectError naming the run, the path and the store when a remote holds bytes
    that do not match the digest, ArtifactNotFoundError (naming them too) when no remote
    has the object.
    """
    from vtrack.sharing import remotes
    from vtrack.store.transfer import transfer

    names = remotes.remote_names(store)
    first = remotes.default_remote(store)
    order = ([first] if first in names else []) + [n for n in names if n != first]
    tried = []
    for name in order:
        remote = remotes.resolve(store, name)
        objects = remote.object_store(store)
        if objects is None:
            continue
        tried.append(f"{name} ({remote.objects_url})")
        report = transfer(objects, local, [digest], jobs=1)
        if digest in report.corrupt:
            raise CorruptObjectError(
                f"run {run_id}: artifact {path!r} is corrupt in the object store of remote "
                f"{name!r} ({remote.objects_url}): {report.corrupt[digest]}",
                hint="push the run again from a clone that has the good bytes",
                run_id=run_id, path=path, digest=digest,
            )  # fmt: skip
        if local.exists(digest):
            return
    where = (
        "; tried the object store of " + ", ".join(tried)
        if tried
        else "; no remote of this clone has an object store to fetch them from"
    )
    raise ArtifactNotFoundError(
        f"run {run_id}: the bytes of artifact {path!r} ({digest}) are not in the object store "
        f"of this clone ({local.root}){where}",
        hint="fetch them from the object store the run was pushed to: configure it here with "
             "'vtrack remote set-objects REMOTE URL' (the clone that made the run pushes them "
             "with 'vtrack push')",
        run_id=run_id, path=path, digest=digest,
    )  # fmt: skip
