"""Progress of long operations, reported to whoever listens (the command line).

Lower layers call :func:`report`; nothing happens unless a face (the CLI) installed a
reporter with :func:`set_reporter`. Keeps storage code free of terminal output.
"""

from __future__ import annotations

from collections.abc import Callable

Reporter = Callable[[str, int, int], None]

_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Send progress reports to ``reporter(task, done, total)`` (None: drop them)."""
    global _reporter
    _reporter = reporter


def report(task: str, done: int, total: int) -> None:
    """Tell the installed reporter that ``done`` of ``total`` units of ``task`` are done."""
    if _reporter is not None:
        _reporter(task, done, total)
