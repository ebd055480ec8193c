"""Registry events: what one commit on ``refs/vtrack/registry`` says, and the name rules.

Every change to the registry is one event, written as the message of one commit whose
parent is the previous event (DESIGN.md §16). The message is a one-line summary for
``git log`` readers, a blank line, then the event as one line of JSON::

    register churn v3 (run 5f0c…)

    {"v":1,"id":"…","type":"register","model":"churn","version":3,"time":…,"user":"ana",…}

Every event has ``v`` (format), ``id`` (32 hex, unique: a merge recognises an event it
has already), ``type``, ``model``, ``time`` (ms since the epoch, when it was made) and
``user``. The types and their own fields:

=====================  ==============================================================
``create_model``       ``description``, ``tags``
``register``           ``version``, ``source``, ``run_id``, ``model_id``, ``digest``
                       (of the model folder's bytes), ``lineage``, ``tags``, ``description``
``set_alias``          ``alias``, ``version``, ``previous`` (the version it held),
                       ``reason`` (``set``, ``promote``, ``rollback``), ``evidence``, ``forced``
``delete_alias``       ``alias``, ``previous``
``set_version_tag``    ``version``, ``key``, ``value``
``delete_version_tag`` ``version``, ``key``
``set_model_tag``      ``key``, ``value``
``delete_model_tag``   ``key``
``update_model``       ``description``
``update_version``     ``version``, ``description``
``deprecate``          ``version``
``delete_version``     ``version``
``delete_model``       (none)
=====================  ==============================================================
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from vtrack.errors import StoreError, ValidationError

FORMAT = 1
TYPES = frozenset(
    {"create_model", "register", "set_alias", "delete_alias", "set_version_tag",
     "delete_version_tag", "set_model_tag", "delete_model_tag", "update_model",
     "update_version", "deprecate", "delete_version", "delete_model"}
)  # fmt: skip
#: Longest model name, alias or tag key accepted.
MAX_NAME = 256
_ALIAS = re.compile(r"[\w\-]+")
_RESERVED_ALIAS = re.compile(r"v\d+", re.IGNORECASE)

Event = dict[str, Any]


def check_model_name(name: Any) -> str:
    """Return ``name`` if it can name a registered model; ValidationError otherwise.

    A name is 1-256 characters with no ``/``, ``@``, ``#``, control characters or
    surrounding spaces, so that ``models:/<name>/<version>`` and ``models:/<name>@<alias>``
    (and GTO's ``<name>@v1.0.0`` tags) always parse back to it.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"a registered model name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise ValidationError(f"registered model name {name[:40]!r}… is over {MAX_NAME} characters")
    bad = [c for c in "/@#:" if c in name]
    if bad or name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError(
            f"registered model name {name!r} must not contain / @ # : control characters "
            "or surrounding spaces",
            hint="models:/<name>/<version> and models:/<name>@<alias> must parse back to it",
        )
    return name


def check_alias(alias: Any) -> str:
    """Return ``alias`` if it is a valid alias (MLflow's rules); ValidationError otherwise.

    Letters, digits, ``_`` and ``-``; not ``latest``; not ``v<digits>`` (that reads as a
    version).
    """
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or len(alias) > MAX_NAME:
        raise ValidationError(
            f"alias {alias!r} must be 1-256 letters, digits, '_' or '-'",
        )
    if alias.lower() == "latest" or _RESERVED_ALIAS.fullmatch(alias):
        raise ValidationError(f"alias name {alias!r} is reserved")
    return alias


def check_version(version: Any) -> int:
    """The version number ``version`` (an int or a string of digits) names; ValidationError else."""
    if isinstance(version, bool):
        raise ValidationError(f"model version must be a positive integer, got {version!r}")
    if isinstance(version, int):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    else:
        raise ValidationError(f"model version must be a positive integer, got {version!r}")
    if number < 1:
        raise ValidationError(f"model version must be a positive integer, got {version!r}")
    return number


def check_tag(key: Any, value: Any) -> tuple[str, str]:
    """A registry tag as ``(key, value)`` strings; ValidationError for an empty or long key."""
    if not isinstance(key, str) or not key or len(key) > MAX_NAME:
        raise ValidationError(f"tag key must be a string of 1-{MAX_NAME} characters, got {key!r}")
    return key, "" if value is None else str(value)


def new_event(kind: str, model: str, user: str, **fields: Any) -> Event:
    """A fresh event of type ``kind`` about ``model``, stamped now with a new id."""
    if kind not in TYPES:
        raise AssertionError(f"unknown registry event type {kind!r}")
    return {"v": FORMAT, "id": os.urandom(16).hex(), "type": kind, "model": model,
            "time": time.time_ns() // 1_000_000, "user": user, **fields}  # fmt: skip


def summary(event: Mapping[str, Any]) -> str:
    """The one-line ``git log`` summary of an event."""
    kind, model = event["type"], event["model"]
    if kind == "register":
        return f"register {model} v{event['version']} (run {str(event.get('run_id'))[:12]})"
    if kind == "set_alias":
        how = " (forced)" if event.get("forced") else ""
        return f"{event.get('reason', 'set')} {model}@{event['alias']} -> v{event['version']}{how}"
    if kind == "delete_alias":
        return f"delete alias {model}@{event['alias']}"
    if "version" in event:
        return f"{kind.replace('_', ' ')} {model} v{event['version']}"
    return f"{kind.replace('_', ' ')} {model}"


def encode(event: Mapping[str, Any]) -> str:
    """The commit message that carries ``event``."""
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{summary(event)}\n\n{body}\n"


def decode(message: str, commit: str = "") -> Event:
    """The event a registry commit message carries; StoreError if it carries none."""
    _, sep, body = message.partition("\n\n")
    try:
        event = json.loads(body if sep else message)
    except ValueError:
        event = None
    if (
        not isinstance(event, dict)
        or event.get("type") not in TYPES
        or not isinstance(event.get("model"), str)
        or not isinstance(event.get("id"), str)
    ):
        raise StoreError(
            f"registry commit {commit[:12] or '?'} holds no registry event",
            hint="refs/vtrack/registry must only be written by vtrack",
        )
    if int(event.get("v", 1)) > FORMAT:
        raise StoreError(
            f"registry commit {commit[:12]} uses event format {event.get('v')}; "
            f"this vtrack reads up to {FORMAT}",
            hint="upgrade vtrack",
        )
    return event
