"""The diff of two runs with what only the store can tell: code files and folder files.

:func:`vtrack.diff.diff_runs` compares what the :class:`~vtrack.entities.Run` objects
hold. Two sections need the store as well, and :func:`diff_two_runs` adds them:

- the code: the files that differ between the two snapshots, and the patch when asked
  (:func:`vtrack.repro.codediff.run_code_diff`);
- changed folder inputs: the files added, removed and modified, from the per-file
  manifests both runs recorded under ``.vtrack/inputs/`` (read as ``vtrack audit`` reads
  them, :func:`vtrack.provenance.read_manifest`). An input whose manifest is missing or
  does not match its digest gets no file list (its digests still show the change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vtrack.diff import SECTIONS, DatasetKey, FolderFiles, compare_manifests, dataset_key, diff_runs
from vtrack.repro.codediff import run_code_diff

if TYPE_CHECKING:
    from vtrack.diff import RunDiff
    from vtrack.entities import DatasetInput, Run
    from vtrack.store.record import RecordState
    from vtrack.store.runs import RunRepository


def diff_two_runs(
    repo: RunRepository,
    a: Run,
    b: Run,
    *,
    sections: Sequence[str] = SECTIONS,
    patch: bool = False,
    color: bool = False,
    include_unchanged: bool = False,
) -> RunDiff:
    """Everything that differs from run A to run B (see :class:`vtrack.diff.RunDiff`).

    The code section is built only when ``sections`` holds ``code`` (``patch`` adds the
    full patch, coloured with ``color``), folder file lists only when it holds
    ``datasets``. ``include_unchanged`` keeps the entries that did not change.
    """
    code = None
    if "code" in sections:
        code = run_code_diff(
            repo, a, b, patch=patch, color=color, include_unchanged=include_unchanged
        )
    folders = folder_changes(repo, a, b) if "datasets" in sections else {}
    return diff_runs(a, b, code=code, include_unchanged=include_unchanged, folders=folders)


def folder_changes(repo: RunRepository, a: Run, b: Run) -> dict[DatasetKey, FolderFiles]:
    """The file changes of every folder input that both runs logged with other content.

    Keyed by :func:`vtrack.diff.dataset_key`; inputs without a usable manifest on either
    side are left out.
    """
    old = {dataset_key(e): e for e in a.inputs.datasets}
    new = {dataset_key(e): e for e in b.inputs.datasets}
    records: dict[str, RecordState] = {}
    out: dict[DatasetKey, FolderFiles] = {}
    for key in sorted(old.keys() & new.keys(), key=lambda k: (k[0], k[1] or "")):
        ea, eb = old[key], new[key]
        if ea.kind != "folder" or eb.kind != "folder":
            continue
        if ea.digest == eb.digest:
            continue
        rows_a = _manifest(repo, a.info.run_id, ea, records)
        rows_b = _manifest(repo, b.info.run_id, eb, records)
        if rows_a is not None and rows_b is not None:
            out[key] = compare_manifests(rows_a, rows_b)
    return out


def _manifest(
    repo: RunRepository, run_id: str, entry: DatasetInput, records: dict[str, RecordState]
) -> list[tuple[str, int, str]] | None:
    """The folder manifest ``entry`` names in run ``run_id``, checked against its digest."""
    from vtrack.datasets import folder_digest, manifest_from_tsv
    from vtrack.provenance import read_manifest

    record = records.get(run_id)
    if record is None:
        record = records[run_id] = repo.state(run_id, deleted_ok=True).record
    text = read_manifest(repo.store, record, entry)
    if text is None:
        return None
    rows = manifest_from_tsv(text)
    return rows if folder_digest(rows) == str(entry.digest) else None
