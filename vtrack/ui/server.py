"""Running the UI: check the extra is installed, bind, print the URL, serve until stopped.

``serve`` binds 127.0.0.1 unless told otherwise and warns on stderr when bound to any
other address (the runs become readable from the network). The port is bound before the
URL is printed, so a script that waits for the URL line can connect at once.
"""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from vtrack.errors import MissingDependencyError

if TYPE_CHECKING:
    from vtrack.client import TrackingClient

#: Modules of the ``[ui]`` extra.
UI_MODULES = ("starlette", "uvicorn", "jinja2", "numpy")
UI_HINT = "pip install 'vtrack[ui]'"


def check_dependencies() -> None:
    """MissingDependencyError naming the extra when a module of ``[ui]`` is missing."""
    import importlib.util

    missing = [m for m in UI_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"vtrack ui needs {', '.join(missing)} (the [ui] extra)", hint=UI_HINT
        )


def url_of(host: str, port: int) -> str:
    """The URL people open for a server bound to ``host:port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from vtrack.errors import ValidationError

        raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    client: TrackingClient,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    experiment_id: str | None = None,
    open_browser: bool = False,
    poll_ms: int = 2000,
) -> None:
    """Serve the UI of ``client``'s store until interrupted."""
    check_dependencies()
    import uvicorn

    from vtrack.ui.app import LOCAL_HOSTS, create_app

    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = create_app(client, host=host, port=port, experiment_id=experiment_id, poll_ms=poll_ms)
    url = url_of(host, port)
    if host not in LOCAL_HOSTS:
        sys.stderr.write(
            f"vtrack ui: warning: listening on {host}, not 127.0.0.1: anyone who can reach "
            "this address can read every run in this store\n"
        )
    sys.stdout.write(f"vtrack ui: serving {url} (Ctrl-C to stop)\n")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
