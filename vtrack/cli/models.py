"""``vtrack models``: the model registry (service: :mod:`vtrack.registry`).

``ls`` lists registered models, ``show`` a model's versions or one version's lineage,
``history`` the events of a model (``--alias``, ``--at DATE``), ``promote`` moves an
alias after the promotion policy's checks, ``rollback`` moves it back.
"""

from __future__ import annotations

from typing import Any

import click

from vtrack.cli import _term as term
from vtrack.cli._options import client, json_option
from vtrack.views import fmt_time


def _registry() -> Any:
    return client().model_registry


def _version_dict(mv: Any) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(mv)
    out["model_uri"] = mv.model_uri
    return out


@click.group("models")
def models() -> None:
    """Registered models: versions, aliases, history, promotion."""


@models.command("ls")
@json_option
def models_ls(as_json: bool) -> None:
    """List registered models with their latest version and aliases."""
    rows = _registry().model_summaries()
    if as_json:
        term.echo_json(rows)
        return
    t = term.table("name", "latest", "aliases", "updated")
    for r in rows:
        aliases = ", ".join(f"@{a}=v{n}" for a, n in sorted(r["aliases"].items()))
        latest = r["latest_version"]
        t.add_row(r["name"], "—" if latest is None else f"v{latest}", aliases or "—",
                  fmt_time(r["last_updated_timestamp"]))  # fmt: skip
    t.print()


@models.command("show")
@click.argument("name")
@click.argument("version", required=False)
@json_option
def models_show(name: str, version: str | None, as_json: bool) -> None:
    """A model's versions (with runs, metrics, data digests), or VERSION's whole lineage.

    VERSION is a number or @ALIAS.
    """
    reg = _registry()
    if version is None:
        rm = reg.get_registered_model(name)
        versions = reg.search_model_versions(f"name = '{name}'")
        if as_json:
            term.echo_json({"name": rm.name, "aliases": rm.aliases, "tags": rm.tags,
                            "description": rm.description,
                            "versions": [_version_dict(v) for v in versions]})  # fmt: skip
            return
        click.echo(f"{rm.name}  aliases: " + (", ".join(
            f"@{a}=v{n}" for a, n in sorted(rm.aliases.items())) or "—"))  # fmt: skip
        t = term.table("version", "aliases", "run", "digest", "metrics", "registered")
        for v in versions:
            metrics = v.lineage.get("metrics") or {}
            t.add_row(f"v{v.version}" + (" (deprecated)" if v.deprecated else ""),
                      ", ".join("@" + a for a in v.aliases) or "—", str(v.run_id)[:12],
                      str(v.digest)[-12:], " ".join(f"{k}={m:g}" for k, m in sorted(metrics.items()))[:60],
                      fmt_time(v.creation_timestamp))  # fmt: skip
        t.print()
        return
    mv = (reg.get_model_version_by_alias(name, version[1:]) if version.startswith("@")
          else reg.get_model_version(name, version))  # fmt: skip
    if as_json:
        term.echo_json(_version_dict(mv))
        return
    lin = mv.lineage
    click.echo(f"{mv.model_uri}  {' '.join('@' + a for a in mv.aliases)}".rstrip())
    click.echo(f"  source      {mv.source}")
    click.echo(f"  digest      {mv.digest}")
    click.echo(f"  run         {mv.run_id} ({lin.get('run_name')})")
    dirty = " (dirty)" if lin.get("dirty") else ""
    click.echo(f"  code        {lin.get('code_commit') or '—'}{dirty}")
    click.echo(f"  flavor      {lin.get('flavor') or '—'}")
    for d in lin.get("datasets") or []:
        click.echo(f"  data        {d['name']} ({d.get('context') or '-'}) {d.get('digest')}")
    for k, m in sorted((lin.get("metrics") or {}).items()):
        click.echo(f"  metric      {k} = {m:g}")
    if lin.get("signature"):
        click.echo(f"  signature   {lin['signature']}")
    click.echo(f"  registered  {fmt_time(mv.creation_timestamp)} by {mv.user_id}")


@models.command("history")
@click.argument("name")
@click.option("--alias", help="Only the moves of this alias.")
@click.option(
    "--at", "at", help="What held each alias then: YYYY-MM-DD (end of day, UTC) or ISO time."
)
@json_option
def models_history(name: str, alias: str | None, at: str | None, as_json: bool) -> None:
    """Who moved which alias when, from which version, with what evidence."""
    from vtrack.registry import history as h

    reg = _registry()
    if at is not None:
        moment = h.parse_when(at)
        held = h.aliases_at(reg, name, moment)
        if alias is not None:
            held = {a: e for a, e in held.items() if a == alias}
        if as_json:
            term.echo_json({"name": name, "at": moment, "aliases": held})
            return
        if not held:
            click.echo(f"no alias of {name} was set at {at}")
        for a, e in sorted(held.items()):
            click.echo(f"@{a} = v{e['version']}  (since {fmt_time(e['time'])}, by {e['user']}, "
                       f"{e.get('reason', 'set')})")  # fmt: skip
        return
    events = h.history(reg, name, alias=alias)
    if as_json:
        term.echo_json(events)
        return
    for e in events:
        click.echo(_event_line(e))


def _event_line(e: dict[str, Any]) -> str:
    when = fmt_time(e["time"])
    kind = e["type"]
    if kind == "set_alias":
        prev = f"v{e['previous']}" if e.get("previous") else "nothing"
        what = f"{e.get('reason', 'set')} @{e['alias']}: {prev} -> v{e['version']}"
        if e.get("forced"):
            what += " (forced)"
        checks = (e.get("evidence") or {}).get("checks") or []
        if checks:
            what += "  [" + "; ".join(f"{c['condition']} {'ok' if c['passed'] else 'FAILED'}"
                                      for c in checks) + "]"  # fmt: skip
    elif kind == "delete_alias":
        what = f"delete @{e['alias']} (was v{e.get('previous')})"
    elif kind == "register":
        what = f"register v{e['version']} from run {str(e.get('run_id'))[:12]} {e.get('digest')}"
    else:
        what = kind.replace("_", " ") + (f" v{e['version']}" if "version" in e else "")
    if e.get("ignored"):
        what += f"  (ignored: {e['ignored']})"
    return f"{when}  {e['user']:<10} {what}"


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", required=True, help="The alias to move (e.g. champion).")
@click.option("--force", is_flag=True, help="Move it even if policy checks fail (recorded).")
@json_option
def models_promote(name: str, version: str, alias: str, force: bool, as_json: bool) -> None:
    """Move ALIAS to VERSION after .vtrack/policy.yaml's checks (exit 4 when refused)."""
    from vtrack.registry.policy import promote

    event = promote(_registry(), name, version, alias, force=force)
    if as_json:
        term.echo_json(event)
        return
    click.echo(_event_line(event))
    hook = event.get("hook")
    if hook is not None and hook.get("returncode") != 0:
        click.echo(f"post-promote hook failed ({hook.get('returncode')}): "
                   f"{hook.get('stderr') or hook.get('error')}", err=True)  # fmt: skip


@models.command("rollback")
@click.argument("name")
@click.argument("alias")
@json_option
def models_rollback(name: str, alias: str, as_json: bool) -> None:
    """Move ALIAS back to the version that held it before the current one."""
    from vtrack.registry.history import rollback

    event = rollback(_registry(), name, alias)
    if as_json:
        term.echo_json(event)
    else:
        click.echo(_event_line(event))


@models.command("delete")
@click.argument("name")
@click.argument("versions", nargs=-1, required=True)
@json_option
def models_delete(name: str, versions: tuple[str, ...], as_json: bool) -> None:
    """Delete VERSIONS of model NAME (their numbers are never given again).

    The deletion is an event in the registry's log like any other; the runs the versions
    came from are untouched.
    """
    from vtrack.registry.events import check_version

    numbers = list(dict.fromkeys(check_version(v) for v in versions))  # all checked first
    reg = _registry()
    for number in numbers:
        reg.get_model_version(name, number)  # every version exists before any is deleted
    for number in numbers:
        reg.delete_model_version(name, number)
        if not as_json:
            click.echo(f"deleted {name} v{number}")
    if as_json:
        term.echo_json({"name": name, "deleted_versions": numbers})
