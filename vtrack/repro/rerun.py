"""Running a run tree again from its own snapshot, and the verdict on every run of it.

:func:`execute_rerun` carries out a :class:`~vtrack.repro.plan.Plan` (made for the root
of the run's tree): it refuses drifted data unless allowed, checks the root out into the
plan's temporary git worktree, links in the data the snapshot lacks
(:mod:`vtrack.repro.data`), executes the recorded command there with the recorded
environment variables (the environment it inherits minus
:data:`~vtrack.repro.plan.RERUN_SCRUB`), finds the new root (tagged ``vtrack.rerun_of``
by ``start_run``) and pairs the two trees (:func:`vtrack.repro.tree.match_trees`).

Three verdicts, never confused:

- **failed to run** — the command exited non-zero, timed out or recorded no run: the
  report carries the command, its exit code and the tail of its stderr; no comparison
  is made (a crash is not a divergence);
- **diverged** — it ran, and a param, metric (beyond its tolerance) or artifact differs,
  or a run has no counterpart in the other tree;
- **reproduced** — it ran and every compared run of the tree matches.

The report's ``verdict`` is the tree's, or the asked-for run's when that is a nested run
(the whole tree was rerun all the same; ``tree_verdict`` has the rest). Each new run is
tagged with its original (``vtrack.rerun_of``) and verdict, and renamed
``<name> (rerun N)`` (:mod:`vtrack.repro.names`). Environment differences (Python,
platform, distributions) are reported as context, never as the verdict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from vtrack.entities import RERUN_OF_TAG, RERUN_VERDICT_TAG
from vtrack.repro import names
from vtrack.repro.checkout import checkout_run, remove_worktree
from vtrack.repro.plan import RERUN_SCRUB, Plan, masked_refusal
from vtrack.repro.verdict import (
    DEFAULT_TOLERANCE,
    DIVERGED,
    FAILED_TO_RUN,
    REPRODUCED,
    Tolerance,
    Tolerances,
    Verdict,
    compare_rerun,
)

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.repro.data import DataInput
    from vtrack.repro.tree import Pair
    from vtrack.store.runs import RunRepository

#: Milliseconds of clock slack when finding the run a rerun recorded.
_CLOCK_SLACK_MS = 2000
#: Lines of the command's stderr a "failed to run" report keeps.
STDERR_TAIL_LINES = 20
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class RunResult:
    """One run of the original tree (or of the new one) and its verdict.

    ``original_id`` is None for a new run without an original, ``rerun_id`` None for an
    original without a counterpart; then ``verdict`` is :data:`UNMATCHED`.
    """

    original_id: str | None
    original_name: str | None
    rerun_id: str | None
    rerun_name: str | None
    depth: int
    matched_by: str
    comparison: Verdict | None

    @property
    def verdict(self) -> str:
        """``reproduced``, ``diverged`` or ``unmatched``."""
        return self.comparison.verdict if self.comparison is not None else UNMATCHED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {
            "original_id": self.original_id,
            "original_name": self.original_name,
            "rerun_id": self.rerun_id,
            "rerun_name": self.rerun_name,
            "depth": self.depth,
            "matched_by": self.matched_by,
        }
        out.update(self.comparison.to_dict() if self.comparison else {"verdict": UNMATCHED})
        return out


@dataclass(frozen=True)
class RerunReport:
    """What a rerun did and found (see the module docstring for the verdicts).

    ``run_id`` is the run asked for, ``root_id`` its tree's root (the same for a
    top-level run); ``rerun_id`` is the new counterpart of ``run_id`` (None when there is
    none); ``returncode`` is -1 when the command ran out of time.
    """

    verdict: str
    tree_verdict: str
    run_id: str
    root_id: str
    rerun_id: str | None
    rerun_name: str | None
    returncode: int
    command: str
    tolerance: Tolerances
    seconds: float
    stderr_tail: tuple[str, ...] = ()
    worktree: str | None = None
    runs: tuple[RunResult, ...] = ()
    environment: tuple[tuple[str, Any, Any], ...] = ()
    data: tuple[DataInput, ...] = field(default_factory=tuple)
    timed_out: bool = False
    #: inputs whose original files the rerun wrote to through its links
    data_modified: tuple[str, ...] = ()

    @property
    def reproduced(self) -> bool:
        """True when the verdict is ``reproduced``."""
        return self.verdict == REPRODUCED

    @property
    def failed(self) -> bool:
        """True when the command failed to run (no comparison was made)."""
        return self.verdict == FAILED_TO_RUN

    @property
    def whole_tree(self) -> bool:
        """True when a nested run was asked for and its whole tree was rerun."""
        return self.run_id != self.root_id

    @property
    def target(self) -> RunResult | None:
        """The result of the run asked for."""
        return next((r for r in self.runs if r.original_id == self.run_id), None)

    @property
    def data_differed(self) -> list[str]:
        """Names of the inputs that had drifted since the run (allowed with --allow-drift)."""
        return [d.name for d in self.data if d.drifted]

    @property
    def metrics(self) -> tuple[Any, ...]:
        """The metric checks of the run asked for."""
        t = self.target
        return t.comparison.metrics if t and t.comparison else ()

    @property
    def params(self) -> tuple[Any, ...]:
        """The differing params of the run asked for."""
        t = self.target
        return t.comparison.params if t and t.comparison else ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``vtrack rerun --json``)."""
        t = self.target
        return {
            "verdict": self.verdict,
            "metrics": [m.to_dict() for m in self.metrics],
            "params": [p.to_dict() for p in self.params],
            "tree_verdict": self.tree_verdict,
            "run_id": self.run_id,
            "root_id": self.root_id,
            "whole_tree": self.whole_tree,
            "rerun_id": self.rerun_id,
            "rerun_name": self.rerun_name,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "command": self.command,
            "stderr_tail": list(self.stderr_tail),
            "tolerance": self.tolerance.to_dict(),
            "seconds": self.seconds,
            "worktree": self.worktree,
            "artifacts": [
                a.to_dict() for a in (t.comparison.artifacts if t and t.comparison else ())
            ],
            "ignored": list(t.comparison.ignored) if t and t.comparison else [],
            "runs": [r.to_dict() for r in self.runs],
            "environment": [{"key": k, "original": a, "now": b} for k, a, b in self.environment],
            "data": [d.to_dict() for d in self.data],
            "data_differed": self.data_differed,
            "data_modified": list(self.data_modified),
        }


def find_rerun(
    repo: RunRepository, run_id: str, since_ms: int, *, known: frozenset[str] = frozenset()
) -> Run | None:
    """The first run tagged as a rerun of ``run_id`` that started at ``since_ms`` or later,
    leaving out the ``known`` ones (reruns made before this one: with the clock slack a
    rerun finished a moment ago would otherwise count as this one's run)."""
    from vtrack.query import Comparison, OrderKey

    repo.recover()
    found = repo.index().search(  # the clauses are built, not parsed: no grammar to load
        (Comparison("tags", RERUN_OF_TAG, "=", run_id),),
        (OrderKey("attributes", "start_time", ascending=False),),
        experiment_ids=None,
        lifecycles=("active", "deleted"),
        max_results=100,
    )
    fresh = [
        x
        for x in found
        if x.info.start_time >= since_ms - _CLOCK_SLACK_MS and x.info.run_id not in known
    ]
    if not fresh:
        return None
    first = min(fresh, key=lambda x: (x.info.start_time, x.info.run_id))
    return repo.get(first.info.run_id)


def _tolerances(tolerance: float | Tolerances) -> Tolerances:
    return tolerance if isinstance(tolerance, Tolerances) else Tolerances(Tolerance(tolerance))


def execute_rerun(
    repo: RunRepository,
    original: Run,
    plan: Plan,
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
    ignore: Iterable[str] = (),
    timeout: float | None = None,
    keep: bool = False,
    allow_drift: bool = False,
    environ: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> RerunReport:
    """Run ``plan`` (made by :func:`~vtrack.repro.plan.plan_rerun` for ``original``).

    The command's stdout goes to this process's stdout and its stderr to this process's
    stderr as it comes (the tail is kept for the report), unless ``on_output`` is given:
    then both are captured and handed over once the command ends. ``timeout`` is in
    seconds. The worktree and the plan's temp folder are removed at the end unless
    ``keep``. Raises ValidationError for a plan with masked arguments and DataDriftError
    for drifted data without ``allow_drift`` — in both cases before anything runs.
    """
    from vtrack.repro.data import drift_refusal, modified_originals, unlink_data

    if not plan.runnable:
        raise masked_refusal(plan)
    if plan.drifted and not allow_drift:
        raise drift_refusal(plan.run_id, plan.data)
    tols = _tolerances(tolerance)
    inherited = os.environ if environ is None else environ
    env = {k: v for k, v in inherited.items() if k not in RERUN_SCRUB}
    # the recorded variables include VTRACK_EXPERIMENT_* when the original had them, so
    # the same code picks the same experiment; nothing else is added to the record
    env.update(plan.sets)
    from vtrack.repro import workspace

    root = repo.get(plan.run_id)
    linked: list[DataInput] = []
    modified: list[str] = []
    reused = plan.lock_fd is not None
    try:
        if reused:
            workspace.refresh(repo, root, plan.workdir)
        else:
            checkout_run(repo, root, plan.workdir)
        linked = _link(repo, plan)
        known = names.rerun_ids(repo, plan.run_id)
        started = int(time.time() * 1000)
        t0 = time.monotonic()
        returncode, tail, timed_out = _run(plan, env, timeout, on_output)
        elapsed = time.monotonic() - t0
        modified = modified_originals(linked)
        new_root = find_rerun(repo, plan.run_id, started, known=known)
        runs: list[RunResult] = []
        env_changes: tuple[tuple[str, Any, Any], ...] = ()
        if returncode != 0 or new_root is None:
            verdict = tree_verdict = FAILED_TO_RUN
            if new_root is not None:
                _mark(repo, new_root, root, FAILED_TO_RUN)
        else:
            runs = _compare_trees(repo, root, new_root, tols, tuple(ignore))
            tree_verdict = REPRODUCED if all(r.verdict == REPRODUCED for r in runs) else DIVERGED
            verdict = tree_verdict
            if plan.whole_tree:
                target = next((r for r in runs if r.original_id == plan.target_id), None)
                verdict = REPRODUCED if target and target.verdict == REPRODUCED else DIVERGED
            env_changes = environment_changes(root, new_root)
            runs = _record(repo, runs)
    finally:
        unlink_data(linked)
        if reused:
            workspace.scrub(repo, plan.workdir)
            workspace.release(plan.lock_fd)
            plan.lock_fd = None
        elif not keep:
            remove_worktree(repo, plan.workdir)
            if plan.scratch is not None:
                shutil.rmtree(plan.scratch, ignore_errors=True)
    target_id = plan.target_id or plan.run_id
    mine = next((r for r in runs if r.original_id == target_id), None)
    if mine is None and new_root is not None and target_id == plan.run_id:
        mine = RunResult(plan.run_id, None, new_root.info.run_id, new_root.info.run_name, 0,
                         "root", None)  # fmt: skip
    return RerunReport(
        verdict=verdict,
        tree_verdict=tree_verdict,
        run_id=target_id,
        root_id=plan.run_id,
        rerun_id=mine.rerun_id if mine else None,
        rerun_name=mine.rerun_name if mine else None,
        returncode=returncode,
        command=plan.shell(),
        tolerance=tols,
        seconds=round(elapsed, 3),
        stderr_tail=tuple(tail) if verdict == FAILED_TO_RUN else (),
        worktree=str(plan.workdir) if keep and not reused else None,
        runs=tuple(runs),
        environment=env_changes,
        data=tuple(linked or plan.data),
        timed_out=timed_out,
        data_modified=tuple(modified),
    )


def _link(repo: RunRepository, plan: Plan) -> list[DataInput]:
    from vtrack.provenance.inputs import stat_cache
    from vtrack.repro.data import link_data

    if not plan.data:
        return []
    cache = stat_cache(repo.store)
    try:
        return link_data(plan.data, plan.workdir, outside_ok=True, cache=cache)
    finally:
        cache.close()


def _run(
    plan: Plan,
    env: dict[str, str],
    timeout: float | None,
    on_output: Callable[[str], None] | None,
) -> tuple[int, list[str], bool]:
    """Execute the plan's command; ``(exit code, stderr tail lines, timed out)``."""
    capture = on_output is not None
    proc = subprocess.Popen(
        plan.command,
        cwd=plan.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE,
    )
    tail: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
    err_all: list[bytes] = []
    out_all: list[bytes] = []

    def pump_err(stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            tail.append(line)
            if capture:
                err_all.append(line)
            else:
                _relay(line)

    def pump_out(stream: IO[bytes]) -> None:
        out_all.append(stream.read())

    threads = [threading.Thread(target=pump_err, args=(proc.stderr,), daemon=True)]
    if capture:
        threads.append(threading.Thread(target=pump_out, args=(proc.stdout,), daemon=True))
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    for t in threads:
        t.join()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    if on_output is not None and (out_all or err_all):
        text = b"".join(out_all + err_all).decode("utf-8", "replace")
        if text:
            on_output(text)
    lines = [b.decode("utf-8", "replace").rstrip("\n") for b in tail]
    return (-1 if timed_out else proc.returncode), lines, timed_out


def _relay(line: bytes) -> None:
    buf = getattr(sys.stderr, "buffer", None)
    if buf is not None:
        buf.write(line)
        buf.flush()
    else:
        sys.stderr.write(line.decode("utf-8", "replace"))
        sys.stderr.flush()


def _compare_trees(
    repo: RunRepository, root: Run, new_root: Run, tols: Tolerances, ignore: tuple[str, ...]
) -> list[RunResult]:
    from vtrack.repro.tree import match_trees

    out = []
    for pair in match_trees(repo, root, new_root):
        out.append(_result(pair, tols, ignore))
    return out


def _result(pair: Pair, tols: Tolerances, ignore: tuple[str, ...]) -> RunResult:
    a, b = pair.original, pair.rerun
    comparison = compare_rerun(a, b, tols, ignore) if a is not None and b is not None else None
    return RunResult(
        original_id=a.info.run_id if a else None,
        original_name=a.info.run_name if a else None,
        rerun_id=b.info.run_id if b else None,
        rerun_name=b.info.run_name if b else None,
        depth=pair.depth,
        matched_by=pair.how,
        comparison=comparison,
    )


def _record(repo: RunRepository, runs: list[RunResult]) -> list[RunResult]:
    """Tag and rename every new run; the results with the new names.

    Every run of one tree rerun gets the same N in ``<name> (rerun N)``: the count of the
    root's reruns, whose ``vtrack.rerun_of`` tags were set when each new root started.
    """
    from vtrack.repro.names import reruns_of

    root = runs[0] if runs else None
    n = 1
    if root is not None and root.original_id and root.rerun_id:
        n = reruns_of(repo, root.original_id, excluding=root.rerun_id) + 1
    out = []
    for r in runs:
        if r.rerun_id is None:
            out.append(r)
            continue
        new = repo.get(r.rerun_id)
        original = repo.get(r.original_id) if r.original_id else None
        name = _mark(repo, new, original, r.verdict, n)
        out.append(
            RunResult(
                r.original_id,
                r.original_name,
                r.rerun_id,
                name,
                r.depth,
                r.matched_by,
                r.comparison,
            )  # fmt: skip
        )
    return out


def _mark(repo: RunRepository, new: Run, original: Run | None, verdict: str, n: int = 0) -> str:
    """Tag ``new`` with its original and verdict and rename it ``<name> (rerun N)``.

    ``n`` 0 counts the reruns of ``original`` itself.
    """
    from vtrack.repro.names import rerun_name, reruns_of
    from vtrack.validation import validate_run_name, validate_tag

    tags = dict([validate_tag(RERUN_VERDICT_TAG, verdict)])
    name = new.info.run_name
    if original is not None:
        tags.update([validate_tag(RERUN_OF_TAG, original.info.run_id)])
        if n <= 0:
            n = reruns_of(repo, original.info.run_id, excluding=new.info.run_id) + 1
        name = rerun_name(original.info.run_name or "", n)
    writer = repo.writer(new.info.run_id)
    writer.set_tags(tags)
    if name != new.info.run_name:
        writer.set_info("name", validate_run_name(name))
    repo.detach(new.info.run_id)
    return name


def environment_changes(a: Run, b: Run) -> tuple[tuple[str, Any, Any], ...]:
    """``(key, original, now)`` of every environment fact that differs (Python, packages …)."""
    from vtrack.diff import environment_facts

    fa, fb = environment_facts(a), environment_facts(b)
    return tuple(
        (k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)
    )
