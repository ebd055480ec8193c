"""Dataset provenance of runs: logging inputs, auditing them against the disk, lineage.

The rules (``docs/concepts/provenance.md``):

- :func:`log_input` describes the data (:func:`vtrack.datasets.describe_input`, hashing
  through the store's stat cache ``.git/vtrack/statcache.sqlite``) and records the entry
  in the run's ``.vtrack/inputs.yaml``. A folder's per-file manifest is stored beside it
  as ``.vtrack/inputs/<name>.tsv`` (the entry's ``manifest`` names it). An input inside
  the store's working tree also records ``repo_path`` (posix, relative to the worktree)
  so that another clone can audit it where its own checkout holds the file.
- An input is identified by ``(name, context)``. Logging it again with the same content
  (digest, or source for a remote URI) records nothing and returns the first entry; other
  content raises :class:`~vtrack.errors.InputConflictError` and records nothing.
- Everything is hashed before anything is recorded, so an unreadable file leaves the
  run as it was; the manifest blob is written before the journaled entry that names it,
  so a crash leaves either both or neither.
- :func:`audit` re-checks a run's inputs with :func:`vtrack.provenance.drift.check_input` and
  returns one plain dict per input; :func:`lineage` answers "which runs consumed this
  file, folder or digest" from the derived index.

Every function takes the :class:`~vtrack.store.runs.RunRepository` of the store that
holds the runs; the client and the fluent API are thin wrappers over this module.
"""

from __future__ import annotations

from vtrack.provenance.audits import audit, audit_runs, drifted, local_path, read_manifest
from vtrack.provenance.inputs import (
    CHANGED,
    DRIFT_STATUSES,
    INPUTS_DIR,
    MIN_DIGEST_PREFIX,
    MISSING,
    STATCACHE_FILE,
    UNCHANGED,
    log_input,
    log_inputs,
    manifest_path,
    stat_cache,
)
from vtrack.provenance.lineage import lineage

__all__ = [
    "CHANGED", "DRIFT_STATUSES", "INPUTS_DIR", "MIN_DIGEST_PREFIX", "MISSING", "STATCACHE_FILE",
    "UNCHANGED", "audit", "audit_runs", "drifted", "lineage", "local_path", "log_input",
    "log_inputs", "manifest_path", "read_manifest", "stat_cache",
]  # fmt: skip
