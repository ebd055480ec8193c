"""The table an archive batch carries: which runs it holds, and what it has forgotten.

An archive batch (DESIGN.md §11, ``docs/scale.md``) is one commit under
``refs/vtrack/archive/<batch id>`` whose parents are the run commits it holds (so git
keeps them reachable) and whose tree holds three small files:

``runs.tsv``
    one line per run, sorted by id: ``run id, run commit, parent code commit (or
    empty), experiment id, status, commit time (unix seconds), run name``
    (tab-separated; the name last, tabs and newlines in it replaced by spaces). What the run listing reads; the index reads the records.
``tombstones.tsv``
    ``run id, run commit`` of runs purged from this batch or from a batch it replaced:
    such an entry never appears again, whichever batch (pulled from any clone) holds it.
``parents``
    the distinct parent code commits of its runs, one per line: what git hooks read
    (in the shell, with one ``git cat-file --batch``) to tell whether a pushed commit
    has runs.
``supersedes``
    ids of the batches this one replaced (a purge rewrites a batch): they are ignored
    wherever they are still found, so an old copy pulled back from a teammate's clone
    changes nothing.
``summaries.tsv``
    what the run index writes for each run, derived from the run commits
    (:mod:`vtrack.store.archive_summaries`, which owns that file): a fresh clone's index
    is built from these instead of one blob per run.

This module is the pure codec (no git).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from vtrack.errors import StoreError

HEADER = "# vtrack archive v1\n"
RUNS_FILE = "runs.tsv"
TOMBSTONES_FILE = "tombstones.tsv"
SUPERSEDES_FILE = "supersedes"
PARENTS_FILE = "parents"
_ID = re.compile(r"[0-9a-f]{32}")
_SHA = re.compile(r"[0-9a-f]{40}")
_BATCH = re.compile(r"[0-9a-z][0-9a-z-]{0,63}")
#: Lines of a ``runs.tsv`` (each ending in a newline): id, commit and five more fields.
_LINES = re.compile(r"(?:[0-9a-f]{32}\t[0-9a-f]{40}(?:\t[^\t\n]*){4}\t[^\n]*\n)*")
_FIELDS = re.compile(
    r"^([0-9a-f]{32})\t([0-9a-f]{40})\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t"
    r"([^\t\n]*)\t([^\n]*)$",
    re.M,
)


class ArchivedRun(NamedTuple):
    """One run an archive batch holds (a named tuple: a fresh clone reads 100,000)."""

    run_id: str
    commit: str
    parent: str = ""
    experiment_id: str = ""
    status: str = ""
    time: int = 0
    name: str = ""


@dataclass
class BatchTable:
    """What one batch holds (see the module docstring)."""

    runs: list[ArchivedRun] = field(default_factory=list)
    tombstones: set[tuple[str, str]] = field(default_factory=set)
    supersedes: set[str] = field(default_factory=set)


def valid_batch_id(batch_id: str) -> bool:
    """True for a name an archive batch ref may carry."""
    return bool(_BATCH.fullmatch(batch_id))


def encode_runs(runs: list[ArchivedRun]) -> bytes:
    """``runs.tsv`` of ``runs``."""
    lines = [HEADER]
    for r in sorted(runs, key=lambda r: r.run_id):
        name = re.sub(r"[\t\r\n]", " ", r.name)
        lines.append(
            f"{r.run_id}\t{r.commit}\t{r.parent}\t{r.experiment_id}\t{r.status}\t{r.time}\t{name}\n"
        )
    return "".join(lines).encode("utf-8")


def decode_runs(data: bytes, where: str) -> list[ArchivedRun]:
    """The runs of a ``runs.tsv``; StoreError (naming ``where``) when it is damaged."""
    text = data.decode("utf-8", "replace")
    if not text.startswith(HEADER):
        raise StoreError(f"archive batch {where}: {RUNS_FILE} has no '{HEADER.strip()}' header")
    body = text[len(HEADER) :]
    if body and not body.endswith("\n"):
        body += "\n"
    if not _LINES.fullmatch(body):
        for number, line in enumerate(body.split("\n")[:-1], 2):  # the first damaged line
            if not _LINES.fullmatch(f"{line}\n"):
                raise StoreError(f"archive batch {where}: {RUNS_FILE} line {number} is damaged")
    return [
        ArchivedRun(rid, sha, parent, exp, status, int(t) if t.isdigit() else _time(t), name)
        for rid, sha, parent, exp, status, t, name in _FIELDS.findall(body)
    ]


def _time(text: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def encode_tombstones(tombstones: set[tuple[str, str]]) -> bytes:
    """``tombstones.tsv`` of ``(run id, commit)`` pairs."""
    return "".join(f"{rid}\t{sha}\n" for rid, sha in sorted(tombstones)).encode()


def decode_tombstones(data: bytes) -> set[tuple[str, str]]:
    """The ``(run id, commit)`` pairs of a ``tombstones.tsv`` (damaged lines ignored)."""
    out = set()
    for line in data.decode("utf-8", "replace").splitlines():
        rid, _, sha = line.partition("\t")
        if _ID.fullmatch(rid) and _SHA.fullmatch(sha):
            out.add((rid, sha))
    return out


def encode_supersedes(ids: set[str]) -> bytes:
    """``supersedes`` of batch ids."""
    return "".join(f"{b}\n" for b in sorted(ids)).encode()


def decode_supersedes(data: bytes) -> set[str]:
    """The batch ids of a ``supersedes`` file."""
    return {b for b in data.decode("utf-8", "replace").split() if valid_batch_id(b)}


def dump_cache(table: BatchTable) -> bytes:
    """One file holding a whole table (the per-batch cache under ``.git/vtrack/``)."""
    return cache_of(encode_runs(table.runs), encode_tombstones(table.tombstones),
                    encode_supersedes(table.supersedes))  # fmt: skip


def cache_of(runs: bytes, tombstones: bytes, supersedes: bytes) -> bytes:
    """The cache file of a table's three files as encoded (or as read from git)."""
    return runs + b"#tombstones\n" + tombstones + b"#supersedes\n" + supersedes


def load_cache(data: bytes, where: str) -> BatchTable:
    """The table :func:`dump_cache` wrote; StoreError when the file is damaged."""
    runs, sep1, rest = data.partition(b"#tombstones\n")
    tomb, sep2, sup = rest.partition(b"#supersedes\n")
    if not sep1 or not sep2:
        raise StoreError(f"archive cache {where} is damaged")
    return BatchTable(decode_runs(runs, where), decode_tombstones(tomb), decode_supersedes(sup))
