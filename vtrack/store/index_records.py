"""What the run index stores of a run, and how it reads that from git.

A run commit is parsed exactly as :meth:`vtrack.store.record.RecordState.from_tree`
parses it, minus metric histories (the index needs latest values only). Many runs are
read through one ``git cat-file --batch`` pipe (~0.1 ms per run instead of ~0.5 ms);
a few are read in-process. Values are encoded for SQL so that comparisons follow the
reference evaluator in :mod:`vtrack.query`.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd, progress
from vtrack.entities import Run
from vtrack.errors import RunNotFoundError, StoreError
from vtrack.logs import log
from vtrack.query.semantics import as_text, is_present
from vtrack.store.gitobj import TREE_MODE, parse_tree
from vtrack.store.record import RECORD_DIR, load_yaml
from vtrack.store.summary import SUMMARY_FILE, fast_loads
from vtrack.store.summary import decode as decode_summary

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.record import RecordState


#: Changed runs above this count are read through one ``git cat-file --batch`` pipe.
BATCH_READ_THRESHOLD = 16
RECORD_FILES = ("run.yaml", "params.yaml", "metrics.yaml", "inputs.yaml", "artifacts.yaml")
INT64_RANGE = (-(2**63), 2**63 - 1)


@dataclass
class IndexedRecord:
    """The searchable content of one run commit (plus journals, for live runs)."""

    run_id: str
    commit: str
    lifecycle: str
    live: bool
    info: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: list[dict[str, Any]]
    artifacts: dict[str, Any]
    #: the record could not be read: the run is left out of the index (and a warning said why)
    broken: bool = False
    #: the verified ``summary.json`` it was read from (stored as the run's body as is)
    raw: bytes | None = None

    @classmethod
    def unreadable(cls, run_id: str, commit: str, lifecycle: str) -> IndexedRecord:
        """A placeholder for a run whose record cannot be read."""
        return cls(run_id, commit, lifecycle, False, {}, {}, {}, {}, [], {}, True)

    @classmethod
    def from_blobs(
        cls, run_id: str, commit: str, lifecycle: str, blobs: dict[str, bytes]
    ) -> IndexedRecord:
        """Parse the record files the way ``RecordState.from_tree`` does."""
        return cls.from_docs(
            run_id, commit, lifecycle,
            {name: load_yaml(data) for name, data in blobs.items() if name in RECORD_FILES},
        )  # fmt: skip

    @classmethod
    def from_body(
        cls, run_id: str, commit: str, lifecycle: str, body: str | bytes
    ) -> IndexedRecord:
        """Rebuild from a stored :func:`body_of` (the index's copy of the record)."""
        return cls.from_docs(run_id, commit, lifecycle, fast_loads(body)["docs"])

    @classmethod
    def from_docs(
        cls, run_id: str, commit: str, lifecycle: str, docs: dict[str, Any]
    ) -> IndexedRecord:
        """Build from the loaded record files (YAML, or a verified ``summary.json``)."""
        info = docs.get("run.yaml") or {}
        if not isinstance(info, dict):
            raise StoreError(f"run {run_id}: run.yaml of commit {commit} is not a mapping")
        info = dict(info)
        tags = {str(k): str(v) for k, v in (info.pop("tags", None) or {}).items()}
        info.pop("format", None)
        metrics = {str(k): float(v) for k, v in (docs.get("metrics.yaml") or {}).items()}
        params = {str(k): v for k, v in (docs.get("params.yaml") or {}).items()}
        return cls(
            run_id, commit, lifecycle, False, info, params, metrics, tags,
            list(docs.get("inputs.yaml") or []), dict(docs.get("artifacts.yaml") or {}),
        )  # fmt: skip

    @classmethod
    def from_state(
        cls, run_id: str, commit: str, lifecycle: str, live: bool, state: RecordState
    ) -> IndexedRecord:
        """Copy a loaded :class:`~vtrack.store.record.RecordState`."""
        return cls(
            run_id, commit, lifecycle, live, dict(state.info), dict(state.params),
            dict(state.metrics), dict(state.tags), [dict(e) for e in state.inputs],
            dict(state.artifacts),
        )  # fmt: skip


def text_or_none(value: Any) -> str | None:
    """The evaluator's text of a present value; None for a missing one."""
    return as_text(value) if is_present(value) else None


def param_row(value: Any) -> tuple[str, Any, str | None]:
    """``(kind, num, text)`` of a param; ``text`` is None exactly when the value is missing."""
    if value is None:
        return "null", None, None
    if isinstance(value, bool):
        return "bool", None, as_text(value)
    if isinstance(value, int):
        if INT64_RANGE[0] <= value <= INT64_RANGE[1]:
            return "int", value, str(value)
        return "bigint", float(value), str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float", None, None
        return "float", value, as_text(value)
    if isinstance(value, str):
        return "str", None, value
    return "str", None, as_text(value)  # dates and other YAML oddities: their text


def to_json(value: Any) -> str:
    """Compact JSON; values JSON lacks (dates) become their ``str()``."""
    return json.dumps(value, separators=(",", ":"), default=str)


def attr_text(value: Any) -> str | None:
    """A text attribute as stored and compared: ``str()`` of it, or None."""
    return None if value is None else str(value)


def attr_int(value: Any) -> int | float | None:
    """A time attribute as stored and compared: the number, or None when absent or not one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def run_view(run: Run) -> dict[str, Any]:
    """The :data:`vtrack.query.RunView` of ``run``, with the index's coercions.

    Text attributes are ``str()`` of the stored value; dataset fields are compared as
    text (``name``, ``digest``, ``context`` of each input). Evaluating a filter on this
    view with :func:`vtrack.query.evaluate` gives the same answer as the index.
    """
    info = run.info
    return {
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "attributes": {
            "run_id": info.run_id,
            "run_name": attr_text(info.run_name),
            "status": attr_text(info.status),
            "experiment_id": attr_text(info.experiment_id),
            "user_id": attr_text(info.user_id),
            "parent_run_id": attr_text(info.parent_run_id),
            "start_time": attr_int(info.start_time),
            "end_time": attr_int(info.end_time),
        },
        "datasets": [
            {
                "name": text_or_none(d.name),
                "digest": None if d.digest is None else str(d.digest),
                "context": text_or_none(d.context),
            }
            for d in run.inputs.datasets
        ],
    }


# --- reading run commits ----------------------------------------------------------------------


def _read_blobs_inprocess(store: Store, sha: str) -> tuple[dict[str, bytes], dict[str, str]]:
    objects = store.objects
    commit = objects.read_commit(sha)
    record = None
    for _mode, name, entry_sha in objects.read_tree(commit["tree"]):
        if name == RECORD_DIR.encode():
            record = entry_sha
            break
    if record is None:
        raise StoreError(f"commit {sha} is not a vtrack run commit (no {RECORD_DIR}/)")
    shas: dict[str, str] = {}
    summary = None
    for mode, name, entry_sha in objects.read_tree(record):
        text = name.decode("utf-8", "replace")
        if mode == TREE_MODE:
            continue
        if text in RECORD_FILES:
            shas[text] = entry_sha
        elif text == SUMMARY_FILE:
            summary = entry_sha
    if summary is not None:
        return {SUMMARY_FILE: objects.read_blob(summary)}, shas
    return {n: objects.read_blob(s) for n, s in shas.items()}, shas


def iter_blobs_batch(
    git_dir: Path, shas: Sequence[str]
) -> Iterator[tuple[dict[str, bytes], dict[str, str]]]:
    """Record files of many run commits, in order, through two ``git cat-file`` pipes:
    ``(blobs by name, record file SHAs by name)``, the blobs being ``summary.json`` alone
    when the commit has one (the caller verifies it against the SHAs).

    One pipe resolves each commit's ``.vtrack`` tree, a second reads the record blobs by
    SHA (git would walk the trees again for every ``<commit>:<path>``). Both run while
    the caller parses what was already yielded.
    """
    trees, blobs = gitcmd.cat_file_batch(git_dir), gitcmd.cat_file_batch(git_dir)
    assert trees.stdin and trees.stdout and blobs.stdin and blobs.stdout
    plan: queue.Queue[tuple[list[str], dict[str, str]] | BaseException] = queue.Queue()
    wanted = {f.encode(): f for f in RECORD_FILES}
    summary_name = SUMMARY_FILE.encode()
    tree_in, tree_out, blob_in = trees.stdin, trees.stdout, blobs.stdin

    def feed() -> None:
        with contextlib.suppress(OSError):
            tree_in.write("".join(f"{sha}:{RECORD_DIR}\n" for sha in shas).encode())
        with contextlib.suppress(OSError):
            tree_in.close()

    def route() -> None:
        try:
            for _ in shas:
                found = gitcmd.read_batch_object(tree_out, "indexing runs")
                names: list[str] = []
                found_shas: dict[str, str] = {}
                if found is not None and found[0] == b"tree":
                    summary = None
                    for mode, name, sha in parse_tree(found[1]):
                        if mode == TREE_MODE:
                            continue
                        if name in wanted:
                            found_shas[wanted[name]] = sha
                        elif name == summary_name:
                            summary = sha
                    if summary is not None:  # one blob to read, verified by the consumer
                        names, lines = [SUMMARY_FILE], [summary]
                    else:
                        names, lines = list(found_shas), list(found_shas.values())
                    if lines:
                        blob_in.write(("\n".join(lines) + "\n").encode())
                plan.put((names, found_shas))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            plan.put(exc)
        finally:
            with contextlib.suppress(OSError):
                blob_in.close()

    threads = [threading.Thread(target=f, name=f"vtrack-index-{f.__name__}", daemon=True)
               for f in (feed, route)]  # fmt: skip
    for t in threads:
        t.start()
    try:
        for _ in shas:
            step = plan.get()
            if isinstance(step, BaseException):
                raise StoreError(f"reading run records through git cat-file failed: {step}")
            names, sources = step
            out: dict[str, bytes] = {}
            for name in names:
                found = gitcmd.read_batch_object(blobs.stdout, "indexing runs")
                if found is not None and found[0] == b"blob":
                    out[name] = found[1]
            yield out, sources
    finally:
        for proc in (trees, blobs):
            with contextlib.suppress(OSError):
                proc.kill()
        for t in threads:
            t.join(timeout=5)
        for proc in (trees, blobs):
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
            proc.wait()


def read_records(store: Store, wanted: Sequence[tuple[str, str, str, bool]]) -> list[IndexedRecord]:
    """Read ``(run_id, sha, lifecycle, live)`` runs; unreadable ones are logged and kept empty."""
    return list(iter_records(store, wanted))


def iter_records(
    store: Store, wanted: Sequence[tuple[str, str, str, bool]], *, task: str = "indexing runs",
    done: int = 0, total: int | None = None,
) -> Iterator[IndexedRecord]:  # fmt: skip
    """Read ``(run_id, sha, lifecycle, live)`` runs one at a time (memory stays flat);
    unreadable ones are logged and yielded as placeholders. Progress is reported as
    ``task``, ``done`` of ``total`` units having been done before these runs.

    Live runs are read with their journals; the others straight from their commits,
    from a verified ``summary.json`` when it has one, else from the YAML.
    """
    plain = [w for w in wanted if not w[3]]
    for run_id, sha, lifecycle, _ in (w for w in wanted if w[3]):
        try:
            tip, state = store.read_run_state(run_id)
            yield IndexedRecord.from_state(run_id, tip, lifecycle, True, state)
        except RunNotFoundError:
            plain.append((run_id, sha, lifecycle, False))
        except Exception as exc:  # noqa: BLE001 - one bad run must not hide the others
            log.warning("vtrack: cannot index live run %s: %s", run_id, exc)
    blob_sets: Iterable[tuple[dict[str, bytes], dict[str, str]]]
    if len(plain) > BATCH_READ_THRESHOLD:
        blob_sets = iter_blobs_batch(store.location.git_dir, [w[1] for w in plain])
    else:
        blob_sets = (_read_blobs_quietly(store, w[0], w[1]) for w in plain)
    first = done + len(wanted) - len(plain)
    total = first + len(plain) if total is None else total
    for at, ((run_id, sha, lifecycle, _), (blobs, sources)) in enumerate(
        zip(plain, blob_sets, strict=True), 1
    ):
        if at % 250 == 0 or at == len(plain):
            progress.report(task, first + at, total)
        try:
            docs, raw = _docs(store, blobs, sources)
        except Exception:  # noqa: BLE001 - reported below as unreadable
            docs, raw = None, None
        if docs is None or docs.get("run.yaml") is None:
            log.warning(
                "vtrack: run %s is unreadable and left out: its ref points at commit %s, whose "
                "run record cannot be read (missing objects? see 'git fsck')", run_id, sha,
            )  # fmt: skip
            yield IndexedRecord.unreadable(run_id, sha, lifecycle)
            continue
        try:
            rec = IndexedRecord.from_docs(run_id, sha, lifecycle, docs)
            rec.raw = raw
            yield rec
        except Exception as exc:  # noqa: BLE001
            log.warning("vtrack: cannot index run %s (commit %s): %s", run_id, sha, exc)
            yield IndexedRecord.unreadable(run_id, sha, lifecycle)


def _docs(
    store: Store, blobs: dict[str, bytes], sources: dict[str, str]
) -> tuple[dict[str, Any] | None, bytes | None]:
    """The loaded record files and the summary bytes they came from: the summary when it
    matches ``sources``, else the YAML (read now by SHA when only the summary was
    fetched) and None."""
    summary = blobs.get(SUMMARY_FILE)
    if summary is not None:
        docs = decode_summary(summary, sources)
        if docs is not None:
            return docs, summary
        blobs = {name: store.objects.read_blob(sha) for name, sha in sources.items()}
    if blobs.get("run.yaml") is None:
        return None, None
    return {name: load_yaml(data) for name, data in blobs.items() if name in RECORD_FILES}, None


def _read_blobs_quietly(
    store: Store, run_id: str, sha: str
) -> tuple[dict[str, bytes], dict[str, str]]:
    try:
        return _read_blobs_inprocess(store, sha)
    except Exception as exc:  # noqa: BLE001
        log.warning("vtrack: cannot index run %s (commit %s): %s", run_id, sha, exc)
        return {}, {}


def body_of(rec: IndexedRecord) -> str:
    """The run's stored copy, summary-shaped (``{"docs": {file: content}}``): the verified
    ``summary.json`` itself when the run was read from one (no re-encoding), else the
    documents :meth:`IndexedRecord.from_body` rebuilds ``rec`` from."""
    if rec.raw is not None:
        return rec.raw.decode("utf-8")  # text: SQLite's JSON functions refuse blobs
    docs: dict[str, Any] = {
        "run.yaml": {**rec.info, "tags": rec.tags}, "params.yaml": rec.params,
        "metrics.yaml": rec.metrics, "inputs.yaml": rec.inputs, "artifacts.yaml": rec.artifacts,
    }  # fmt: skip
    return to_json({"docs": docs})


#: The value tables of the index, filled per key on demand (:mod:`vtrack.store.index_keys`).
VALUE_TABLES = ("params", "metrics", "tags")


def value_rows(
    rid: int, entity: str, values: dict[str, Any], keys: Iterable[str]
) -> list[tuple[Any, ...]]:
    """Rows of table ``entity`` for the ``keys`` of ``values`` that the run has."""
    out: list[tuple[Any, ...]] = []
    for k in keys:
        if k not in values:
            continue
        v = values[k]
        if entity == "params":
            out.append((rid, k, *param_row(v)))
        elif entity == "metrics":
            f = float(v)
            out.append((rid, k, None if math.isnan(f) else f))
        else:
            out.append((rid, k, str(v)))
    return out


def child_rows(
    rid: int, rec: IndexedRecord, rows: dict[str, list[tuple[Any, ...]]],
    materialized: dict[str, set[str]],
) -> None:  # fmt: skip
    """Append the datasets and records rows of ``rec`` to ``rows``, and its value rows for
    the ``materialized`` keys of each value table."""
    for entity, values in (("params", rec.params), ("metrics", rec.metrics), ("tags", rec.tags)):
        keys = materialized.get(entity)
        if keys and values:
            rows[entity].extend(value_rows(rid, entity, values, keys))
    rows["datasets"].extend(
        (rid, i, *(text_or_none(d.get(f)) for f in ("name", "digest", "context")))
        for i, d in enumerate(rec.inputs)
        if isinstance(d, dict)
    )
    rows["records"].append((rid, body_of(rec)))
