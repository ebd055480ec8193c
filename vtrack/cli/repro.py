"""Reproduction commands: ``checkout`` (a run's exact files) and ``rerun`` (run it again).

``checkout`` puts the run commit's tree on disk — the code snapshot, uncommitted
edits of the original included, plus the run record under ``.vtrack/`` (so
``.vtrack/params.yaml`` and small artifacts are there) — and replaces the pointer files
of large artifacts in ``.vtrack/artifacts/`` with their bytes. Nothing is written
outside ``.vtrack/``, so the code equals the snapshot byte for byte and a run started
there captures the same code (snapshots leave ``.vtrack/`` out).

``rerun`` first shows what it will execute and asks (:mod:`vtrack.cli._rerun_plan`),
then checks the run out into a temporary git worktree, executes its recorded
entry point and arguments there with the recorded environment variables, and compares
the new run (tagged ``vtrack.rerun_of``) with the original: "reproduced" (exit 0) when
every param is equal and every metric is within the tolerance, else "diverged" (exit 1).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _render as r
from vtrack.cli._options import client, experiment_option, json_option
from vtrack.cli._rerun_plan import (
    Plan,
    confirm,
    masked_arguments,
    masked_refusal,
    recorded_command,
    recorded_cwd,
    shell_line,
)
from vtrack.cli._rerun_verdict import compare_rerun, find_rerun, print_rerun
from vtrack.cli._types import RunSpec
from vtrack.codediff import code_diff
from vtrack.errors import EXIT_DRIFT

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.entities import Experiment, Run

#: Default tolerance of ``rerun``: |new - old| <= tolerance * max(1, |old|).
DEFAULT_TOLERANCE = 1e-6
RERUN_VERDICT_TAG = "vtrack.rerun_verdict"
#: Environment variables a rerun never inherits from the shell that starts it.
_RERUN_SCRUB = (
    "VTRACK_TRACKING_URI",
    "VTRACK_EXPERIMENT_NAME",
    "VTRACK_EXPERIMENT_ID",
    "VTRACK_RERUN_OF",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
)


# -- checkout ----------------------------------------------------------------------------


def _git(c: TrackingClient, args: list[str], cwd: Path | None = None, check: bool = True) -> str:
    from vtrack import gitcmd

    loc = c.store.location
    if loc.worktree is not None:
        return gitcmd.output(args, cwd=cwd or loc.worktree, check=check)
    return gitcmd.output(args, cwd=cwd or loc.git_dir, git_dir=loc.git_dir, check=check)


def require_snapshot(run: Run) -> str:
    """The run commit of ``run``; raise when the run has none or captured no code."""
    from vtrack.errors import ValidationError

    src = run.info.source or {}
    if not run.info.commit:
        raise ValidationError(f"run {run.info.run_id} has no commit to check out")
    if src.get("code_captured") is False:
        raise ValidationError(
            f"run {run.info.run_id} recorded no code snapshot ({src.get('reason', 'not captured')})",
            hint="only runs made inside a git working tree can be checked out",
        )
    return run.info.commit


def materialise_artifacts(c: TrackingClient, run: Run, target: Path) -> list[str]:
    """Put the bytes of large artifacts at ``target/.vtrack/artifacts/<path>``; return their paths.

    Small artifacts are git blobs of the run tree, so the checkout already holds them;
    a large one is a pointer file there, replaced here by its verified bytes from the
    large-object store (ArtifactNotFoundError if this clone does not have them).
    """
    from vtrack import artifacts

    base = target / ".vtrack" / artifacts.ARTIFACTS_DIR
    written = []
    for path, entry in sorted(run.inputs.artifacts.items()):
        if entry.get("storage") != artifacts.STORAGE_LARGE and (base / path).exists():
            continue
        artifacts.download_artifacts(c.repo, run.info.run_id, path, base)
        written.append(path)
    return written


def worktree_is_dirty(c: TrackingClient) -> list[str]:
    """Tracked files with uncommitted changes in the store's working tree."""
    from vtrack import gitcmd

    loc = c.store.location
    raw = gitcmd.run(
        ["status", "--porcelain", "-z", "--untracked-files=no"],
        cwd=loc.worktree or loc.git_dir, git_dir=None if loc.worktree else loc.git_dir,
    ).stdout  # unstripped and NUL-separated: " M train.py" must keep its leading space
    entries = raw.split(b"\0")
    out: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        out.append(os.fsdecode(entry[3:]))
        if entry[:1] in (b"R", b"C"):
            i += 1  # the original path of a rename or copy follows
    return out


def checkout_run(c: TrackingClient, run: Run, into: Path | None) -> Path:
    """Put run ``run`` on disk (see the module docstring); return the folder.

    With ``into`` a new detached git worktree is added there (the folder must not
    exist or be empty); if putting the artifacts there fails (a large object missing
    from this clone), the worktree is removed again — unregistered, its files deleted, an
    empty folder that was there before left empty — and the error re-raised. Without it the store's own working tree is switched to the
    run commit (detached HEAD), refused with DirtyWorktreeError when tracked files
    have uncommitted changes.
    """
    from vtrack.errors import DirtyWorktreeError, ValidationError

    commit = require_snapshot(run)
    loc = c.store.location
    if into is None:
        if loc.worktree is None:
            raise ValidationError("this store has no working tree", hint="use --into DIR")
        dirty = worktree_is_dirty(c)
        if dirty:
            shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
            raise DirtyWorktreeError(
                f"refusing to check out over uncommitted changes in {loc.worktree}: {shown}",
                hint="commit or stash them, or use --into DIR",
            )
        _git(c, ["checkout", "-q", "--detach", commit])
        target = loc.worktree
    else:
        target = into.expanduser().resolve()
        existed = target.exists()
        if existed and (not target.is_dir() or any(target.iterdir())):
            raise ValidationError(f"{target} exists and is not an empty folder")
        _git(c, ["worktree", "add", "-q", "--detach", str(target), commit])
        try:
            materialise_artifacts(c, run, target)
        except BaseException:
            # no half checkout stays registered: remove the worktree and what it wrote
            _remove_worktree(c, target)
            if existed:
                target.mkdir(exist_ok=True)
            raise
        return target
    materialise_artifacts(c, run, target)
    return target


def rerun_command(run: Run, workdir: Path, python: str = "python") -> list[str]:
    """The command that re-executes ``run`` from a checkout at ``workdir``.

    Arguments come with their exact bytes (``argv_raw`` when the record has it); masked
    ones hold the mask (:func:`~vtrack.cli._rerun_plan.masked_arguments` says which).
    """
    from vtrack.errors import ValidationError

    entry, argv = recorded_command(run)
    if not entry or entry == "-c":
        raise ValidationError(
            f"run {run.info.run_id} was started from {'python -c' if entry else 'an unknown entry point'}; "
            "its command cannot be re-executed",
            hint="start runs from a script file or with python -m",
        )
    if entry.startswith("-m "):
        return [python, "-m", entry[3:], *argv]
    path = Path(entry)
    if not path.is_absolute():
        path = workdir / path
    return [python, str(path), *argv]


def rerun_cwd(c: TrackingClient, run: Run, workdir: Path, *, planned: bool = False) -> Path:
    """Where a rerun starts: the recorded cwd mapped into ``workdir`` (else its root).

    The recorded cwd is absolute; it maps into the checkout when it lies inside this
    store's working tree (the usual case: rerunning in the clone that made the run) and
    is a folder there. ``planned`` asks the run commit's tree instead of the disk, for a
    checkout that is not made yet.
    """
    cwd = recorded_cwd(run)
    wt = c.store.location.worktree
    if cwd and wt is not None:
        try:
            rel = Path(cwd).resolve().relative_to(wt)
        except ValueError:
            return workdir
        if rel == Path("."):
            return workdir
        cand = workdir / rel
        if planned:
            kind = _git(c, ["cat-file", "-t", f"{run.info.commit}:{rel.as_posix()}"], check=False)
            if kind == "tree":
                return cand
        elif cand.is_dir():
            return cand
    return workdir


@click.command("checkout")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Add a new git worktree at DIR instead of switching this one.",
)
@experiment_option()
@json_option
def checkout(run: str, into: Path | None, experiment: Experiment | None, as_json: bool) -> None:
    """Put a run's exact code, params and artifacts on disk (a git worktree)."""
    c = client()
    rn = c.get_run(run)
    target = checkout_run(c, rn, into)
    env = dict((rn.info.source or {}).get("env") or {})
    try:
        cmd = rerun_command(rn, target)
        again: str | None = shell_line(cmd, rerun_cwd(c, rn, target), env)
    except Exception:  # noqa: BLE001 - a checkout is useful even without a command
        again = None
    masked = masked_arguments(rn)
    if as_json:
        r.echo_json(
            {"run_id": run, "commit": rn.info.commit, "path": str(target), "command": again}
        )
        return
    click.echo(f"checked out run {run} ({rn.info.run_name}) at {target}")
    click.echo(f"params: {target / '.vtrack' / 'params.yaml'}")
    if again:
        click.echo(f"run it again: {again}")
        if masked:
            shown = ", ".join(f"{i + 1} ({text!r})" for i, text in masked)
            click.echo(f"  (arguments {shown} were masked when recorded: give their real values)")
    if into is None:
        branch = (rn.info.source or {}).get("branch")
        click.echo(
            "HEAD is detached at the run commit"
            + (f"; back with: git checkout {branch}" if branch else "")
        )
    else:
        click.echo(f"remove it with: git worktree remove --force {shlex.quote(str(target))}")


# -- rerun ---------------------------------------------------------------------------------


def _remove_worktree(c: TrackingClient, path: Path) -> None:
    from vtrack.errors import VtrackError

    try:
        _git(c, ["worktree", "remove", "--force", str(path)])
    except VtrackError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    try:
        _git(c, ["worktree", "prune"])
    except VtrackError:
        pass


@click.command("rerun")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.option(
    "--tolerance",
    "-t",
    default=DEFAULT_TOLERANCE,
    show_default=True,
    type=click.FloatRange(0),
    help="Allowed |new - old| / max(1, |old|) per metric.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="PATTERN",
    help="Metric or param keys to leave out of the verdict (glob, repeatable).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary worktree (its path is printed).")
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=None,
    help="Seconds the re-executed command may run.",
)
@click.option("--yes", "-y", is_flag=True, help="Run without asking (scripts); the plan is shown.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the command, directory, environment and code diff; run nothing.",
)
@experiment_option()
@json_option
def rerun(
    run: str,
    tolerance: float,
    ignore: tuple[str, ...],
    keep: bool,
    timeout: float | None,
    yes: bool,
    dry_run: bool,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Run RUN again from its own snapshot; exit 0 if it reproduced, 1 if it diverged.

    This executes the run's code, which may be code someone else pushed. First it shows
    the command, the directory, the environment variables it sets and the diff between
    your working tree and the run's code, then asks on a terminal. --yes skips the
    question; without a terminal and without --yes it refuses (exit 2). A run recorded
    with masked arguments (secrets) is refused too, with how to rerun it by hand.
    """
    from vtrack.errors import RunNotFoundError

    c = client()
    original = c.get_run(run)
    require_snapshot(original)
    tmp = Path(tempfile.mkdtemp(prefix=f"vtrack-rerun-{run[:8]}-"))
    workdir = tmp / "worktree"
    go = False
    try:
        plan = _plan(c, original, run, workdir)
        if dry_run:
            if as_json:
                r.echo_json(plan.to_dict())
            else:
                plan.echo(err=False)
            if plan.masked:
                raise masked_refusal(plan)
            return
        confirm(plan, yes=yes, as_json=as_json)
        go = True
    finally:
        if not go:
            shutil.rmtree(tmp, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in _RERUN_SCRUB}
    # the recorded variables include VTRACK_EXPERIMENT_* when the original had them, so
    # the same code picks the same experiment; nothing else is added to the record
    env.update(plan.sets)
    try:
        checkout_run(c, original, workdir)
        started = int(time.time() * 1000)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                plan.command,
                cwd=plan.cwd,
                env=env,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                capture_output=as_json,
                text=True,
            )
            returncode = proc.returncode
            if as_json and (proc.stdout or proc.stderr):
                click.echo((proc.stdout or "") + (proc.stderr or ""), err=True, nl=False)
        except subprocess.TimeoutExpired:
            returncode = -1
        elapsed = time.monotonic() - t0
        new = find_rerun(c, run, started)
        if new is None:
            if returncode != 0:
                report: dict[str, Any] = {"verdict": "diverged", "metrics": [], "params": []}
            else:
                raise RunNotFoundError(
                    f"the rerun of {run} finished (exit {returncode}) but recorded no run",
                    hint="does the script call vtrack.start_run()?",
                )
        else:
            report = compare_rerun(original, new, tolerance, ignore)
        if returncode != 0:
            report["verdict"] = "diverged"
        if new is not None:
            c.set_tag(new.info.run_id, RERUN_VERDICT_TAG, report["verdict"])
            c.detach(new.info.run_id)
    finally:
        if not keep:
            _remove_worktree(c, workdir)
            shutil.rmtree(tmp, ignore_errors=True)
    report.update(
        {
            "run_id": run,
            "rerun_id": new.info.run_id if new else None,
            "rerun_name": new.info.run_name if new else None,
            "returncode": returncode,
            "tolerance": tolerance,
            "seconds": round(elapsed, 3),
            "worktree": str(workdir) if keep else None,
        }
    )
    if as_json:
        r.echo_json(report)
    else:
        print_rerun(report)
    if report["verdict"] != "reproduced":
        raise click.exceptions.Exit(EXIT_DRIFT)


def _plan(c: TrackingClient, original: Run, run_id: str, workdir: Path) -> Plan:
    """What rerunning ``original`` from a checkout at ``workdir`` (not made yet) will do."""
    cmd = rerun_command(original, workdir, python=sys.executable)
    cwd = rerun_cwd(c, original, workdir, planned=True)
    src = original.info.source or {}
    recorded = {str(k): str(v) for k, v in (src.get("env") or {}).items()}
    sets = dict(recorded)
    sets["VTRACK_TRACKING_URI"] = str(workdir)  # a linked worktree of this store
    sets["VTRACK_RERUN_OF"] = run_id
    unsets = sorted(k for k in _RERUN_SCRUB if k in os.environ and k not in sets)
    return Plan(
        run_id=run_id,
        run_name=original.info.run_name,
        commit=original.info.commit or "",
        workdir=workdir,
        command=cmd,
        cwd=cwd,
        sets=sets,
        unsets=unsets,
        recorded_env=recorded,
        masked=masked_arguments(original),
        diff=code_diff(c.repo, original),
        argv=recorded_command(original)[1],
    )
