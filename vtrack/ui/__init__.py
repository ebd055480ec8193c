"""The web UI (``vtrack ui``): a local, read-only ASGI app over the client and the services.

Modules: :mod:`~vtrack.ui.app` (the app, Host check, security headers),
:mod:`~vtrack.ui.routes` (pages), :mod:`~vtrack.ui.api` (JSON, CSV, artifact bytes),
:mod:`~vtrack.ui.data` (every read, through the client and the services),
:mod:`~vtrack.ui.table` (the runs table's query string, rows, CSV),
:mod:`~vtrack.ui.charts` (histories, min/max reduction), :mod:`~vtrack.ui.previews`
(bounded artifact previews) and :mod:`~vtrack.ui.server` (``vtrack ui``). starlette,
uvicorn and jinja2 (the ``[ui]`` extra) are imported only when the app is built.
"""
