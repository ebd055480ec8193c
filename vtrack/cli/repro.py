"""Reproduction commands: ``checkout`` (a run's exact files) and ``rerun`` (run it again).

``checkout`` puts the run commit's tree on disk — the code snapshot, uncommitted
edits of the original included, plus the run record under ``.vtrack/`` (so
``.vtrack/params.yaml`` and small artifacts are there) — and replaces the pointer files
of large artifacts in ``.vtrack/artifacts/`` with their bytes. Nothing is written
outside ``.vtrack/``, so the code equals the snapshot byte for byte and a run started
there captures the same code (snapshots leave ``.vtrack/`` out).

``rerun`` checks the run out into a temporary git worktree, executes its recorded
entry point and arguments there with the recorded environment variables, and compares
the new run (tagged ``vtrack.rerun_of``) with the original: "reproduced" (exit 0) when
every param is equal and every metric is within the tolerance, else "diverged" (exit 1).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _render as r
from vtrack.cli._options import client, experiment_option, json_option
from vtrack.cli._types import RunSpec
from vtrack.errors import EXIT_DRIFT
from vtrack.fluent import RERUN_OF_TAG

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
#: Seconds of clock slack when finding the run a rerun recorded.
_CLOCK_SLACK_MS = 2000


# -- checkout ----------------------------------------------------------------------------


def _git(c: TrackingClient, args: list[str], cwd: Path | None = None) -> str:
    from vtrack import gitcmd

    loc = c.store.location
    if loc.worktree is not None:
        return gitcmd.output(args, cwd=cwd or loc.worktree)
    return gitcmd.output(args, cwd=cwd or loc.git_dir, git_dir=loc.git_dir)


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
        artifacts.download_artifacts(c, run.info.run_id, path, base)
        written.append(path)
    return written


def worktree_is_dirty(c: TrackingClient) -> list[str]:
    """Tracked files with uncommitted changes in the store's working tree."""
    out = _git(c, ["status", "--porcelain", "--untracked-files=no"])
    return [line[3:] for line in out.splitlines() if line.strip()]


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
    """The command that re-executes ``run`` from a checkout at ``workdir``."""
    from vtrack.errors import ValidationError

    src = run.info.source or {}
    entry = src.get("entry_point")
    argv = [str(a) for a in src.get("argv") or []]
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


def rerun_cwd(c: TrackingClient, run: Run, workdir: Path) -> Path:
    """Where a rerun starts: the recorded cwd mapped into ``workdir`` (else its root).

    The recorded cwd is absolute; it maps into the checkout when it lies inside this
    store's working tree (the usual case: rerunning in the clone that made the run).
    """
    cwd = (run.info.source or {}).get("cwd")
    wt = c.store.location.worktree
    if cwd and wt is not None:
        try:
            rel = Path(cwd).resolve().relative_to(wt)
        except ValueError:
            return workdir
        cand = workdir / rel
        if cand.is_dir():
            return cand
    return workdir


def shell_line(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """``cd DIR && VAR=x python train.py ...`` for people to copy."""
    env_part = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    shown = [
        "python" if i == 0 and Path(a) == Path(sys.executable) else a for i, a in enumerate(cmd)
    ]
    try:
        shown = [
            shown[0],
            *[
                os.path.relpath(a, cwd) if os.path.isabs(a) and a.startswith(str(cwd)) else a
                for a in shown[1:]
            ],
        ]
    except ValueError:
        pass
    return (
        f"cd {shlex.quote(str(cwd))} && " + (env_part + " " if env_part else "") + shlex.join(shown)
    )


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
    if as_json:
        r.echo_json(
            {"run_id": run, "commit": rn.info.commit, "path": str(target), "command": again}
        )
        return
    click.echo(f"checked out run {run} ({rn.info.run_name}) at {target}")
    click.echo(f"params: {target / '.vtrack' / 'params.yaml'}")
    if again:
        click.echo(f"run it again: {again}")
    if into is None:
        branch = (rn.info.source or {}).get("branch")
        click.echo(
            "HEAD is detached at the run commit"
            + (f"; back with: git checkout {branch}" if branch else "")
        )
    else:
        click.echo(f"remove it with: git worktree remove --force {shlex.quote(str(target))}")


# -- rerun ---------------------------------------------------------------------------------


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(b - a) <= tolerance * max(1.0, abs(a))


def compare_rerun(
    original: Run, new: Run, tolerance: float, ignore: tuple[str, ...]
) -> dict[str, Any]:
    """Per-metric and per-param comparison of a rerun; ``verdict`` is reproduced/diverged."""
    from vtrack.diff import same_value

    def kept(key: str) -> bool:
        return not key.startswith("system/") and not any(fnmatch(key, p) for p in ignore)

    metrics = []
    a, b = original.data.metrics, new.data.metrics
    for key in sorted(k for k in set(a) | set(b) if kept(k)):
        old, nv = a.get(key), b.get(key)
        within = old is not None and nv is not None and _close(old, nv, tolerance)
        delta = (nv - old) if old is not None and nv is not None else None
        metrics.append(
            {"key": key, "original": old, "rerun": nv, "delta": delta, "within_tolerance": within}
        )
    params = []
    pa, pb = original.data.params, new.data.params
    for key in sorted(k for k in set(pa) | set(pb) if kept(k)):
        if key in pa and key in pb and same_value(pa[key], pb[key]):
            continue
        params.append({"key": key, "original": pa.get(key), "rerun": pb.get(key)})
    ok = all(m["within_tolerance"] for m in metrics) and not params
    return {"verdict": "reproduced" if ok else "diverged", "metrics": metrics, "params": params}


def _find_rerun(c: TrackingClient, run_id: str, since_ms: int) -> Run | None:
    found = c.search_runs(
        experiment_ids=None,
        filter_string=f"tags.`{RERUN_OF_TAG}` = '{run_id}'",
        run_view_type="ALL",
        max_results=100,
        order_by=["attributes.start_time DESC"],
    )
    fresh = [x for x in found if x.info.start_time >= since_ms - _CLOCK_SLACK_MS]
    if not fresh:
        return None
    first = min(fresh, key=lambda x: (x.info.start_time, x.info.run_id))
    return c.get_run(first.info.run_id)


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
@experiment_option()
@json_option
def rerun(
    run: str,
    tolerance: float,
    ignore: tuple[str, ...],
    keep: bool,
    timeout: float | None,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """Run RUN again from its own snapshot; exit 0 if it reproduced, 1 if it diverged."""
    from vtrack.errors import RunNotFoundError

    c = client()
    original = c.get_run(run)
    require_snapshot(original)
    tmp = Path(tempfile.mkdtemp(prefix=f"vtrack-rerun-{run[:8]}-"))
    workdir = tmp / "worktree"
    try:
        checkout_run(c, original, workdir)
        cmd = rerun_command(original, workdir, python=sys.executable)
        cwd = rerun_cwd(c, original, workdir)
        recorded = {
            str(k): str(v) for k, v in ((original.info.source or {}).get("env") or {}).items()
        }
        env = {k: v for k, v in os.environ.items() if k not in _RERUN_SCRUB}
        # the recorded variables include VTRACK_EXPERIMENT_* when the original had them, so
        # the same code picks the same experiment; nothing else is added to the record
        env.update(recorded)
        env["VTRACK_TRACKING_URI"] = str(workdir)  # a linked worktree of this store
        env["VTRACK_RERUN_OF"] = run
        if not as_json:
            click.echo(
                f"re-running {run} ({original.info.run_name}): {shell_line(cmd, cwd, recorded)}",
                err=True,
            )
        started = int(time.time() * 1000)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd,
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
        new = _find_rerun(c, run, started)
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
        _print_rerun(report)
    if report["verdict"] != "reproduced":
        raise click.exceptions.Exit(EXIT_DRIFT)


def _print_rerun(report: dict[str, Any]) -> None:
    if report["metrics"] or report["params"]:
        t = r.table("", "key", "original", "rerun", "change")
        for m in report["metrics"]:
            mark = r.styled("=", "green") if m["within_tolerance"] else r.styled("≠", "red")
            t.add_row(
                mark,
                f"metrics.{m['key']}",
                r.fmt_value(m["original"]),
                r.fmt_value(m["rerun"]),
                r.fmt_delta(m["delta"], None),
            )
        for p in report["params"]:
            t.add_row(
                r.styled("≠", "red"),
                f"params.{p['key']}",
                r.fmt_param(p["original"]),
                r.fmt_param(p["rerun"]),
                "",
            )
        t.print()
    if report["returncode"] != 0:
        r.emit(f"the command exited with code {report['returncode']}")
    if report.get("worktree"):
        r.emit(f"worktree kept at {report['worktree']}")
    style = "bold green" if report["verdict"] == "reproduced" else "bold red"
    new = f"{report['rerun_id']} ({report['rerun_name']})" if report["rerun_id"] else "no run"
    r.emit(
        r.styled(report["verdict"], style),
        f": rerun {new} of {report['run_id']} "
        f"(tolerance {report['tolerance']:g}, {r.fmt_seconds(report['seconds'])})",
    )
