"""The UI's JSON API and file routes.

- ``GET /api/runs`` — one page of the runs table as JSON (the query string of ``/``);
  a bad filter gives 200 with ``filter_error`` and ``filter_column``.
- ``GET /api/runs.csv`` — every matching run of the current view as CSV (at most
  :data:`vtrack.ui.table.MAX_CSV_ROWS`), the chosen columns, full precision.
- ``GET /api/rows?ids=..&cols=..`` — fresh rows of some runs (the live refresh).
- ``GET /api/history/{run}/{key}?x=step|time|relative&lo=&hi=&budget=`` — a metric
  history for a chart, exact or min/max-reduced (:func:`vtrack.ui.charts.window`).
- ``GET /raw/{run}/{path}`` — an artifact's bytes, streamed, with a safe type;
  ``?frame=1`` serves HTML as HTML for the sandboxed preview frame, ``?download=1``
  as an attachment.

Errors are JSON ``{"error": ...}`` with 400 (bad arguments) or 404 (no such run, metric
or artifact, and every artifact path the rules refuse).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vtrack import views
from vtrack.errors import ArtifactNotFoundError, RunNotFoundError, ValidationError, VtrackError
from vtrack.ui import charts, previews, table

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from vtrack.ui.data import UIData

Handler = Callable[["Request"], Awaitable["Response"]]
#: Bytes per read when streaming an artifact.
STREAM_CHUNK = 256 * 1024


def _json(obj: Any, status: int = 200) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(views.jsonable(obj), status_code=status)


def guarded_json(fn: Handler) -> Handler:
    """Turn vtrack errors into JSON answers (404 for what is not there, 400 for bad input)."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except (RunNotFoundError, ArtifactNotFoundError) as exc:
            return _json({"error": str(exc)}, 404)
        except ValidationError as exc:
            status = 404 if request.path_params.get("path") is not None else 400
            return _json({"error": exc.message}, status)
        except VtrackError as exc:
            return _json({"error": str(exc)}, 500)

    return wrapper


def _float(text: str | None, name: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{name} must be a number, not {text!r}") from None


def routes(data: UIData, *, guarded_json: Callable[[Handler], Handler]) -> list[Any]:
    """The API and file routes."""
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    @guarded_json
    async def runs_json(request: Request) -> Response:
        return _json(data.page(dict(request.query_params)).to_dict())

    @guarded_json
    async def runs_csv(request: Request) -> Response:
        page = data.page(dict(request.query_params), csv=True)
        if page.filter_error:
            return _json({"error": page.filter_error, "column": page.filter_column}, 400)
        text = table.csv_lines(page.columns, page.rows)
        return PlainTextResponse(text, media_type="text/csv; charset=utf-8", headers={
            "content-disposition": 'attachment; filename="runs.csv"'})  # fmt: skip

    @guarded_json
    async def rows_json(request: Request) -> Response:
        ids = table.split_list(request.query_params.get("ids", ""))[: table.MAX_PER_PAGE]
        specs = table.split_list(request.query_params.get("cols", ""))
        return _json({"rows": data.rows_of(ids, specs)})

    @guarded_json
    async def history_json(request: Request) -> Response:
        run_id, key = request.path_params["run_id"], request.path_params["key"]
        qp = request.query_params
        axis = qp.get("x", "step")
        if axis not in charts.X_AXES:
            raise ValidationError(f"x must be one of {', '.join(charts.X_AXES)}, not {axis!r}")
        budget = int(_float(qp.get("budget"), "budget") or charts.DEFAULT_BUDGET)
        if not 10 <= budget <= charts.MAX_BUDGET:
            raise ValidationError(f"budget must be between 10 and {charts.MAX_BUDGET}")
        out = data.window(run_id, key, axis, _float(qp.get("lo"), "lo"), _float(qp.get("hi"), "hi"),
                          budget)  # fmt: skip
        return _json(out)

    @guarded_json
    async def raw(request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        entry = data.artifact_entry(run_id, path)
        norm = entry.path
        framed = request.query_params.get("frame") == "1"
        media = previews.served_type(norm, framed=framed)
        stream = data.open_artifact(run_id, norm)

        def chunks() -> Iterator[bytes]:
            with stream:
                while True:
                    block = stream.read(STREAM_CHUNK)
                    if not block:
                        return
                    yield block

        name = norm.rsplit("/", 1)[-1]
        disposition = "attachment" if (
            request.query_params.get("download") == "1" or media == "application/octet-stream"
        ) else "inline"  # fmt: skip
        headers = {
            "content-disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "content-length": str(entry.size),
            "cache-control": "no-store",
        }
        return StreamingResponse(chunks(), media_type=media, headers=headers)

    @guarded_json
    async def experiments_json(request: Request) -> Response:
        return _json([views.experiment_to_dict(e) for e in data.experiments()])

    return [
        Route("/api/runs", runs_json),
        Route("/api/runs.csv", runs_csv),
        Route("/api/rows", rows_json),
        Route("/api/history/{run_id}/{key:path}", history_json),
        Route("/api/experiments", experiments_json),
        Route("/raw/{run_id}/{path:path}", raw),
    ]
