"""The registry's state as a fold of its event log, one model at a time.

Every event is about one model, so the state of model M is the fold of M's events in
log order, independent of every other model: the cache updates only the models the new
events touch. The fold is total: an event that cannot apply to the state it meets (an
alias set on a version deleted meanwhile, which only a merge of two clones' logs can
produce — writers check before they write) changes nothing and is kept in the model's
history marked ``ignored`` with the reason.

Rules: versions are numbered per model and never reused (a deleted model keeps its
counter, so re-creating it continues the numbering); deleting a version removes the
aliases that pointed at it; deleting a model deletes its versions and aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]


@dataclass
class ModelFold:
    """One model's state: its record, versions and history (all plain JSON-able dicts)."""

    name: str
    doc: Doc
    versions: dict[int, Doc] = field(default_factory=dict)
    history: list[Doc] = field(default_factory=list)
    #: what changed since the fold was loaded (for the cache's incremental write)
    changed_versions: set[int] = field(default_factory=set)
    new_history: int = 0

    @classmethod
    def empty(cls, name: str) -> ModelFold:
        """A model that no event has mentioned yet."""
        return cls(name, {"name": name, "exists": False, "deleted": False, "max_version": 0,
                          "creation_timestamp": 0, "last_updated_timestamp": 0,
                          "description": "", "user_id": "", "tags": {}, "aliases": {},
                          "latest_version": None})  # fmt: skip

    @property
    def live(self) -> bool:
        """True when the model exists and is not deleted."""
        return bool(self.doc["exists"]) and not self.doc["deleted"]

    def live_version(self, version: int) -> Doc | None:
        """The version's record if it exists and is not deleted."""
        v = self.versions.get(version)
        return v if v is not None and not v["deleted"] else None

    def latest_version(self) -> int | None:
        """The highest version number that is not deleted, or None."""
        live = [n for n, v in self.versions.items() if not v["deleted"]]
        return max(live) if live else None

    def aliases_of(self, version: int) -> list[str]:
        """The aliases pointing at ``version``, sorted."""
        return sorted(a for a, n in self.doc["aliases"].items() if n == version)


def apply(fold: ModelFold, event: Mapping[str, Any], seq: int, commit: str) -> None:
    """Apply one event (the ``seq``-th of the log, in commit ``commit``) to ``fold``."""
    held = fold.doc["aliases"].get(event["alias"]) if "alias" in event else None
    reason = _apply(fold, event)
    fold.doc["latest_version"] = fold.latest_version()
    # the history keeps the event itself, less a register's lineage (the version has it)
    entry = {"seq": seq, "commit": commit, **{k: v for k, v in event.items() if k != "lineage"}}
    if "alias" in event:  # what the alias held where this event landed in the log
        entry["previous"] = held
    if reason:
        entry["ignored"] = reason
    fold.history.append(entry)
    fold.new_history += 1


def _touch(fold: ModelFold, event: Mapping[str, Any]) -> None:
    fold.doc["last_updated_timestamp"] = int(event["time"])


def _create(fold: ModelFold, event: Mapping[str, Any]) -> None:
    d = fold.doc
    d.update(exists=True, deleted=False, creation_timestamp=int(event["time"]),
             last_updated_timestamp=int(event["time"]), user_id=str(event.get("user", "")),
             description=str(event.get("description") or ""),
             tags=dict(event.get("tags") or {}), aliases={})  # fmt: skip


def _apply(fold: ModelFold, e: Mapping[str, Any]) -> str | None:
    kind = e["type"]
    d = fold.doc
    if kind == "create_model":
        if fold.live:
            return "the model exists already"
        _create(fold, e)
        return None
    if kind == "register":
        version = int(e["version"])
        if version <= d["max_version"]:
            return f"version {version} was taken already"
        if not fold.live:
            _create(fold, {**e, "description": "", "tags": {}})
        d["max_version"] = version
        fold.versions[version] = {
            "name": fold.name, "version": version, "creation_timestamp": int(e["time"]),
            "last_updated_timestamp": int(e["time"]), "user_id": str(e.get("user", "")),
            "description": str(e.get("description") or ""), "source": e.get("source"),
            "run_id": e.get("run_id"), "model_id": e.get("model_id"), "digest": e.get("digest"),
            "lineage": dict(e.get("lineage") or {}), "tags": dict(e.get("tags") or {}),
            "deprecated": False, "deleted": False, "event": e["id"],
        }  # fmt: skip
        fold.changed_versions.add(version)
        _touch(fold, e)
        return None
    if not fold.live:
        return "no such registered model"
    if kind == "delete_model":
        d["deleted"] = True
        d["aliases"] = {}
        for n, v in fold.versions.items():
            if not v["deleted"]:
                v["deleted"] = True
                fold.changed_versions.add(n)
        _touch(fold, e)
        return None
    if kind in ("set_model_tag", "delete_model_tag", "update_model"):
        if kind == "set_model_tag":
            d["tags"][str(e["key"])] = str(e["value"])
        elif kind == "delete_model_tag":
            if str(e["key"]) not in d["tags"]:
                return f"no model tag {e['key']!r}"
            del d["tags"][str(e["key"])]
        else:
            d["description"] = str(e.get("description") or "")
        _touch(fold, e)
        return None
    if kind == "delete_alias":
        if str(e["alias"]) not in d["aliases"]:
            return f"no alias {e['alias']!r}"
        del d["aliases"][str(e["alias"])]
        _touch(fold, e)
        return None
    version = int(e["version"])
    found = fold.live_version(version)
    if found is None:
        return f"no version {version}"
    v = found
    if kind == "set_alias":
        d["aliases"][str(e["alias"])] = version
        _touch(fold, e)
        return None
    fold.changed_versions.add(version)
    v["last_updated_timestamp"] = int(e["time"])
    if kind == "set_version_tag":
        v["tags"][str(e["key"])] = str(e["value"])
    elif kind == "delete_version_tag":
        if str(e["key"]) not in v["tags"]:
            return f"no tag {e['key']!r} on version {version}"
        del v["tags"][str(e["key"])]
    elif kind == "update_version":
        v["description"] = str(e.get("description") or "")
    elif kind == "deprecate":
        v["deprecated"] = True
    elif kind == "delete_version":
        v["deleted"] = True
        d["aliases"] = {a: n for a, n in d["aliases"].items() if n != version}
        _touch(fold, e)
    return None
