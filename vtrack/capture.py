"""What a run records about the process that makes it: command, environment, code.

:func:`new_run` gathers it once per run (the code snapshot is reused per process per
HEAD, see :mod:`vtrack.store.snapshot`): the entry point and arguments (secrets masked,
non-UTF-8 bytes escaped with the exact bytes kept, see :mod:`vtrack.secrets`), the
working directory, the environment variables a rerun restores, Python and the packages
it imported, and where the code came from.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

from vtrack.entities import RunStatus
from vtrack.errors import StoreError
from vtrack.store import Store, current_user
from vtrack.store.snapshot import Snapshot, capture, clear_cache
from vtrack.store.writer import now_ms

#: Environment variables recorded with a run so that ``vtrack rerun`` can restore them.
RECORDED_ENV_NAMES = (
    "PYTHONHASHSEED",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VTRACK_EXPERIMENT_NAME",
    "VTRACK_EXPERIMENT_ID",
)

_ADJECTIVES = (
    "amber bold brave bright calm clever crisp daring eager fair fancy gentle glad golden "
    "grand happy jolly keen kind lively lucky merry mighty noble polite proud quick quiet "
    "rapid royal shiny silent silver smart snowy steady sunny swift tidy vivid warm wise witty"
).split()
_NOUNS = (
    "ant badger bat bear bee bison boar cat colt crab crane deer dog dove eagle eel elk "
    "falcon finch fox frog goat hare hawk heron ibis jay koala lark lion lynx mole moose "
    "newt otter owl panda quail ram raven robin seal shark sloth snail swan tiger toad trout "
    "wasp whale wolf wren yak zebra"
).split()


def generate_run_name() -> str:
    """A readable random run name such as ``bright-fox-042``."""
    r = uuid.uuid4().int
    adj = _ADJECTIVES[r % len(_ADJECTIVES)]
    noun = _NOUNS[(r // 97) % len(_NOUNS)]
    return f"{adj}-{noun}-{(r // 9973) % 1000:03d}"


_platform: str | None = None


def environment(cache_dir: Path | None = None) -> dict[str, Any]:
    """Python, its implementation, the platform and the imported distributions' versions.

    ``packages`` maps distribution names (what pip installs: ``scikit-learn``, ``PyYAML``)
    to versions, for every distribution a module imported so far comes from
    (:func:`vtrack.distributions.imported_distributions`; ``cache_dir`` keeps the
    module-to-distribution map between processes).
    """
    global _platform
    import platform

    from vtrack.distributions import imported_distributions

    if _platform is None:
        _platform = platform.platform()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": _platform,
        "packages": imported_distributions(cache_dir),
    }


def entry_point(worktree: Path | None) -> tuple[str | None, list[str]]:
    """``(entry point, arguments)`` of this process, as Python holds them.

    The entry point is ``sys.argv[0]`` relative to ``worktree`` (absolute outside it),
    ``"-c"``, ``"-m <module>"``, or None when unknown. Non-UTF-8 bytes stay lone
    surrogates here; :func:`vtrack.secrets.command_record` makes the record safe.
    """
    argv = list(sys.argv)
    if not argv or not argv[0]:
        return None, argv[1:]
    first = argv[0]
    if first == "-c":
        return "-c", argv[1:]
    # started as `python -m module`: __main__ carries the module's import name
    name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    if name and name != "__main__":
        return f"-m {name.removesuffix('.__main__')}", argv[1:]
    path = Path(first)
    try:
        path = path.resolve()
        if worktree is not None:
            return path.relative_to(worktree).as_posix(), argv[1:]
    except (OSError, ValueError):
        pass
    return str(path), argv[1:]


def snapshot(store: Store, *, top_level: bool = False) -> Snapshot:
    """The code snapshot of the store's working tree (cached per process per HEAD).

    A ``top_level`` run re-reads the tree when a file the cached snapshot holds changed
    (see :mod:`vtrack.store.snapshot`); a nested run reuses its process's snapshot.
    OS errors (a read-only store) become StoreError.
    """
    st = store.settings
    try:
        return capture(
            store.location, store.objects, store.refs,
            max_file_bytes=st.snapshot_max_file_bytes, enabled=st.capture_code,
            include_secrets=st.snapshot_include_secrets, revalidate=top_level,
        )  # fmt: skip
    except OSError as exc:
        raise StoreError(
            f"cannot start a run in the store {store.location.git_dir}: {exc.strerror or exc}",
            hint="is the repository writable by you?",
        ) from exc


_code_repo_cache: dict[tuple[str, str], dict[str, Any]] = {}


def code_repository(cwd: str, store_worktree: Path | None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git working tree enclosing ``cwd``.

    None when ``cwd`` is in no working tree or in the store's own (whose snapshot records
    them already). For a separate store (``VTRACK_TRACKING_URI``) this keeps where the
    code came from although the code itself is not captured. Cached per process per HEAD.
    """
    from vtrack import gitcmd

    res = gitcmd.run(["rev-parse", "--show-toplevel", "HEAD"], cwd=cwd, check=False)
    lines = res.stdout.decode("utf-8", "surrogateescape").split("\n")
    if res.returncode != 0 and not lines[0].startswith("/"):
        return None
    top = lines[0].strip()
    if not top or (
        store_worktree is not None and Path(top).resolve() == Path(store_worktree).resolve()
    ):
        return None
    head = lines[1].strip() if len(lines) > 1 and len(lines[1].strip()) == 40 else None
    key = (top, head or "")
    found = _code_repo_cache.get(key)
    if found is None:
        branch = gitcmd.run(["symbolic-ref", "-q", "--short", "HEAD"], cwd=top, check=False)
        status = gitcmd.run(["status", "--porcelain", "--untracked-files=no"], cwd=top, check=False)
        found = {
            "commit": head,
            "branch": branch.stdout.decode("utf-8", "replace").strip() or None,
            "dirty": bool(status.stdout.strip()),
            "code_repository": top,
        }
        _code_repo_cache[key] = found
    return dict(found)


def retake_snapshot(store: Store) -> Snapshot:
    """A fresh snapshot, ignoring the process cache (part of the cached one was pruned)."""
    clear_cache()
    return snapshot(store)


def new_run(
    store: Store,
    *,
    name: str,
    experiment_id: str,
    start_time: int | None,
    parent_run_id: str | None,
    description: str | None,
) -> tuple[dict[str, Any], Snapshot]:
    """The ``run.yaml`` fields of a new RUNNING run of this process, and its code snapshot."""
    from vtrack.secrets import command_record

    snap = snapshot(store, top_level=parent_run_id is None)
    entry, argv = entry_point(store.location.worktree)
    source = dict(snap.source)
    if source.get("code_captured") is False and source.get("reason") != "disabled":
        repo_facts = code_repository(os.getcwd(), store.location.worktree)
        if repo_facts is not None:
            source.update(repo_facts)
            source["reason"] = "the store is not the code's repository (code not captured)"
    # masked secrets, escaped non-UTF-8 bytes (exact bytes in *_raw): see vtrack.secrets
    source.update(command_record(entry, argv, os.getcwd()))
    env = {k: os.environ[k] for k in RECORDED_ENV_NAMES if k in os.environ}
    if env:
        source["env"] = env
    info = {
        "id": uuid.uuid4().hex,
        "name": name,
        "experiment_id": experiment_id,
        "status": RunStatus.RUNNING.value,
        "start_time": int(start_time) if start_time is not None else now_ms(),
        "end_time": None,
        "user": current_user(),
        "parent_run_id": parent_run_id,
        "description": description,
        "source": source,
        "environment": environment(store.location.git_dir / "vtrack" / "cache"),
    }
    return info, snap
