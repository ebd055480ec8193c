"""Artifact path rules: what a user may name an artifact, and which local files a folder holds.

An artifact path is a relative POSIX path inside a run's artifact tree (stored under
``.vtrack/artifacts/`` in the run commit). Every path that reaches the store has been
through :func:`normalize_artifact_path`, so no artifact can name a file outside that
tree, on this machine or on the machine that later checks the run out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vtrack.errors import ValidationError

#: Component names git refuses to check out (it compares case-insensitively and, with
#: its default NTFS protection, ignores trailing dots and spaces and refuses the 8.3
#: short name and alternate data streams); a run tree holding one could not be checked out.
_GIT_RESERVED = frozenset({".git", "git~1"})


def _is_git_reserved(part: str) -> bool:
    low = part.lower()
    return low.rstrip(". ") in _GIT_RESERVED or low.startswith(".git:")


def _refuse(path: object, rule: str) -> ValidationError:
    return ValidationError(f"artifact path {path!r} is refused: {rule}", path=path, rule=rule)


def normalize_artifact_path(p: str) -> str:
    """Return ``p`` as a normalized relative POSIX path, or raise ValidationError.

    Normalizing drops ``.`` components and empty ones (``a/./b`` and ``a//b`` become
    ``a/b``; a trailing slash is dropped). The result is never empty, never absolute,
    and has no ``.``, ``..`` or empty component; normalizing it again returns it
    unchanged.

    Refused, with a ValidationError naming the path and the rule it broke: anything but
    a ``str``; NUL bytes; backslashes (refused, not converted, since their meaning
    differs between systems); absolute paths (``/x``) and Windows drive paths
    (``C:/x``, ``C:x``); any ``..`` component (even one that would stay inside);
    text that cannot be encoded as UTF-8; a ``.git`` component in any spelling git
    treats as one (``.GIT``, ``.git.``, ``git~1``), since git cannot check out a tree
    containing one; and a path with nothing left after normalizing.
    """
    return _normalize(p, allow_empty=False)


def _normalize(p: str, allow_empty: bool) -> str:
    """normalize_artifact_path, optionally returning "" for a path that names the root."""
    if not isinstance(p, str):
        raise _refuse(p, f"an artifact path must be a str, not {type(p).__name__}")
    if "\x00" in p:
        raise _refuse(p, "it contains a NUL byte")
    if "\\" in p:
        raise _refuse(p, "it contains a backslash; use '/' to separate folders")
    if p.startswith("/"):
        raise _refuse(p, "it is absolute; artifact paths are relative to the run's artifacts")
    if len(p) >= 2 and p[1] == ":" and p[0].isascii() and p[0].isalpha():
        raise _refuse(p, "it starts with a Windows drive letter")
    try:
        p.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(p, "it is not valid UTF-8 text") from None
    parts = [part for part in p.split("/") if part not in ("", ".")]
    for part in parts:
        if part == "..":
            raise _refuse(p, "it contains a '..' component")
        if _is_git_reserved(part):
            raise _refuse(p, f"git does not allow a {part!r} component in a tree")
    if not parts and not allow_empty:
        raise _refuse(p, "it names no file (empty after normalizing)")
    return "/".join(parts)


def join_artifact_path(artifact_path: str | None, name: str) -> str:
    """Return the normalized path of ``name`` inside the artifact folder ``artifact_path``.

    ``artifact_path`` of ``None``, ``""`` or ``"."`` means the root of the run's
    artifacts. Otherwise both parts must pass :func:`normalize_artifact_path`
    (``name`` may contain folders); ValidationError names the offending part.
    """
    tail = normalize_artifact_path(name)
    folder = "" if artifact_path is None else _normalize(artifact_path, allow_empty=True)
    return f"{folder}/{tail}" if folder else tail


def walk_folder(local_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """List every file under ``local_dir`` as ``(artifact path, absolute path)``, sorted.

    The artifact path is relative to ``local_dir`` and normalized by
    :func:`normalize_artifact_path`; the absolute path is where to read the bytes.

    Symbolic links are resolved, never stored as links:

    - a link to a file inside the folder is listed as a regular file at the link's
      path; its absolute path is the resolved target, so the target's bytes are what
      gets stored (a folder and its copy with links log the same artifacts);
    - a link to a directory inside the folder is followed, and its files are listed
      under the link's path; a link back to a directory that is already being walked
      (a cycle) raises ValidationError;
    - a link whose resolved target lies outside the folder, or that points nowhere,
      raises ValidationError naming the link.

    FIFOs, sockets and device files (and links to them) are never opened: after the
    walk, one ValidationError names every such entry (its ``paths`` field lists them
    all). A name that :func:`normalize_artifact_path` refuses raises ValidationError
    naming the file. ValidationError if ``local_dir`` is not a directory; other
    OSErrors (permissions) propagate.
    """
    top = os.path.abspath(os.fspath(local_dir))
    if not os.path.isdir(top):
        raise ValidationError(f"{top!r} is not a directory", path=top)
    root = os.path.realpath(top)
    out: list[tuple[str, Path]] = []
    special: list[tuple[str, str]] = []
    _walk(root, root, "", {_dir_key(root)}, out, special)
    if special:
        raise _special_entries_error(top, special)
    out.sort(key=lambda item: item[0])
    return out


#: Special entries a folder refusal spells out (its ``paths`` field has them all).
_SPECIAL_SHOWN = 10


def _special_entries_error(top: str, special: list[tuple[str, str]]) -> ValidationError:
    special.sort()
    if len(special) == 1:
        shown, kind = special[0]
        return ValidationError(
            f"cannot log {shown!r}: it is a {kind}, not a regular file",
            hint="remove it from the folder or log the other files one by one",
            path=shown,
            paths=[shown],
        )
    listed = ", ".join(f"{shown!r} ({kind})" for shown, kind in special[:_SPECIAL_SHOWN])
    more = f" and {len(special) - _SPECIAL_SHOWN} more" if len(special) > _SPECIAL_SHOWN else ""
    return ValidationError(
        f"cannot log folder {top!r}: {len(special)} entries are not regular files or "
        f"folders: {listed}{more}",
        hint="remove them from the folder or log the other files one by one",
        path=top,
        paths=[shown for shown, _ in special],
    )


def special_file_error(local: str, st: os.stat_result) -> ValidationError:
    """The ValidationError for a local path that is neither a regular file nor a folder.

    ``st`` is the path's stat following symbolic links; a link is named with its target.
    """
    kind = file_kind(st.st_mode)
    if os.path.islink(local):
        kind = f"symbolic link to {os.path.realpath(local)!r}, a {kind}"
    return ValidationError(
        f"cannot log {local!r}: it is a {kind}, not a regular file",
        hint="only regular files and folders can be logged; copy the data into a file first",
        path=local,
        kind=file_kind(st.st_mode),
    )


def stat_loggable(local: str) -> os.stat_result:
    """``os.stat`` of ``local`` (links followed) when it is a regular file or a folder.

    Raises ValidationError naming the path when it does not exist (or is a link to
    nothing) and when it is a FIFO, socket or device, or a link to one: such a file
    is never opened, since reading it may block forever or never end. Other OSErrors
    (permissions) propagate.
    """
    try:
        st = os.stat(local)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(local):
            raise ValidationError(
                f"cannot log {local!r}: it is a symbolic link to "
                f"{os.path.realpath(local)!r}, which does not exist",
                path=local,
            ) from None
        raise ValidationError(f"cannot log {local!r}: no such file", path=local) from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise special_file_error(local, st)
    return st


def _walk(
    root: str,
    directory: str,
    rel: str,
    ancestors: set[tuple[int, int]],
    out: list[tuple[str, Path]],
    special: list[tuple[str, str]],
) -> None:
    """Append the files of ``directory`` (listed as ``rel``) to ``out``, recursively.

    Entries that are neither files nor folders go to ``special`` as ``(path, kind)``.
    """
    with os.scandir(directory) as entries:
        items = sorted(entries, key=lambda e: e.name)
    for entry in items:
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        shown = os.path.join(root, *child_rel.split("/"))
        try:
            artifact_path = normalize_artifact_path(child_rel)
        except ValidationError as e:
            raise ValidationError(
                f"cannot log {shown!r}: {e.message}", path=shown, rule=e.fields.get("rule")
            ) from None
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if not _inside(target, root):
                raise ValidationError(
                    f"symbolic link {shown!r} points outside the folder being logged "
                    f"(to {target!r}); copy the file in or log it separately",
                    path=shown,
                    target=target,
                )
            try:
                st = os.stat(target)
            except FileNotFoundError:
                raise ValidationError(
                    f"symbolic link {shown!r} points to {target!r}, which does not exist",
                    path=shown,
                    target=target,
                ) from None
            real = target
        else:
            st = entry.stat(follow_symlinks=False)
            real = entry.path
        if stat.S_ISREG(st.st_mode):
            out.append((artifact_path, Path(real)))
        elif stat.S_ISDIR(st.st_mode):
            child_key = (st.st_dev, st.st_ino)
            if child_key in ancestors:
                raise ValidationError(
                    f"symbolic link {shown!r} makes a cycle: it leads back to {real!r}, "
                    "which contains it",
                    path=shown,
                    target=real,
                )
            ancestors.add(child_key)
            try:
                _walk(root, real, artifact_path, ancestors, out, special)
            finally:
                ancestors.discard(child_key)
        elif entry.is_symlink():
            special.append((shown, f"symbolic link to {real!r}, a {file_kind(st.st_mode)}"))
        else:
            special.append((shown, file_kind(st.st_mode)))


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _inside(path: str, root: str) -> bool:
    """True if the resolved ``path`` is ``root`` or below it."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def file_kind(mode: int) -> str:
    """What a file that is not a regular file or folder is, in words ("character device")."""
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"
