"""Running a run again from its own snapshot, and the verdict: reproduced or diverged?

:func:`execute_rerun` carries out a :class:`~vtrack.repro.plan.Plan`: it checks the run
out into the plan's temporary git worktree, executes the recorded command there with the
recorded environment variables (the environment it inherits minus
:data:`~vtrack.repro.plan.RERUN_SCRUB`), finds the run the command recorded (tagged
``vtrack.rerun_of`` by ``start_run``) and compares it with the original
(:func:`compare_rerun`): "reproduced" when the command exited 0, every param is equal
and every metric is within the tolerance, else "diverged". The verdict is tagged on the
new run (:data:`~vtrack.entities.RERUN_VERDICT_TAG`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from vtrack.entities import RERUN_OF_TAG, RERUN_VERDICT_TAG
from vtrack.errors import RunNotFoundError
from vtrack.repro.checkout import checkout_run, remove_worktree
from vtrack.repro.plan import RERUN_SCRUB, Plan, masked_refusal

if TYPE_CHECKING:
    from vtrack.entities import Run
    from vtrack.store.runs import RunRepository

#: Default tolerance: |new - old| <= tolerance * max(1, |old|).
DEFAULT_TOLERANCE = 1e-6
REPRODUCED, DIVERGED = "reproduced", "diverged"
#: Milliseconds of clock slack when finding the run a rerun recorded.
_CLOCK_SLACK_MS = 2000


@dataclass(frozen=True)
class MetricCheck:
    """One metric in the original and the rerun (None where absent)."""

    key: str
    original: float | None
    rerun: float | None
    delta: float | None
    within_tolerance: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "original": self.original,
            "rerun": self.rerun,
            "delta": self.delta,
            "within_tolerance": self.within_tolerance,
        }


@dataclass(frozen=True)
class ParamMismatch:
    """A param whose value (or type) differs between the original and the rerun."""

    key: str
    original: Any
    rerun: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "original": self.original, "rerun": self.rerun}


@dataclass(frozen=True)
class Verdict:
    """The comparison of a rerun with its original: every metric, the params that differ."""

    verdict: str
    metrics: tuple[MetricCheck, ...] = ()
    params: tuple[ParamMismatch, ...] = ()


@dataclass(frozen=True)
class RerunReport:
    """What a rerun did and found. ``verdict`` is ``reproduced`` or ``diverged``.

    ``rerun_id`` is None when the command recorded no run (it failed first);
    ``returncode`` is -1 when it ran out of time; ``worktree`` is the kept worktree.
    """

    verdict: str
    run_id: str
    rerun_id: str | None
    rerun_name: str | None
    returncode: int
    tolerance: float
    seconds: float
    worktree: str | None = None
    metrics: tuple[MetricCheck, ...] = field(default_factory=tuple)
    params: tuple[ParamMismatch, ...] = field(default_factory=tuple)

    @property
    def reproduced(self) -> bool:
        """True when the verdict is ``reproduced``."""
        return self.verdict == REPRODUCED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``vtrack rerun --json``)."""
        return {
            "verdict": self.verdict,
            "metrics": [m.to_dict() for m in self.metrics],
            "params": [p.to_dict() for p in self.params],
            "run_id": self.run_id,
            "rerun_id": self.rerun_id,
            "rerun_name": self.rerun_name,
            "returncode": self.returncode,
            "tolerance": self.tolerance,
            "seconds": self.seconds,
            "worktree": self.worktree,
        }


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(b - a) <= tolerance * max(1.0, abs(a))


def compare_rerun(original: Run, new: Run, tolerance: float, ignore: Iterable[str] = ()) -> Verdict:
    """Every metric and the differing params of a rerun against its original.

    ``system/…`` keys and keys matching an ``ignore`` glob are left out. Reproduced when
    every metric is in both runs within ``tolerance`` (NaN equals NaN) and no param
    differs in value or type.
    """
    from vtrack.diff import same_value

    patterns = tuple(ignore)

    def kept(key: str) -> bool:
        return not key.startswith("system/") and not any(fnmatch(key, p) for p in patterns)

    metrics = []
    a, b = original.data.metrics, new.data.metrics
    for key in sorted(k for k in set(a) | set(b) if kept(k)):
        old, nv = a.get(key), b.get(key)
        within = old is not None and nv is not None and _close(old, nv, tolerance)
        delta = (nv - old) if old is not None and nv is not None else None
        metrics.append(MetricCheck(key, old, nv, delta, within))
    params = []
    pa, pb = original.data.params, new.data.params
    for key in sorted(k for k in set(pa) | set(pb) if kept(k)):
        if key in pa and key in pb and same_value(pa[key], pb[key]):
            continue
        params.append(ParamMismatch(key, pa.get(key), pb.get(key)))
    ok = all(m.within_tolerance for m in metrics) and not params
    return Verdict(REPRODUCED if ok else DIVERGED, tuple(metrics), tuple(params))


def find_rerun(repo: RunRepository, run_id: str, since_ms: int) -> Run | None:
    """The first run tagged as a rerun of ``run_id`` that started at ``since_ms`` or later."""
    from vtrack.query import parse_filter, parse_order_by

    repo.recover()
    found = repo.index().search(
        parse_filter(f"tags.`{RERUN_OF_TAG}` = '{run_id}'"),
        parse_order_by(["attributes.start_time DESC"]),
        experiment_ids=None,
        lifecycles=("active", "deleted"),
        max_results=100,
    )
    fresh = [x for x in found if x.info.start_time >= since_ms - _CLOCK_SLACK_MS]
    if not fresh:
        return None
    first = min(fresh, key=lambda x: (x.info.start_time, x.info.run_id))
    return repo.get(first.info.run_id)


def execute_rerun(
    repo: RunRepository,
    original: Run,
    plan: Plan,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    ignore: Iterable[str] = (),
    timeout: float | None = None,
    keep: bool = False,
    environ: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> RerunReport:
    """Run ``plan`` (made by :func:`~vtrack.repro.plan.plan_rerun` for ``original``).

    The command's output goes to this process's stdout and stderr, unless ``on_output``
    is given: then it is captured and handed over, stdout then stderr, once the command
    ends. ``timeout`` is in seconds. The worktree and the plan's temp folder are removed
    at the end unless ``keep``. Raises ValidationError for a plan with masked arguments
    (nothing runs), RunNotFoundError when the command exited 0 but recorded no run.
    """
    if not plan.runnable:
        raise masked_refusal(plan)
    inherited = os.environ if environ is None else environ
    env = {k: v for k, v in inherited.items() if k not in RERUN_SCRUB}
    # the recorded variables include VTRACK_EXPERIMENT_* when the original had them, so
    # the same code picks the same experiment; nothing else is added to the record
    env.update(plan.sets)
    try:
        checkout_run(repo, original, plan.workdir)
        started = int(time.time() * 1000)
        t0 = time.monotonic()
        capture = on_output is not None
        try:
            proc = subprocess.run(
                plan.command,
                cwd=plan.cwd,
                env=env,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                capture_output=capture,
                text=True,
            )
            returncode = proc.returncode
            if on_output is not None and (proc.stdout or proc.stderr):
                on_output((proc.stdout or "") + (proc.stderr or ""))
        except subprocess.TimeoutExpired:
            returncode = -1
        elapsed = time.monotonic() - t0
        new = find_rerun(repo, plan.run_id, started)
        if new is None:
            if returncode == 0:
                raise RunNotFoundError(
                    f"the rerun of {plan.run_id} finished (exit {returncode}) but recorded no run",
                    hint="does the script call vtrack.start_run()?",
                )
            verdict = Verdict(DIVERGED)
        else:
            verdict = compare_rerun(original, new, tolerance, ignore)
        outcome = verdict.verdict if returncode == 0 else DIVERGED
        if new is not None:
            _tag_verdict(repo, new.info.run_id, outcome)
    finally:
        if not keep:
            remove_worktree(repo, plan.workdir)
            if plan.scratch is not None:
                shutil.rmtree(plan.scratch, ignore_errors=True)
    return RerunReport(
        verdict=outcome,
        run_id=plan.run_id,
        rerun_id=new.info.run_id if new else None,
        rerun_name=new.info.run_name if new else None,
        returncode=returncode,
        tolerance=tolerance,
        seconds=round(elapsed, 3),
        worktree=str(plan.workdir) if keep else None,
        metrics=verdict.metrics,
        params=verdict.params,
    )


def _tag_verdict(repo: RunRepository, run_id: str, verdict: str) -> None:
    from vtrack.validation import validate_tag

    key, value = validate_tag(RERUN_VERDICT_TAG, verdict)
    repo.writer(run_id).set_tags({key: value})
    repo.detach(run_id)
