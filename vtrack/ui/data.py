"""What the web UI reads, and only through the client and the services.

One :class:`UIData` per server wraps a :class:`~vtrack.client.TrackingClient`: run
pages through the derived index (``search_runs_page``), runs by id, metric histories
(parsed once per history version, see :class:`vtrack.ui.charts.SeriesCache`), artifact
streams (:mod:`vtrack.artifacts`), input audits (:mod:`vtrack.provenance`), code diffs
(:mod:`vtrack.repro`) and the compare model (:mod:`vtrack.diff`). Nothing here writes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from vtrack.errors import QuerySyntaxError, RunNotFoundError, ValidationError
from vtrack.ui import charts, table

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import ArtifactEntry, Run

_RUN_ID = re.compile(r"[0-9a-f]{32}")
#: Chart answers and snapshot diffs remembered (small LRU caches).
WINDOWS_KEPT = 64
DIFFS_KEPT = 256
#: Records of finished runs remembered (their metric histories' chunk lists).
RECORDS_KEPT = 256


class UIData:
    """Read-only access to one store for the UI's handlers."""

    def __init__(self, client: TrackingClient) -> None:
        from vtrack.ui.columnar import ColumnarCache

        self.client = client
        self.cache = charts.SeriesCache(disk=ColumnarCache(client.history_cache()))
        self._windows: OrderedDict[Any, tuple[charts.Series, dict[str, Any]]] = OrderedDict()
        self._diffs: OrderedDict[str, Any] = OrderedDict()
        self._records: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    # -- experiments and runs ---------------------------------------------------------------
    def experiments(self) -> list[Any]:
        """Active experiments, by name."""
        return sorted(self.client.search_experiments("ACTIVE_ONLY"), key=lambda e: e.name)

    def exp_names(self) -> dict[str, str]:
        """Experiment id → name, deleted experiments included."""
        return {e.experiment_id: e.name for e in self.client.search_experiments("ALL")}

    def run(self, run_id: str) -> Run:
        """The run ``run_id`` (a full id); RunNotFoundError otherwise (never a git error)."""
        if not _RUN_ID.fullmatch(run_id or ""):
            raise RunNotFoundError(f"no run {run_id!r}")
        return self.client.get_run(run_id)

    def runs(self, run_ids: list[str]) -> list[Run]:
        """The runs named, in order; unknown ids are skipped."""
        out = []
        for rid in run_ids:
            try:
                out.append(self.run(rid))
            except RunNotFoundError:
                continue
        return out

    # -- the runs table ----------------------------------------------------------------------
    def page(self, params: dict[str, str], *, csv: bool = False) -> table.Page:
        """One page of the runs table for a query string (errors are shown, never raised)."""
        query, problems = table.TableQuery.from_params(params)
        exps = query.experiments or None
        view = "DELETED_ONLY" if query.deleted else "ACTIVE_ONLY"
        filter_error = None
        filter_column = None
        offset = 0 if csv else (query.page - 1) * query.per
        limit = table.MAX_CSV_ROWS if csv else query.per
        try:
            runs, total = self._search(query, exps, query.filter, offset, limit, view)
        except QuerySyntaxError as exc:
            filter_error = str(exc).split("\n", 1)[0]
            filter_column = exc.column or None
            runs, total = self._search(query, exps, "", 0, query.per, view)
        except ValidationError as exc:
            filter_error = exc.message
            runs, total = self.client.search_runs_page(
                exps, "", [], offset=0, limit=query.per, run_view_type=view
            )
        columns = query.columns
        if columns is None:
            from vtrack import views

            columns = [table.Column(k) for k in views.default_columns(runs, exps is None)]
        from vtrack import views

        keys = list(dict.fromkeys(c.key for c in columns))  # one title per key
        short = dict(zip(keys, views.column_headers(keys), strict=True))
        headers = [c.header(short[c.key]) for c in columns]
        rows = table.build_rows(runs, columns, self.exp_names(), self.summaries)
        return table.Page(query, columns, headers, rows, total, filter_error, filter_column,
                          problems)  # fmt: skip

    def _search(
        self, query: table.TableQuery, exps: list[str] | None, filter_string: str,
        offset: int, limit: int, view: str,
    ) -> tuple[list[Run], int]:  # fmt: skip
        """One page of runs: sorted by the index, or by a metric summary for aggregates."""
        sort = query.sort_column()
        if sort is not None and sort[0].agg != "last":
            col, ascending = sort
            return self.client.search_runs_by_metric_summary(
                exps, filter_string, col.key[len("metrics.") :], col.agg, step=col.step,
                ascending=ascending, offset=offset, limit=limit, run_view_type=view,
            )  # fmt: skip
        return self.client.search_runs_page(
            exps, filter_string, query.order_by(), offset=offset, limit=limit,
            run_view_type=view,
        )  # fmt: skip

    def summaries(self, run_ids: Sequence[str], col: table.Column) -> dict[str, Any]:
        """The aggregate ``col`` (min, max, step=N) of each run named: the sort's summaries."""
        return self.client.metric_summaries(run_ids, col.key[len("metrics.") :], col.agg, col.step)

    def column_choices(self, experiments: list[str]) -> dict[str, list[str]]:
        """Param, metric and tag keys of the runs in scope (for the column chooser)."""
        return self.client.run_index().keys(experiments or None)

    def rows_of(self, run_ids: list[str], specs: list[str]) -> list[dict[str, Any]]:
        """Fresh rows of the runs named (the live refresh of running rows)."""
        columns = [table.parse_column(s) for s in specs]
        runs = self.runs(run_ids)
        return table.build_rows(runs, columns, self.exp_names(), self.summaries)

    # -- metric histories ----------------------------------------------------------------------
    def series(self, run_id: str, key: str) -> charts.Series:
        """The history of metric ``key`` of ``run_id`` (cached while it does not change)."""
        return self.history(run_id, key)[0]

    def history(self, run_id: str, key: str) -> tuple[charts.Series, dict[str, Any]]:
        """The series of metric ``key`` and the run's info, read from one state of the run.

        RunNotFoundError when the run or the metric is not there.
        """
        from vtrack.validation import validate_metric_key

        if not _RUN_ID.fullmatch(run_id or ""):
            raise RunNotFoundError(f"no run {run_id!r}")
        validate_metric_key(key)
        record = self._record(run_id)
        hist = record.history(key)
        if hist is None:
            raise RunNotFoundError(f"run {run_id} has no metric {key!r}")
        signature = (tuple(hist.chunks), len(hist.tail))
        cached = self.cache.get(run_id, key, signature)
        if cached is not None:
            return cached, record.info

        def reader(sha: str) -> Callable[[], str]:
            return lambda: (record.unstored.get(sha) or record.objects.read_blob(sha)).decode()

        chunks = [self.cache.chunk(sha, reader(sha)) for sha in hist.chunks]
        chunks.append(self.cache.chunk(None, "".join(hist.tail)))
        series = charts.build_series(chunks)
        self.cache.put(run_id, key, signature, series)
        return series, record.info

    def _record(self, run_id: str) -> Any:
        """The run's record; a finished run's is remembered by its commit.

        A run that is live (a journal, or a writer in this process) is read every time.
        """
        repo = self.client.repo
        store = repo.store
        if repo.own_writer(run_id) is None and run_id not in store.live_run_ids():
            tip = store.run_tip(run_id) or store.trash_tip(run_id)
            with self._lock:
                hit = self._records.get(run_id)
                if hit is not None and tip is not None and hit[0] == tip:
                    self._records.move_to_end(run_id)
                    return hit[1]
            state = repo.state(run_id, deleted_ok=True)
            if state.commit is not None and state.commit == tip:
                with self._lock:
                    self._records[run_id] = (state.commit, state.record)
                    while len(self._records) > RECORDS_KEPT:
                        self._records.popitem(last=False)
            return state.record
        return repo.state(run_id, deleted_ok=True).record

    def window(
        self, run_id: str, key: str, axis: str, lo: float | None, hi: float | None, budget: int
    ) -> dict[str, Any]:
        """:func:`charts.window` of a history, remembered while the history is unchanged."""
        series, info = self.history(run_id, key)
        start = int(info.get("start_time") or 0)
        ckey = (run_id, key, axis, lo, hi, budget, start)
        with self._lock:
            hit = self._windows.get(ckey)
            if hit is not None and hit[0] is series:
                self._windows.move_to_end(ckey)
                return dict(hit[1], run_name=info.get("name"))
        out = charts.window(series, axis, start, lo, hi, budget)
        out.update(run_id=run_id, key=key)
        with self._lock:
            self._windows[ckey] = (series, out)
            while len(self._windows) > WINDOWS_KEPT:
                self._windows.popitem(last=False)
        return dict(out, run_name=info.get("name"))

    def series_or_none(self, run_id: str, key: str) -> charts.Series | None:
        """:meth:`series`, None when the run or metric is not there."""
        try:
            return self.series(run_id, key)
        except (RunNotFoundError, ValidationError):
            return None

    # -- artifacts, inputs, code --------------------------------------------------------------
    def artifact_entry(self, run_id: str, path: str) -> ArtifactEntry:
        """The manifest entry of one artifact file (ArtifactNotFoundError / ValidationError)."""
        from vtrack import artifacts

        self.run(run_id)
        return artifacts.artifact_entry(self.client.repo, run_id, path)

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A stream of one artifact file (never read whole here)."""
        from vtrack import artifacts

        return artifacts.open_artifact(self.client.repo, run_id, path)

    def artifact_manifest(self, run_id: str) -> dict[str, ArtifactEntry]:
        """Every artifact file of the run: path → entry."""
        from vtrack import artifacts

        return artifacts.manifest(self.client.repo, run_id)

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        """The live audit state of each input (unchanged / changed / missing)."""
        return self.client.audit(run_id)

    def lineage(self, target: str) -> list[dict[str, Any]]:
        """Runs that read ``target`` (a digest or a path), newest first (``vtrack lineage``)."""
        return self.client.lineage(target)

    def artifact_writers(self, digest: str) -> list[dict[str, Any]]:
        """Runs that logged an artifact with ``digest``, newest first."""
        return self.client.artifact_writers(digest)

    def run_inputs(self, run_id: str) -> list[Any]:
        """The dataset inputs of a run (empty when it is gone)."""
        try:
            return list(self.run(run_id).inputs.datasets)
        except RunNotFoundError:
            return []

    def run_outputs(self, run_id: str) -> list[tuple[str, Any]]:
        """The artifact files of a run with their entries, by path (empty when it is gone)."""
        try:
            return sorted(self.artifact_manifest(run_id).items())
        except RunNotFoundError:
            return []

    def snapshot_diff(self, run: Run) -> Any:
        """The run's code against the commit it started from."""
        from vtrack.repro.codediff import snapshot_diff

        commit = run.info.commit
        with self._lock:
            if commit and commit in self._diffs:
                self._diffs.move_to_end(commit)
                return self._diffs[commit]
        diff = snapshot_diff(self.client.repo, run)
        if commit:  # a run commit names its code tree and its source: the diff is fixed
            with self._lock:
                self._diffs[commit] = diff
                while len(self._diffs) > DIFFS_KEPT:
                    self._diffs.popitem(last=False)
        return diff

    def code_diff(self, a: Run, b: Run) -> tuple[Any, str]:
        """The code diff between two runs: the files and the patch."""
        from vtrack.repro.codediff import run_code_diff

        code = run_code_diff(self.client.repo, a, b, patch=True)
        return code, code.patch or ""

    def children(self, run: Run) -> list[Any]:
        """Runs whose parent is ``run``, oldest first (index summaries)."""
        return self.client.run_index().children_of(run.info.run_id)
