"""Re-check recorded dataset inputs against what is on disk now.

:func:`check_input` takes one provenance entry (as made by
:func:`vtrack.datasets.describe_input`, possibly read back from ``inputs.yaml``) and
answers with a status:

- ``unchanged`` — the bytes on disk hash to the recorded digest (permissions, owner
  and timestamps do not matter, only content and, for folders, the file list);
- ``changed`` — content differs; for a folder, ``added`` / ``removed`` / ``modified``
  list relative paths (a rename shows as one removed and one added path);
- ``missing`` — nothing is at the recorded path any more;
- ``unverifiable`` — there is nothing local to compare with (a remote URI, or a
  DataFrame/array logged without a local source file).

This module is pure logic over entries and the filesystem; reading entries from runs
and answering lineage questions live above it, in :mod:`vtrack.provenance`. (It is not
called ``audit``: ``vtrack.audit`` is the public function, and a submodule of that name
would replace it on the package as soon as it was imported.)
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterable, Mapping
from typing import Any

from vtrack import progress
from vtrack.datasets.folders import hash_folder, list_folder
from vtrack.datasets.manifest import folder_digest, manifest_from_tsv
from vtrack.entities import DatasetInput, Digest
from vtrack.errors import DatasetError, ValidationError
from vtrack.statcache import BaseStatCache, NoStatCache, stat_regular

UNCHANGED = "unchanged"
CHANGED = "changed"
MISSING = "missing"
UNVERIFIABLE = "unverifiable"

Manifest = Iterable[tuple[str, int, str]]


def check_input(
    entry: DatasetInput | Mapping[str, Any],
    files_manifest: Manifest | str | None = None,
    cache: BaseStatCache | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Re-check one recorded input entry against the disk; never modifies anything.

    ``files_manifest`` is a folder's per-file manifest (``(relpath, size, digest)``
    tuples or the TSV text); when omitted the entry's own ``files`` is used, and
    without either a folder is compared by its digest alone (no per-file detail).
    ``cache`` is a stat cache that spares rehashing unchanged files. ``path``
    overrides where to look (e.g. the data moved or another machine mounts it
    elsewhere); by default the entry's ``path``, else its ``source``.

    Returns ``{"name", "source", "kind", "status", "added", "removed", "modified",
    "expected_digest", "actual_digest"}``; ``actual_digest`` is None when it was not
    fully computed (missing, unverifiable, or a folder found changed from its manifest).

    Raises ValidationError if the entry is malformed or its manifest does not match
    its digest, DatasetError naming a file that exists but cannot be read.
    """
    e = entry if isinstance(entry, DatasetInput) else DatasetInput.from_record(entry)
    kind = e.kind
    the_cache = cache if cache is not None else NoStatCache()
    result: dict[str, Any] = {
        "name": e.name,
        "source": e.source,
        "kind": kind,
        "status": UNVERIFIABLE,
        "added": [],
        "removed": [],
        "modified": [],
        "expected_digest": _text(e.digest),
        "actual_digest": None,
    }
    if kind == "file":
        _check_file(result, _where(e, path), _text(e.digest), e.size, the_cache)
    elif kind == "folder":
        manifest = files_manifest if files_manifest is not None else e.files
        _check_folder(result, e, _where(e, path), manifest, the_cache)
    elif kind in ("dataframe", "array"):
        if e.source_digest and (path is not None or e.path):
            result["expected_digest"] = _text(e.source_digest)
            _check_file(result, _where(e, path), _text(e.source_digest), e.source_size, the_cache)
    elif kind != "uri":
        raise ValidationError(f"input entry {e.name!r} has unknown kind {kind!r}")
    return result


def _text(digest: Digest | None) -> str | None:
    return None if digest is None else str(digest)


def _where(entry: DatasetInput, path: str | os.PathLike[str] | None) -> str:
    where = path if path is not None else entry.path or entry.source
    if not where:
        raise ValidationError(f"input entry {entry.name!r} records no path to check")
    return os.path.abspath(os.fspath(where))


def _check_file(
    result: dict[str, Any], where: str, digest: str | None, size: int | None, cache: BaseStatCache
) -> None:
    if not digest:
        raise ValidationError(f"input entry {result['name']!r} records no digest")
    try:
        st = os.stat(where)
    except FileNotFoundError:
        result["status"] = MISSING
        return
    except OSError as exc:
        raise DatasetError(f"cannot read input file {where}: {exc.strerror}", path=where) from exc
    if stat_mod.S_ISDIR(st.st_mode):
        result["status"] = CHANGED  # a folder now stands where the file was
        return
    if size is not None and stat_mod.S_ISREG(st.st_mode) and st.st_size != size:
        result["status"] = CHANGED
        return
    actual, _ = cache.digest(where)
    result["actual_digest"] = actual
    result["status"] = UNCHANGED if actual == digest else CHANGED


def _check_folder(
    result: dict[str, Any],
    entry: DatasetInput,
    root: str,
    manifest: Manifest | str | None,
    cache: BaseStatCache,
) -> None:
    digest = _text(entry.digest)
    if not digest:
        raise ValidationError(f"input entry {result['name']!r} records no digest")
    if not os.path.isdir(root):
        result["status"] = CHANGED if os.path.lexists(root) else MISSING
        return
    exclude = list(entry.exclude) if entry.exclude else None
    if manifest is None:
        actual = folder_digest(hash_folder(root, exclude=exclude, cache=cache))
        result["actual_digest"] = actual
        result["status"] = UNCHANGED if actual == digest else CHANGED
        return

    recorded = manifest_from_tsv(manifest) if isinstance(manifest, str) else list(manifest)
    if folder_digest(recorded) != digest:
        raise ValidationError(
            f"the file manifest of input {result['name']!r} does not match its digest {digest}",
            hint="the run record is damaged or the manifest belongs to another input",
        )
    want = {rel: (int(size), d) for rel, size, d in recorded}
    have = dict(list_folder(root, exclude))
    added = sorted(set(have) - set(want))
    removed = sorted(set(want) - set(have))
    modified: list[str] = []
    to_hash: list[str] = []
    to_hash_stats: list[os.stat_result] = []
    for rel in sorted(set(have) & set(want)):
        try:
            st = stat_regular(have[rel])
        except DatasetError as exc:
            if exc.fields.get("reason") == "missing":  # e.g. now a dangling link
                removed.append(rel)
                continue
            raise
        if st.st_size != want[rel][0]:
            modified.append(rel)
        else:
            to_hash.append(rel)
            to_hash_stats.append(st)
    task = f"checking {os.path.basename(root)}"
    with progress.task(task, len(to_hash)) as update, cache.batch():
        digests = cache.digest_many(
            [have[rel] for rel in to_hash],
            progress=lambda files, _bytes: update(files),
            stats=to_hash_stats,
        )
    modified.extend(rel for rel, (d, _) in zip(to_hash, digests, strict=True) if d != want[rel][1])
    result["added"], result["removed"], result["modified"] = (
        added,
        sorted(removed),
        sorted(modified),
    )
    if added or removed or modified:
        result["status"] = CHANGED
    else:
        result["status"] = UNCHANGED
        result["actual_digest"] = digest
