"""Maintenance commands: recover (more join here: gc, index, hooks, ui)."""

from __future__ import annotations

import json

import click

from vtrack.cli import get_client


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the recovered run ids as JSON.")
def recover(as_json: bool) -> None:
    """Finalize runs whose writing process died, as KILLED with everything journaled."""
    ids = get_client().recover()
    if as_json:
        click.echo(json.dumps({"recovered": ids}))
    elif ids:
        for run_id in ids:
            click.echo(f"recovered {run_id}")
    else:
        click.echo("nothing to recover")
