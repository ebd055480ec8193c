"""The code a run executed compared with the working tree as it is now.

Used before a rerun executes a snapshot's code, so a person sees what differs from the
code they know. The working tree side is taken the way a run's snapshot is
(:func:`vtrack.store.snapshot.capture`: tracked files with their edits, untracked files
under the size cap, secrets left out), so the diff shows exactly what a rerun would
change; the run record ``.vtrack/`` is left out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtrack.limits import RERUN_DIFF_MAX_LINES

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

#: Pathspec that leaves the run record out of the code diff.
_PATHSPEC = ["--", ".", ":(exclude,top).vtrack"]
#: git diff options: no external diff drivers or textconv filters (the code is untrusted).
_DIFF_OPTS = ["-M", "--no-ext-diff", "--no-textconv", "--no-color"]


@dataclass
class CodeDiff:
    """The code diff between the working tree (a) and the run's snapshot (b)."""

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
            "available": self.available, "stat": self.stat, "patch": "\n".join(self.lines),
            "total_lines": self.total_lines, "truncated": self.truncated,
            "see_all": self.see_all, "note": self.note,
        }  # fmt: skip


def code_diff(repo: RunRepository, run: Run, max_lines: int = RERUN_DIFF_MAX_LINES) -> CodeDiff:
    """Diff the current working tree (as a snapshot would capture it) against ``run``'s code."""
    from vtrack import gitcmd
    from vtrack.store.snapshot import capture

    st = repo.store
    if st.location.worktree is None:
        return CodeDiff(False, note="this store has no working tree to compare the run's code with")
    snap = capture(
        st.location, st.objects, st.refs,
        max_file_bytes=st.settings.snapshot_max_file_bytes,
        include_secrets=st.settings.snapshot_include_secrets,
    )  # fmt: skip
    here = snap.source.get("code_tree")
    commit = run.info.commit or ""
    see_all = shlex.join(["git", "diff", str(here), commit, *_PATHSPEC])
    if here and here == (run.info.source or {}).get("code_tree"):
        return CodeDiff(True, see_all=see_all, note="the run's code is your working tree's code")

    def diff(*extra: str) -> str:
        res = gitcmd.run(
            ["diff", *_DIFF_OPTS, *extra, str(here), commit, *_PATHSPEC],
            git_dir=st.location.git_dir,
        )
        return res.stdout.decode("utf-8", "replace")

    stat = diff("--stat=100").rstrip("\n")
    patch = diff().splitlines()
    if not patch:
        return CodeDiff(True, see_all=see_all, note="the run's code is your working tree's code")
    return CodeDiff(True, stat, patch[:max_lines], len(patch), see_all)
