"""The UI's pages: runs table, run page, compare view, artifact preview (HTML, Jinja2).

Every handler reads through :class:`vtrack.ui.data.UIData`. A run or artifact that is
not there (or a path the artifact rules refuse, encoded or not) is a 404 page; a bad
filter is shown above the table at its column, never as an error page.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from vtrack import views
from vtrack.errors import (
    ArtifactNotFoundError,
    RunNotFoundError,
    ValidationError,
    VtrackError,
)
from vtrack.ui import previews, table

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from vtrack.entities import Run
    from vtrack.ui.data import UIData

Handler = Callable[["Request"], Awaitable["Response"]]
#: Digests of a path whose writers the lineage page looks up; runs per side it expands
#: (what a writer read, what a reader wrote); items shown per expanded run.
LINEAGE_DIGESTS = 20
LINEAGE_EXPAND = 50
LINEAGE_ITEMS = 20
#: Points a chart's first view asks for (the run page preloads exactly that request, so it
#: is fetched while Plotly.js is still being parsed); zooms ask for two points a pixel.
FIRST_BUDGET = 1500


def make_routes(
    data: UIData,
    *,
    templates_dir: Path,
    static_dir: Path,
    plotly: Path | None,
    start_experiment: str | None,
    poll_ms: int,
    cache_dir: Path | None = None,
) -> list[Any]:
    """Starlette routes of the whole app (pages, the JSON API, files)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from vtrack.ui import api, markdown, models

    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        bytecode_cache=_bytecode_cache(cache_dir),
    )
    env.globals.update(views=views, urlencode=urlencode, poll_ms=poll_ms,
                       plotly=plotly is not None)  # fmt: skip
    env.filters["fmt"] = views.fmt_value
    env.filters["fmt_param"] = views.fmt_param
    env.filters["fmt_time"] = views.fmt_time
    env.filters["fmt_bytes"] = views.fmt_bytes
    env.filters["short"] = views.short_id
    env.filters["markdown"] = markdown.render
    env.filters["component"] = lambda s: quote(str(s), safe="-_.!~*'()")  # encodeURIComponent
    env.globals["first_budget"] = FIRST_BUDGET

    def render(name: str, status: int = 200, **ctx: Any) -> Response:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    warmed = threading.Event()

    def warm_up() -> None:
        """After the first page: load what the other pages need, off the request path."""
        if warmed.is_set():
            return
        warmed.set()

        def work() -> None:
            import contextlib

            with contextlib.suppress(Exception):
                import numpy  # noqa: F401

                import vtrack.diff.build  # noqa: F401
                import vtrack.diff.compare  # noqa: F401
                import vtrack.repro.codediff  # noqa: F401

                for name in ("run.html", "compare.html", "artifact.html", "lineage.html"):
                    env.get_template(name)

        threading.Thread(target=work, name="vtrack-ui-warm-up", daemon=True).start()

    def guarded(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def wrapper(request: Request) -> Response:
            try:
                return await fn(request)
            except (RunNotFoundError, ArtifactNotFoundError) as exc:
                return render("error.html", 404, title="Not found", message=str(exc))
            except ValidationError as exc:
                if request.path_params.get("path") is not None:  # a refused artifact path
                    return render("error.html", 404, title="Not found", message=exc.message)
                return render("error.html", 400, title="Bad request", message=exc.message)
            except VtrackError as exc:
                return render("error.html", 500, title="Store error", message=str(exc))

        return wrapper

    @guarded
    async def runs_page(request: Request) -> Response:
        params = dict(request.query_params)
        if "exp" not in params and start_experiment:
            params["exp"] = start_experiment
        page = data.page(params)
        q = page.query
        choices = data.column_choices(q.experiments)
        page_html = render(
            "runs.html", page=page, q=q, tree=table.nest(page.rows),
            experiments=data.experiments(), choices=choices,
            specs=[c.spec for c in page.columns],
            metric_specs={c.key: c.spec for c in page.columns if c.key.startswith("metrics.")},
            link=lambda **kw: "?" + urlencode(q.to_params(**kw)),
        )  # fmt: skip
        warm_up()  # the first page is rendered: now load the rest in the background
        return page_html

    @guarded
    async def run_page(request: Request) -> Response:
        run = data.run(request.path_params["run_id"])
        audit: list[dict[str, Any]] | None
        try:
            audit = data.audit(run.info.run_id) if run.inputs.datasets else []
        except VtrackError:
            audit = None
        manifest = data.artifact_manifest(run.info.run_id)
        metrics = sorted(run.data.metrics)
        summaries = {}
        for k in metrics:
            series = data.series_or_none(run.info.run_id, k)
            summaries[k] = {
                "last": run.data.metrics[k],
                "min": table.aggregate(series, table.Column(f"metrics.{k}", "min")),
                "max": table.aggregate(series, table.Column(f"metrics.{k}", "max")),
                "points": len(series) if series is not None else 0,
            }
        return render(
            "run.html", run=run, source=run.info.source or {},
            duration=views.duration_seconds(run), exp_names=data.exp_names(),
            children=data.children(run), audit=audit, artifacts=sorted(manifest.items()),
            kinds={p: previews.kind_of(p) for p in manifest},
            metrics=[m for m in metrics if not m.startswith("system/")],
            system_metrics=[m for m in metrics if m.startswith("system/")],
            code=data.snapshot_diff(run), summaries=summaries,
        )  # fmt: skip

    @guarded
    async def compare_page(request: Request) -> Response:
        from vtrack.diff import compare_runs

        ids = table.split_list(request.query_params.get("runs", ""))
        runs = data.runs(ids)
        if len(runs) < 2:
            return render("error.html", 400, title="Compare needs two runs",
                          message="select two or more runs in the table, then Compare")  # fmt: skip
        cmp = compare_runs(runs, all_rows=True)
        a_id = request.query_params.get("a") or runs[0].info.run_id
        b_id = request.query_params.get("b") or runs[1].info.run_id
        by_id = {r.info.run_id: r for r in runs}
        a, b = by_id.get(a_id, runs[0]), by_id.get(b_id, runs[1])
        code, patch = data.code_diff(a, b)
        return render(
            "compare.html", runs=runs, cmp=cmp, a=a, b=b, code=code,
            patch=patch.splitlines(), only_diff=request.query_params.get("diff") == "1",
            metrics=sorted({k for r in runs for k in r.data.metrics}),
            numeric=_numeric_columns(runs), ids=",".join(r.info.run_id for r in runs),
        )  # fmt: skip

    @guarded
    async def artifact_page(request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        entry = data.artifact_entry(run_id, path)
        kind = previews.kind_of(entry.path)
        pv: dict[str, Any] = {"path": entry.path, "kind": kind, "size": entry.size}
        if kind not in ("image", "html"):
            with data.open_artifact(run_id, entry.path) as f:
                prefix, more = previews.read_prefix(f)
            pv = previews.preview(entry.path, prefix, more, entry.size)
        return render("artifact.html", run=data.run(run_id), entry=entry, pv=pv,
                      limit=previews.PREVIEW_BYTES)  # fmt: skip

    @guarded
    async def lineage_page(request: Request) -> Response:
        qp = request.query_params
        target = (qp.get("digest") or qp.get("path") or "").strip()
        if not target:
            raise ValidationError("lineage needs ?digest=xxh3-128:<hex> or ?path=<file or folder>")
        readers = data.lineage(target)
        digests = [target] if qp.get("digest") else sorted({r["digest"] for r in readers
                                                            if r.get("digest")})  # fmt: skip
        writers = [w for d in digests[:LINEAGE_DIGESTS] for w in data.artifact_writers(d)]
        upstream = {w["run_id"]: data.run_inputs(w["run_id"])
                    for w in writers[:LINEAGE_EXPAND]}  # fmt: skip
        downstream = {r["run_id"]: data.run_outputs(r["run_id"])
                      for r in readers[:LINEAGE_EXPAND]}  # fmt: skip
        return render(
            "lineage.html", target=target, is_digest=bool(qp.get("digest")), readers=readers,
            writers=writers, upstream=upstream, downstream=downstream, exp_names=data.exp_names(),
            expand=LINEAGE_EXPAND, items=LINEAGE_ITEMS,
        )  # fmt: skip

    async def plotly_route(request: Request) -> Response:
        if plotly is None:
            return PlainTextResponse("plotly is not installed", status_code=404)
        return FileResponse(plotly, media_type="text/javascript",
                            headers={"cache-control": "max-age=86400"})  # fmt: skip

    return [
        Route("/", runs_page),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/artifacts/{path:path}", artifact_page),
        Route("/compare", compare_page),
        Route("/lineage", lineage_page),
        Route("/static/plotly.min.js", plotly_route),
        *api.routes(data, guarded_json=api.guarded_json),
        *models.routes(data, render, guarded),
        Mount("/static", app=StaticFiles(directory=str(static_dir)), name="static"),
    ]


def _bytecode_cache(cache_dir: Path | None) -> Any:
    """Compiled templates kept under ``cache_dir`` across restarts (None: not kept).

    Compiling the templates is a good part of the first page after ``vtrack ui`` starts;
    a store that cannot be written just compiles them every time.
    """
    if cache_dir is None:
        return None
    from jinja2 import FileSystemBytecodeCache

    class Quiet(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError):
                bucket.reset()

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return Quiet(str(cache_dir))


def _numeric_columns(runs: list[Run]) -> dict[str, list[Any]]:
    """Columns of the compare plots: params and metrics with a number in every run."""
    out: dict[str, list[Any]] = {}
    keys = sorted({f"params.{k}" for r in runs for k in r.data.params}
                  | {f"metrics.{k}" for r in runs for k in r.data.metrics})  # fmt: skip
    for key in keys:
        vals = [views.cell(r, key) for r in runs]
        nums = []
        for v in vals:
            if isinstance(v, bool):
                break
            if isinstance(v, (int, float)):
                nums.append(v)
            elif isinstance(v, str):
                try:
                    nums.append(float(v))
                except ValueError:
                    break
            else:
                break
        else:
            out[key] = views.jsonable(nums)
    return out
