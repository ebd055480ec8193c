"""What a folder input holds: the files under it, filtered, and their manifest.

:func:`list_folder` walks a folder (following symbolic links, refusing loops) with
gitignore-style excludes; :func:`hash_folder` hashes the listed files through a stat
cache into a manifest (:mod:`vtrack.datasets.manifest` turns it into the folder digest).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from vtrack import progress
from vtrack.errors import DatasetError, ValidationError
from vtrack.statcache import BaseStatCache, NoStatCache

__all__ = ["hash_folder", "list_folder"]


def list_folder(
    root: str | os.PathLike[str], exclude: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """List the files under ``root`` recursively as sorted ``(relative posix path, abspath)``.

    Symlinks to files and folders are followed (a symlink loop raises DatasetError).
    Entries that are not folders are listed even if they are not regular files (FIFOs,
    dangling links) so that hashing can report them. ``exclude`` holds gitignore-style
    patterns matched with fnmatch: a pattern without ``/`` matches a name at any depth,
    one with ``/`` matches the whole relative path (a leading ``/`` anchors it, a
    leading ``**/`` also matches at the top), a trailing ``/`` matches only folders,
    and an excluded folder excludes everything below it. ``!`` negation is not
    supported (ValidationError).
    """
    rules = _compile_excludes(exclude or ())
    top = os.path.abspath(os.fspath(root))
    out: list[tuple[str, str]] = []
    try:
        top_st = os.stat(top)
    except OSError as exc:
        raise DatasetError(f"cannot read input folder {top}: {exc.strerror}", path=top) from exc
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, "", frozenset({(top_st.st_dev, top_st.st_ino)}))
    ]
    while stack:
        folder, prefix, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            raise DatasetError(
                f"cannot list input folder {folder}: {exc.strerror}", path=folder
            ) from exc
        for e in entries:
            rel = prefix + e.name
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if rules and _excluded(rel, is_dir, rules):
                continue
            if not is_dir:
                out.append((rel, e.path))
                continue
            ident: tuple[int, int] | None = None
            if e.is_symlink():
                st = os.stat(e.path)
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    raise DatasetError(
                        f"symbolic link {e.path} loops back to a folder that contains it",
                        hint="exclude it",
                        path=e.path,
                    )
            else:
                st = e.stat(follow_symlinks=False)
                ident = (st.st_dev, st.st_ino)
            stack.append((e.path, rel + "/", ancestors | {ident}))
    out.sort()
    return out


def _compile_excludes(patterns: Iterable[str]) -> list[tuple[str, bool, bool]]:
    rules = []
    for raw in [patterns] if isinstance(patterns, str) else patterns:
        if not isinstance(raw, str) or not raw.strip():
            raise ValidationError(f"exclude pattern {raw!r} must be a non-empty string")
        pat = raw.strip()
        if pat.startswith("!"):
            raise ValidationError(f"exclude pattern {raw!r}: '!' negation is not supported")
        dir_only = pat.endswith("/")
        pat = pat.rstrip("/")
        anchored = "/" in pat
        rules.append((pat.lstrip("/"), anchored, dir_only))
    return rules


def _excluded(rel: str, is_dir: bool, rules: list[tuple[str, bool, bool]]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    for pat, anchored, dir_only in rules:
        if dir_only and not is_dir:
            continue
        if anchored:
            if fnmatchcase(rel, pat) or (pat.startswith("**/") and fnmatchcase(rel, pat[3:])):
                return True
        elif fnmatchcase(base, pat):
            return True
    return False


def hash_folder(
    root: str | os.PathLike[str],
    exclude: Sequence[str] | None = None,
    cache: BaseStatCache | None = None,
) -> list[tuple[str, int, str]]:
    """Return the folder's manifest: sorted ``(relative posix path, size, digest)``.

    Hashes through ``cache`` (or without one) and reports ``hashing <folder name>`` to
    :mod:`vtrack.progress` as files complete (the end is reported even on failure); it
    draws nothing itself. Raises DatasetError naming the first file that cannot be hashed.
    """
    listing = list_folder(root, exclude)
    the_cache = cache if cache is not None else NoStatCache()
    task = f"hashing {os.path.basename(os.fspath(root))}"
    with progress.task(task, len(listing)) as update, the_cache.batch():
        results = the_cache.digest_many(
            [p for _, p in listing], progress=lambda files, _bytes: update(files)
        )
    return [(rel, size, digest) for (rel, _), (digest, size) in zip(listing, results, strict=True)]
