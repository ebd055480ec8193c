"""The UI's models pages: registered models, and one model's versions, aliases and timeline.

Read-only, through the client's model registry (:mod:`vtrack.registry`). ``/models``
lists the registered models; ``/models/<name>`` shows each version (run, digest, metrics
at registration, aliases) and the history as a timeline, newest first, with each alias
move's previous version, reason and evidence. An unknown model is a 404 page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vtrack.errors import RegisteredModelNotFoundError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from vtrack.ui.data import UIData

Handler = Callable[["Request"], Awaitable["Response"]]


def routes(data: UIData, render: Callable[..., Response],
           guarded: Callable[[Handler], Handler]) -> list[Any]:  # fmt: skip
    """The Starlette routes of the models pages."""
    from starlette.routing import Route

    registry = data.client.model_registry

    @guarded
    async def models_page(request: Request) -> Response:
        return render("models.html", models=registry.model_summaries())

    @guarded
    async def model_page(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            rm = registry.get_registered_model(name)
        except RegisteredModelNotFoundError as exc:
            return render("error.html", 404, title="Not found", message=exc.message)
        versions = registry.search_model_versions(f"name = '{name}'")
        timeline = list(reversed(registry.history(name)))
        return render("model.html", rm=rm, versions=versions, timeline=timeline)

    return [Route("/models", models_page), Route("/models/{name}", model_page)]
