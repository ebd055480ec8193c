"""Logging dataset inputs: describe the data, hash it through the stat cache, record it.

An input is identified by ``(name, context)``; logging it again with the same content
records nothing, other content raises InputConflictError. Everything is hashed before
anything is recorded; a folder's manifest blob is written (in the writer's pending
pack) before the journaled entry that names it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vtrack import validation as v
from vtrack.entities import DatasetInput, RunInputs
from vtrack.errors import InputConflictError, ValidationError
from vtrack.hashing import ALGORITHM
from vtrack.store.gitobj import BLOB_MODE

if TYPE_CHECKING:
    from vtrack.statcache import BaseStatCache, StatCache
    from vtrack.store import Store
    from vtrack.store.runs import RunRepository

# Hashing, describing and checking (datasets, drift, statcache) are imported inside the
# functions that use them: ``vtrack lineage`` answers from the index without them.
UNCHANGED, CHANGED, MISSING = (
    "unchanged",
    "changed",
    "missing",
)  # vtrack.provenance.drift's statuses

#: The stat cache file inside ``<git dir>/vtrack/``.
STATCACHE_FILE = "statcache.sqlite"
#: Folder of the run record (``.vtrack/``) that holds folder manifests.
INPUTS_DIR = "inputs"
#: Statuses that count as drift (``vtrack audit`` exits 1).
DRIFT_STATUSES = (CHANGED, MISSING)
#: Hex digits a digest prefix given to :func:`lineage` must have at least.
MIN_DIGEST_PREFIX = 4

_SPEC_KEYS = frozenset({"data", "name", "context", "source", "tags", "exclude"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
DIGEST_ARG = re.compile(rf"{re.escape(ALGORITHM)}:([0-9a-f]*)")


def stat_cache(store: Store) -> StatCache:
    """The store's stat cache (``.git/vtrack/statcache.sqlite``); close it after use."""
    from vtrack.statcache import StatCache

    return StatCache(store.location.vtrack_dir / STATCACHE_FILE)


# --- logging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Described:
    """An input described and validated, ready to be recorded."""

    entry: DatasetInput
    manifest_tsv: str | None


def manifest_path(name: str, context: str | None, taken: Iterable[str] = ()) -> str:
    """Where a folder input's manifest goes under ``.vtrack/``: ``inputs/<name>.tsv``.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` are written ``%XX``
    (UTF-8), so every name maps to its own file name. When another input of the run
    (same name, other context) already holds that path, ``@<context>`` is added
    before ``.tsv``.
    """
    path = f"{INPUTS_DIR}/{_safe(name)}.tsv"
    if path in set(taken):
        path = f"{INPUTS_DIR}/{_safe(name)}@{_safe(context or '')}.tsv"
    return path


def _safe(text: str) -> str:
    out = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)
    return "%2E" + out[1:] if out.startswith(".") else out


def log_input(
    repo: RunRepository,
    run_id: str,
    data: Any,
    name: str | None = None,
    context: str | None = None,
    source: str | os.PathLike[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    exclude: Sequence[str] | None = None,
) -> DatasetInput:
    """Record ``data`` as an input of run ``run_id``; return the entry as recorded.

    ``data`` is a path to a file or folder, a remote URI (recorded without hashing), a
    pandas DataFrame or Series, or a numpy array (see
    :func:`vtrack.datasets.describe_input`). ``name`` and ``context`` follow the key
    rules of :func:`vtrack.validation.validate_key` (a name may not hold ``/``); the
    name defaults to the file or folder name. ``exclude`` takes gitignore-style
    patterns for folders.

    Raises InputConflictError if the run already has this name and context with other
    content (nothing is recorded), DatasetError naming a path that is missing or
    unreadable, ValidationError for a bad argument, RunNotFoundError for an unknown run.
    """
    spec = {"data": data, "name": name, "context": context, "source": source, "tags": tags,
            "exclude": exclude}  # fmt: skip
    return log_inputs(repo, run_id, [spec])[0]


def log_inputs(repo: RunRepository, run_id: str, inputs: Iterable[Any]) -> list[DatasetInput]:
    """Record several inputs at once; all are described and checked before any is recorded.

    Each item is either the data itself or a mapping with ``data`` and optionally
    ``name``, ``context``, ``source``, ``tags`` and ``exclude`` (the arguments of
    :func:`log_input`). Returns the recorded entries in order. Errors as for
    :func:`log_input`; on any error nothing of the call is recorded.
    """
    specs = [_spec(item) for item in _as_list(inputs)]
    run_id = v.validate_run_id(run_id)
    writer = repo.writer(run_id)  # an unknown run fails before anything is hashed
    store = repo.store
    described: list[_Described] = []
    with stat_cache(store) as cache:
        for spec in specs:
            described.append(_describe(store, spec, cache))
    out: list[DatasetInput] = []
    with writer.lock:
        writer.check_open()
        recorded = RunInputs.from_record(writer.state.inputs, {}).datasets
        existing = {e.key: e for e in recorded}
        taken = {e.manifest for e in recorded if e.manifest}
        todo: list[_Described] = []
        for d in described:
            old = existing.get(d.entry.key)
            if old is not None:
                _check_same_content(old, d.entry)
                out.append(old)
                continue
            if d.manifest_tsv is not None:
                where = manifest_path(d.entry.name, d.entry.context, taken)
                d = _Described(replace(d.entry, manifest=where), d.manifest_tsv)
                taken.add(where)
            existing[d.entry.key] = d.entry
            todo.append(d)
            out.append(d.entry)
        manifests: list[tuple[str, int, str] | None] = []
        with writer.pending():  # manifest blobs in a kept pack until the next checkpoint
            for d in todo:
                manifest = None
                if d.manifest_tsv is not None:
                    sha = store.objects.write_blob(d.manifest_tsv.encode("utf-8"))
                    manifest = (str(d.entry.manifest), BLOB_MODE, sha)
                manifests.append(manifest)
        for d, manifest in zip(todo, manifests, strict=True):
            writer.add_input(d.entry, manifest)
    return out


def _as_list(inputs: Iterable[Any]) -> list[Any]:
    one_input = isinstance(inputs, (str, bytes, os.PathLike, Mapping)) or hasattr(inputs, "shape")
    if one_input or not isinstance(inputs, Iterable):  # a DataFrame or array is one input
        raise ValidationError(
            f"log_inputs takes a list of inputs, not {type(inputs).__name__}",
            hint="use log_input for one input",
        )
    return list(inputs)


def _spec(item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        return {"data": item}
    unknown = set(item) - _SPEC_KEYS
    if unknown or "data" not in item:
        raise ValidationError(
            f"an input mapping needs 'data' and may have {', '.join(sorted(_SPEC_KEYS - {'data'}))}"
            + (f"; unknown: {', '.join(sorted(map(str, unknown)))}" if unknown else ""),
        )
    return dict(item)


def _describe(store: Store, spec: dict[str, Any], cache: BaseStatCache) -> _Described:
    from vtrack.datasets import describe_input, manifest_to_tsv

    name = spec.get("name")
    context = spec.get("context")
    if name is not None:
        v.validate_key(name, "input name")
    if context is not None:
        v.validate_key(context, "input context")
    described = DatasetInput.from_record(describe_input(
        spec["data"], name=name, context=context, source=spec.get("source"),
        tags=spec.get("tags"), cache=cache, exclude=spec.get("exclude"),
    ))  # fmt: skip
    files = described.files
    tsv = manifest_to_tsv(list(files)) if files is not None else None
    rel = repo_path(store, described.path)
    entry = replace(described, files=None, repo_path=rel)
    if described.path:
        entry = _unmirrored(entry, described.path)
    return _Described(entry, tsv)


def _unmirrored(entry: DatasetInput, path: str) -> DatasetInput:
    """A rerun's linked data, recorded at the data's own path (as the original run has it).

    The rerun places its worktree and the links to data outside it under its mirror
    folder (:func:`vtrack.config.env_rerun_mirror`) and removes them afterwards;
    recording the mirror path would make the rerun's run unrerunnable. The bytes are the
    same (the digest was just computed through the link); ``repo_path`` is kept.
    """
    from vtrack.config import env_rerun_mirror

    mirror = env_rerun_mirror()
    logged = os.path.abspath(path)
    if mirror is None or not logged.startswith(os.path.abspath(mirror).rstrip(os.sep) + os.sep):
        return entry
    original = os.sep + os.path.relpath(logged, os.path.abspath(mirror))
    if not os.path.exists(original):
        return entry
    source = original if entry.source == entry.path else entry.source
    return replace(entry, path=original, source=source)


def repo_path(store: Store, path: str | None) -> str | None:
    """``path`` relative to the store's working tree (posix), or None when outside it.

    The path as logged counts first: a symbolic link inside the working tree (a rerun's
    linked data) is at its place in the tree, wherever it points; then the resolved path
    (the tree reached through a symlinked parent).
    """
    worktree = store.location.worktree
    if not path or worktree is None:
        return None
    logged = os.path.abspath(path)
    for root, where in (
        (os.path.abspath(worktree), logged),
        (os.path.realpath(worktree), os.path.join(os.path.realpath(os.path.dirname(logged)),
                                                  os.path.basename(logged))),
        (os.path.realpath(worktree), os.path.realpath(path)),
    ):  # fmt: skip
        if where == root:
            return "."
        if where.startswith(root.rstrip(os.sep) + os.sep):
            return os.path.relpath(where, root).replace(os.sep, "/")
    return None


def _content(entry: DatasetInput) -> tuple[Any, ...]:
    if entry.kind == "uri":
        return ("uri", entry.source)
    return (entry.kind, entry.digest, entry.source_digest)


def _check_same_content(old: DatasetInput, new: DatasetInput) -> None:
    if _content(old) == _content(new):
        return
    name, context = new.name, new.context
    where = f"input {name!r}" + (f" (context {context!r})" if context is not None else "")
    was = str(old.digest) if old.digest is not None else old.source
    now = str(new.digest) if new.digest is not None else new.source
    raise InputConflictError(
        f"{where} was already logged in this run as {old.kind} {was}; "
        f"cannot record {new.kind} {now} under the same name",
        hint="inputs are immutable within a run; log it under another name or context",
        name=name, context=context, old=was, new=now,
    )  # fmt: skip


# --- reading manifests ------------------------------------------------------------------------
