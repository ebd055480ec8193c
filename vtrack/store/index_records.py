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
import logging
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
from vtrack.query.semantics import as_text, is_present
from vtrack.store.gitobj import TREE_MODE, parse_tree
from vtrack.store.record import RECORD_DIR, load_yaml

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.record import RecordState

log = logging.getLogger("vtrack")

#: Changed runs above this count are read through one ``git cat-file --batch`` pipe.
BATCH_READ_THRESHOLD = 16
RECORD_FILES = ("run.yaml", "params.yaml", "metrics.yaml", "inputs.yaml", "artifacts.yaml")
INT64_RANGE = (-(2**63), 2**63 - 1)
#: ``run.yaml`` fields kept in a run's JSON copy (the rest are ``runs`` columns). The copy
#: (JSON keeps int/float/bool/None, NaN and infinities, and key order) is what search
#: results are built from: one ``json.loads`` per run instead of a row per value.
INFO_JSON_FIELDS = ("end_time", "parent_run_id", "description", "source", "environment")


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

    @classmethod
    def unreadable(cls, run_id: str, commit: str, lifecycle: str) -> IndexedRecord:
        """A placeholder for a run whose record cannot be read."""
        return cls(run_id, commit, lifecycle, False, {}, {}, {}, {}, [], {}, True)

    @classmethod
    def from_blobs(
        cls, run_id: str, commit: str, lifecycle: str, blobs: dict[str, bytes]
    ) -> IndexedRecord:
        """Parse the record files the way ``RecordState.from_tree`` does."""

        def load(name: str) -> Any:
            data = blobs.get(name)
            return None if data is None else load_yaml(data)

        info = load("run.yaml") or {}
        if not isinstance(info, dict):
            raise StoreError(f"run {run_id}: run.yaml of commit {commit} is not a mapping")
        tags = {str(k): str(v) for k, v in (info.pop("tags", None) or {}).items()}
        info.pop("format", None)
        metrics = {str(k): float(v) for k, v in (load("metrics.yaml") or {}).items()}
        params = {str(k): v for k, v in (load("params.yaml") or {}).items()}
        return cls(
            run_id, commit, lifecycle, False, info, params, metrics, tags,
            list(load("inputs.yaml") or []), dict(load("artifacts.yaml") or {}),
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


def _read_blobs_inprocess(store: Store, sha: str) -> dict[str, bytes]:
    objects = store.objects
    commit = objects.read_commit(sha)
    record = None
    for _mode, name, entry_sha in objects.read_tree(commit["tree"]):
        if name == RECORD_DIR.encode():
            record = entry_sha
            break
    if record is None:
        raise StoreError(f"commit {sha} is not a vtrack run commit (no {RECORD_DIR}/)")
    out: dict[str, bytes] = {}
    for _mode, name, entry_sha in objects.read_tree(record):
        text = name.decode("utf-8", "replace")
        if text in RECORD_FILES:
            out[text] = objects.read_blob(entry_sha)
    return out


def iter_blobs_batch(git_dir: Path, shas: Sequence[str]) -> Iterator[dict[str, bytes]]:
    """Record files of many run commits, in order, through two ``git cat-file`` pipes.

    One pipe resolves each commit's ``.vtrack`` tree, a second reads the record blobs by
    SHA (git would walk the trees again for every ``<commit>:<path>``). Both run while
    the caller parses what was already yielded.
    """
    trees, blobs = gitcmd.cat_file_batch(git_dir), gitcmd.cat_file_batch(git_dir)
    assert trees.stdin and trees.stdout and blobs.stdin and blobs.stdout
    plan: queue.Queue[list[str] | BaseException] = queue.Queue()
    wanted = {f.encode(): f for f in RECORD_FILES}
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
                if found is not None and found[0] == b"tree":
                    lines = []
                    for mode, name, sha in parse_tree(found[1]):
                        if name in wanted and mode != TREE_MODE:
                            names.append(wanted[name])
                            lines.append(sha)
                    if lines:
                        blob_in.write(("\n".join(lines) + "\n").encode())
                plan.put(names)
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
            names = plan.get()
            if isinstance(names, BaseException):
                raise StoreError(f"reading run records through git cat-file failed: {names}")
            out: dict[str, bytes] = {}
            for name in names:
                found = gitcmd.read_batch_object(blobs.stdout, "indexing runs")
                if found is not None and found[0] == b"blob":
                    out[name] = found[1]
            yield out
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
    """Read ``(run_id, sha, lifecycle, live)`` runs; unreadable ones are logged and kept empty.

    Live runs are read with their journals; the others straight from their commits.
    """
    records: list[IndexedRecord] = []
    plain = [w for w in wanted if not w[3]]
    for run_id, sha, lifecycle, _ in (w for w in wanted if w[3]):
        try:
            tip, state = store.read_run_state(run_id)
            records.append(IndexedRecord.from_state(run_id, tip, lifecycle, True, state))
        except RunNotFoundError:
            plain.append((run_id, sha, lifecycle, False))
        except Exception as exc:  # noqa: BLE001 - one bad run must not hide the others
            log.warning("vtrack: cannot index live run %s: %s", run_id, exc)
    blob_sets: Iterable[dict[str, bytes]]
    if len(plain) > BATCH_READ_THRESHOLD:
        blob_sets = iter_blobs_batch(store.location.git_dir, [w[1] for w in plain])
    else:
        blob_sets = (_read_blobs_quietly(store, w[0], w[1]) for w in plain)
    total = len(plain)
    for done, ((run_id, sha, lifecycle, _), blobs) in enumerate(
        zip(plain, blob_sets, strict=True), 1
    ):
        if done % 250 == 0 or done == total:
            progress.report("indexing runs", done, total)
        if blobs.get("run.yaml") is None:
            log.warning(
                "vtrack: run %s is unreadable and left out: its ref points at commit %s, whose "
                "run record cannot be read (missing objects? see 'git fsck')", run_id, sha,
            )  # fmt: skip
            records.append(IndexedRecord.unreadable(run_id, sha, lifecycle))
            continue
        try:
            records.append(IndexedRecord.from_blobs(run_id, sha, lifecycle, blobs))
        except Exception as exc:  # noqa: BLE001
            log.warning("vtrack: cannot index run %s (commit %s): %s", run_id, sha, exc)
            records.append(IndexedRecord.unreadable(run_id, sha, lifecycle))
    return records


def _read_blobs_quietly(store: Store, run_id: str, sha: str) -> dict[str, bytes]:
    try:
        return _read_blobs_inprocess(store, sha)
    except Exception as exc:  # noqa: BLE001
        log.warning("vtrack: cannot index run %s (commit %s): %s", run_id, sha, exc)
        return {}


def child_rows(rid: int, rec: IndexedRecord, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Append the params, metrics, tags, datasets and records rows of ``rec`` to ``rows``."""
    rows["params"].extend((rid, k, *param_row(v)) for k, v in rec.params.items())
    rows["metrics"].extend((rid, k, None if math.isnan(v) else v) for k, v in rec.metrics.items())
    rows["tags"].extend((rid, k, v) for k, v in rec.tags.items())
    rows["datasets"].extend(
        (rid, i, *(text_or_none(d.get(f)) for f in ("name", "digest", "context")))
        for i, d in enumerate(rec.inputs)
        if isinstance(d, dict)
    )
    body = {
        "info": {k: v for k, v in rec.info.items() if k in INFO_JSON_FIELDS},
        "params": rec.params, "metrics": rec.metrics, "tags": rec.tags,
        "inputs": rec.inputs, "artifacts": rec.artifacts,
    }  # fmt: skip
    rows["records"].append((rid, to_json(body)))
