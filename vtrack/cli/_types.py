"""The ``RunSpec`` click type: anything the resolver accepts, turned into a run id.

A spec is a full run id, a unique id prefix (4+ hex), a run name, ``@`` / ``@~N``
or ``exp-name@~N`` (see :mod:`vtrack.resolve`). An ambiguous spec is a usage error
(exit 2) that lists the candidates; a spec that matches nothing raises
RunNotFoundError (exit 3).
"""

from __future__ import annotations

from typing import Any

import click


class RunSpec(click.ParamType):
    """A click type whose value is the full id of the run the spec names."""

    name = "run"

    def __init__(self, include_deleted: bool = False) -> None:
        self.include_deleted = include_deleted

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Resolve ``value`` to a full run id (inside ``--experiment`` when given)."""
        from vtrack.cli._options import client
        from vtrack.errors import AmbiguousRunSpecError
        from vtrack.resolve import resolve_run_id

        if ctx is None:
            ctx = click.get_current_context()
        exp = ctx.params.get("experiment") if ctx is not None else None
        exp_id = getattr(exp, "experiment_id", None)
        c = client(ctx)
        try:
            return resolve_run_id(
                c.repo, str(value), experiment_id=exp_id, include_deleted=self.include_deleted
            )
        except AmbiguousRunSpecError as exc:
            self.fail(str(exc), param, ctx)
