"""Code diffs: between the code of two runs, and between a run's code and the working tree.

The one place faces get code diffs from (the command line's ``diff`` and ``rerun``, the
web UI). Both sides are git trees and the run record ``.vtrack/`` is left out, so a diff
shows exactly what differed in the code that ran, uncommitted edits and untracked files
included. git runs with no external diff drivers or textconv filters for the working
tree diff (the run's code may be untrusted).

- :func:`run_code_diff` — the code section of a run diff (:class:`vtrack.diff.CodeDiff`):
  the files that differ between two runs' snapshots (``git diff --numstat``), their
  source facts and, when asked, the full patch; runs with the same snapshot tree skip git.
- :func:`worktree_diff` — the working tree as a snapshot would capture it
  (:func:`vtrack.store.snapshot.capture`: tracked files with their edits, untracked files
  under the size cap, secrets left out) against a run's code, so the diff shows exactly
  what a rerun would change; cut to :data:`~vtrack.limits.RERUN_DIFF_MAX_LINES` lines
  with the git command that shows all of it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtrack.limits import RERUN_DIFF_MAX_LINES

if TYPE_CHECKING:
    from vtrack.diff import CodeDiff, FileStat
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

#: Pathspec that leaves the run record out of code diffs.
CODE_PATHSPEC = ["--", ".", ":(exclude,top).vtrack"]
#: git diff options of the working tree diff: no external diff drivers or textconv filters.
_WORKTREE_DIFF_OPTS = ["-M", "--no-ext-diff", "--no-textconv", "--no-color"]


# -- between two runs ----------------------------------------------------------------------


def code_files(repo: RunRepository, a: Run, b: Run) -> tuple[FileStat, ...]:
    """Files that differ between the code snapshots of two runs (``git diff --numstat``).

    Empty when either run captured no code or both have the same snapshot tree.
    """
    from vtrack import gitcmd
    from vtrack.diff import code_captured, parse_numstat

    if not (code_captured(a) and code_captured(b)):
        return ()
    tree_a = (a.info.source or {}).get("code_tree")
    if tree_a and tree_a == (b.info.source or {}).get("code_tree"):
        return ()
    res = gitcmd.run(
        ["diff", "--numstat", "-z", "-M", "--no-ext-diff", a.info.commit or "",
         b.info.commit or "", *CODE_PATHSPEC],
        git_dir=repo.store.location.git_dir,
    )  # fmt: skip
    return parse_numstat(res.stdout.decode("utf-8", "replace"))


def code_patch(repo: RunRepository, a: Run, b: Run, color: bool) -> str:
    """The full patch between the code snapshots of two runs (ANSI colours with ``color``)."""
    from vtrack import gitcmd

    res = gitcmd.run(
        ["diff", "-M", "--no-ext-diff", f"--color={'always' if color else 'never'}",
         a.info.commit or "", b.info.commit or "", *CODE_PATHSPEC],
        git_dir=repo.store.location.git_dir,
    )  # fmt: skip
    return res.stdout.decode("utf-8", "replace")


def run_code_diff(
    repo: RunRepository,
    a: Run,
    b: Run,
    *,
    patch: bool = False,
    color: bool = False,
    include_unchanged: bool = False,
) -> CodeDiff:
    """The code section of the diff from run A to run B.

    ``patch`` adds the full patch when any file differs (coloured with ``color``);
    ``include_unchanged`` keeps the source facts (commit, branch, …) that are equal.
    """
    from vtrack.diff import build_code_diff

    files = code_files(repo, a, b)
    text = code_patch(repo, a, b, color=color) if patch and files else None
    return build_code_diff(a, b, files, text, include_unchanged=include_unchanged)


# -- the working tree against a run -------------------------------------------------------------


@dataclass
class WorktreeDiff:
    """The code diff between the working tree (a, ``---``) and a run's snapshot (b, ``+++``).

    ``available`` is False when there is no working tree to compare with (``note`` says
    why); ``lines`` holds at most the requested number of patch lines of
    ``total_lines``; ``see_all`` is the git command that shows the whole diff.
    """

    available: bool
    stat: str = ""
    lines: list[str] = field(default_factory=list)
    total_lines: int = 0
    see_all: str = ""
    note: str = ""

    @property
    def truncated(self) -> bool:
        """True when more lines exist than :attr:`lines` holds."""
        return self.total_lines > len(self.lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "available": self.available,
            "stat": self.stat,
            "patch": "\n".join(self.lines),
            "total_lines": self.total_lines,
            "truncated": self.truncated,
            "see_all": self.see_all,
            "note": self.note,
        }


def worktree_diff(
    repo: RunRepository, run: Run, max_lines: int = RERUN_DIFF_MAX_LINES
) -> WorktreeDiff:
    """Diff the current working tree (as a snapshot would capture it) against ``run``'s code."""
    from vtrack import gitcmd
    from vtrack.store.snapshot import capture

    st = repo.store
    if st.location.worktree is None:
        return WorktreeDiff(
            False, note="this store has no working tree to compare the run's code with"
        )
    snap = capture(
        st.location,
        st.objects,
        st.refs,
        max_file_bytes=st.settings.snapshot_max_file_bytes,
        include_secrets=st.settings.snapshot_include_secrets,
        revalidate=True,  # "now": a long-lived process (the UI) must see today's edits
    )
    here = snap.source.get("code_tree")
    commit = run.info.commit or ""
    see_all = shlex.join(["git", "diff", str(here), commit, *CODE_PATHSPEC])
    same = "the run's code is your working tree's code"
    if here and here == (run.info.source or {}).get("code_tree"):
        return WorktreeDiff(True, see_all=see_all, note=same)

    def diff(*extra: str) -> str:
        res = gitcmd.run(
            ["diff", *_WORKTREE_DIFF_OPTS, *extra, str(here), commit, *CODE_PATHSPEC],
            git_dir=st.location.git_dir,
        )
        return res.stdout.decode("utf-8", "replace")

    stat = diff("--stat=100").rstrip("\n")
    patch = diff().splitlines()
    if not patch:
        return WorktreeDiff(True, see_all=see_all, note=same)
    return WorktreeDiff(True, stat, patch[:max_lines], len(patch), see_all)


# -- a run's snapshot against the commit it started from --------------------------------------


@dataclass
class SnapshotDiff:
    """The edits a run's code had on top of its source commit (its dirty changes), per file.

    ``base`` is the source commit (None when the run recorded none, e.g. a repository
    without commits: then every file is new); ``files`` lists ``(path, added, deleted)``
    (None counts for binary files); ``patch`` holds at most ``max_lines`` lines of
    ``total_lines``.
    """

    base: str | None
    files: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    patch: list[str] = field(default_factory=list)
    total_lines: int = 0
    note: str = ""

    @property
    def truncated(self) -> bool:
        """True when more patch lines exist than :attr:`patch` holds."""
        return self.total_lines > len(self.patch)


#: git's empty tree: the base of a snapshot taken where there was no commit yet.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def snapshot_diff(
    repo: RunRepository, run: Run, max_lines: int = RERUN_DIFF_MAX_LINES
) -> SnapshotDiff:
    """The diff from ``run``'s source commit to the code that ran (``.vtrack/`` left out).

    Empty for a clean run (its code is its commit's code). git runs without external
    diff drivers or textconv filters, so a run's own ``.gitattributes`` cannot run code.
    """
    from vtrack import gitcmd
    from vtrack.diff import code_captured, parse_numstat

    if not code_captured(run):
        return SnapshotDiff(None, note="this run captured no code")
    src = run.info.source or {}
    base = src.get("commit") or None
    if src.get("dirty") is False:
        return SnapshotDiff(base, note="clean: the code that ran is its commit's code")
    opts = ["-M", "--no-ext-diff", "--no-textconv", "--no-color"]
    args = [base or EMPTY_TREE, run.info.commit or "", *CODE_PATHSPEC]
    git_dir = repo.store.location.git_dir
    stat = gitcmd.run(["diff", "--numstat", "-z", *opts, *args], git_dir=git_dir)
    numstat = parse_numstat(stat.stdout.decode("utf-8", "replace"))
    files = [(f.path, f.added, f.deleted) for f in numstat]
    text = gitcmd.run(["diff", *opts, *args], git_dir=git_dir).stdout.decode("utf-8", "replace")
    lines = text.splitlines()
    return SnapshotDiff(base, files, lines[:max_lines], len(lines))
