"""The git layout of a vtrack store, composed from its parts (plumbing only).

``Store`` reads and writes run commits, experiment commits and refs; it knows
nothing of active runs or the fluent API.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from pathlib import Path
from typing import Any

from vtrack.config import Settings, StoreLocation, locate_store
from vtrack.errors import RunNotFoundError, StoreError
from vtrack.store.gitobj import BLOB_MODE, TREE_MODE, GitObjects, TreeEntry, serialize_commit
from vtrack.store.journal import format_coverage, list_writers, parse_coverage, replay
from vtrack.store.record import RECORD_DIR, RecordState, dump_yaml, load_yaml
from vtrack.store.refs import RefStore


def _tz() -> bytes:
    offset = -time.altzone if time.daylight and time.localtime().tm_isdst > 0 else -time.timezone
    sign = b"+" if offset >= 0 else b"-"
    offset = abs(offset)
    return b"%s%02d%02d" % (sign, offset // 3600, (offset % 3600) // 60)


def current_user() -> str:
    """The login name runs are attributed to."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER") or "unknown"


class Store:
    """One git repository used as a vtrack store."""

    def __init__(self, location: StoreLocation, settings: Settings) -> None:
        self.location = location
        #: injected by the caller: the store never reads the environment itself
        self.settings = settings
        self.objects = GitObjects(location.git_dir, fsync=self.settings.fsync_objects)
        self.refs = RefStore(location.git_dir, fsync=self.settings.fsync_objects)
        self.live_dir = location.vtrack_dir / "live"
        self._identity = f"{current_user()} <{current_user()}@vtrack>".encode()
        self._tz = _tz()
        self._exp_cache: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, uri: str | None = None, *, create: bool = True,
             settings: Settings | None = None) -> Store:  # fmt: skip
        """Open the store at ``uri`` (or the current directory's), with ``settings`` or the
        built-in defaults (never the environment: facades read that, through config)."""
        return cls(locate_store(uri, create=create), settings or Settings())

    # -- commits ---------------------------------------------------------------
    def write_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Write a commit object and return its SHA."""
        data = serialize_commit(
            tree,
            parents,
            self._identity,
            self._identity,
            int(time.time()),
            self._tz,
            message.encode("utf-8"),
        )
        return self.objects.write(b"commit", data)

    def write_run_commit(
        self,
        state: RecordState,
        code_entries: tuple[TreeEntry, ...] | list[TreeEntry],
        parent: str | None,
    ) -> str:
        """Write the run commit for ``state`` on top of the code snapshot; return its SHA."""
        record_tree = state.build_tree()
        root = [e for e in code_entries if e[1] != RECORD_DIR.encode()]
        root.append((TREE_MODE, RECORD_DIR.encode(), record_tree))
        tree = self.objects.write_tree(root)
        info = state.info
        message = (
            f"vtrack run {info.get('name')}\n\n"
            f"run: {info.get('id')}\nexperiment: {info.get('experiment_id')}\n"
            f"status: {info.get('status')}\n" + format_coverage(state.covered)
        )
        return self.write_commit(tree, [parent] if parent else [], message)

    def read_run_commit(self, sha: str) -> tuple[RecordState, list[TreeEntry], str | None]:
        """Return ``(record, code entries, parent)`` of run commit ``sha``."""
        commit = self.objects.read_commit(sha)
        entries = self.objects.read_tree(commit["tree"])
        record_sha = None
        code: list[TreeEntry] = []
        for e in entries:
            if e[1] == RECORD_DIR.encode():
                record_sha = e[2]
            else:
                code.append(e)
        if record_sha is None:
            raise StoreError(f"commit {sha} is not a vtrack run commit (no {RECORD_DIR}/)")
        state = RecordState.from_tree(self.objects, record_sha)
        state.covered = parse_coverage(commit["message"].decode("utf-8", "replace"))
        parents = commit["parents"]
        return state, code, (parents[0] if parents else None)

    # -- runs ------------------------------------------------------------------
    def run_tip(self, run_id: str) -> str | None:
        """SHA of the run's newest commit, or None when no live ref exists."""
        return self.refs.run_tip(run_id)

    def trash_tip(self, run_id: str) -> str | None:
        """SHA of a deleted run's commit, or None."""
        return self.refs.trash_tip(run_id)

    def require_run(self, run_id: str) -> str:
        """SHA of the run's newest commit; raise RunNotFoundError if it has none."""
        sha = self.run_tip(run_id)
        if sha is None:
            if self.trash_tip(run_id):
                raise RunNotFoundError(
                    f"run {run_id} is deleted", hint=f"restore it with 'vtrack restore {run_id}'"
                )
            raise RunNotFoundError(f"no run with id {run_id}")
        return sha

    def list_run_tips(self) -> dict[str, str]:
        """``{run_id: commit sha}`` of every live run."""
        return self.refs.list_runs()

    def list_trash_tips(self) -> dict[str, str]:
        """``{run_id: commit sha}`` of every deleted run."""
        return self.refs.list_trash()

    def run_live_dir(self, run_id: str) -> Path:
        """The live folder (journals, owner files) of a run."""
        return self.live_dir / run_id

    def live_run_ids(self) -> list[str]:
        """Ids of runs that have a live folder (running, or died unfinalized)."""
        try:
            return [n for n in os.listdir(self.live_dir) if len(n) == 32]
        except FileNotFoundError:
            return []

    def read_run_state(self, run_id: str, *, live: bool = True) -> tuple[str, RecordState]:
        """Return ``(tip sha, record)``; with ``live``, entries still in journals are included."""
        for _attempt in range(20):
            tip = self.require_run(run_id)
            try:
                state, _, _ = self.read_run_commit(tip)
            except StoreError:
                # the writer moved on and merged the packs that held this commit
                if self.run_tip(run_id) != tip:
                    continue
                raise
            if not live:
                return tip, state
            replay(state, list_writers(self.run_live_dir(run_id)))
            # a checkpoint between reading the tip and the journals may have committed
            # (and removed) a segment: read again so nothing is missed
            if self.run_tip(run_id) == tip:
                return tip, state
        return tip, state

    # -- experiments -----------------------------------------------------------
    def read_experiment(self, exp_id: str) -> dict[str, Any] | None:
        """The experiment record, or None when absent."""
        sha = self.refs.experiment_tip(exp_id)
        if sha is None:
            return None
        return self._experiment_at(exp_id, sha)

    def _experiment_at(self, exp_id: str, sha: str) -> dict[str, Any]:
        cached = self._exp_cache.get(exp_id)
        if cached and cached[0] == sha:
            return dict(cached[1])
        commit = self.objects.read_commit(sha)
        found = self.objects.tree_lookup(commit["tree"], "experiment.yaml")
        if found is None:
            raise StoreError(f"experiment ref {exp_id} points at a commit without experiment.yaml")
        data = load_yaml(self.objects.read_blob(found[1])) or {}
        self._exp_cache[exp_id] = (sha, data)
        return dict(data)

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment record (active and deleted)."""
        out = []
        for exp_id, sha in self.refs.list_experiments().items():
            out.append(self._experiment_at(exp_id, sha))
        return out

    def write_experiment(self, data: dict[str, Any], expected: str | None) -> None:
        """Write an experiment record; CAS on the ref (``expected`` None: must be new)."""
        exp_id = str(data["id"])
        with self.objects.batch() as batch:
            blob = self.objects.write_blob(dump_yaml(data))
            tree = self.objects.write_tree([(BLOB_MODE, b"experiment.yaml", blob)])
            parents = [expected] if expected else []
            sha = self.write_commit(tree, parents, f"vtrack experiment {data['name']}\n")
        try:
            self.refs.update_experiment(exp_id, expected, sha)
        finally:
            if batch.handle is not None:
                batch.handle.release()
        self._exp_cache[exp_id] = (sha, dict(data))

    def experiment_tip(self, exp_id: str) -> str | None:
        """SHA of the experiment's commit, or None."""
        return self.refs.experiment_tip(exp_id)
