"""Every named limit, default and interval vtrack uses, in one place.

Environment variables that override a default are read in :mod:`vtrack.config`,
never here.
"""

from __future__ import annotations

# --- keys and values (MLflow's limits, so scripts move over unchanged) ---
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_RUN_NAME_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 250
MAX_DESCRIPTION_LENGTH = 5000

# --- live runs ---
#: Seconds between background flushes of the in-memory buffer to the journal.
DEFAULT_FLUSH_SECONDS = 1.0
#: Seconds between checkpoints (run commits) of a live run.
DEFAULT_CHECKPOINT_SECONDS = 30.0
#: Metric points buffered in memory before the logging thread flushes them itself
#: (bounds memory when a loop logs faster than the background flusher drains).
MAX_BUFFERED_POINTS = 20_000
#: Rows per metric history chunk file (``metrics/<key>/<NNNNNN>.tsv``).
HISTORY_CHUNK_ROWS = 10_000
#: Digits in a chunk file name.
HISTORY_CHUNK_DIGITS = 6


#: A writer that ends merges its packs smaller than this into one (larger ones, holding
#: artifacts, stay as they are rather than being copied again).
MERGE_PACKS_UNDER = 4 * 1024 * 1024

# --- code snapshot ---
#: Untracked files larger than this are left out of the snapshot (and listed).
DEFAULT_SNAPSHOT_MAX_FILE_BYTES = 5 * 1024 * 1024
#: Seconds a git command may run before vtrack gives up on it.
GIT_TIMEOUT_SECONDS = 120.0

#: Lines of code diff ``vtrack rerun`` shows before asking (the rest: a git command).
RERUN_DIFF_MAX_LINES = 200

# --- artifacts ---
#: Artifacts larger than this go to the large-object store instead of git blobs.
DEFAULT_LARGE_FILE_THRESHOLD = 8 * 1024 * 1024

# --- hashing ---
#: Read buffer for streamed hashing and copying.
HASH_CHUNK_BYTES = 1024 * 1024
#: The stat cache trusts an entry only if the file's mtime and ctime are this much older
#: than the moment the entry was written (git's "racily clean" rule, with room for
#: coarse filesystem timestamps and clock steps).
RACY_MARGIN_NS = 2_000_000_000

# --- ids ---
RUN_ID_HEX_LENGTH = 32
MIN_RUN_PREFIX = 4
#: Largest N of a ``@~N`` run spec (SQLite's largest integer); larger is a usage error.
MAX_RUN_SPEC_OFFSET = 2**63 - 1

# --- system metrics ---
#: Seconds between two samples of system metrics (MLflow's default too).
DEFAULT_SYSTEM_METRICS_INTERVAL = 10.0
#: A run that ends this long after its last sample gets one more sample at its end.
SYSTEM_METRICS_FINAL_SAMPLE_AFTER = 1.0
