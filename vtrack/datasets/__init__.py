"""Dataset provenance entries: what a run read, described, hashed and listed.

- :mod:`~vtrack.datasets.describe`: :func:`describe_input`, the entry for a file, a
  folder, a DataFrame, an array or a remote URI (the entry's keys are listed there).
- :mod:`~vtrack.datasets.folders`: walking a folder with excludes and hashing it into
  a manifest (:func:`list_folder`, :func:`hash_folder`).
- :mod:`~vtrack.datasets.manifest`: the manifest TSV (``.vtrack/inputs/<name>.tsv``)
  and the folder digest over it (:func:`manifest_to_tsv`, :func:`manifest_from_tsv`,
  :func:`folder_digest`).
- :mod:`~vtrack.datasets.schema`: format, columns, dtypes and row counts of a file.
- :mod:`~vtrack.datasets.canonical`: the digests of pandas DataFrames and numpy arrays
  over canonical bytes (:func:`dataframe_digest`, :func:`array_digest`).

Nothing here draws on a terminal: folder hashing reports through :mod:`vtrack.progress`.
pandas, numpy and pyarrow are imported inside the functions that need them.
"""

from __future__ import annotations

from vtrack.datasets.canonical import array_digest, dataframe_digest
from vtrack.datasets.describe import describe_input, is_uri
from vtrack.datasets.folders import hash_folder, list_folder
from vtrack.datasets.manifest import folder_digest, manifest_from_tsv, manifest_to_tsv
from vtrack.datasets.schema import (
    CSV_ROW_COUNT_MAX_BYTES,
    CSV_SAMPLE_BYTES,
    CSV_SAMPLE_ROWS,
    detect_format,
)

__all__ = [
    "CSV_ROW_COUNT_MAX_BYTES",
    "CSV_SAMPLE_BYTES",
    "CSV_SAMPLE_ROWS",
    "array_digest",
    "dataframe_digest",
    "describe_input",
    "detect_format",
    "folder_digest",
    "hash_folder",
    "is_uri",
    "list_folder",
    "manifest_from_tsv",
    "manifest_to_tsv",
]
