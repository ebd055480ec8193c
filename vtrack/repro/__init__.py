"""Reproducing runs: checkout, rerun with its verdict, and code diffs (a service over runs).

Every function takes the :class:`~vtrack.store.runs.RunRepository` of the store that
holds the runs, never the client; the command line and the web UI call these and only
render what they return.

- :mod:`~vtrack.repro.checkout` — a run's exact code, params and artifacts on disk;
- :mod:`~vtrack.repro.plan` — what a rerun would execute, shown before it runs;
- :mod:`~vtrack.repro.tree` — run trees: a nested run's root, and pairing two trees;
- :mod:`~vtrack.repro.data` — the data a snapshot lacks, audited and linked into a checkout;
- :mod:`~vtrack.repro.rerun` — executing a plan: reproduced, diverged or failed to run;
- :mod:`~vtrack.repro.verdict` — one run against its original, tolerances, ignored keys;
- :mod:`~vtrack.repro.names` — ``mlp (rerun 1)``: names of rerun runs;
- :mod:`~vtrack.repro.requirements` — the environment record as a pip requirements file;
- :mod:`~vtrack.repro.codediff` — code diffs between runs and against the working tree;
- :mod:`~vtrack.repro.rundiff` — the whole diff of two runs, with what only the store
  knows (code files, the files of changed folder inputs).
"""

from __future__ import annotations

from vtrack.repro.checkout import (
    checkout_run,
    dirty_files,
    materialise_artifacts,
    remove_worktree,
    require_snapshot,
)
from vtrack.repro.codediff import (
    WorktreeDiff,
    code_files,
    code_patch,
    run_code_diff,
    worktree_diff,
)
from vtrack.repro.data import DataInput, drift_refusal, link_data, plan_data, unlink_data
from vtrack.repro.names import rerun_ids
from vtrack.repro.plan import (
    RERUN_SCRUB,
    Plan,
    again_line,
    discard,
    masked_arguments,
    masked_refusal,
    plan_rerun,
    recorded_command,
    recorded_cwd,
    rerun_command,
    rerun_cwd,
    shell_line,
)
from vtrack.repro.requirements import requirements_for, write_requirements
from vtrack.repro.rerun import (
    UNMATCHED,
    RerunReport,
    RunResult,
    environment_changes,
    execute_rerun,
    find_rerun,
)
from vtrack.repro.rundiff import diff_two_runs, folder_changes
from vtrack.repro.tree import tree_root, tree_runs
from vtrack.repro.verdict import (
    DEFAULT_IGNORED,
    DEFAULT_TOLERANCE,
    DIVERGED,
    FAILED_TO_RUN,
    REPRODUCED,
    ArtifactMismatch,
    MetricCheck,
    ParamMismatch,
    Tolerance,
    Tolerances,
    Verdict,
    compare_rerun,
)

__all__ = [
    "DEFAULT_IGNORED",
    "DEFAULT_TOLERANCE",
    "DIVERGED",
    "FAILED_TO_RUN",
    "REPRODUCED",
    "UNMATCHED",
    "ArtifactMismatch",
    "DataInput",
    "RunResult",
    "Tolerance",
    "Tolerances",
    "drift_refusal",
    "environment_changes",
    "link_data",
    "plan_data",
    "requirements_for",
    "write_requirements",
    "tree_root",
    "tree_runs",
    "unlink_data",
    "RERUN_SCRUB",
    "MetricCheck",
    "ParamMismatch",
    "Plan",
    "RerunReport",
    "Verdict",
    "WorktreeDiff",
    "again_line",
    "checkout_run",
    "code_files",
    "code_patch",
    "compare_rerun",
    "diff_two_runs",
    "dirty_files",
    "discard",
    "execute_rerun",
    "find_rerun",
    "rerun_ids",
    "folder_changes",
    "masked_arguments",
    "masked_refusal",
    "materialise_artifacts",
    "plan_rerun",
    "recorded_command",
    "recorded_cwd",
    "remove_worktree",
    "require_snapshot",
    "rerun_command",
    "rerun_cwd",
    "run_code_diff",
    "shell_line",
    "worktree_diff",
]
