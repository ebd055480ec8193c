"""An optional mirror of registry events as GTO-compatible annotated git tags.

For CI systems that trigger on tags (DVC's GTO convention), with ``git config
vtrack.gtoTags true`` each registry write also creates:

- ``register`` of version N: ``<model>@vN.0.0`` at the code commit the version's run
  ran on (the run's own commit when it had none);
- ``set_alias`` A -> N: ``<model>#<A>#<k>`` at version N's commit;
- ``delete_alias`` A: ``<model>#<A>!#<k>``; ``delete_version`` N: ``<model>@vN.0.0!#<k>``;
  ``deprecate`` is not mirrored (GTO deprecates whole artifacts, vtrack versions);

where ``k`` is one more than the highest counter among the model's mirror tags (GTO's
rule). The tags are annotated, their message the event's summary line. The registry ref
stays the record; the tags are a copy (a tag that exists already is left alone) and
``vtrack push`` sends them with the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vtrack import gitcmd
from vtrack.registry.events import summary
from vtrack.store.refs import TAGS, tag_ref

if TYPE_CHECKING:
    from vtrack.registry.service import ModelRegistry
    from vtrack.store import Store

SETTING = "vtrack.gtoTags"
_COUNTER = re.compile(r"#(\d+)$")


def enabled(store: Store) -> bool:
    """True when ``git config vtrack.gtoTags`` is true for this repository."""
    res = gitcmd.run(["config", "--bool", "--get", SETTING], git_dir=store.location.git_dir,
                     check=False)  # fmt: skip
    return res.stdout.decode().strip() == "true"


def model_tags(store: Store, model: str) -> list[str]:
    """The mirror's tag names of ``model`` (``<model>@…`` and ``<model>#…``)."""
    out = gitcmd.run(["for-each-ref", "--format=%(refname)", f"{TAGS}{model}@*",
                      f"{TAGS}{model}#*"], git_dir=store.location.git_dir).stdout  # fmt: skip
    return [n[len(TAGS) :] for n in out.decode("utf-8", "replace").split()]


def _next_counter(tags: Iterable[str]) -> int:
    found = [int(m.group(1)) for t in tags if (m := _COUNTER.search(t))]
    return max(found, default=0) + 1


def tag_name(event: dict[str, Any], counter: int) -> str | None:
    """The tag an event is mirrored as (None: not mirrored)."""
    model, kind = event["model"], event["type"]
    if kind == "register":
        return f"{model}@v{event['version']}.0.0"
    if kind == "set_alias":
        return f"{model}#{event['alias']}#{counter}"
    if kind == "delete_alias":
        return f"{model}#{event['alias']}!#{counter}"
    if kind == "delete_version":
        return f"{model}@v{event['version']}.0.0!#{counter}"
    return None


def mirror(registry: ModelRegistry, events: Iterable[dict[str, Any]]) -> list[str]:
    """Create the tags of ``events`` (written already); return the names created."""
    store = registry.store
    made = []
    for event in events:
        name = event["model"]
        tags = model_tags(store, name)
        tag = tag_name(event, _next_counter(tags))
        if tag is None or tag in tags:
            continue
        version = event.get("version") or event.get("previous")
        target = None
        if version is not None:
            doc = registry.cache.version_doc(name, int(version))
            lin = {} if doc is None else doc["lineage"]
            target = lin.get("code_commit") or lin.get("run_commit")
        if target is None:
            continue
        res = gitcmd.run(["tag", "-a", "-m", summary(event), tag, target],
                         git_dir=store.location.git_dir, check=False)  # fmt: skip
        if res.returncode == 0:
            made.append(tag)
    return made


def push_refspecs(registry: ModelRegistry) -> list[str]:
    """Refspecs that push every mirror tag of every registered model (never forced)."""
    registry.cache.sync()
    out = []
    for doc in registry.cache.model_docs():
        out += [f"{tag_ref(t)}:{tag_ref(t)}" for t in model_tags(registry.store, doc["name"])]
    return out
