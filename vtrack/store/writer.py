"""Live run writers: buffered logging, the background flusher, checkpoints.

A ``RunWriter`` owns one process's contribution to one run. Metric points go to an
in-memory buffer that the background flusher moves to the writer's journal at
least every ``flush_seconds``; params, tags and status are journaled at once. A
checkpoint writes a run commit and moves the ref by compare-and-swap. When the ref
was moved by another process logging into the same run, the checkpoint reloads
that commit and re-applies this writer's journal segment on top, so no writer's
data is lost.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from vtrack.entities import ArtifactEntry, DatasetInput
from vtrack.errors import RefConflictError, RunStateError, StoreError
from vtrack.limits import MAX_BUFFERED_POINTS, MERGE_PACKS_UNDER
from vtrack.store import Store
from vtrack.store.fileio import lock_file, rng
from vtrack.store.gitobj import TreeEntry
from vtrack.store.journal import (
    HOST,
    Journal,
    encode_artifact,
    encode_delete_tag,
    encode_file,
    encode_info,
    encode_input,
    encode_param,
    encode_status,
    encode_tag,
    list_writers,
    replay,
)
from vtrack.store.maintain import after_run
from vtrack.store.packs import PackHandle, git_gc_lock, merge_entries
from vtrack.store.record import RecordState, artifact_record, format_rows, input_record
from vtrack.store.tails import Bases, final_chunks
from vtrack.store.termination import CriticalLock

#: Lock file in a run's live folder that writers hold, one at a time, while they leave.
END_LOCK = "end.lock"

MetricPoint = tuple[str, float, int, int]  # key, value, step, timestamp


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def new_writer_id() -> str:
    """An id unique to this process and writer."""
    return f"{HOST}-{os.getpid()}-{rng.getrandbits(48):012x}"


class RunWriter:
    """This process's writer for one run. Thread-safe.

    Every change is journaled before it is applied to the in-memory record, so a call
    that fails (a full disk) changes nothing, and a call that returned is in the journal.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        state: RecordState,
        tip: str | None,
        code_entries: tuple[TreeEntry, ...] | list[TreeEntry],
        parent: str | None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.state = state
        self.tip = tip
        self.code_entries = tuple(code_entries)
        self.parent = parent
        #: held for every change; a termination signal never interrupts a section half-way
        self.lock = CriticalLock()
        #: points not flushed yet; deque append/popleft are atomic, so logging takes no lock
        self._buf: deque[MetricPoint] = deque()
        self.journal = Journal(store.run_live_dir(run_id), new_writer_id())
        self.flush_seconds = store.settings.flush_seconds
        self.checkpoint_seconds = store.settings.checkpoint_seconds
        self.last_flush = time.monotonic()
        self.last_checkpoint = time.monotonic()
        self.dirty = False
        self.closed = False
        self.warnings: list[str] = []
        #: set by RunWriter.join: the run's status when this writer attached to it
        self.joined_status: str | None = None
        #: True once this process resumed the run (start_run(run_id=...)): it then ends it
        self.resumed = False
        #: kept packs of objects only the journal references yet, released by the next checkpoint
        self._held: list[PackHandle] = []
        #: packs this writer published whose objects a commit reached (merged at the end)
        self._packs: list[PackHandle] = []

    # -- creation ----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        store: Store,
        run_id: str,
        info: dict[str, Any],
        tags: dict[str, str],
        code_entries: tuple[TreeEntry, ...],
        parent: str | None,
    ) -> RunWriter:
        """Start a new run: journal first, then the first commit and the ref."""
        state = RecordState(store.objects)
        state.info = dict(info)
        state.tags = dict(tags)
        writer = cls(store, run_id, state, None, code_entries, parent)
        writer.journal.open()
        handle = None
        try:
            with store.objects.batch() as batch:
                protected = _add_code_objects(store, code_entries, parent)
                sha = store.write_run_commit(state, code_entries, parent)
            handle = batch.handle
            store.refs.update_run(run_id, None, sha)
            if protected is not None:
                _protected_snapshots.add(protected)
        except BaseException:
            writer.journal.close(remove=True)
            if handle is not None:
                handle.release()  # unreferenced: git collects it like any garbage
            raise
        writer.tip = sha
        writer._reached(handle)
        _register(writer)
        return writer

    @classmethod
    def join(cls, store: Store, run_id: str) -> RunWriter:
        """Attach to an existing run (another process may be writing it too)."""
        tip = store.require_run(run_id)
        state, code, parent = store.read_run_commit(tip)
        writer = cls(store, run_id, state, tip, code, parent)
        writer.joined_status = state.info.get("status")
        writer.journal.open()
        _register(writer)
        return writer

    # -- logging -----------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int, timestamp: int) -> None:
        """Buffer one (validated) metric point; flush inline when the buffer is full."""
        buf = self._buf
        buf.append((key, value, step, timestamp))
        if len(buf) >= MAX_BUFFERED_POINTS:
            self.flush()

    def log_metrics(self, points: list[MetricPoint]) -> None:
        """Buffer several (validated) metric points."""
        self._buf.extend(points)
        if len(self._buf) >= MAX_BUFFERED_POINTS:
            self.flush()

    def check_open(self) -> None:
        """Raise RunStateError unless this process still writes the run."""
        if self.closed:
            raise RunStateError(f"run {self.run_id} is no longer being written by this process")

    def log_params(self, params: dict[str, Any]) -> None:
        """Record validated params; a conflicting value raises and records nothing of the call."""
        with self.lock:
            self.check_open()
            for k, v in params.items():
                self.state.check_param(k, v)
            new = {k: v for k, v in params.items() if k not in self.state.params}
            self.journal.append("".join(encode_param(k, v) for k, v in new.items()))
            self.state.params.update(new)
            self.dirty = True

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set validated tags."""
        with self.lock:
            self.check_open()
            self.journal.append("".join(encode_tag(k, v) for k, v in tags.items()))
            for k, v in tags.items():
                self.state.set_tag(k, v)
            self.dirty = True

    def delete_tag(self, key: str) -> None:
        """Delete a tag."""
        with self.lock:
            self.check_open()
            self.journal.append(encode_delete_tag(key))
            self.state.delete_tag(key)
            self.dirty = True

    def set_info(self, field: str, value: Any) -> None:
        """Set the run name (``"name"``) or description (``"description"``)."""
        with self.lock:
            self.check_open()
            self.journal.append(encode_info("n" if field == "name" else "d", value))
            self.state.info[field] = value
            self.dirty = True

    def refresh_environment(self, environment: dict[str, Any]) -> None:
        """Replace the recorded environment at the end of the run (the next commit has it).

        Not journaled: a process killed before its final commit keeps the environment
        recorded at start, which is what a crash recovers to anyway.
        """
        with self.lock:
            self.check_open()
            self.state.info["environment"] = environment
            self.dirty = True

    def set_status(self, status: str, end_time: int | None) -> None:
        """Record a status change (``end_time`` None while RUNNING)."""
        with self.lock:
            self.check_open()
            self.journal.append(encode_status(status, end_time))
            self.state.info["status"] = status
            self.state.info["end_time"] = end_time
            self.dirty = True

    def add_file(self, path: str, mode: int, sha: str) -> None:
        """Place an already written blob under ``.vtrack/`` in the next commit."""
        with self.lock:
            self.check_open()
            self.journal.append(encode_file(path, mode, sha))
            self.state.add_file(path, mode, sha)
            self.dirty = True

    def add_artifact(
        self,
        path: str,
        artifact: ArtifactEntry | Mapping[str, Any],
        blob: tuple[str, int, str] | None,
    ) -> None:
        """Record an artifact manifest entry (and its blob under ``.vtrack/``, if any)."""
        entry = artifact_record(artifact)
        with self.lock:
            self.check_open()
            lines = encode_file(*blob) if blob is not None else ""
            self.journal.append(lines + encode_artifact(path, entry))
            if blob is not None:
                self.state.add_file(*blob)
            self.state.add_artifact(path, entry)
            self.dirty = True

    def add_input(
        self,
        dataset: DatasetInput | Mapping[str, Any],
        manifest: tuple[str, int, str] | None = None,
    ) -> None:
        """Record a dataset input entry (and its per-file manifest blob, if any)."""
        entry = input_record(dataset)
        with self.lock:
            self.check_open()
            lines = encode_file(*manifest) if manifest is not None else ""
            self.journal.append(lines + encode_input(entry))
            if manifest is not None:
                self.state.add_file(*manifest)
            self.state.add_input(entry)
            self.dirty = True

    # -- flushing and checkpoints ----------------------------------------------------
    def flush(self) -> None:
        """Move buffered metric points into the journal and the in-memory record.

        If the journal cannot be written the points go back to the buffer (nothing is
        lost; the next flush tries again) and JournalWriteError is raised.
        """
        with self.lock:
            pending = self._buf
            pop = pending.popleft
            buf = [pop() for _ in range(len(pending))]  # later appends wait for the next flush
            self.last_flush = time.monotonic()
            if not buf or self.closed:
                return
            rows = format_rows(buf)
            try:
                self.journal.append(
                    "".join([f"m\t{p[0]}\t{row}" for p, row in zip(buf, rows, strict=True)])
                )
            except BaseException:
                pending.extendleft(reversed(buf))
                raise
            self.state.add_points(buf, rows)
            self.dirty = True
            if self.state.unstored:
                self._store_chunks()

    def _store_chunks(self) -> None:
        """Store full history chunks in a kept pack now (memory stays bounded); on error
        they stay in memory and the next flush or checkpoint tries again."""
        with self.store.objects.batch() as batch:
            shas = self.state.store_chunks()
        self.state.chunks_stored(shas)
        if batch.handle is not None:
            self._held.append(batch.handle)

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """Write objects the journal will reference (artifact blobs, input manifests) in the
        block: they go into one kept pack that the next checkpoint releases, so no
        ``git gc --prune=now`` can remove them meanwhile."""
        with self.store.objects.batch() as batch:
            yield
        if batch.handle is not None:
            with self.lock:
                self._held.append(batch.handle)

    def checkpoint(self, force: bool = False, *, absorb: bool = False) -> str | None:
        """Write a run commit with everything logged so far; return its SHA (None if unchanged).

        The commit records how much of this writer's journal it holds, so a kill right
        after the ref moved never replays that part again; every object it references is
        checked (and written again if a concurrent ``git gc`` removed it) once the ref
        reaches it. With ``absorb`` (a writer's last checkpoint) the new pack also takes in
        this writer's earlier small packs, which are then deleted (see :meth:`_merge_packs`).
        """
        with self.lock:
            self.flush()
            if self.closed or (not self.dirty and not force):
                self.last_checkpoint = time.monotonic()
                return None
            for _attempt in range(50):
                current = self.store.refs.run_tip(self.run_id)
                if current is None:
                    # the run was deleted while live: stop writing, keep the journal out
                    self.closed = True
                    self.journal.close(remove=True)
                    _unregister(self)
                    raise RunStateError(f"run {self.run_id} was deleted while it was being written")
                if current != self.tip:
                    self._rebase(current)
                self._prune_coverage()
                self.state.covered[self.journal.writer_id] = self.journal.coverage()
                absorbed = self._small_packs(with_held=True) if absorb else []
                with self.store.objects.batch() as batch:
                    sha = self.store.write_run_commit(self.state, self.code_entries, self.parent)
                    self._absorb(_distinct_sources(absorbed))
                try:
                    self.store.refs.update_run(self.run_id, current, sha)
                except RefConflictError:
                    if batch.handle is not None:
                        batch.handle.release()  # garbage now, for git to collect
                    time.sleep(rng.random() * 0.01)
                    continue
                except BaseException:
                    if batch.handle is not None:
                        batch.handle.release()
                    raise
                self.tip = sha
                self.state.chunks_stored(list(self.state.unstored))
                self._reached(batch.handle)
                if absorbed:
                    self._delete_packs(absorbed)
                self.journal.rotate()
                self.dirty = False
                self.last_checkpoint = time.monotonic()
                return sha
            raise RefConflictError(f"could not update run {self.run_id}: the ref keeps moving")

    def _absorb(self, sources: list[tuple[PackHandle, list[str]]]) -> None:
        """Copy this writer's earlier packs into the open batch (after the final commit's
        objects): superseded history tails as deltas of their final chunks, which are
        copied first (see :mod:`vtrack.store.tails`)."""
        if not sources:
            return
        objects = self.store.objects
        mine = {sha for _h, shas in sources for sha in shas}
        chunks = final_chunks(self.state.touched_histories(), mine, objects.read_blob)
        bases = Bases(chunks)
        first = [(h, [sha for sha in shas if sha in chunks]) for h, shas in sources]
        for pass_sources, pass_bases in ((first, None), (sources, bases)):
            for h, shas in pass_sources:
                try:
                    objects.add_entries(h, shas, pass_bases)
                except StoreError:
                    # a released pack a git gc (the user's, or a roll-up) repacked and
                    # removed: a ref reached its objects, which are in git's new pack
                    if h in self._held or h.path.exists():
                        raise

    def _reached(self, handle: PackHandle | None) -> None:
        """A ref reaches this checkpoint: release its pack and the packs held for it."""
        for h in [*self._held, handle]:
            if h is not None:
                h.release()
                self._packs.append(h)
        self._held = []

    def _small_packs(self, *, with_held: bool = False) -> list[PackHandle]:
        # held packs first: a SHA both hold is copied from the pack no ref reaches yet
        packs = [*self._held, *self._packs] if with_held else self._packs
        return [h for h in packs if _pack_size(h) <= MERGE_PACKS_UNDER]

    def _delete_packs(self, packs: list[PackHandle]) -> None:
        """Delete packs whose every object another pack of this writer holds now.

        Only under git's own gc lock: a running ``git gc``'s prune fails if a pack it
        listed disappears. While a gc runs they stay (redundant, harmless) for git's
        next repack. Every object is kept in the other pack, so nothing anyone may still
        read disappears; superseded checkpoints remain git's garbage to collect, as they
        would be if written loose.
        """
        with git_gc_lock(self.store.location.git_dir) as held:
            if not held:
                return
            for h in packs:
                h.delete()
        self._packs = [h for h in self._packs if h not in packs]

    def _merge_packs(self) -> None:
        """Merge this writer's small packs into one (a leaving writer with nothing left to
        commit); best effort: on error the packs stay as they are."""
        small = self._small_packs()
        if len(small) < 2:
            return
        try:
            merged = merge_entries(
                self.store.objects.pack_dir, self.store.objects.tmp_dir,
                _distinct_sources(small), fsync=self.store.settings.fsync_objects,
            )  # fmt: skip
        except (OSError, StoreError) as exc:
            self.warnings.append(f"could not merge the packs of run {self.run_id}: {exc}")
            return
        if merged is not None:
            merged.release()
            self._packs.append(merged)
            self._delete_packs(small)

    def _rebase(self, current: str) -> None:
        """Reload the run from ``current`` and re-apply what it lacks of this writer's journal."""
        state, code, parent = self.store.read_run_commit(current)
        mine = [
            w for w in list_writers(self.journal.run_dir) if w.writer_id == self.journal.writer_id
        ]
        self.warnings += replay(state, mine)
        self.state = state
        self.code_entries = tuple(code)
        self.parent = parent
        self.tip = current

    def _prune_coverage(self) -> None:
        """Forget the coverage of writers whose journals are gone (they can never replay)."""
        covered = self.state.covered
        if len(covered) > 1:
            present = {w.writer_id for w in list_writers(self.journal.run_dir)}
            for wid in [w for w in covered if w not in present]:
                del covered[wid]

    def other_writers_alive(self) -> bool:
        """True when another live process is writing this run."""
        for w in list_writers(self.journal.run_dir):
            if w.writer_id != self.journal.writer_id and w.is_alive():
                return True
        return False

    def end(self, status: str, end_time: int | None = None) -> str | None:
        """Final checkpoint and detach.

        FINISHED is recorded by the last writer of a run to leave, whatever the
        interleaving: writers leave one at a time (under the run's end lock), each
        removing its journal before the next one looks for others. FAILED and KILLED
        are recorded by any writer. Returns the final commit SHA.
        """
        with self.lock:
            if self.closed:
                return self.tip
            self.flush()
            run_dir = self.journal.run_dir
            with lock_file(run_dir / END_LOCK, timeout=60.0):
                if status != "FINISHED" or not self.other_writers_alive():
                    self.set_status(status, end_time if end_time is not None else now_ms())
                sha = self.checkpoint(absorb=True)
                self.closed = True
                self.journal.close(remove=True)
            _unregister(self)
            if sha is None:
                self._merge_packs()
            with contextlib.suppress(OSError):
                run_dir.rmdir()
            after_run(self.store)
            return sha or self.tip

    def detach(self) -> None:
        """Final checkpoint without changing the status (a joined writer leaving)."""
        with self.lock:
            if self.closed:
                return
            sha = self.checkpoint(absorb=True)
            self.closed = True
            self.journal.close(remove=True)
            _unregister(self)
            if sha is None:
                self._merge_packs()
            after_run(self.store)

    def abandon(self) -> None:
        """Stop writing without a checkpoint; the journal stays for recovery (tests, forks)."""
        self.closed = True
        _unregister(self)


def _add_code_objects(
    store: Store, entries: tuple[TreeEntry, ...], parent: str | None
) -> tuple[str, str] | None:
    """Copy the snapshot's objects that its parent commit lacks (``git add`` wrote them
    moments ago, unreachable) into the current batch, so its kept pack protects them too.
    Returns the key to remember once a ref reaches them (None: nothing to do). Raises
    MissingObjectError if one is already gone."""
    if not entries:
        return None
    objects = store.objects
    tree = objects.write_tree(list(entries))
    key = (str(store.location.git_dir), tree)
    if key in _protected_snapshots:  # an earlier run of this process already holds them
        return None
    base = objects.read_commit(parent)["tree"] if parent else None
    if tree != base:
        objects.add_existing([sha for sha in objects.changed_objects(tree, base) if sha != tree])
    return key


#: (store, code tree) whose new objects a run commit of this process already references
_protected_snapshots: set[tuple[str, str]] = set()


def _pack_size(handle: PackHandle) -> int:
    try:
        return handle.path.stat().st_size
    except OSError:
        return 1 << 62


def _distinct_sources(packs: list[PackHandle]) -> list[tuple[PackHandle, list[str]]]:
    """Each SHA of ``packs`` once, taken from the first pack that holds it."""
    seen: set[str] = set()
    out = []
    for h in packs:
        shas = [sha for sha in h.entries if sha not in seen]
        seen.update(shas)
        out.append((h, shas))
    return out


# -- the background flusher --------------------------------------------------------
_writers: set[RunWriter] = set()
_writers_lock = threading.Lock()
_thread: threading.Thread | None = None
_wake = threading.Event()


def _register(writer: RunWriter) -> None:
    global _thread
    with _writers_lock:
        _writers.add(writer)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="vtrack-flusher", daemon=True)
            _thread.start()


def _unregister(writer: RunWriter) -> None:
    with _writers_lock:
        _writers.discard(writer)


def live_writers() -> list[RunWriter]:
    """Writers of this process that are still open."""
    with _writers_lock:
        return [w for w in _writers if not w.closed]


def _loop() -> None:
    while True:
        writers = live_writers()
        if not writers:
            interval = 0.5
        else:
            interval = min(w.flush_seconds for w in writers)
        _wake.wait(max(0.01, interval / 2))
        _wake.clear()
        now = time.monotonic()
        for w in live_writers():
            try:
                if now - w.last_checkpoint >= w.checkpoint_seconds:
                    w.checkpoint()
                elif now - w.last_flush >= w.flush_seconds:
                    w.flush()

            except Exception as exc:  # noqa: BLE001 - never let the flusher die
                import logging

                logging.getLogger("vtrack").warning(
                    "vtrack: background write of run %s failed: %s", w.run_id, exc
                )


def _after_fork_in_child() -> None:
    global _thread, _writers_lock
    _writers_lock = threading.Lock()
    with contextlib.suppress(Exception):
        for w in list(_writers):
            w.closed = True
    _writers.clear()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
