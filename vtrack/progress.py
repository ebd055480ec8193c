"""Progress of long operations, reported to whoever listens (the command line).

Lower layers call :func:`report` (or wrap the work in :func:`task`); nothing happens
unless a face (the CLI) installed a reporter with :func:`set_reporter`. Storage code
never draws: how, when and whether to show progress is the face's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Reporter = Callable[[str, int, int], None]

_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Send progress reports to ``reporter(task, done, total)`` (None: drop them).

    A report with ``done >= total`` means the task is over (finished or abandoned).
    """
    global _reporter
    _reporter = reporter


def report(task: str, done: int, total: int) -> None:
    """Tell the installed reporter that ``done`` of ``total`` units of ``task`` are done."""
    if _reporter is not None:
        _reporter(task, done, total)


@contextmanager
def task(name: str, total: int) -> Iterator[Callable[[int], None]]:
    """Report one task of ``total`` units; yields ``update(done)`` for the work to call.

    The end is always reported as ``(name, total, total)``, whether the block completes
    or raises, so a face can take its bar down before an error message is shown.
    ``update`` costs one check when no reporter is installed.
    """

    def update(done: int) -> None:
        if _reporter is not None:
            _reporter(name, done, total)

    try:
        yield update
    finally:
        report(name, total, total)
