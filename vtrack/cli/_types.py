"""The ``RunSpec`` click type: anything the resolver accepts, turned into a run id.

A spec is a full run id, a unique id prefix (4+ hex), a run name, ``@`` / ``@~N``
or ``exp-name@~N``, ``NAME~N``, ``SPEC/N`` (see :mod:`vtrack.resolve`). A name shared by
several runs means the newest of them, said on stderr — except for a ``strict`` spec
(destructive commands: ``rm``, ``tag``, a checkout over the working tree), where it is a
usage error (exit 2) that lists the candidates, as is an ambiguous id prefix; a spec
that matches nothing raises RunNotFoundError (exit 3).
"""

from __future__ import annotations

import os
from typing import Any

import click


class RunSpec(click.ParamType):
    """A click type whose value is the full id of the run the spec names."""

    name = "run"

    def __init__(
        self, include_deleted: bool = False, strict: bool = False, strict_unless: str | None = None
    ) -> None:
        self.include_deleted = include_deleted
        self.strict = strict
        #: a (eager) parameter whose absence makes the spec strict (checkout's --into)
        self.strict_unless = strict_unless

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
        strict = self.strict
        if self.strict_unless is not None and ctx is not None:
            given = ctx.params.get(self.strict_unless)  # click 8.3 holds a sentinel, not None
            strict = strict or not isinstance(given, (str, os.PathLike))
        try:
            return resolve_run_id(
                c.repo, str(value), experiment_id=exp_id, include_deleted=self.include_deleted,
                newest_of_name=not strict,
                notice=lambda text: click.echo(f"vtrack: {text}", err=True),
            )  # fmt: skip
        except AmbiguousRunSpecError as exc:
            self.fail(str(exc), param, ctx)
