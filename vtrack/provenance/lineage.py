"""Lineage (``vtrack lineage``): which runs consumed this file, folder or digest."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vtrack.errors import DatasetError, ValidationError
from vtrack.hashing import ALGORITHM

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.runs import RunRepository

from vtrack.provenance.inputs import (
    CHANGED,
    DIGEST_ARG,
    MIN_DIGEST_PREFIX,
    MISSING,
    UNCHANGED,
    repo_path,
    stat_cache,
)


def lineage(repo: RunRepository, target: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run whose inputs include ``target``, newest first.

    ``target`` is a digest (``xxh3-128:<hex>``, or a prefix of at least
    :data:`MIN_DIGEST_PREFIX` hex digits) or a path (need not exist any more): a file
    matches runs that logged it directly, inside a logged folder, or as the source
    file of a DataFrame or array; a folder matches runs that logged it or anything
    below it, and folder inputs above it whose files below it they read. Paths inside
    the store's working tree also match runs recorded in other clones (through
    ``repo_path``).

    Returns one dict per (run, input): ``run_id``, ``run_name``, ``experiment_id``,
    ``status`` (the run's), ``start_time``, ``name`` and ``context`` of the input,
    ``kind``, ``source``, ``path`` (the input's recorded path), ``files`` (the matching
    files inside a folder input that holds the target, as paths relative to it; empty
    when the input itself matched), ``digest`` (the input's when it matched itself, else
    the matching file's when there is one) and ``data_status``: for a path naming one
    file, ``unchanged`` / ``changed`` / ``missing`` comparing the file on disk now with
    what the run saw; None otherwise. Active runs only.
    """
    raw = os.fspath(target)
    if not isinstance(raw, str) or not raw:
        raise ValidationError(f"lineage needs a path or a digest, not {target!r}")
    index = repo.index()
    store = repo.store
    m = DIGEST_ARG.fullmatch(raw)
    if m is not None:
        if len(m.group(1)) < MIN_DIGEST_PREFIX:
            raise ValidationError(
                f"digest {raw!r} is too short",
                hint=f"give at least {MIN_DIGEST_PREFIX} hex digits after '{ALGORITHM}:'",
            )
        return _lineage_rows(index.input_uses(digest=raw), None)
    from vtrack.store.index_inputs import loc_of

    path = os.path.abspath(raw)
    loc = loc_of(path, repo_path(store, path))
    folder = os.path.isdir(path)
    hits = index.input_uses(loc=loc, under=folder)
    current = None
    if hits and not folder:
        current = _current_digest(store, path)
    return _lineage_rows(hits, current)


def _current_digest(store: Store, path: str) -> str | None:
    """The file's digest now, ``""`` when it is missing, None when it cannot be read."""
    try:
        with stat_cache(store) as cache:
            return cache.digest(path)[0]
    except DatasetError as exc:
        if exc.fields.get("reason") == "missing":
            return ""
        return None


def _lineage_rows(hits: Sequence[Sequence[Any]], current: str | None) -> list[dict[str, Any]]:
    """Group index matches by (run, input) and add ``data_status`` (see :func:`lineage`).

    ``hits`` are tuples with the fields of :data:`vtrack.store.index_inputs.USE_FIELDS`.
    """
    if all(h[6] == 0 and h[7] is None for h in hits):  # inputs matched themselves only
        return _direct_rows(hits, current)
    grouped: dict[tuple[str, int], dict[str, Any]] = {}
    itself: dict[tuple[str, int], str | None] = {}
    file_digests: dict[tuple[str, int], list[str | None]] = {}
    for (
        run_id,
        run_name,
        exp_id,
        status,
        start,
        idx,
        part,
        rel,
        dig,
        name,
        ctx,
        kind,
        source,
        path,
    ) in hits:
        key = (run_id, idx)
        row = grouped.get(key)
        if row is None:
            row = grouped[key] = {
                "run_id": run_id, "run_name": run_name, "experiment_id": exp_id,
                "status": status, "start_time": start, "name": name, "context": ctx,
                "kind": kind, "source": source, "path": path, "files": [], "digest": None,
                "data_status": None,
            }  # fmt: skip
        if rel is not None:  # a file inside a folder input
            row["files"].append(rel)
            file_digests.setdefault(key, []).append(dig)
        elif part == 1:  # the local source file of a DataFrame or array
            file_digests.setdefault(key, []).append(dig)
        else:  # the input itself
            itself[key] = dig
            if kind == "file":
                file_digests.setdefault(key, []).append(dig)
    for key, row in grouped.items():
        files = file_digests.get(key, ())
        one_file = files[0] if len(files) == 1 else None
        row["digest"] = itself[key] if key in itself else one_file
        if len(row["files"]) > 1:
            row["files"].sort()
        if current is not None and one_file:
            if current == "":
                row["data_status"] = MISSING
            else:
                row["data_status"] = UNCHANGED if current == one_file else CHANGED
    rows = list(grouped.values())
    rows.sort(key=lambda r: (-(r["start_time"] or 0), r["run_id"], r["name"] or ""))
    return rows


def _direct_rows(hits: Sequence[Sequence[Any]], current: str | None) -> list[dict[str, Any]]:
    """:func:`_lineage_rows` when every match is an input itself (one per run and input)."""

    def status(kind: str | None, digest: str | None) -> str | None:
        if current is None or kind != "file" or not digest:
            return None
        if current == "":
            return MISSING
        return UNCHANGED if current == digest else CHANGED

    rows = [
        {
            "run_id": run_id, "run_name": run_name, "experiment_id": exp_id, "status": st,
            "start_time": start, "name": name, "context": ctx, "kind": kind, "source": source,
            "path": path, "files": [], "digest": dig, "data_status": status(kind, dig),
        }
        for run_id, run_name, exp_id, st, start, _i, _p, _r, dig, name, ctx, kind, source, path
        in hits
    ]  # fmt: skip
    rows.sort(key=lambda r: (-(r["start_time"] or 0), r["run_id"], r["name"] or ""))
    return rows
