"""The ASGI app of ``vtrack ui``: routes, templates, static files and the security rules.

Promises:

- Read-only: every route answers GET (or HEAD); nothing changes the store.
- The ``Host`` header must name the address the server is bound to (``127.0.0.1``,
  ``localhost``, ``[::1]`` or the bound host, with or without the port), so a page on
  another site that rebinds its DNS name to 127.0.0.1 cannot read runs: other hosts get
  400. A server bound to every interface (``0.0.0.0``) accepts any host.
- Every answer carries ``X-Content-Type-Options: nosniff``, a ``Referrer-Policy`` and a
  ``Content-Security-Policy``; app pages allow scripts from the app itself only, and
  artifact bytes are served under ``sandbox`` with no scripts at all.
- starlette, jinja2 and plotly are imported when the app is built, never by
  ``import vtrack``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from vtrack.client import TrackingClient

HERE = Path(__file__).parent
#: The policy of the app's own pages: scripts from the app only (no inline code, no eval;
#: the charts avoid Plotly's WebGL traces, which compile code); Plotly.js adds <style>
#: elements, hence 'unsafe-inline' styles.
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
#: The policy of artifact bytes: a sandbox without scripts, forms or plugins.
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "media-src 'self'; frame-ancestors 'self'"
)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str, port: int | None) -> frozenset[str] | None:
    """The Host header values a server bound to ``host:port`` accepts (None: any)."""
    if host in WILDCARD_HOSTS:
        return None
    names = {host, *LOCAL_HOSTS} if host in LOCAL_HOSTS else {host}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    out = set(names)
    if port is not None:
        out |= {f"{n}:{port}" for n in names}
    return frozenset(out)


class SecurityMiddleware:
    """Pure ASGI middleware: the Host check and the security headers of every answer."""

    def __init__(self, app: Any, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if self.hosts is not None and host not in self.hosts:
            body = b"vtrack ui: this server answers only to the address it is bound to\n"
            await send({"type": "http.response.start", "status": 400, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        if scope.get("method") not in ("GET", "HEAD"):
            body = b"vtrack ui is read-only\n"
            await send({"type": "http.response.start", "status": 405, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD"),
                (b"content-length", str(len(body)).encode()),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        raw = scope["path"].startswith("/raw/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                hdrs = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() != b"content-security-policy"]  # fmt: skip
                hdrs += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"content-security-policy", (ARTIFACT_CSP if raw else APP_CSP).encode()),
                ]
                if not raw:
                    hdrs.append((b"x-frame-options", b"SAMEORIGIN"))
                message = dict(message, headers=hdrs)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def plotly_js() -> Path | None:
    """The Plotly.js bundle of the installed ``plotly`` package (None without it)."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(
    client: TrackingClient,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    experiment_id: str | None = None,
    poll_ms: int = 2000,
) -> Starlette:
    """The app serving ``client``'s store; ``experiment_id`` is the table's first scope."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from vtrack.ui.data import UIData
    from vtrack.ui.routes import make_routes

    data = UIData(client)
    routes = make_routes(
        data, templates_dir=HERE / "templates", static_dir=HERE / "static",
        plotly=plotly_js(), start_experiment=experiment_id, poll_ms=poll_ms,
        cache_dir=client.repo.store.location.vtrack_dir / "cache" / "templates",
    )  # fmt: skip
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, hosts=allowed_hosts(host, port))],
    )
