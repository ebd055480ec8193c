"""Configuration: the only module that reads ``VTRACK_*`` and ``GIT_*`` variables.

It turns a tracking URI (or the current directory) into an explicit
:class:`StoreLocation`; everything below it receives explicit paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vtrack.errors import StoreNotFoundError, ValidationError
from vtrack.limits import (
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_FLUSH_SECONDS,
    DEFAULT_LARGE_FILE_THRESHOLD,
    DEFAULT_SNAPSHOT_MAX_FILE_BYTES,
)

DEFAULT_BARE_STORE = ".vtrack"


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives.

    ``git_dir`` is the common git directory (objects, refs and ``vtrack/``);
    ``head_dir`` holds this checkout's HEAD (differs for linked worktrees);
    ``worktree`` is the working tree whose code runs capture (None for bare stores).
    """

    git_dir: Path
    head_dir: Path
    worktree: Path | None

    @property
    def vtrack_dir(self) -> Path:
        """The private folder for journals, caches and large objects."""
        return self.git_dir / "vtrack"


@dataclass(frozen=True)
class Settings:
    """Tunables with their environment overrides applied."""

    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS
    snapshot_max_file_bytes: int = DEFAULT_SNAPSHOT_MAX_FILE_BYTES
    large_file_threshold: int = DEFAULT_LARGE_FILE_THRESHOLD
    fsync_objects: bool = False
    capture_code: bool = True
    #: Put untracked files that look like secrets (``.env``, keys) into snapshots too.
    snapshot_include_secrets: bool = False


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ValidationError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValidationError(f"{name}={raw!r} must be true or false")


def load_settings() -> Settings:
    """Return the settings, with ``VTRACK_*`` environment overrides applied."""
    return Settings(
        flush_seconds=_env_number("VTRACK_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS, 0.01),
        checkpoint_seconds=_env_number(
            "VTRACK_CHECKPOINT_SECONDS", DEFAULT_CHECKPOINT_SECONDS, 0.05
        ),
        snapshot_max_file_bytes=int(
            _env_number("VTRACK_SNAPSHOT_MAX_FILE_BYTES", DEFAULT_SNAPSHOT_MAX_FILE_BYTES, 0)
        ),
        large_file_threshold=int(
            _env_number("VTRACK_LARGE_FILE_THRESHOLD", DEFAULT_LARGE_FILE_THRESHOLD, 0)
        ),
        fsync_objects=_env_bool("VTRACK_FSYNC", False),
        capture_code=_env_bool("VTRACK_CAPTURE_CODE", True),
        snapshot_include_secrets=_env_bool("VTRACK_SNAPSHOT_INCLUDE_SECRETS", False),
    )


def env_tracking_uri() -> str | None:
    """Return ``VTRACK_TRACKING_URI`` if set and non-empty."""
    return os.environ.get("VTRACK_TRACKING_URI") or None


def env_experiment() -> tuple[str | None, str | None]:
    """Return ``(VTRACK_EXPERIMENT_NAME, VTRACK_EXPERIMENT_ID)``."""
    return (
        os.environ.get("VTRACK_EXPERIMENT_NAME") or None,
        os.environ.get("VTRACK_EXPERIMENT_ID") or None,
    )


def env_rerun_of() -> str | None:
    """Return ``VTRACK_RERUN_OF``: the run a ``vtrack rerun`` is re-executing, if any."""
    return os.environ.get("VTRACK_RERUN_OF") or None


def env_rerun_mirror() -> str | None:
    """Return ``VTRACK_RERUN_MIRROR``: the folder a rerun mirrors the filesystem under.

    A rerun's worktree sits at ``<mirror>/<the repository's absolute path>``, and data
    outside the repository is linked at ``<mirror>/<its absolute path>``; a path under
    the mirror stands for the same path without it.
    """
    return os.environ.get("VTRACK_RERUN_MIRROR") or None


@dataclass(frozen=True)
class SystemMetricsEnv:
    """The system-metrics settings found in the environment (None: not set)."""

    enabled: bool | None
    interval: float | None
    node_id: str | None
    #: True when a launcher says the job spans several machines (torchrun, SLURM)
    multi_node: bool


def env_system_metrics_enabled() -> bool | None:
    """``VTRACK_ENABLE_SYSTEM_METRICS_LOGGING`` as a bool (None: not set); ValidationError if malformed."""
    raw = os.environ.get("VTRACK_ENABLE_SYSTEM_METRICS_LOGGING")
    if raw is None or not raw.strip():
        return None
    return _env_bool("VTRACK_ENABLE_SYSTEM_METRICS_LOGGING", False)


def env_system_metrics() -> SystemMetricsEnv:
    """Read ``VTRACK_ENABLE_SYSTEM_METRICS_LOGGING``, ``VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL``
    and ``VTRACK_SYSTEM_METRICS_NODE_ID``, and whether the job runs on several nodes
    (``WORLD_SIZE`` above ``LOCAL_WORLD_SIZE`` as torchrun sets them, or ``SLURM_NNODES`` > 1).

    Raises ValidationError for a malformed value.
    """
    enabled = env_system_metrics_enabled()
    raw_interval = os.environ.get("VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL")
    interval = None
    if raw_interval is not None and raw_interval.strip():
        interval = _env_number("VTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL", 0.0, 0.01)
    node_id = os.environ.get("VTRACK_SYSTEM_METRICS_NODE_ID") or None

    def count(name: str) -> int:
        try:
            return int(os.environ.get(name, "") or 0)
        except ValueError:
            return 0

    world, local = count("WORLD_SIZE"), count("LOCAL_WORLD_SIZE")
    multi_node = (world > local > 0) or count("SLURM_NNODES") > 1
    return SystemMetricsEnv(enabled, interval, node_id, multi_node)


def env_debug() -> bool:
    """True when ``VTRACK_DEBUG`` asks for tracebacks on stderr (1, true, yes, on).

    Read while reporting a crash, so any other value means false instead of raising.
    """
    return (os.environ.get("VTRACK_DEBUG") or "").strip().lower() in ("1", "true", "yes", "on")


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _read_gitfile(dotgit: Path) -> Path:
    text = dotgit.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        raise StoreNotFoundError(f"{dotgit} is a file but not a 'gitdir:' link")
    target = Path(text[len("gitdir:") :].strip())
    if not target.is_absolute():
        target = dotgit.parent / target
    return target.resolve()


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        target = Path(common.read_text(encoding="utf-8").strip())
        if not target.is_absolute():
            target = git_dir / target
        return target.resolve()
    return git_dir


def _is_bare_config(git_dir: Path) -> bool:
    cfg = git_dir / "config"
    try:
        text = cfg.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        s = line.strip().replace(" ", "").lower()
        if s == "bare=true":
            return True
    return False


def _location_for_worktree(worktree: Path) -> StoreLocation:
    dotgit = worktree / ".git"
    head_dir = dotgit.resolve() if dotgit.is_dir() else _read_gitfile(dotgit)
    if not _is_git_dir(_common_dir(head_dir)) or not (head_dir / "HEAD").is_file():
        raise StoreNotFoundError(f"{worktree} has a .git entry that is not a valid git directory")
    return StoreLocation(git_dir=_common_dir(head_dir), head_dir=head_dir, worktree=worktree)


def _location_for_git_dir(git_dir: Path, worktree: Path | None = None) -> StoreLocation:
    git_dir = git_dir.resolve()
    common = _common_dir(git_dir)
    if worktree is None and git_dir.name == ".git" and not _is_bare_config(common):
        worktree = git_dir.parent
    return StoreLocation(git_dir=common, head_dir=git_dir, worktree=worktree)


def init_bare_store(path: Path) -> StoreLocation:
    """Create a bare git repository at ``path`` and return its location."""
    from vtrack import gitcmd

    path.mkdir(parents=True, exist_ok=True)
    gitcmd.run(["init", "--bare", "-q", str(path)], cwd=path)
    return StoreLocation(git_dir=path.resolve(), head_dir=path.resolve(), worktree=None)


def uri_to_path(uri: str) -> Path:
    """Return the filesystem path a tracking URI names; refuse non-file schemes."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValidationError(f"tracking URI {uri!r} must be a non-empty string")
    text = uri.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif text.startswith("file:"):  # MLflow's relative form, file:./mlruns
        text = text[len("file:") :]
    elif "://" in text or scheme in _MLFLOW_ONLY_SCHEMES or text in ("databricks", "databricks-uc"):
        raise ValidationError(
            f"tracking URI {uri!r}: scheme {scheme!r} is not a vtrack store",
            hint="vtrack keeps runs in git: pass a repository or bare-repository path or a "
            "file:// URL, and share runs with 'vtrack push/pull'",
        )
    return Path(text).expanduser()


#: MLflow tracking URI schemes without ``//`` that name no local path.
_MLFLOW_ONLY_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql", "databricks",
                                  "databricks-uc", "uc", "http", "https"})  # fmt: skip


def locate_store(
    uri: str | None = None, cwd: Path | None = None, create: bool = True
) -> StoreLocation:
    """Resolve the store for ``uri`` (or the environment, or the current directory).

    Order: ``uri``; ``VTRACK_TRACKING_URI``; ``GIT_DIR``/``GIT_WORK_TREE``; the git
    repository enclosing ``cwd``; a bare ``.vtrack`` store found walking up; else a
    bare store created at ``cwd/.vtrack`` when ``create`` is true.

    Raises StoreNotFoundError when the named path exists but is not a store.
    """
    cwd = (cwd or Path.cwd()).resolve()
    uri = uri or env_tracking_uri()
    if uri:
        path = uri_to_path(uri)
        if not path.is_absolute():
            path = cwd / path
        path = path.resolve()
        if (path / ".git").exists():
            return _location_for_worktree(path)
        if _is_git_dir(path):
            return _location_for_git_dir(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StoreNotFoundError(
                f"{path} is not a vtrack store (neither a git repository nor empty)",
                hint="point VTRACK_TRACKING_URI at a git repository or a new folder",
            )
        if not create:
            raise StoreNotFoundError(f"no store at {path}")
        if not path.parent.exists():
            raise StoreNotFoundError(
                f"cannot create a store at {path}: {path.parent} does not exist"
            )
        return init_bare_store(path)
    env_git_dir = os.environ.get("GIT_DIR")
    if env_git_dir:
        gd = Path(env_git_dir)
        if not gd.is_absolute():
            gd = cwd / gd
        if not _is_git_dir(_common_dir(gd.resolve())):
            raise StoreNotFoundError(f"GIT_DIR={env_git_dir!r} is not a git directory")
        wt_env = os.environ.get("GIT_WORK_TREE")
        worktree = None
        if wt_env:
            worktree = (cwd / wt_env).resolve()
        elif not _is_bare_config(_common_dir(gd.resolve())):
            worktree = cwd
        return _location_for_git_dir(gd, worktree)
    for d in (cwd, *cwd.parents):
        if (d / ".git").exists():
            return _location_for_worktree(d)
        if d.name != ".git" and _is_git_dir(d) and _is_bare_config(d):
            return _location_for_git_dir(d)
        if _is_git_dir(d / DEFAULT_BARE_STORE):
            return _location_for_git_dir(d / DEFAULT_BARE_STORE)
    if not create:
        raise StoreNotFoundError(f"no git repository or vtrack store at or above {cwd}")
    return init_bare_store(cwd / DEFAULT_BARE_STORE)
