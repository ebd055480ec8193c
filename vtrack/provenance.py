"""Dataset provenance of runs: logging inputs, auditing them against the disk, lineage.

The rules (``docs/concepts/provenance.md``):

- :func:`log_input` describes the data (:func:`vtrack.datasets.describe_input`, hashing
  through the store's stat cache ``.git/vtrack/statcache.sqlite``) and records the entry
  in the run's ``.vtrack/inputs.yaml``. A folder's per-file manifest is stored beside it
  as ``.vtrack/inputs/<name>.tsv`` (the entry's ``manifest`` names it). An input inside
  the store's working tree also records ``repo_path`` (posix, relative to the worktree)
  so that another clone can audit it where its own checkout holds the file.
- An input is identified by ``(name, context)``. Logging it again with the same content
  (digest, or source for a remote URI) records nothing and returns the first entry; other
  content raises :class:`~vtrack.errors.InputConflictError` and records nothing.
- Everything is hashed before anything is recorded, so an unreadable file leaves the
  run as it was; the manifest blob is written before the journaled entry that names it,
  so a crash leaves either both or neither.
- :func:`audit` re-checks a run's inputs with :func:`vtrack.drift.check_input` and
  returns one plain dict per input; :func:`lineage` answers "which runs consumed this
  file, folder or digest" from the derived index.

Every function takes the :class:`~vtrack.store.runs.RunRepository` of the store that
holds the runs; the client and the fluent API are thin wrappers over this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vtrack import validation as v
from vtrack.errors import DatasetError, InputConflictError, ValidationError
from vtrack.hashing import ALGORITHM
from vtrack.store.gitobj import BLOB_MODE, TREE_MODE

if TYPE_CHECKING:
    from vtrack.statcache import BaseStatCache, StatCache
    from vtrack.store import Store
    from vtrack.store.record import RecordState
    from vtrack.store.runs import RunRepository

# Hashing, describing and checking (datasets, drift, statcache) are imported inside the
# functions that use them: ``vtrack lineage`` answers from the index without them.
UNCHANGED, CHANGED, MISSING = "unchanged", "changed", "missing"  # vtrack.drift's statuses

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
_DIGEST_ARG = re.compile(rf"{re.escape(ALGORITHM)}:([0-9a-f]*)")


def stat_cache(store: Store) -> StatCache:
    """The store's stat cache (``.git/vtrack/statcache.sqlite``); close it after use."""
    from vtrack.statcache import StatCache

    return StatCache(store.location.vtrack_dir / STATCACHE_FILE)


# --- logging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Described:
    """An input described and validated, ready to be recorded."""

    entry: dict[str, Any]
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
) -> dict[str, Any]:
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


def log_inputs(repo: RunRepository, run_id: str, inputs: Iterable[Any]) -> list[dict[str, Any]]:
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
    out: list[dict[str, Any]] = []
    with writer.lock:
        writer._check_open()
        existing = {(e.get("name"), e.get("context")): e for e in writer.state.inputs}
        taken = {str(e["manifest"]) for e in writer.state.inputs if e.get("manifest")}
        todo: list[_Described] = []
        for d in described:
            key = (d.entry["name"], d.entry["context"])
            old = existing.get(key)
            if old is not None:
                _check_same_content(old, d.entry)
                out.append(_public(old))
                continue
            if d.manifest_tsv is not None:
                d.entry["manifest"] = manifest_path(d.entry["name"], d.entry["context"], taken)
                taken.add(d.entry["manifest"])
            existing[key] = d.entry
            todo.append(d)
            out.append(_public(d.entry))
        manifests: list[tuple[str, int, str] | None] = []
        with writer.pending():  # manifest blobs in a kept pack until the next checkpoint
            for d in todo:
                manifest = None
                if d.manifest_tsv is not None:
                    sha = store.objects.write_blob(d.manifest_tsv.encode("utf-8"))
                    manifest = (str(d.entry["manifest"]), BLOB_MODE, sha)
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
    entry = describe_input(
        spec["data"], name=name, context=context, source=spec.get("source"),
        tags=spec.get("tags"), cache=cache, exclude=spec.get("exclude"),
    )  # fmt: skip
    files = entry.pop("files", None)
    tsv = manifest_to_tsv(files) if files is not None else None
    rel = _repo_path(store, entry.get("path"))
    if rel is not None:
        entry["repo_path"] = rel
    return _Described(entry, tsv)


def _repo_path(store: Store, path: str | None) -> str | None:
    """``path`` relative to the store's working tree (posix), or None when outside it."""
    worktree = store.location.worktree
    if not path or worktree is None:
        return None
    root = os.path.realpath(worktree)
    real = os.path.realpath(path)
    if real == root:
        return "."
    if not real.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return os.path.relpath(real, root).replace(os.sep, "/")


def _content(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    if entry.get("kind") == "uri":
        return ("uri", entry.get("source"))
    return (entry.get("kind"), entry.get("digest"), entry.get("source_digest"))


def _check_same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    if _content(old) == _content(new):
        return
    name, context = new.get("name"), new.get("context")
    where = f"input {name!r}" + (f" (context {context!r})" if context is not None else "")
    was = old.get("digest") or old.get("source")
    now = new.get("digest") or new.get("source")
    raise InputConflictError(
        f"{where} was already logged in this run as {old.get('kind')} {was}; "
        f"cannot record {new.get('kind')} {now} under the same name",
        hint="inputs are immutable within a run; log it under another name or context",
        name=name, context=context, old=was, new=now,
    )  # fmt: skip


def _public(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (dict(val) if isinstance(val, dict) else val) for k, val in entry.items()}


# --- reading manifests ------------------------------------------------------------------------


def read_manifest(store: Store, state: RecordState, entry: Mapping[str, Any]) -> str | None:
    """The manifest TSV of a folder entry from a run record, or None when it has none."""
    rel = entry.get("manifest")
    if not isinstance(rel, str) or not rel:
        return None
    pending = state.pending_files.get(rel)
    if pending is not None:
        return store.objects.read_blob(pending[1]).decode("utf-8")
    top, _, rest = rel.partition("/")
    base = state.extra.get(top)
    if base is None or base[0] != TREE_MODE or not rest:
        return None
    found = store.objects.tree_lookup(base[1], rest)
    if found is None or found[0] == TREE_MODE:
        return None
    return store.objects.read_blob(found[1]).decode("utf-8")


def local_path(store: Store, entry: Mapping[str, Any]) -> str | None:
    """Where this clone keeps the input: ``<worktree>/<repo_path>`` when recorded, else None.

    None means "where the entry says" (its ``path``, else its ``source``).
    """
    rel = entry.get("repo_path")
    worktree = store.location.worktree
    if not isinstance(rel, str) or not rel or worktree is None:
        return None
    return os.path.normpath(os.path.join(worktree, *rel.split("/")))


# --- audit ------------------------------------------------------------------------------------


def audit(
    repo: RunRepository, run: str, *, cache: BaseStatCache | None = None
) -> list[dict[str, Any]]:
    """Re-check every input of ``run`` (an id or any run spec) against the disk now.

    Returns one dict per input, in logged order: ``run_id``, ``run_name``, ``name``,
    ``context``, ``kind``, ``source``, ``path`` (where it was checked, None if nowhere),
    ``status`` (``unchanged``, ``changed``, ``missing`` or ``unverifiable``), ``added``,
    ``removed`` and ``modified`` (relative paths, for folders), ``expected_digest`` and
    ``actual_digest``. Never modifies anything. Raises RunNotFoundError for an unknown
    run, DatasetError naming a file that exists but cannot be read.
    """
    return audit_runs(repo, [run], cache=cache)


def audit_runs(
    repo: RunRepository, runs: Iterable[str], *, cache: BaseStatCache | None = None
) -> list[dict[str, Any]]:
    """:func:`audit` of several runs, in order, as one list.

    An input recorded identically by several runs (same kind, location, digest and
    excludes) is checked once.
    """
    from vtrack.resolve import resolve_run_id

    ids = [resolve_run_id(repo, r) for r in runs]
    own = cache is None
    the_cache = stat_cache(repo.store) if cache is None else cache
    memo: dict[Any, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    try:
        for run_id in ids:
            state = repo.state(run_id).record
            for entry in state.inputs:
                out.append(_audit_entry(repo.store, run_id, state, entry, the_cache, memo))
    finally:
        if own:
            the_cache.close()
    return out


def _audit_entry(
    store: Store, run_id: str, state: RecordState, entry: Mapping[str, Any],
    cache: BaseStatCache, memo: dict[Any, dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    from vtrack.drift import check_input

    where = local_path(store, entry)
    shown = where or entry.get("path") or (
        entry.get("source") if entry.get("kind") in ("file", "folder") else None
    )
    key = (
        entry.get("kind"), shown, entry.get("digest"), entry.get("source_digest"),
        entry.get("size"), tuple(entry.get("exclude") or ()),
    )  # fmt: skip
    checked = memo.get(key)
    if checked is None:
        manifest = read_manifest(store, state, entry) if entry.get("kind") == "folder" else None
        checked = check_input(entry, manifest, cache, path=where)
        memo[key] = checked
    verifiable = checked["status"] != "unverifiable"
    return {
        "run_id": run_id,
        "run_name": state.info.get("name"),
        "name": entry.get("name"),
        "context": entry.get("context"),
        "kind": entry.get("kind"),
        "source": entry.get("source"),
        "path": shown if verifiable else None,
        "status": checked["status"],
        "added": list(checked["added"]),
        "removed": list(checked["removed"]),
        "modified": list(checked["modified"]),
        "expected_digest": checked["expected_digest"],
        "actual_digest": checked["actual_digest"],
    }


def drifted(results: Iterable[Mapping[str, Any]]) -> bool:
    """True when any audited input is changed or missing."""
    return any(r.get("status") in DRIFT_STATUSES for r in results)


# --- lineage ----------------------------------------------------------------------------------


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
    m = _DIGEST_ARG.fullmatch(raw)
    if m is not None:
        if len(m.group(1)) < MIN_DIGEST_PREFIX:
            raise ValidationError(
                f"digest {raw!r} is too short",
                hint=f"give at least {MIN_DIGEST_PREFIX} hex digits after '{ALGORITHM}:'",
            )
        return _lineage_rows(index.input_uses(digest=raw), None)
    from vtrack.store.index_inputs import loc_of

    path = os.path.abspath(raw)
    loc = loc_of(path, _repo_path(store, path))
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
    for run_id, run_name, exp_id, status, start, idx, part, rel, dig, name, ctx, kind, source, path in hits:
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


__all__ = [
    "DRIFT_STATUSES",
    "INPUTS_DIR",
    "STATCACHE_FILE",
    "audit",
    "audit_runs",
    "drifted",
    "lineage",
    "local_path",
    "log_input",
    "log_inputs",
    "manifest_path",
    "read_manifest",
    "stat_cache",
]
