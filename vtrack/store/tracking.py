"""What each remote held at the last push or pull: one table per remote, behind one ref.

Sharing compares three states of every shared ref (this clone's, the remote's now, and
the remote's at the last sync). The last one is the *tracking state*: ``{shared ref name:
commit}`` per remote. It is kept as one commit per remote at
:meth:`RefStore.tracking_table_ref <vtrack.store.refs.RefStore.tracking_table_ref>`:

- its tree holds one blob, :data:`TABLE_FILE`, with a line ``<sha> <shared ref name>``
  per ref, sorted by name (the ``packed-refs`` format, without its header);
- its parents are the commits the table names (those present here), so everything the
  remote had at the last sync stays reachable for ``git gc`` exactly as long as the
  table names it, as the one-ref-per-run layout kept it;
- it is written as one kept pack (:meth:`GitObjects.batch
  <vtrack.store.gitobj.GitObjects.batch>`) and published by one compare-and-swap of the
  ref; a writer that loses the race (another push or pull of this clone, to the same
  remote) re-reads the table, re-applies its own changes and tries again.

Why not one ref per run (the first layout, ``refs/vtrack-remotes/<remote>/runs/<id>``):
recording 1,000 pushed runs was one ``git update-ref`` transaction of 1,000 loose ref
files, which cost as much as the ``git push`` itself (docs/design-decisions.md). A
repository that still has such refs is read through them until the first write, which
folds them into the table and deletes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vtrack import gitcmd
from vtrack.errors import RefConflictError, StoreError
from vtrack.store.gitobj import BLOB_MODE, GitObjects, serialize_commit

if TYPE_CHECKING:
    from vtrack.store.refs import RefStore

#: The one file of a table commit's tree.
TABLE_FILE = "shared-refs"
#: Compare-and-swap rounds before a writer gives up (each loses only to another writer
#: that made progress).
ATTEMPTS = 50
_IDENTITY = b"vtrack <vtrack@localhost>"


def encode(table: Mapping[str, str]) -> bytes:
    """The :data:`TABLE_FILE` text of ``table`` (``{shared ref name: sha}``)."""
    return "".join(f"{sha} {name}\n" for name, sha in sorted(table.items())).encode()


def decode(data: bytes, where: str = "the tracking table") -> dict[str, str]:
    """``{shared ref name: sha}`` of a :data:`TABLE_FILE` text; StoreError when corrupt."""
    out = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        sha, _, name = line.partition(" ")
        if len(sha) != 40 or not name:
            raise StoreError(f"{where} is corrupt at line {number}: {line[:100]!r}")
        out[name] = sha
    return out


def read(refs: RefStore, remote: str) -> dict[str, str]:
    """``{shared ref name: sha}`` as ``remote`` had them at the last push or pull."""
    return _read(refs, remote)[1]


def _read(refs: RefStore, remote: str) -> tuple[str | None, dict[str, str], set[str]]:
    """``(table commit or None, table, its parents)``; without a table, the old layout's
    refs (a repository written before the table existed). The table and parents are the
    caller's own copies."""
    tip = refs.read(refs.tracking_table_ref(remote))
    if tip is None:
        return None, refs.legacy_tracking(remote), set()
    key = (str(refs.git_dir), tip)
    known = _TABLES.get(key)
    if known is None:
        known = _read_table(refs, remote, tip)
        _TABLES.clear()  # a table commit never changes: keep the latest few
        _TABLES[key] = known
    return tip, dict(known[0]), set(known[1])


#: Decoded table commits by ``(git dir, commit)`` (immutable objects; 100,000 refs take
#: ~0.4 s to read, and a push reads its remote's table several times).
_TABLES: dict[tuple[str, str], tuple[dict[str, str], frozenset[str]]] = {}


def _read_table(refs: RefStore, remote: str, tip: str) -> tuple[dict[str, str], frozenset[str]]:
    objects = GitObjects(refs.git_dir)
    try:
        commit = objects.read_commit(tip)
        found = objects.tree_lookup(commit["tree"], TABLE_FILE)
        if found is None:
            raise StoreError(f"the tracking table of remote {remote!r} ({tip}) has no {TABLE_FILE}")
        table = decode(objects.read_blob(found[1]), f"the tracking table of remote {remote!r}")
        return table, frozenset(commit["parents"])
    finally:
        objects.close()


def _missing(refs: RefStore, shas: list[str]) -> list[str]:
    if len(shas) <= 16:  # cheaper in process than a git process
        objects = GitObjects(refs.git_dir)
        try:
            return [s for s in shas if not objects.exists(s)]
        finally:
            objects.close()
    return gitcmd.missing_objects(refs.git_dir, shas)


def record(
    refs: RefStore, remote: str, changes: Mapping[str, str | None], *, replace: bool = False
) -> None:
    """Record that ``remote`` now holds ``changes`` (``{shared ref name: sha or None}``;
    None: it has no such ref), or, with ``replace``, exactly ``changes``' refs.

    One table commit and one compare-and-swap of the table ref; on a lost race the
    changes are re-applied to what the winner wrote. Old-layout tracking refs are folded
    in and deleted. Raises StoreError when the objects cannot be written, RefConflictError
    when the ref kept moving for :data:`ATTEMPTS` rounds.
    """
    ref = refs.tracking_table_ref(remote)
    for _attempt in range(ATTEMPTS):
        old, table, parents = _read(refs, remote)
        new_table = {} if replace else dict(table)
        for name, sha in changes.items():
            if sha is None:
                new_table.pop(name, None)
            else:
                new_table[name] = sha
        if new_table == table and old is not None:
            return
        objects = GitObjects(refs.git_dir, fsync=refs.fsync)
        try:
            with objects.batch() as b:
                tree = objects.write_tree(
                    [(BLOB_MODE, TABLE_FILE.encode(), objects.write_blob(encode(new_table)))]
                )
                # parents: what the table names and this clone has (a sha named only by a
                # lease, never fetched, cannot be one: git gc would find it missing)
                named = list(dict.fromkeys(new_table[n] for n in sorted(new_table)))
                absent = set(_missing(refs, [s for s in named if s not in parents]))
                keep = [s for s in named if s not in absent]
                message = f"vtrack: the shared refs of remote {remote} at the last sync\n\n"
                message += f"refs: {len(new_table)}\n"
                data = serialize_commit(tree, keep, _IDENTITY, _IDENTITY, int(time.time()),
                                        b"+0000", message.encode())  # fmt: skip
                commit = objects.write(b"commit", data)
            try:
                refs.cas(ref, old, commit)
            except RefConflictError:
                continue
            finally:
                if b.handle is not None:
                    b.handle.release()
        finally:
            objects.close()
        _TABLES.clear()  # the next read (the push's report) is of this table
        _TABLES[(str(refs.git_dir), commit)] = (new_table, frozenset(keep))
        refs.drop_legacy_tracking(remote)  # folded into the table (a no-op once gone)
        return
    raise RefConflictError(f"the tracking table of remote {remote!r} kept moving", ref=ref)
