"""What the framework callbacks share: the run they log into and how values are logged.

A callback logs into the run that is active when training starts. With none, it starts
one, and ends it when training ends (FINISHED, or FAILED when the framework reports a
failure). Values are logged as the framework hands them over: tensors and numpy scalars
become floats, anything else that is not a number is skipped, and metric names are made
valid keys (characters outside letters, digits, ``_ - . /`` and spaces become ``_``).
Logging failures warn (:class:`~vtrack.autolog.patching.AutologWarning`) and never stop
training.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import Any

from vtrack.autolog.patching import best_effort, report
from vtrack.autolog.sklearn_content import param_value

_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-./ ]")


def metric_key(name: Any) -> str:
    """``name`` as a valid metric key."""
    key = _BAD_KEY_CHARS.sub("_", str(name)).strip("/ ") or "_"
    return re.sub(r"\.\.+", ".", key)


def to_float(value: Any) -> float | None:
    """A float for a number, a one-element tensor or array; None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Number):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    item = getattr(value, "item", None)
    size = getattr(value, "numel", None) or getattr(value, "size", None)
    if callable(item):
        try:
            n = size() if callable(size) else size
            if n in (None, 1):
                return float(item())
        except Exception:  # noqa: BLE001 - not a scalar: skipped
            return None
    return None


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of ``metrics`` under valid keys (NaN and infinities kept)."""
    out = {}
    for k, v in metrics.items():
        f = to_float(v)
        if f is not None:
            out[metric_key(k)] = f
    return out


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``params`` flattened with ``.``, values as :func:`log_params` accepts them."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = metric_key(f"{prefix}{k}")
        if isinstance(v, Mapping) and v:
            out.update(flat_params(v, prefix=f"{key}."))
        else:
            out[key] = param_value(v)
    return out


class RunScope:
    """The run a callback logs into, started by it when none was active."""

    def __init__(self, *, run_name: str | None = None, tags: Mapping[str, Any] | None = None,
                 silent: bool = False) -> None:  # fmt: skip
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.silent = silent
        self.run_id: str | None = None
        #: the run logged into last (kept after ``end``, for the caller to read back)
        self.last_run_id: str | None = None
        self.owned = False
        self._warned: set[str] = set()

    def ensure(self) -> str | None:
        """The run's id, starting a run if none is active (None if that failed)."""
        if self.run_id is not None:
            return self.run_id
        from vtrack import fluent

        active = fluent.active_run()
        if active is not None:
            self.run_id = self.last_run_id = active.info.run_id
            if self.tags:
                self._try("tags", fluent.tracking_client().set_tags, self.run_id, self.tags)
            return self.run_id
        run = best_effort("the run (starting it failed)", fluent.start_run,
                          run_name=self.run_name, tags=self.tags, silent=self.silent)  # fmt: skip
        if run is not None:
            self.run_id, self.owned = run.info.run_id, True
            self.last_run_id = self.run_id
        return self.run_id

    def _try(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - logging never stops training
            if what not in self._warned:  # once per kind, not once per step
                self._warned.add(what)
                report(f"vtrack could not log {what}: {type(exc).__name__}: {exc}", self.silent)
            return None

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Log the numeric ``metrics`` at ``step`` (the framework's own)."""
        run_id = self.ensure()
        values = numeric(metrics)
        if run_id is None or not values:
            return
        from vtrack import fluent

        step = int(step) if step is not None else None
        self._try("metrics", fluent.tracking_client().log_metrics, run_id, values, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` (flattened); a param already logged with another value warns."""
        run_id = self.ensure()
        if run_id is None or not params:
            return
        from vtrack import fluent

        self._try("params", fluent.tracking_client().log_params, run_id, flat_params(params))

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a logging call ``fn`` for this run, warning instead of raising."""
        if self.ensure() is None:
            return None
        return self._try(what, fn, *args, **kwargs)

    def end(self, failed: bool = False) -> None:
        """End the run if this scope started it."""
        if self.owned and self.run_id is not None:
            from vtrack import fluent

            self._try("the run's end", fluent.end_active_run, self.run_id,
                      "FAILED" if failed else "FINISHED")  # fmt: skip
        self.run_id, self.owned = None, False
