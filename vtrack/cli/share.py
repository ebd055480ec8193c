"""Sharing commands: push, pull, clone, remote, hooks, scrub (service: :mod:`vtrack.sharing`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from vtrack.cli._options import client
from vtrack.errors import EXIT_CONFLICT


def _resolve(specs: tuple[str, ...]) -> list[str]:
    from vtrack.resolve import resolve_run_id

    repo = client().repo
    return [resolve_run_id(repo, s, include_deleted=True) for s in specs]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _conflicts(report: Any) -> None:
    for c in report.conflicts:
        click.echo(f"conflict: {c.kind} {c.id}: local {str(c.local)[:12]}, remote "
                   f"{str(c.remote)[:12]}: {c.reason}", err=True)  # fmt: skip
    for name, why in getattr(report, "rejected", {}).items():
        click.echo(f"rejected: {name}: {why}", err=True)


def _registry_line(report: Any) -> None:
    reg = getattr(report, "registry", None) or {}
    if reg.get("action") in (None, "none", "up to date"):
        return
    click.echo(f"model registry: {reg['action']}")
    for model, moved in (reg.get("renumbered") or {}).items():
        for old, new in moved.items():
            click.echo(f"  {model} v{old} (registered here) is now v{new}")


@click.command()
@click.argument("remote", required=False)
@click.argument("runs", nargs=-1)
@click.option("--all", "all_runs", is_flag=True, help="Every run and experiment (the default).")
@click.option("--allow-secrets", is_flag=True, help="Push even runs that carry likely secrets.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def push(remote: str | None, runs: tuple[str, ...], all_runs: bool, allow_secrets: bool,
         as_json: bool) -> None:  # fmt: skip
    """Push runs, experiments and their large objects to REMOTE.

    REMOTE defaults to the current branch's upstream remote, else origin. Without RUNS
    (or with --all) every run and experiment that differs from the remote is pushed; a
    deleted run goes to the remote's trash. Large objects go to the remote's object store
    first (vtrack remote set-objects); a missing object, or files that look like secrets
    (refused unless --allow-secrets; see vtrack scrub), stop the push before any ref moves.
    Exit 4 when a run conflicts with the remote's version (both are kept).
    """
    from vtrack.sharing import push as do_push

    if runs and all_runs:
        raise click.UsageError("give RUN arguments or --all, not both")
    report = do_push(client().repo, remote, _resolve(runs) if runs else None,
                     allow_secrets=allow_secrets)  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
    elif not (report.runs or report.trashed or report.experiments or report.conflicts
              or report.rejected or report.archives or report.archived):  # fmt: skip
        click.echo(f"everything up to date with {report.remote}")
    else:
        click.echo(
            f"pushed to {report.remote}: {len(report.runs)} run(s), {len(report.trashed)} "
            f"moved to the trash, {len(report.experiments)} experiment(s), {report.objects} "
            f"large object(s) ({_human(report.bytes)})"
            + (f", {len(report.archives)} archive batch(es)" if report.archives else "")
            + (f"; {report.archived} run ref(s) there archived" if report.archived else "")
        )
    if not as_json:
        _registry_line(report)
    _conflicts(report)
    if report.conflicts or report.rejected:
        sys.exit(EXIT_CONFLICT)


@click.command()
@click.argument("remote", required=False)
@click.argument("runs", nargs=-1)
@click.option("--all", "all_runs", is_flag=True, help="Every run the remote has (the default).")
@click.option("--theirs", is_flag=True, help="On a conflict, take the remote's version of the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def pull(remote: str | None, runs: tuple[str, ...], all_runs: bool, theirs: bool,
         as_json: bool) -> None:  # fmt: skip
    """Fetch teammates' runs and experiments from REMOTE (records only).

    RUNS are run ids or unique id prefixes on the remote. Large objects are fetched when
    first read (download, checkout, load_model). A local run that differs from the
    remote's is never overwritten unless --theirs: the conflict is reported (exit 4) and
    both versions are kept.
    """
    from vtrack.sharing import pull as do_pull

    if runs and all_runs:
        raise click.UsageError("give RUN arguments or --all, not both")
    report = do_pull(client().repo, remote, list(runs) or None, theirs=theirs)
    if as_json:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
    else:
        click.echo(f"pulled from {report.remote}: {len(report.runs)} run(s), "
                   f"{len(report.trashed)} moved to the trash, "
                   f"{len(report.experiments)} experiment(s)"
                   + (f", {len(report.archives)} archive batch(es)" if report.archives
                      else ""))  # fmt: skip
        for run_id, old in report.replaced.items():
            click.echo(f"replaced run {run_id} (the local version was commit {old})")
        _registry_line(report)
    _conflicts(report)
    if report.conflicts:
        sys.exit(EXIT_CONFLICT)


@click.command()
@click.argument("url")
@click.argument("directory")
def clone(url: str, directory: str) -> None:
    """git clone URL into DIRECTORY, then pull every run from it."""
    from vtrack.config import load_settings
    from vtrack.sharing import clone as do_clone

    target, report = do_clone(url, directory, load_settings())
    click.echo(f"cloned into {target}: {len(report.runs)} run(s), "
               f"{len(report.experiments)} experiment(s)")  # fmt: skip


@click.group()
def remote() -> None:
    """Configure where a remote keeps large objects."""


@remote.command("set-objects")
@click.argument("name")
@click.argument("url")
def set_objects(name: str, url: str) -> None:
    """Keep REMOTE's large objects at URL (any fsspec URL, e.g. s3://bucket/prefix, or a folder)."""
    from vtrack.sharing import set_objects as do_set

    r = do_set(client().repo.store, name, url)
    click.echo(f"remote {r.name}: large objects at {r.objects_url}")


@remote.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str | None, as_json: bool) -> None:
    """Show a remote's URL and object store (the default remote without NAME)."""
    from vtrack.sharing import resolve

    r = resolve(client().repo.store, name)
    data = {"remote": r.name, "url": r.url, "objects": r.objects_url,
            "objects_default": r.objects_default}  # fmt: skip
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    where = r.objects_url or "none (vtrack remote set-objects NAME URL)"
    click.echo(f"remote:  {r.name}\nurl:     {r.url}\nobjects: {where}"
               f"{' (default for a local remote)' if r.objects_default else ''}")  # fmt: skip


@click.group()
def hooks() -> None:
    """Git hooks that share runs with their commits."""


@hooks.command("install")
def hooks_install() -> None:
    """Install vtrack's hooks (pre-push, post-commit, post-merge, post-checkout), chained
    with any hook already there."""
    from vtrack import hooks as h

    for name, what in h.install(client().repo.store).items():
        click.echo(f"{name}: {what}")


@hooks.command("uninstall")
def hooks_uninstall() -> None:
    """Remove vtrack's hooks and put back the hooks they chained."""
    from vtrack import hooks as h

    done = h.uninstall(client().repo.store)
    for name, what in done.items():
        click.echo(f"{name}: {what}")
    if not done:
        click.echo("no vtrack hooks installed")


@hooks.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hooks_run(name: str, args: tuple[str, ...]) -> None:
    """Run hook NAME (what the installed hooks call). Never fails: errors are warnings."""
    try:
        from vtrack import hooks as h

        stdin = "" if name != "pre-push" or sys.stdin.isatty() else sys.stdin.read()
        line = h.run(client().repo, name, list(args), stdin)
        if line:
            click.echo(line, err=True)
    except Exception as exc:  # noqa: BLE001 - a hook must never block git
        click.echo(f"vtrack: warning: the {name} hook failed and was skipped: {exc}", err=True)


@click.command()
@click.argument("run")
@click.argument("paths", nargs=-1, required=True)
def scrub(run: str, paths: tuple[str, ...]) -> None:
    """Rewrite RUN without PATHS (e.g. a .env its snapshot caught).

    Only this clone's copy changes: a copy already pushed elsewhere must be scrubbed
    there too (push the scrubbed run to replace it).
    """
    from vtrack.sharing import scrub as do_scrub

    report = do_scrub(client().repo, _resolve((run,))[0], list(paths))
    click.echo(f"scrubbed {len(report.removed)} path(s) from run {report.run_id} "
               f"(commit {report.old[:12]} -> {report.new[:12]})")  # fmt: skip
    click.echo("a copy already pushed to a remote still holds them: push this run again to "
               "replace it there, and scrub every other clone that pulled it")  # fmt: skip
