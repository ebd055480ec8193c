"""Shared click options and the per-invocation client.

Every command takes ``--json``; table commands also ``--csv``. ``--experiment`` is
eager so that run specs given before it on the command line (``vtrack show @ -e x``)
are still resolved inside that experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import Experiment

F = TypeVar("F", bound=Callable[..., Any])


def client(ctx: click.Context | None = None) -> TrackingClient:
    """The TrackingClient of this invocation (one per command line, for ``--store``).

    Unlike the Python API, the command line never creates a store: outside any git
    repository or store it raises StoreNotFoundError (exit 3), as git does.
    """
    from vtrack.cli import get_client
    from vtrack.config import locate_store
    from vtrack.errors import StoreNotFoundError

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    cached = root.obj.get("client")
    if cached is None:
        try:
            locate_store(root.obj.get("tracking_uri"), create=False)
        except StoreNotFoundError as exc:
            raise StoreNotFoundError(
                exc.message,
                hint="run vtrack inside a git repository, or name a store with --store "
                "or VTRACK_TRACKING_URI",
            ) from None
        cached = root.obj["client"] = get_client(ctx)
    return cached


def find_experiment(ctx: click.Context, spec: str) -> Experiment:
    """The experiment named ``spec`` (a name, or else an id); raise ExperimentNotFoundError."""
    from vtrack.errors import ExperimentNotFoundError, ValidationError

    c = client(ctx)
    exp = c.get_experiment_by_name(spec)
    if exp is not None:
        return exp
    try:
        return c.get_experiment(spec)
    except (ExperimentNotFoundError, ValidationError):
        raise ExperimentNotFoundError(
            f"no experiment named {spec!r}", hint="list them with 'vtrack experiments ls'"
        ) from None


def _experiments_callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or value == ():
        return value
    if isinstance(value, tuple):
        return tuple(find_experiment(ctx, v) for v in value)
    return find_experiment(ctx, value)


def json_option(f: F) -> F:
    """``--json``: machine-readable output on stdout (``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def csv_option(f: F) -> F:
    """``--csv``: comma-separated output on stdout (``as_csv``)."""
    return click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")(f)


def experiment_option(multiple: bool = False) -> Callable[[F], F]:
    """``--experiment/-e NAME``: resolved to Experiment objects before run specs."""
    help_text = (
        "Experiment name or id (repeatable)."
        if multiple
        else "Experiment in which @, @~N and run names are looked up."
    )
    return click.option(
        "--experiment",
        "-e",
        "experiment",
        multiple=multiple,
        metavar="NAME",
        is_eager=True,
        expose_value=True,
        callback=_experiments_callback,
        help=help_text,
    )


def columns_option(f: F) -> F:
    """``--columns/-c``: comma-separated column keys (``columns``)."""
    return click.option(
        "--columns",
        "-c",
        "columns",
        metavar="KEYS",
        help="Comma-separated columns, e.g. 'name,status,params.lr,metrics.acc'.",
    )(f)


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    if not text:
        return []
    return [p.strip() for p in text.split(",") if p.strip()]
