"""vtrack's logger, without importing :mod:`logging` until something is logged.

``logging`` and what it pulls in (``traceback``, ``string``, its regexes) cost a command
like ``vtrack ls`` a few milliseconds of start-up for warnings it almost never prints;
modules take :data:`log` from here and it becomes ``logging.getLogger("vtrack")`` on
first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["log"]


class _LazyLogger:
    """Forwards every attribute to ``logging.getLogger(name)``, imported on first use."""

    __slots__ = ("_name", "_logger")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self._name)
        return getattr(self._logger, attr)


#: The ``vtrack`` logger (see the module doc).
log: Any = _LazyLogger("vtrack")
