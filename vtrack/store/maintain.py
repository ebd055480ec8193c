"""The store keeps itself packed: what finished runs leave is folded away as they end.

Two things would otherwise pile up with every run (issue 15):

- **one small pack per run**: past ``gc.autoPackLimit`` (50) unkept packs, the user's
  next ``git commit`` starts an automatic gc. :func:`after_run` rolls finished runs'
  packs up with ``git repack --geometric=2 -d`` once there are :func:`pack_threshold` of
  them: every object of the packs it rolls up is kept (a reader may still be on an
  older checkpoint), kept packs of live runs are left alone, loose objects are packed,
  and each object is rewritten O(log n) times over the store's life. Packs over
  :data:`ROLLUP_MAX_BYTES` are left out, so one run's end copies at most that much.
  A bounded delta search (:data:`ROLLUP_WINDOW`) stores runs' similar record files,
  commits and superseded checkpoints as deltas of each other.
- **one loose ref per run**: ``git pack-refs --all`` at the same moment. git's own
  protocol: it writes ``packed-refs``, then removes each loose ref under that ref's
  ``<ref>.lock`` only if it still holds the packed value, so a concurrent update
  (vtrack takes the same lock) is never lost.
- **too many run refs**: past ``vtrack.archive.auto`` run refs, finished runs are
  compacted into archive batches (:func:`vtrack.store.archive.auto_compact`).
- **run commits git must parse**: every ``git fetch`` checks connectivity against all
  ref tips; ``git commit-graph write --reachable --split`` (what ``git gc`` and
  ``git maintenance`` write too) lets git read them from the graph.

Superseded checkpoints (a run's earlier commits and trees) are git's garbage, and they
cannot be dropped by vtrack safely: git's repacks omit objects that a kept pack also
holds, so a copy that looks redundant may be the only one left of an object another
run reaches. git 2.39's ``git gc`` would loosen them (unreachable loose objects for two
weeks; past ``gc.auto`` of those it warns and stops its automatic cleanup), so
:func:`ensure_cruft_packs` sets ``gc.cruftPacks=true`` (git's default from 2.41) unless
the user chose otherwise: git then keeps unreachable objects in one cruft pack and
expires them after ``gc.pruneExpire``.

Packs are deleted (by repack's ``-d``) only while vtrack holds git's gc lock
(``gc.pid``, see :func:`~vtrack.store.packs.git_gc_lock`): a running ``git gc`` is never
disturbed, and a ``git gc --auto`` starting meanwhile skips quietly. Everything here is
best effort: a failure leaves the store as it was, only less compact.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack import gitcmd
from vtrack.errors import StoreError
from vtrack.store.packs import git_gc_lock

if TYPE_CHECKING:
    from vtrack.store import Store

#: Unkept packs at which finished runs' packs are rolled up (at most half of git's
#: ``gc.autoPackLimit``, so the user's automatic gc never triggers on pack count).
PACKS_AT = 8
#: Loose refs under ``refs/vtrack/runs/`` at which refs are packed.
LOOSE_REFS_AT = 64
#: git maintenance commands are never killed half-way (a killed ``pack-refs`` would leave
#: loose refs half pruned, a killed repack temporary packs): they get this long.
MAINTENANCE_TIMEOUT_S = 3600.0
#: Packs larger than this are left out of vtrack's roll-ups (``--keep-pack``), so that a
#: run's end never rewrites more than about this much; git's own gc still repacks them.
ROLLUP_MAX_BYTES = 64 * 1024 * 1024
#: Delta window of a roll-up: a run's ``run.yaml``, ``summary.json``, commit and
#: superseded checkpoints differ from other runs' by a few values, so each delta costs
#: tens of bytes instead of hundreds (~1 KB a run); metric histories do not delta.
#: git's own default window; deltas already stored are reused, never searched again.
ROLLUP_WINDOW = 10
#: Longest delta chain a roll-up makes (git's default is 50): a read resolves at most
#: this many deltas.
ROLLUP_DEPTH = 10


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def pack_threshold(git_dir: Path) -> int:
    """Unkept packs at which to roll up: :data:`PACKS_AT`, or half the repository's
    ``gc.autoPackLimit`` when that is lower (0 there disables git's check: ours stays)."""
    try:
        text = gitcmd.output(["config", "--get", "gc.autoPackLimit"], git_dir=git_dir)
    except StoreError:
        text = ""
    limit = int(text) if text.strip().lstrip("-").isdigit() else 50
    return max(2, min(PACKS_AT, limit // 2)) if limit > 0 else PACKS_AT


def unkept_packs(git_dir: Path) -> int:
    """How many packs git's ``gc --auto`` counts (those without a ``.keep``)."""
    names = set(_names(git_dir / "objects" / "pack"))
    return sum(1 for n in names if n.endswith(".pack") and n[:-5] + ".keep" not in names)


def loose_run_refs(git_dir: Path) -> int:
    """How many run refs are loose files."""
    from vtrack.store.refs import RUNS

    return sum(1 for n in _names(git_dir / RUNS) if not n.endswith(".lock"))


def after_run(store: Store) -> bool:
    """Fold away what finished runs left (see the module docstring) and, every
    :data:`LOOSE_REFS_AT` run refs, archive past ``vtrack.archive.auto``; True if it
    repacked. Cheap when there is nothing to do (two folder listings). Never raises."""
    done, refs = fold(store)
    if refs >= LOOSE_REFS_AT:
        from vtrack.store.archive import auto_compact

        with contextlib.suppress(OSError, StoreError):
            auto_compact(store)
    return done


def fold(store: Store) -> tuple[bool, int]:
    """Roll packs up and pack refs when either has piled up (:func:`compact`); return
    (whether it repacked, the loose run refs it found). Never raises."""
    git_dir = store.location.git_dir
    try:
        packs = unkept_packs(git_dir)
        refs = loose_run_refs(git_dir)
        if packs < 2 and refs < LOOSE_REFS_AT:  # (no `git config` read for the threshold)
            return False, refs
        if packs < pack_threshold(git_dir) and refs < LOOSE_REFS_AT:
            return False, refs
        return compact(store), refs
    except (OSError, StoreError):
        return False, 0


def _big_packs(pack_dir: Path) -> list[str]:
    """Names of the packs over :data:`ROLLUP_MAX_BYTES`."""
    out = []
    for name in _names(pack_dir):
        if name.endswith(".pack"):
            try:
                if (pack_dir / name).stat().st_size > ROLLUP_MAX_BYTES:
                    out.append(name)
            except OSError:
                continue
    return out


def ensure_cruft_packs(git_dir: Path) -> None:
    """Set ``gc.cruftPacks=true`` in the repository's config unless it is set anywhere."""
    res = gitcmd.run(["config", "--get", "gc.cruftPacks"], git_dir=git_dir, check=False)
    if res.returncode == 1:  # unset
        gitcmd.run(["config", "gc.cruftPacks", "true"], git_dir=git_dir, check=False)


def compact(store: Store) -> bool:
    """Under git's gc lock: roll packs up geometrically and pack refs.

    False when a gc runs (it does the same work) or git failed.
    """
    git_dir = store.location.git_dir
    with git_gc_lock(git_dir) as held:
        if not held:
            return False
        ensure_cruft_packs(git_dir)
        # a bounded delta search among the packs rolled up (see ROLLUP_WINDOW); no
        # info/refs (~90 bytes a run ref): only dumb-HTTP servers read it, and the
        # user's own `git gc` writes it
        big = [f"--keep-pack={n}" for n in _big_packs(git_dir / "objects" / "pack")]
        repack = gitcmd.run(
            ["-c", "repack.writeBitmaps=false", "-c", "repack.updateServerInfo=false",
             "repack", "--geometric=2", "-d", "-q",
             f"--window={ROLLUP_WINDOW}", f"--depth={ROLLUP_DEPTH}", *big],
            git_dir=git_dir, check=False, timeout=MAINTENANCE_TIMEOUT_S,
        )  # fmt: skip
        refs = gitcmd.run(
            ["pack-refs", "--all"], git_dir=git_dir, check=False, timeout=MAINTENANCE_TIMEOUT_S
        )
        # the connectivity check of every fetch walks all ref tips: parsed from the
        # commit-graph instead of inflating 100,000 commits (a new layer per call,
        # layers merged geometrically by git)
        gitcmd.run(["commit-graph", "write", "--reachable", "--split", "--no-progress"],
                   git_dir=git_dir, check=False, timeout=MAINTENANCE_TIMEOUT_S)  # fmt: skip
        return repack.returncode == 0 and refs.returncode == 0
