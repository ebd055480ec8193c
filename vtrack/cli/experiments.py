"""``vtrack experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

import click

from vtrack.cli import _term as term
from vtrack.cli._options import client, find_experiment, json_option
from vtrack.views import experiment_to_dict, fmt_time


@click.group("experiments")
def experiments() -> None:
    """List, create, rename and delete experiments."""


@experiments.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include deleted experiments.")
@json_option
def experiments_ls(show_all: bool, as_json: bool) -> None:
    """List experiments, oldest first."""
    exps = client().search_experiments("ALL" if show_all else "ACTIVE_ONLY")
    if as_json:
        term.echo_json([experiment_to_dict(e) for e in exps])
        return
    t = term.table("id", "name", "created", "stage")
    for e in exps:
        t.add_row(e.experiment_id, e.name, fmt_time(e.creation_time), e.lifecycle_stage)
    t.print()


@experiments.command("create")
@click.argument("name")
@json_option
def experiments_create(name: str, as_json: bool) -> None:
    """Create an experiment (exit 4 if the name is taken)."""
    exp_id = client().create_experiment(name)
    if as_json:
        term.echo_json({"experiment_id": exp_id, "name": name})
    else:
        click.echo(f"created experiment {name!r} ({exp_id})")


@experiments.command("rename")
@click.argument("experiment")
@click.argument("new_name")
@json_option
def experiments_rename(experiment: str, new_name: str, as_json: bool) -> None:
    """Rename EXPERIMENT (a name or id) to NEW_NAME."""
    exp = find_experiment(click.get_current_context(), experiment)
    client().rename_experiment(exp.experiment_id, new_name)
    if as_json:
        term.echo_json({"experiment_id": exp.experiment_id, "old_name": exp.name, "name": new_name})
    else:
        click.echo(f"renamed experiment {exp.name!r} to {new_name!r}")


@experiments.command("rm")
@click.argument("experiment")
@json_option
def experiments_rm(experiment: str, as_json: bool) -> None:
    """Mark EXPERIMENT deleted (its runs are kept; 'experiments restore' undoes it)."""
    exp = find_experiment(click.get_current_context(), experiment)
    client().delete_experiment(exp.experiment_id)
    if as_json:
        term.echo_json({"deleted": exp.experiment_id, "name": exp.name})
    else:
        click.echo(f"deleted experiment {exp.name!r} ({exp.experiment_id})")


@experiments.command("restore")
@click.argument("experiment")
@json_option
def experiments_restore(experiment: str, as_json: bool) -> None:
    """Restore a deleted EXPERIMENT."""
    exp = find_experiment(click.get_current_context(), experiment)
    client().restore_experiment(exp.experiment_id)
    if as_json:
        term.echo_json({"restored": exp.experiment_id, "name": exp.name})
    else:
        click.echo(f"restored experiment {exp.name!r} ({exp.experiment_id})")
