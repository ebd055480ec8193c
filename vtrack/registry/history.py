"""Alias history: who moved which alias when, what held it on a date, and rollback.

The history of a model is its events in log order (the cache keeps them). An alias's
holders are its ``set_alias`` / ``delete_alias`` events that applied (not ``ignored``).
"What held alias A at time T" is the last of those whose event time is at or before T;
a date without a time means the end of that day, UTC. Rollback moves an alias back to
the version that held it before the current one (skipping versions deleted since and
repeats of the current one), as an ordinary ``set_alias`` event with ``reason:
rollback``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from vtrack.errors import RegisteredModelNotFoundError, ValidationError
from vtrack.registry.events import check_alias
from vtrack.registry.service import ModelRegistry

ALIAS_EVENTS = ("set_alias", "delete_alias")


def parse_when(text: str) -> int:
    """Milliseconds since the epoch of ``YYYY-MM-DD`` (end of that day, UTC) or an ISO
    date-time (UTC when it names no zone); ValidationError otherwise."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            moment = day + timedelta(days=1) - timedelta(milliseconds=1)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValidationError(
            f"date {text!r} must be YYYY-MM-DD or an ISO date-time (2026-11-01T12:00)"
        ) from None
    return int(moment.timestamp() * 1000)


def alias_events(
    history: Sequence[dict[str, Any]], alias: str | None = None
) -> list[dict[str, Any]]:
    """The alias moves of a model's history (of one alias when given), in log order."""
    return [h for h in history
            if h["type"] in ALIAS_EVENTS and (alias is None or h["alias"] == alias)]  # fmt: skip


def history(
    registry: ModelRegistry, name: str, *, alias: str | None = None, at: int | None = None
) -> list[dict[str, Any]]:
    """The events of model ``name`` (only moves of ``alias`` when given), up to time ``at``.

    RegisteredModelNotFoundError when no event ever named the model.
    """
    if alias is not None:
        check_alias(alias)
    events = registry.history(name)
    if not events:
        raise RegisteredModelNotFoundError(f"no registered model {name!r}", name=name)
    if alias is not None:
        events = alias_events(events, alias)
    if at is not None:
        events = [e for e in events if int(e["time"]) <= at]
    return events


def aliases_at(registry: ModelRegistry, name: str, at: int) -> dict[str, dict[str, Any]]:
    """``{alias: its last applied move at or before at}`` for the aliases set then."""
    held: dict[str, dict[str, Any]] = {}
    for e in alias_events(history(registry, name, at=at)):
        if e.get("ignored"):
            continue
        if e["type"] == "set_alias":
            held[e["alias"]] = e
        else:
            held.pop(e["alias"], None)
    return held


def rollback_target(registry: ModelRegistry, name: str, alias: str) -> int:
    """The version ``rollback`` would move ``alias`` to; RegisteredModelNotFoundError if none."""
    check_alias(alias)
    current = registry.get_model_version_by_alias(name, alias).version
    fold = registry.cache.model(name)
    holders = [int(e["version"]) for e in alias_events(registry.history(name), alias)
               if e["type"] == "set_alias" and not e.get("ignored")]  # fmt: skip
    for version in reversed(holders):
        if version != current and fold.live_version(version) is not None:
            return version
    raise RegisteredModelNotFoundError(
        f"alias {name}@{alias} has held no other live version before v{current}",
        name=name, alias=alias,
    )  # fmt: skip


def rollback(registry: ModelRegistry, name: str, alias: str) -> dict[str, Any]:
    """Move ``alias`` back to the version before the current one; return the event."""
    target = rollback_target(registry, name, alias)
    return registry.set_registered_model_alias(name, alias, target, reason="rollback")
