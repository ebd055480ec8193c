"""The run record: the ``.vtrack/`` folder of a run commit, read and written.

Format contract (docs/concepts/run-record.md): ``run.yaml``, ``params.yaml``,
``metrics.yaml`` (latest value per metric), ``metrics/<key>/<NNNNNN>.tsv``
(``step<TAB>timestamp_ms<TAB>value`` lines, fixed-size chunks), ``inputs.yaml``,
``artifacts.yaml`` and any further files (artifacts, input manifests). YAML is
written sorted and block-styled so that ``git diff`` between runs reads well.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from vtrack.entities import ArtifactEntry, DatasetInput, RunInputs
from vtrack.errors import CorruptObjectError, ParamConflictError
from vtrack.limits import HISTORY_CHUNK_DIGITS, HISTORY_CHUNK_ROWS
from vtrack.store.gitobj import BLOB_MODE, TREE_MODE, GitObjects, TreeEntry, object_sha
from vtrack.store.summary import SUMMARIZED, SUMMARY_FILE
from vtrack.store.summary import encode as encode_summary
from vtrack.validation import params_equal

#: ``(yaml, loader, dumper)`` once first needed: PyYAML's import (~16 ms, most of it a
#: regex compile) is not paid by commands that read only the index
_yaml_parts: tuple[Any, Any, Any] | None = None


def _yaml() -> tuple[Any, Any, Any]:
    global _yaml_parts
    if _yaml_parts is None:
        import yaml

        try:
            _yaml_parts = (yaml, yaml.CSafeLoader, yaml.CSafeDumper)
        except AttributeError:  # pragma: no cover - libyaml missing
            _yaml_parts = (yaml, yaml.SafeLoader, yaml.SafeDumper)
    return _yaml_parts


RECORD_DIR = ".vtrack"
FORMAT_VERSION = 1
MANAGED = {
    "run.yaml", "params.yaml", "metrics.yaml", "metrics", "inputs.yaml", "artifacts.yaml",
    SUMMARY_FILE,
}  # fmt: skip


def dump_yaml(data: Any) -> bytes:
    """Serialize ``data`` as stable, sorted, block-style YAML (UTF-8).

    Strings that are not valid Unicode (lone surrogates, which validation refuses but an
    older journal may hold) are written escaped (``\\xff``) rather than failing, so one
    bad value never makes a record unwritable.
    """
    yaml, _, dumper = _yaml()
    try:
        text: str = yaml.dump(
            data, Dumper=dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
            width=1000,
        )  # fmt: skip
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return dump_yaml(storable(data))


def storable(value: Any) -> Any:
    """``value`` with every string that is not valid Unicode escaped (``\\xff``); deep."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            try:  # bytes that os.fsdecode turned into surrogates: show them as \xNN
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = value.encode("utf-8", "backslashreplace")
            return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


def load_yaml(data: bytes | str) -> Any:
    """Parse YAML with the safe (C where available) loader."""
    yaml, loader, _ = _yaml()
    return yaml.load(data, Loader=loader)


def run_inputs(
    inputs: Iterable[Mapping[str, Any]], artifacts: Mapping[str, Mapping[str, Any]]
) -> RunInputs:
    """The typed inputs and artifacts of a run from their record form.

    An entry that is not a mapping (a hand-edited or damaged record) is left out rather
    than making the run unreadable.
    """
    return RunInputs.from_record(inputs, artifacts)


def input_record(entry: DatasetInput | Mapping[str, Any]) -> dict[str, Any]:
    """The record form of an input entry (what ``inputs.yaml`` and the journal hold)."""
    if isinstance(entry, DatasetInput):
        return entry.to_record()
    return dict(entry)


def artifact_record(entry: ArtifactEntry | Mapping[str, Any]) -> dict[str, Any]:
    """The record form of an artifact entry (a value of ``artifacts.yaml``)."""
    if isinstance(entry, ArtifactEntry):
        return entry.to_record()
    return dict(entry)


def chunk_name(index: int) -> str:
    """File name of history chunk ``index``."""
    return f"{index:0{HISTORY_CHUNK_DIGITS}d}.tsv"


def format_row(step: int, timestamp: int, value: float) -> str:
    """One history line."""
    return f"{step}\t{timestamp}\t{value!r}\n"


def format_rows(points: list[tuple[str, float, int, int]]) -> list[str]:
    """The history lines of ``(key, value, step, timestamp)`` points (:func:`format_row`'s
    format, in one pass: the flush of a million points is spent here)."""
    return [f"{step}\t{ts}\t{value!r}\n" for _, value, step, ts in points]


def parse_rows(text: str) -> list[tuple[int, int, float]]:
    """Parse history lines into ``(step, timestamp, value)`` tuples."""
    out = []
    for line in text.splitlines():
        if not line:
            continue
        s, t, v = line.split("\t")
        out.append((int(s), int(t), float(v)))
    return out


class History:
    """One metric's history: full chunks (blob SHAs) plus the open tail chunk."""

    __slots__ = ("chunks", "tail", "tail_sha", "latest")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.tail: list[str] = []
        self.tail_sha: str | None = None  # blob of the tail as last written; None = dirty
        self.latest: tuple[int, int, float] | None = None

    @property
    def count(self) -> int:
        """Number of points in the history."""
        return len(self.chunks) * HISTORY_CHUNK_ROWS + len(self.tail)


class RecordState:
    """An in-memory mirror of one run record that can be updated and written as a tree."""

    def __init__(self, objects: GitObjects) -> None:
        self.objects = objects
        self.info: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        #: metric histories read or written so far; see :attr:`histories`
        self._hist: dict[str, History] = {}
        #: the ``metrics`` tree a loaded record came from, while its histories are not all
        #: read (None: all are in ``_hist``); a history is read on first use
        self._metrics_tree: str | None = None
        #: the top level of ``_metrics_tree`` by name (set and cleared with it)
        self._metrics_top: dict[str, tuple[int, str]] | None = None
        #: keys looked up in ``_metrics_tree`` and not found there
        self._hist_absent: set[str] = set()
        #: True once a history changed since loading (the metrics tree must be rebuilt)
        self._hist_changed = False
        self.inputs: list[dict[str, Any]] = []
        self.artifacts: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, tuple[int, str]] = {}  # top-level .vtrack entries kept as-is
        self.pending_files: dict[str, tuple[int, str]] = {}  # path under .vtrack -> entry
        self._dumped: dict[str, tuple[Any, str]] = {}  # file -> (content written, blob sha)
        self._summary: tuple[tuple[tuple[str, str], ...], str | None] | None = None
        #: writer id -> (journal segment, byte offset) this record holds (see store.journal)
        self.covered: dict[str, tuple[int, int]] = {}
        #: full history chunks not stored yet: sha -> bytes (see store_chunks)
        self.unstored: dict[str, bytes] = {}

    @property
    def histories(self) -> dict[str, History]:
        """Every metric's history by key (reads the ones not read yet, once)."""
        if self._metrics_tree is not None:
            every: dict[str, History] = {}
            _load_histories(self.objects, self._metrics_tree, "", every)
            for key in every:
                if key not in self.metrics:
                    raise CorruptObjectError(
                        f"run record lists history for {key!r} but no latest value"
                    )
            every.update(self._hist)  # what was read (and maybe appended to) wins
            self._hist = every
            self._metrics_tree = None
            self._metrics_top = None
            self._hist_absent.clear()
        return self._hist

    def touched_histories(self) -> list[History]:
        """The histories read or appended to since loading (the others are as stored)."""
        return list(self._hist.values())

    def history(self, key: str) -> History | None:
        """The history of metric ``key`` (None if it has none), reading only that one.

        A run with 10,000 metrics is read without its 10,000 histories: ``get_run`` and
        ``diff`` need the latest values only, which ``metrics.yaml`` holds.
        """
        hist = self._hist.get(key)
        top = self._metrics_top  # read once by from_tree; None once every history is read
        if hist is not None or top is None or key in self._hist_absent:
            return hist
        hist = _load_history(self.objects, top, key)
        if hist is None:
            self._hist_absent.add(key)
        else:
            self._hist[key] = hist
        return hist

    def _history_for_append(self, key: str) -> History:
        self._hist_changed = True
        hist = self.history(key)
        if hist is None:
            hist = self._hist[key] = History()
            self._hist_absent.discard(key)
        return hist

    def store_chunks(self) -> list[str]:
        """Write the sealed history chunks (into the caller's batch); return their SHAs.

        They stay in :attr:`unstored` (readable) until :meth:`chunks_stored` says the
        batch holding them was published.
        """
        for data in self.unstored.values():
            self.objects.write_blob(data, tabular=True)
        return list(self.unstored)

    def chunks_stored(self, shas: list[str]) -> None:
        """Forget the bytes of chunks that are now safely stored."""
        for sha in shas:
            self.unstored.pop(sha, None)

    # -- updates ------------------------------------------------------------
    def set_param(self, key: str, value: Any) -> None:
        """Record a param; a different value for a logged key raises ParamConflictError."""
        self.check_param(key, value)
        self.params[key] = value

    def check_param(self, key: str, value: Any) -> None:
        """Raise ParamConflictError if ``key`` was logged with a different value."""
        if key in self.params:
            old = self.params[key]
            if params_equal(old, value):
                return
            raise ParamConflictError(
                f"param {key!r} was already logged as {old!r}; cannot change it to {value!r}",
                hint="params are immutable within a run; log a new key or start a new run",
                key=key,
                old=old,
                new=value,
            )

    def add_metric(
        self, key: str, step: int, timestamp: int, value: float, line: str | None = None
    ) -> None:
        """Append one point to a metric history and update its latest value."""
        hist = self._history_for_append(key)
        if hist.latest is None and (hist.chunks or hist.tail):
            # loaded from a tree: the latest step is not known until the history is read
            self._compute_latest(key, hist)
        hist.tail.append(line if line is not None else format_row(step, timestamp, value))
        hist.tail_sha = None
        if _supersedes(step, timestamp, value, hist.latest):
            hist.latest = (step, timestamp, value)
            self.metrics[key] = value
        if len(hist.tail) >= HISTORY_CHUNK_ROWS:
            self._seal(hist)

    def add_points(self, points: list[tuple[str, float, int, int]], rows: list[str]) -> None:
        """Append many ``(key, value, step, timestamp)`` points whose history lines are
        ``rows``; the same result as :meth:`add_metric` for each, in order, done per key."""
        by_key: dict[str, list[int]] = {}
        for i, p in enumerate(points):
            by_key.setdefault(p[0], []).append(i)
        for key, idx in by_key.items():
            hist = self._history_for_append(key)
            if hist.latest is None and (hist.chunks or hist.tail):
                self._compute_latest(key, hist)
            best = hist.latest
            pick = -1
            for i in idx:
                _, value, step, ts = points[i]
                if _supersedes(step, ts, value, best):
                    best, pick = (step, ts, value), i
            if pick >= 0:
                hist.latest = best
                self.metrics[key] = points[pick][1]
            new = [rows[i] for i in idx]
            hist.tail_sha = None
            while new:
                room = HISTORY_CHUNK_ROWS - len(hist.tail)
                hist.tail.extend(new[:room])
                new = new[room:]
                if len(hist.tail) >= HISTORY_CHUNK_ROWS:
                    self._seal(hist)

    def _seal(self, hist: History) -> None:
        """Close a full tail chunk: named now, stored by the writer in its next pack."""
        data = "".join(hist.tail).encode()
        sha = object_sha(b"blob", data)
        self.unstored[sha] = data
        hist.chunks.append(sha)
        hist.tail = []

    def _compute_latest(self, key: str, hist: History) -> None:
        best: tuple[int, int, float] | None = None
        for row in self.iter_history(key):
            if _supersedes(row[0], row[1], row[2], best):
                best = row
        hist.latest = best

    def iter_history(self, key: str) -> Iterable[tuple[int, int, float]]:
        """Yield every ``(step, timestamp, value)`` of ``key`` in logged order."""
        hist = self.history(key)
        if hist is None:
            return
        for sha in hist.chunks:
            data = self.unstored.get(sha)
            yield from parse_rows((data or self.objects.read_blob(sha)).decode())
        yield from parse_rows("".join(hist.tail))

    def history_texts(self, key: str) -> Iterator[tuple[str | None, str]]:
        """Yield ``(chunk blob sha, text)`` of each history chunk of ``key`` in logged order.

        The open tail comes last with sha None. Sealed chunks never change, so a reader
        may cache what it parsed from one by its sha (the web UI does).
        """
        hist = self.history(key)
        if hist is None:
            return
        for sha in hist.chunks:
            data = self.unstored.get(sha)
            yield sha, (data or self.objects.read_blob(sha)).decode()
        yield None, "".join(hist.tail)

    def set_tag(self, key: str, value: str) -> None:
        """Set or overwrite a tag."""
        self.tags[key] = value

    def delete_tag(self, key: str) -> None:
        """Remove a tag (absent is fine)."""
        self.tags.pop(key, None)

    def add_file(self, path: str, mode: int, sha: str) -> None:
        """Place a blob at ``path`` (relative to ``.vtrack/``) in the next tree."""
        self.pending_files[path] = (mode, sha)

    def add_artifact(self, path: str, entry: dict[str, Any]) -> None:
        """Add or replace an artifact manifest entry."""
        self.artifacts[path] = entry

    def add_input(self, entry: dict[str, Any]) -> None:
        """Add a dataset input entry, replacing one with the same name and context."""
        key = (entry.get("name"), entry.get("context"))
        self.inputs = [e for e in self.inputs if (e.get("name"), e.get("context")) != key]
        self.inputs.append(entry)

    # -- serialization ----------------------------------------------------------
    def run_yaml(self) -> dict[str, Any]:
        """The content of ``run.yaml``."""
        data = dict(self.info)
        data["tags"] = dict(self.tags)
        data["format"] = FORMAT_VERSION
        return data

    def build_tree(self) -> str:
        """Write every changed blob and tree; return the SHA of the ``.vtrack`` tree."""
        obj = self.objects
        self.store_chunks()
        entries: list[TreeEntry] = [
            (BLOB_MODE, b"run.yaml", self._yaml_blob("run.yaml", self.run_yaml())),
            (BLOB_MODE, b"params.yaml", self._yaml_blob("params.yaml", self.params)),
            (BLOB_MODE, b"metrics.yaml", self._yaml_blob("metrics.yaml", self.metrics)),
        ]
        if self.inputs:
            entries.append((BLOB_MODE, b"inputs.yaml", self._yaml_blob("inputs.yaml", self.inputs)))
        if self.artifacts:
            entries.append(
                (BLOB_MODE, b"artifacts.yaml", self._yaml_blob("artifacts.yaml", self.artifacts))
            )
        if self._metrics_tree is not None and not self._hist_changed:
            # nothing appended since loading: the histories are the tree they came from
            entries.append((TREE_MODE, b"metrics", self._metrics_tree))
        elif self.histories:
            nested: dict[str, Any] = {}
            for key, hist in self.histories.items():
                if hist.tail_sha is None and hist.tail:
                    hist.tail_sha = obj.write_blob("".join(hist.tail).encode(), tabular=True)
                files = [(BLOB_MODE, chunk_name(i).encode(), s) for i, s in enumerate(hist.chunks)]
                if hist.tail:
                    files.append((BLOB_MODE, chunk_name(len(hist.chunks)).encode(), hist.tail_sha))  # type: ignore[arg-type]
                node = nested
                for part in key.split("/"):
                    node = node.setdefault(part, {})
                node[""] = files
            entries.append((TREE_MODE, b"metrics", _write_nested(obj, nested)))
        if self.pending_files:
            by_top: dict[str, dict[str, tuple[int, str]]] = {}
            for path, entry in self.pending_files.items():
                top, _, rest = path.partition("/")
                if not rest:
                    self.extra[top] = entry
                else:
                    by_top.setdefault(top, {})[rest] = entry
            for top, top_files in by_top.items():
                base = self.extra.get(top)
                base_sha = base[1] if base and base[0] == TREE_MODE else None
                self.extra[top] = (TREE_MODE, overlay_tree(obj, base_sha, top_files))
            self.pending_files = {}
        for name, (mode, sha) in self.extra.items():
            if name not in MANAGED:
                entries.append((mode, name.encode(), sha))
        present = {e[1].decode() for e in entries}
        summary = self._summary_blob([n for n in SUMMARIZED if n in present])
        if summary is not None:
            entries.append((BLOB_MODE, SUMMARY_FILE.encode(), summary))
        return obj.write_tree(entries)

    def _summary_blob(self, names: list[str]) -> str | None:
        """Blob SHA of ``summary.json`` for the YAML files just written (see
        :mod:`vtrack.store.summary`); None when the record holds values JSON cannot mirror."""
        docs = {n: self._dumped[n] for n in names if n in self._dumped}
        key = tuple(sorted((n, sha) for n, (_, sha) in docs.items()))
        if self._summary is not None and self._summary[0] == key:
            return self._summary[1]
        data = encode_summary(docs)
        sha = None if data is None else self.objects.write_blob(data)
        self._summary = (key, sha)
        return sha

    def _yaml_blob(self, name: str, data: Any) -> str:
        """Blob SHA of ``data`` as YAML, reusing the last one when the content is unchanged."""
        last = self._dumped.get(name)
        if last is not None and _same(last[0], data):
            return last[1]
        sha = self.objects.write_blob(dump_yaml(data))
        self._dumped[name] = (copy.deepcopy(data), sha)
        return sha

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_tree(cls, objects: GitObjects, tree_sha: str) -> RecordState:
        """Load the record held in a ``.vtrack`` tree."""
        state = cls(objects)
        for mode, name_b, sha in objects.read_tree(tree_sha):
            name = name_b.decode()
            if name == "run.yaml":
                data = load_yaml(objects.read_blob(sha)) or {}
                state.tags = {str(k): str(v) for k, v in (data.pop("tags", None) or {}).items()}
                data.pop("format", None)
                state.info = data
            elif name == "params.yaml":
                state.params = load_yaml(objects.read_blob(sha)) or {}
            elif name == "metrics.yaml":
                state.metrics = {
                    k: float(v) for k, v in (load_yaml(objects.read_blob(sha)) or {}).items()
                }
            elif name == "inputs.yaml":
                state.inputs = load_yaml(objects.read_blob(sha)) or []
            elif name == "artifacts.yaml":
                state.artifacts = load_yaml(objects.read_blob(sha)) or {}
            elif name == "metrics" and mode == TREE_MODE:
                state._metrics_tree = sha  # histories are read on first use
            elif name == SUMMARY_FILE:
                continue  # derived from the files above, written again by build_tree
            else:
                state.extra[name] = (mode, sha)
        if state._metrics_tree is not None:
            # the top level of the metrics tree is read now (single histories need it):
            # a folder no metric key leads to is a history without a latest value
            top = state._metrics_top = {
                n.decode(): (m, sha) for m, n, sha in objects.read_tree(state._metrics_tree)
            }
            heads = {key.partition("/")[0] for key in state.metrics}
            for name in top:
                if name not in heads:
                    raise CorruptObjectError(
                        f"run record lists history for {name!r} but no latest value"
                    )
        return state

    def copy(self) -> RecordState:
        """A deep-enough copy that can be updated without touching this one."""
        other = RecordState(self.objects)
        other.info = dict(self.info)
        other.tags = dict(self.tags)
        other.params = dict(self.params)
        other.metrics = dict(self.metrics)
        other._metrics_tree = self._metrics_tree
        other._metrics_top = self._metrics_top
        other._hist_absent = set(self._hist_absent)
        other._hist_changed = self._hist_changed
        for key, h in self._hist.items():
            nh = History()
            nh.chunks = list(h.chunks)
            nh.tail = list(h.tail)
            nh.tail_sha = h.tail_sha
            nh.latest = h.latest
            other._hist[key] = nh
        other.inputs = [dict(e) for e in self.inputs]
        other.artifacts = {k: dict(v) for k, v in self.artifacts.items()}
        other.extra = dict(self.extra)
        other.pending_files = dict(self.pending_files)
        other.covered = dict(self.covered)
        other.unstored = dict(self.unstored)
        return other


def _same(a: Any, b: Any) -> bool:
    """Equality that also treats NaN as equal to NaN (metrics may hold NaN)."""
    try:
        return bool(a == b) and repr(a) == repr(b)
    except Exception:  # noqa: BLE001 - uncomparable content is never the same
        return False


def _write_nested(obj: GitObjects, node: dict[str, Any]) -> str:
    entries: list[TreeEntry] = list(node.get("", []))
    for name, child in node.items():
        if name == "":
            continue
        entries.append((TREE_MODE, name.encode(), _write_nested(obj, child)))
    return obj.write_tree(entries)


def _load_histories(obj: GitObjects, tree_sha: str, prefix: str, out: dict[str, History]) -> None:
    chunks: list[tuple[str, str]] = []
    for mode, name_b, sha in obj.read_tree(tree_sha):
        name = name_b.decode()
        if mode == TREE_MODE:
            _load_histories(obj, sha, f"{prefix}{name}/", out)
        elif name.endswith(".tsv") and name[:-4].isdigit():
            chunks.append((name, sha))
    hist = _history_of(obj, chunks)
    if hist is not None:
        out[prefix.rstrip("/")] = hist


def _load_history(obj: GitObjects, top: dict[str, tuple[int, str]], key: str) -> History | None:
    """The history of ``key`` alone: its folder under the metrics tree (whose top level
    is ``top``; ``a/b`` for key ``a/b``), or None when there is none."""
    head, _, rest = key.partition("/")
    found = top.get(head)
    if found is not None and rest:
        found = obj.tree_lookup(found[1], rest) if found[0] == TREE_MODE else None
    if found is None or found[0] != TREE_MODE:
        return None
    chunks = [(name_b.decode(), sha) for mode, name_b, sha in obj.read_tree(found[1])
              if mode != TREE_MODE and name_b.endswith(b".tsv") and name_b[:-4].isdigit()]  # fmt: skip
    return _history_of(obj, chunks)


def _history_of(obj: GitObjects, chunks: list[tuple[str, str]]) -> History | None:
    if not chunks:
        return None
    chunks.sort()
    hist = History()
    last_name, last_sha = chunks[-1]
    tail_text = obj.read_blob(last_sha).decode()
    tail_lines = tail_text.splitlines(keepends=True)
    if len(tail_lines) >= HISTORY_CHUNK_ROWS:
        hist.chunks = [s for _, s in chunks]
    else:
        hist.chunks = [s for _, s in chunks[:-1]]
        hist.tail = tail_lines
        hist.tail_sha = last_sha
    return hist


def overlay_tree(obj: GitObjects, base_sha: str | None, files: dict[str, tuple[int, str]]) -> str:
    """Return a tree equal to ``base_sha`` with ``files`` (relative path → entry) put in place."""
    entries: dict[bytes, tuple[int, str]] = {}
    if base_sha:
        entries = {name: (mode, sha) for mode, name, sha in obj.read_tree(base_sha)}
    direct: dict[str, tuple[int, str]] = {}
    deeper: dict[str, dict[str, tuple[int, str]]] = {}
    for path, entry in files.items():
        head, _, rest = path.partition("/")
        if rest:
            deeper.setdefault(head, {})[rest] = entry
        else:
            direct[head] = entry
    for name, entry in direct.items():
        entries[name.encode()] = entry
    for name, sub in deeper.items():
        existing = entries.get(name.encode())
        sub_base = existing[1] if existing and existing[0] == TREE_MODE else None
        entries[name.encode()] = (TREE_MODE, overlay_tree(obj, sub_base, sub))
    return obj.write_tree([(m, n, s) for n, (m, s) in entries.items()])


def _supersedes(
    step: int, timestamp: int, value: float, latest: tuple[int, int, float] | None
) -> bool:
    """Whether a point becomes a metric's latest value: MLflow's rule.

    The highest step wins, then the latest timestamp; at an equal step and timestamp the
    larger value wins (a NaN never replaces, nor is replaced by, an equal-time point).
    """
    if latest is None:
        return True
    if (step, timestamp) != (latest[0], latest[1]):
        return (step, timestamp) > (latest[0], latest[1])
    return value > latest[2]
