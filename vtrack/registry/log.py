"""The registry's event log on ``refs/vtrack/registry``: reading it and appending to it.

The log is one linear chain of commits (each commit's only parent is the event before
it; the tree is git's empty tree), so ``git log refs/vtrack/registry`` reads it. An
append writes the new event commits on top of the tip it read and moves the ref by
compare-and-swap; when another process moved it first, the events are rebuilt from the
new state (a register gets the next free number then) and written again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from vtrack import gitcmd
from vtrack.errors import GitError, RefConflictError, RunStateError
from vtrack.registry.events import Event, decode, encode
from vtrack.store.refs import registry_tip, update_registry

if TYPE_CHECKING:
    from vtrack.store import Store

#: Compare-and-swap rounds an append makes before giving up (each re-reads the state).
APPEND_ATTEMPTS = 200


def read_log(store: Store, tip: str, since: str | None = None) -> list[tuple[str, str, Event]]:
    """``(commit, parent, event)`` of the events from ``since`` (exclusive) to ``tip``, oldest first.

    ``since`` None reads the whole log. GitError when a commit is missing.
    """
    rng = tip if since is None else f"{since}..{tip}"
    out = gitcmd.run(["log", "-z", "--reverse", "--format=%H%x01%P%x01%B", rng, "--"],
                     git_dir=store.location.git_dir).stdout  # fmt: skip
    found = []
    for raw in out.split(b"\0"):
        if not raw.strip():
            continue
        commit, parent, message = raw.decode("utf-8", "replace").split("\x01", 2)
        commit = commit.strip()
        found.append((commit, parent.strip(), decode(message, commit)))
    return found


def iter_events(store: Store) -> Iterator[tuple[str, Event]]:
    """``(commit, event)`` of the whole log, oldest first (nothing when it is empty)."""
    tip = registry_tip(store.refs)
    if tip is None:
        return
    for commit, _parent, event in read_log(store, tip):
        yield commit, event


def empty_tree(store: Store) -> str:
    """git's empty tree (every event commit's tree)."""
    return store.objects.write_tree([])


def write_events(store: Store, parent: str | None, events: Sequence[Event]) -> str:
    """Write ``events`` as a chain of commits on ``parent``; return the last one's sha."""
    tree = empty_tree(store)
    tip = parent
    for event in events:
        tip = store.write_commit(tree, [tip] if tip else [], encode(event))
    assert tip is not None
    return tip


def append(
    store: Store,
    state_at: Callable[[], str | None],
    build: Callable[[], Sequence[Event]],
) -> tuple[str, list[Event]]:
    """Append the events ``build()`` returns and return ``(new tip, events)``.

    ``state_at()`` brings the caller's view of the state to the current tip and returns
    that tip; ``build()`` then makes the events from that state (raising to refuse).
    Both are called again when another writer moved the ref first, so no event is
    lost and no version number given twice. RunStateError after
    :data:`APPEND_ATTEMPTS` lost races.
    """
    for attempt in range(APPEND_ATTEMPTS):
        tip = state_at()
        events = list(build())
        if not events:
            return tip or "", []
        new = write_events(store, tip, events)
        try:
            update_registry(store.refs, tip, new)
            return new, events
        except RefConflictError:
            time.sleep(os.urandom(1)[0] / 255 * 0.002 * min(attempt + 1, 20))  # jittered backoff
            continue
    raise RunStateError("the model registry kept changing under this write; try again")


def is_chain_from(store: Store, base: str, tip: str) -> bool:
    """True when ``base`` is ``tip`` or one of its ancestors."""
    if base == tip:
        return True
    try:
        res = gitcmd.run(["merge-base", "--is-ancestor", base, tip],
                         git_dir=store.location.git_dir, check=False)  # fmt: skip
    except GitError:
        return False
    return res.returncode == 0
