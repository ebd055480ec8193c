"""The one place that runs the git command line: scrubbed environment, timeouts, errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from vtrack.errors import GitError, StoreError
from vtrack.limits import GIT_TIMEOUT_SECONDS

_SCRUB = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment git runs with: no inherited repository pointers."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.setdefault("GIT_AUTHOR_NAME", env.get("GIT_AUTHOR_NAME", "vtrack"))
    if extra:
        env.update(extra)
    return env


def run(
    args: list[str],
    *,
    cwd: Path | str | None = None,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT_SECONDS,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <args>`` and return the completed process (bytes output).

    Raises GitError (with git's stderr) on a non-zero exit when ``check`` is true,
    and StoreError when git is missing or times out.
    """
    cmd = ["git"]
    if git_dir is not None:
        cmd.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        cmd.append(f"--work-tree={work_tree}")
    cmd.extend(args)
    try:
        res = subprocess.run(
            cmd,
            cwd=cwd,
            env=git_env(env),
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH", hint="install git 2.30+") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"git {' '.join(args)} did not finish within {timeout:.0f} s") from None
    if check and res.returncode != 0:
        raise GitError(args, res.returncode, res.stderr.decode("utf-8", "replace"))
    return res


def output(args: list[str], **kw: object) -> str:
    """Run git and return its stdout as stripped text."""
    return run(args, **kw).stdout.decode("utf-8", "replace").strip()  # type: ignore[arg-type]


def missing_objects(git_dir: Path, shas: list[str]) -> list[str]:
    """The objects among ``shas`` that ``git_dir`` lacks, by one ``git cat-file
    --batch-check`` (a per-object ``exists`` check lists the pack folder each time: 0.2 ms
    an object, 2 s for a pull of 10,000 runs). Raises GitError when git fails."""
    if not shas:
        return []
    res = run(["cat-file", "--batch-check=%(objectname)"], git_dir=git_dir,
              input="".join(f"{s}\n" for s in shas).encode())  # fmt: skip
    return [line.split()[0] for line in res.stdout.decode().splitlines()
            if line.endswith(" missing")]  # fmt: skip


def cat_file_batch(git_dir: Path) -> subprocess.Popen[bytes]:
    """Start ``git cat-file --batch --buffer`` on ``git_dir`` with stdin and stdout pipes.

    Feed it object names one per line; read each answer with :func:`read_batch_object`.
    Raises StoreError when git is missing.
    """
    try:
        return subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch", "--buffer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=git_env(),
        )  # fmt: skip
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH", hint="install git 2.30+") from None


def read_batch_object(stdout: IO[bytes], doing: str) -> tuple[bytes, bytes] | None:
    """Read one ``cat-file --batch`` answer: ``(type, data)``, or None for a missing object.

    Raises StoreError (saying what was being ``doing``) when git stops answering early.
    """
    header = stdout.readline()
    if not header:
        raise StoreError(f"git cat-file --batch stopped early while {doing}")
    parts = header.split()
    if len(parts) != 3:  # "<name> missing" / "<name> ambiguous"
        return None
    size = int(parts[2])
    data = stdout.read(size + 1)
    if len(data) != size + 1:
        raise StoreError(f"git cat-file --batch stopped early while {doing}")
    return parts[1], data[:size]


def batch_objects(
    git_dir: Path, names: Sequence[str], doing: str
) -> Iterator[tuple[bytes, bytes] | None]:
    """``(type, data)`` of each object ``names`` names (a sha or ``<commit>:<path>``), in
    order, or None for a missing one: one ``git cat-file --batch``, fed by a thread so
    that a full pipe cannot deadlock, one answer in memory at a time. Stopping early
    stops git. StoreError (saying what was being ``doing``) when git stops answering."""
    if not names:
        return
    proc = cat_file_batch(git_dir)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        with contextlib.suppress(OSError):
            stdin.write("".join(f"{n}\n" for n in names).encode("utf-8"))
        with contextlib.suppress(OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, name="vtrack-cat-file-feed", daemon=True)
    feeder.start()
    try:
        for _ in names:
            yield read_batch_object(stdout, doing)
    finally:
        with contextlib.suppress(OSError):
            proc.kill()
        feeder.join(timeout=5)
        with contextlib.suppress(OSError):
            stdout.close()
        proc.wait()


def batch_blobs(git_dir: Path, names: Sequence[str], doing: str) -> Iterator[bytes | None]:
    """:func:`batch_objects` of blobs: each one's bytes, None when missing or not a blob."""
    for found in batch_objects(git_dir, names, doing):
        yield found[1] if found is not None and found[0] == b"blob" else None
