"""Remotes as sharing sees them: which one, its URL, and its large-object store.

A remote is a git remote of the repository (``git remote``) or a URL or path given on
the command line. Its large-object store is configured in git config as
``remote.<name>.vtrackObjects`` (any fsspec URL: ``s3://bucket/prefix``, a folder);
for a remote that is a local path or ``file://`` URL it defaults to ``vtrack/objects``
inside that repository's git directory. Credentials for the object store come from
the backend's usual places (for s3fs: ``AWS_*`` variables, ``~/.aws``, instance roles).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack import gitcmd
from vtrack.errors import GitError, ValidationError
from vtrack.limits import GIT_TIMEOUT_SECONDS
from vtrack.store import Store

if TYPE_CHECKING:  # imported where used: a push of runs without large objects needs neither
    from vtrack.store.objects import ObjectStore

#: The git config key (under ``remote.<name>.``) naming a remote's object store.
OBJECTS_KEY = "vtrackObjects"
#: git config key that turns off pushing runs from the pre-push hook.
HOOK_PUSH_KEY = "vtrack.pushRuns"
#: Seconds a push or fetch may take before it is given up.
NETWORK_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Remote:
    """A remote to share with: its name (for tracking refs), URL and object store URL."""

    name: str
    url: str
    objects_url: str | None
    objects_default: bool = False

    def object_store(self, store: Store) -> ObjectStore | None:
        """The remote's large-object store, or None when none is configured."""
        if self.objects_url is None:
            return None
        from vtrack.store.fs import open_url
        from vtrack.store.objects import ObjectStore

        fs, root = open_url(self.objects_url, fsync=store.settings.fsync_objects)
        return ObjectStore(fs, root)


def run_git(
    store: Store, args: list[str], *, check: bool = True, network: bool = False,
    git_dir: Path | None = None, input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    """Run git for the store (in its worktree, so relative remote paths mean what they
    mean). ``network`` allows a long timeout and, on a terminal, credential prompts.
    ``git_dir`` runs it on another git directory (a push's staging one) from there;
    ``input`` is its standard input."""
    loc = store.location
    env = {"GIT_TERMINAL_PROMPT": "1"} if network and sys.stdin.isatty() else None
    return gitcmd.run(
        args, cwd=loc.worktree or loc.git_dir, git_dir=git_dir or loc.git_dir, env=env,
        check=check, input=input,
        timeout=NETWORK_TIMEOUT if network else GIT_TIMEOUT_SECONDS,
    )  # fmt: skip


def git(store: Store, args: list[str], *, check: bool = True, network: bool = False) -> bytes:
    """Like :func:`run_git`, returning stdout."""
    return run_git(store, args, check=check, network=network).stdout


def config_get(store: Store, key: str) -> str | None:
    """A git config value of the store, or None."""
    out = git(store, ["config", "--get", key], check=False).decode("utf-8", "replace").strip()
    return out or None


def remote_names(store: Store) -> list[str]:
    """The configured remotes, as ``git remote`` lists them."""
    return git(store, ["remote"]).decode("utf-8", "replace").split()


def default_remote(store: Store) -> str:
    """The current branch's upstream remote, else ``origin``."""
    head = git(store, ["symbolic-ref", "-q", "--short", "HEAD"], check=False).decode().strip()
    if head:
        upstream = config_get(store, f"branch.{head}.remote")
        if upstream and upstream != ".":
            return upstream
    return "origin"


def resolve(store: Store, spec: str | None) -> Remote:
    """The remote named ``spec`` (a remote name, URL or path; the default remote if None).

    ValidationError when a name is neither a configured remote nor an existing path/URL.
    """
    name = spec or default_remote(store)
    names = remote_names(store)
    if name in names:
        url = config_get(store, f"remote.{name}.url") or ""
        configured = config_get(store, f"remote.{name}.{OBJECTS_KEY}")
        tracking = name
    elif "://" in name or ":" in name or os.path.exists(name):
        url, configured = name, None
        tracking = "url-" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    else:
        known = ", ".join(names) or "none"
        raise ValidationError(
            f"no remote named {name!r} (configured remotes: {known})",
            hint="add one with 'git remote add NAME URL', or give a URL or path",
        )
    if "/" in tracking or tracking.startswith("."):
        tracking = "url-" + hashlib.blake2b(tracking.encode(), digest_size=6).hexdigest()
    if configured:
        return Remote(tracking, url, configured)
    local = local_git_dir(store, url)
    if local is not None:
        return Remote(tracking, url, str(local / "vtrack" / "objects"), objects_default=True)
    return Remote(tracking, url, None)


def local_git_dir(store: Store, url: str) -> Path | None:
    """The git directory of a remote that is a local path or ``file://`` URL, else None."""
    if url.startswith("file://"):
        text = url[len("file://") :]
    elif "://" in url or (":" in url.split("/", 1)[0] and not os.path.exists(url)):
        return None
    else:
        text = url
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (store.location.worktree or store.location.git_dir) / path
    if (path / ".git").is_dir():
        return (path / ".git").resolve()
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path.resolve()
    return None


def set_objects(store: Store, remote: str, url: str) -> Remote:
    """Configure ``remote``'s object store (``remote.<name>.vtrackObjects``); return it.

    ValidationError for an unknown remote or an empty URL.
    """
    if remote not in remote_names(store):
        raise ValidationError(
            f"no remote named {remote!r}", hint="add it first with 'git remote add NAME URL'"
        )
    if not url.strip():
        raise ValidationError("the object store URL must not be empty")
    from vtrack.store.fs import open_url

    open_url(url)  # refuse an unknown scheme or a missing backend now, not at push time
    try:
        git(store, ["config", f"remote.{remote}.{OBJECTS_KEY}", url.strip()])
    except GitError as e:
        raise ValidationError(f"cannot configure remote {remote!r}: {e.stderr.strip()}") from e
    return resolve(store, remote)
