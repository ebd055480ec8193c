"""The machinery every autologging integration shares.

- :class:`Patches`: replace a function or method and put the original back on ``undo``;
- :func:`best_effort`: run logging code so that a failure becomes one
  :class:`AutologWarning` (or a debug line when silent) and never reaches user code;
- :func:`managed_run`: log into the active run, or into one started for the call and
  ended with it (FINISHED, or FAILED when the training call raised), as MLflow does;
- :func:`when_imported`: run a callback once a module is imported (now if it already is),
  so that ``vtrack.autolog()`` imports no framework the script does not use.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

log = logging.getLogger("vtrack")


class AutologWarning(UserWarning):
    """Autologging could not log something; the training call itself was not affected."""


def best_effort(what: str, fn: Callable[..., Any], *args: Any, silent: bool = False,
                **kwargs: Any) -> Any:  # fmt: skip
    """Return ``fn(*args, **kwargs)``, or None after warning that ``what`` was not logged.

    Warnings raised inside ``fn`` (a framework's deprecation notice, a metric's
    ill-defined case) are recorded and logged at debug level, so that logging code never
    turns a user's warnings-as-errors setting into a failed training call.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(*args, **kwargs)
        for w in caught:
            log.debug("vtrack autolog: %s: %s", what, w.message)
        return result
    except Exception as exc:  # noqa: BLE001 - logging must never break training
        report(f"vtrack autolog could not log {what}: {type(exc).__name__}: {exc}", silent)
        return None


def report(message: str, silent: bool = False) -> None:
    """Warn with :class:`AutologWarning` (a debug line when ``silent``); never raises."""
    if silent:
        log.debug(message)
        return
    try:
        warnings.warn(message, AutologWarning, stacklevel=3)
    except Warning:  # the user turned warnings into errors: keep their training running
        log.warning(message)


class Patches:
    """Functions and methods replaced by one integration, restorable in one call."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any]] = []
        self.lock = threading.Lock()

    def patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` by ``make(original)`` (once: a second call is a no-op)."""
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        if getattr(original, "__vtrack_original__", None) is not None:
            return
        replacement = make(original)
        replacement.__vtrack_original__ = original
        setattr(owner, name, replacement)
        self._applied.append((owner, name, original))

    def undo(self) -> None:
        """Put every original back, newest first."""
        while self._applied:
            owner, name, original = self._applied.pop()
            current = (
                owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
            )
            if getattr(current, "__vtrack_original__", None) is original:
                setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._applied)


class Depth:
    """A process-wide count of autologged calls in progress.

    A meta-estimator's inner ``fit`` calls (a pipeline's steps, a search's candidates,
    on any thread) run while the outer one is in progress and are not logged again.
    """

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._n > 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        with self._lock:
            self._n += 1
        try:
            yield
        finally:
            with self._lock:
                self._n -= 1


#: Autologged training calls in progress, shared by every integration: a call made inside
#: another one (an XGBoost model fitting inside a scikit-learn pipeline) is not logged twice.
TRAINING = Depth()


@contextlib.contextmanager
def managed_run(tags: Mapping[str, Any] | None = None, *, silent: bool = False,
                run_name: str | None = None) -> Iterator[str | None]:  # fmt: skip
    """Yield the id of the run to log into: the active one, or one started here.

    A run started here ends with the block: FINISHED, or FAILED if the block raised
    (the exception goes on unchanged). If no run can be started, yields None (a warning
    says why) and the block runs without logging.
    """
    from vtrack import fluent

    active = fluent.active_run()
    if active is not None:
        yield active.info.run_id
        return
    started = best_effort("the run (starting it failed)", fluent.start_run,
                          run_name=run_name, tags=dict(tags or {}), silent=silent)  # fmt: skip
    if started is None:
        yield None
        return
    run_id = started.info.run_id
    try:
        yield run_id
    except BaseException:
        best_effort("the run's end", fluent.end_run, "FAILED", silent=silent)
        raise
    best_effort("the run's end", fluent.end_run, "FINISHED", silent=silent)


# -- running code once a framework is imported --------------------------------------
_hooks: dict[str, list[Callable[[ModuleType], None]]] = {}
_hooks_lock = threading.RLock()


def when_imported(module: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` now if ``module`` is imported, else right after its import."""
    with _hooks_lock:
        mod = sys.modules.get(module)
        if mod is not None:
            callback(mod)
            return
        _hooks.setdefault(module, []).append(callback)
        if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _PostImportFinder())


def cancel_import_hooks(module: str) -> None:
    """Forget the callbacks waiting for ``module``."""
    with _hooks_lock:
        _hooks.pop(module, None)


def _run_hooks(module: ModuleType) -> None:
    with _hooks_lock:
        callbacks = _hooks.pop(module.__name__, [])
    for cb in callbacks:
        best_effort(f"autologging for {module.__name__} (enabling it failed)", cb, module)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a watched module to run its callbacks."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _hooks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None:
            return None
        spec.loader = _HookedLoader(spec.loader)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # the module keeps its own loader: nothing after the import sees this wrapper
        module.__loader__ = self._inner
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        self._inner.exec_module(module)
        _run_hooks(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
