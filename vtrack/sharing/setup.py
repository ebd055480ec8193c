"""Getting a clone's runs: ``vtrack clone``, and the hint after a plain ``git clone``."""

from __future__ import annotations

import time
from pathlib import Path

from vtrack import gitcmd
from vtrack.config import Settings
from vtrack.errors import GitError, ValidationError, VtrackError
from vtrack.limits import GIT_TIMEOUT_SECONDS
from vtrack.sharing import remotes
from vtrack.sharing.pull import PullReport, pull
from vtrack.store.runs import RunRepository

#: Seconds the remote's answer to "do you have runs?" is remembered.
HINT_TTL_SECONDS = 3600.0
#: Seconds the hint may wait for the remote (it must never make a command hang).
HINT_TIMEOUT_SECONDS = 5.0


def clone(url: str, directory: str | Path, settings: Settings) -> tuple[Path, PullReport]:
    """``git clone URL DIRECTORY``, then a pull of every run from ``origin``.

    The new clone's store is opened with ``settings`` (the caller's: a service never reads
    the environment). Returns the new worktree and the pull's report. ValidationError if
    ``directory`` exists and is not empty; GitError (with git's message) when the clone fails.
    """
    from vtrack.config import locate_store
    from vtrack.store import Store

    target = Path(directory).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError(f"{target} exists and is not an empty folder")
    gitcmd.run(["clone", "--quiet", url, str(target)], timeout=remotes.NETWORK_TIMEOUT)
    repo = RunRepository(Store(locate_store(str(target), create=False), settings))
    return target, pull(repo, "origin")


def remote_runs_hint(repo: RunRepository) -> str | None:
    """For a clone with no runs: a hint naming ``vtrack pull`` when the remote has runs.

    Asks the default remote at most once an hour (the answer is cached under
    ``.git/vtrack/``), gives up after a few seconds, and never raises.
    """
    store = repo.store
    try:
        if store.refs.list_shared():
            return None
        names = remotes.remote_names(store)
        remote = remotes.default_remote(store)
        if remote not in names:
            return None
        cache = store.location.vtrack_dir / "remote-runs-hint"
        try:
            stamp, _, answer = cache.read_text().partition(" ")
            if time.time() - float(stamp) < HINT_TTL_SECONDS:
                return _hint(remote, answer.strip()) if answer.strip() != "0" else None
        except (OSError, ValueError):
            pass
        url = remotes.config_get(store, f"remote.{remote}.url") or ""
        patterns = [f"{p}*" for p in store.refs.shared_prefixes()]
        res = gitcmd.run(
            ["-c", "protocol.version=2", "ls-remote", "--refs", url, *patterns],
            cwd=store.location.worktree or store.location.git_dir,
            timeout=min(HINT_TIMEOUT_SECONDS, GIT_TIMEOUT_SECONDS),
            env={"GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=3"},
        )  # fmt: skip
        count = sum(1 for line in res.stdout.splitlines() if line.strip())
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(f"{time.time()} {count}\n")
        return _hint(remote, str(count)) if count else None
    except (VtrackError, GitError, OSError):
        return None


def _hint(remote: str, count: str) -> str:
    return (
        f"no runs in this clone, but remote {remote!r} has {count} vtrack refs (runs, experiments): "
        f"fetch them with 'vtrack pull {remote}'"
    )
