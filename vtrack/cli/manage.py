"""Changing runs: ``rm`` (to the trash), ``restore`` (back from it) and ``tag``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vtrack.cli import _term as term
from vtrack.cli._options import client, experiment_option, json_option
from vtrack.cli._types import RunSpec
from vtrack.views import short_id

if TYPE_CHECKING:
    from vtrack.entities import Experiment


@click.command("rm")
@click.argument("runs", nargs=-1, required=True, type=RunSpec(strict=True))
@experiment_option()
@json_option
def rm(runs: tuple[str, ...], experiment: Experiment | None, as_json: bool) -> None:
    """Move runs to the trash ('vtrack restore' brings them back)."""
    c = client()
    backing = c.model_registry.backing_runs()
    for run_id in dict.fromkeys(runs):
        c.delete_run(run_id)
        if not as_json:
            click.echo(f"deleted {run_id} (restore with: vtrack restore {run_id})")
        if run_id in backing:
            click.echo(
                f"note: registered model version(s) {', '.join(backing[run_id])} load from "
                f"{run_id}; they keep loading, and 'vtrack gc --purge-trash' keeps the run",
                err=True,
            )
    if as_json:
        term.echo_json({"deleted": list(dict.fromkeys(runs))})


@click.command("restore")
@click.argument("runs", nargs=-1, required=True, type=RunSpec(include_deleted=True))
@experiment_option()
@json_option
def restore(runs: tuple[str, ...], experiment: Experiment | None, as_json: bool) -> None:
    """Bring deleted runs back from the trash."""
    c = client()
    for run_id in dict.fromkeys(runs):
        c.restore_run(run_id)
        if not as_json:
            click.echo(f"restored {run_id}")
    if as_json:
        term.echo_json({"restored": list(dict.fromkeys(runs))})


@click.command("tag")
@click.argument("run", type=RunSpec(strict=True))
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--delete", "-d", "deletes", multiple=True, metavar="KEY", help="Remove a tag.")
@experiment_option()
@json_option
def tag(
    run: str,
    pairs: tuple[str, ...],
    deletes: tuple[str, ...],
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Set (KEY=VALUE) or delete (--delete KEY) tags of a run."""
    if not pairs and not deletes:
        raise click.UsageError("give at least one KEY=VALUE or --delete KEY")
    tags: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        tags[key] = value
    c = client()
    try:
        if tags:
            c.set_tags(run, tags)
        for key in deletes:
            c.delete_tag(run, key)
    finally:
        c.detach(run)
    tags_now = c.get_run(run).data.tags
    if as_json:
        term.echo_json({"run_id": run, "tags": tags_now})
    else:
        for k, v in sorted(tags.items()):
            click.echo(f"{short_id(run)} {k}={v}")
        for k in deletes:
            click.echo(f"{short_id(run)} {k} deleted")
