"""The sharing half of :class:`~vtrack.store.refs.RefStore`: which refs a push or pull
moves, in what order, where a clone remembers each remote (its tracking table, legacy
tracking refs, conflicts), and the staging directory a push sends from.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, cast

from vtrack import gitcmd
from vtrack.errors import StoreError
from vtrack.store.refs_names import (
    ARCHIVE,
    EXPERIMENTS,
    REMOTES,
    ROOT,
    RUNS,
    SHARED,
    TRACKING_TABLE,
    TRASH,
    archive_ref,
    experiment_ref,
    parse_listing,
    run_ref,
    trash_ref,
)

if TYPE_CHECKING:
    from vtrack.store.archive_read import ArchiveView
    from vtrack.store.refs import RefStore


class SharingRefs:
    """What :class:`~vtrack.store.refs.RefStore` does for sharing (it inherits this)."""

    git_dir: Path

    @property
    def archive(self) -> ArchiveView:
        raise NotImplementedError  # RefStore: the archive batches' merged view

    def packed_under(self, prefix: str) -> dict[str, str]:
        raise NotImplementedError  # RefStore

    def apply(
        self, updates: builtins.list[tuple[str, str | None, str | None]], *, force: bool = False
    ) -> builtins.list[str]:
        raise NotImplementedError  # RefStore

    @staticmethod
    def shared_refspecs() -> builtins.list[str]:
        """The refspecs that sharing moves (archive batches, runs, the trash, experiments);
        never live refs."""
        return [f"+{p}*:{p}*" for p in SHARED]

    @staticmethod
    def push_refspecs() -> builtins.list[str]:
        """The wildcard refspecs a push sends its staged refs by (:meth:`stage_for_push`).

        Never forced (no ``+``): git lets a ``+`` override ``--force-with-lease``, which
        would overwrite a ref that moved on the remote. A ref whose lease holds is updated
        even when the update is not a fast-forward.
        """
        return [f"{p}*:{p}*" for p in SHARED]

    # -- sharing: which refs move, and what each remote had ------------------
    @staticmethod
    def shared_prefixes() -> tuple[str, ...]:
        """The ref prefixes a push or pull moves (never ``refs/vtrack/live/``)."""
        return SHARED

    @staticmethod
    def is_shared(name: str) -> bool:
        """True for a ref that sharing moves."""
        return name.startswith(SHARED) and name.count("/") == 3

    @staticmethod
    def tracking_prefix(remote: str) -> str:
        """Where this clone remembers ``remote``'s shared refs."""
        if not remote or "/" in remote or remote.startswith("."):
            raise StoreError(f"remote name {remote!r} cannot name a ref folder")
        return f"{REMOTES}{remote}/"

    @classmethod
    def tracking_table_ref(cls, remote: str) -> str:
        """The one ref holding what ``remote`` had at the last sync (:mod:`vtrack.store.tracking`)."""
        return cls.tracking_prefix(remote) + TRACKING_TABLE

    def _legacy_prefixes(self, remote: str) -> builtins.list[str]:
        """Where the first layout kept one tracking ref per shared ref of ``remote``
        (``refs/vtrack-remotes/<remote>/runs/<id>``...), when any is left."""
        prefixes = [self.tracking_prefix(remote) + p[len(ROOT) :] for p in SHARED]
        return [p for p in prefixes if (self.git_dir / p).is_dir() or self.packed_under(p)]

    def legacy_tracking(self, remote: str) -> dict[str, str]:
        """``{shared ref name: sha}`` of the first layout's tracking refs of ``remote``."""
        prefixes = self._legacy_prefixes(remote)
        if not prefixes:
            return {}
        res = gitcmd.run(["for-each-ref", "--format=%(objectname) %(refname)", *prefixes],
                         git_dir=self.git_dir)  # fmt: skip
        start = len(self.tracking_prefix(remote))
        return {ROOT + n[start:]: sha for n, sha in parse_listing(res.stdout).items()}

    def drop_legacy_tracking(self, remote: str) -> None:
        """Delete the first layout's tracking refs of ``remote`` (its table holds them)."""
        start = len(ROOT)
        names = [self.tracking_prefix(remote) + n[start:] for n in self.legacy_tracking(remote)]
        self.apply([(n, None, None) for n in names], force=True)

    def list_tracking(self, remote: str) -> dict[str, str]:
        """``{shared ref name: sha}`` as ``remote`` had them at the last push or pull."""
        from vtrack.store import tracking

        return tracking.read(cast("RefStore", self), remote)

    def record_tracking(
        self, remote: str, changes: dict[str, str | None], *, replace: bool = False
    ) -> None:
        """Record that ``remote`` now holds ``changes`` (None: not that ref), or exactly
        them with ``replace``: one table commit, one compare-and-swap
        (:func:`vtrack.store.tracking.record`)."""
        from vtrack.store import tracking

        tracking.record(cast("RefStore", self), remote, changes, replace=replace)

    def list_shared(self) -> dict[str, str]:
        """``{shared ref name: sha}`` of this repository."""
        res = gitcmd.run(
            ["for-each-ref", "--format=%(objectname) %(refname)", *SHARED], git_dir=self.git_dir
        )
        return parse_listing(res.stdout)

    def archived_runs_in(self, shared: dict[str, str]) -> dict[str, tuple[str, str]]:
        """``{run ref name: (commit, archive ref name)}`` of the archived runs that the
        batches among ``shared`` (``{shared ref name: sha}``: this clone's, or a remote's
        tracking refs) hold and that no run or trash ref among ``shared`` shadows.

        How sharing compares an archived run with its loose copy on the other side: a
        run is at the same commit whether its ref or a batch holds it. Raises StoreError
        when a batch's objects are missing.
        """
        batches = {n[len(ARCHIVE) :]: sha for n, sha in shared.items() if n.startswith(ARCHIVE)}
        if not batches:
            return {}
        out = {}
        for rid, (sha, batch) in self.archive.entries_of(batches).items():
            if run_ref(rid) not in shared and trash_ref(rid) not in shared:
                out[run_ref(rid)] = (sha, archive_ref(batch))
        return out

    def archive_name_of(self, run_id: str) -> str | None:
        """The archive batch ref that holds ``run_id`` here (shadowed or not), or None."""
        if not self.archive.batches():
            return None
        found = self.archive.entries().get(run_id)
        return archive_ref(found[1]) if found else None

    def stage_for_push(self, staging: Path, refs: dict[str, str]) -> None:
        """Make ``staging`` (an empty folder) a git directory that holds exactly ``refs``
        (``{shared ref name: sha}``) over this repository's objects, for a push by
        :meth:`push_refspecs`.

        Why: git matches every explicit refspec of a push against every local ref, so a
        push of N runs by N explicit refspecs costs O(N x refs here) (1,000 runs: 10-15x
        ``git push`` of the same refs). From the staging directory a wildcard sends
        exactly ``refs``. Its refs are one ``packed-refs`` file (git's documented format,
        written once: no per-ref lock files); its objects are this repository's (an
        ``alternates`` entry); its config includes this repository's, so remote URL
        rewrites, ssh commands and credential helpers set here apply.
        """
        if not all(self.is_shared(n) for n in refs):
            raise StoreError("only shared refs can be staged for a push")
        gitcmd.run(["init", "--quiet", "--bare", str(staging)])
        info = staging / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(f"{(self.git_dir / 'objects').resolve()}\n")
        with (staging / "config").open("a") as f:
            f.write(f"[include]\n\tpath = {(self.git_dir / 'config').resolve()}\n")
        lines = "".join(f"{sha} {name}\n" for name, sha in sorted(refs.items()))
        (staging / "packed-refs").write_text(
            f"# pack-refs with: peeled fully-peeled sorted \n{lines}"
        )

    def conflict_ref(self, remote: str, name: str) -> str:
        """Marks a shared ref whose local and remote versions conflict (-> the remote's)."""
        return self.tracking_prefix(remote) + "conflicts/" + name[len(ROOT) :]

    def list_conflicts(self, remote: str) -> dict[str, str]:
        """``{shared ref name: the remote's sha}`` of unresolved conflicts with ``remote``."""
        prefix = self.tracking_prefix(remote) + "conflicts/"
        res = gitcmd.run(
            ["for-each-ref", "--format=%(objectname) %(refname)", prefix], git_dir=self.git_dir
        )
        return {ROOT + n[len(prefix) :]: sha for n, sha in parse_listing(res.stdout).items()}

    @staticmethod
    def run_of(name: str) -> tuple[str, str] | None:
        """``(kind, id)`` of a shared ref: kind ``run``, ``trash``, ``experiment`` or
        ``archive``; else None."""
        for prefix, kind in ((RUNS, "run"), (TRASH, "trash"), (EXPERIMENTS, "experiment"),
                             (ARCHIVE, "archive")):  # fmt: skip
            if name.startswith(prefix):
                return kind, name[len(prefix) :]
        return None

    @staticmethod
    def trash_twin(name: str) -> str | None:
        """For a run ref, the ref its deleted copy lives at (a deletion pushes as a move there)."""
        return trash_ref(name[len(RUNS) :]) if name.startswith(RUNS) else None

    @staticmethod
    def names_for_run(run_id: str) -> builtins.list[str]:
        """The shared refs that can hold run ``run_id`` (live, then deleted)."""
        return [run_ref(run_id), trash_ref(run_id)]

    @staticmethod
    def batch_name(batch_id: str) -> str:
        """The shared ref of archive batch ``batch_id``."""
        return archive_ref(batch_id)

    @staticmethod
    def experiment_name(exp_id: str) -> str:
        """The shared ref of experiment ``exp_id``."""
        return experiment_ref(exp_id)
