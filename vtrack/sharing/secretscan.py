"""The pre-push scan: what the pushed runs carry beyond their parent commit.

A run's snapshot can hold untracked files nobody ignored (``.env``, ``id_rsa``,
``credentials.json``), and artifacts can be anything. Before a push, every path that a
pushed run commit adds or changes relative to its parent commit (the code commit the
run started from) is checked:

- its file name against :func:`vtrack.secrets.looks_like_secret_file`;
- the content of blobs up to :data:`SCAN_BYTES` against key and token patterns
  (private-key blocks, AWS access keys, GitHub/GitLab/Slack tokens, ``password = …``);
- its size against :data:`GIT_OBJECT_LIMIT` (hosts refuse larger git objects, e.g.
  GitHub at 100 MB): such a blob must not go into git at all.

The run record's own files (``.vtrack/*.yaml``, metric histories) are not scanned:
their secret-looking values were masked when they were written.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from vtrack import gitcmd
from vtrack.secrets import looks_like_secret_file
from vtrack.store import Store
from vtrack.store.record import RECORD_DIR

#: Blobs larger than this are not read for key patterns (names are still checked).
SCAN_BYTES = 1024 * 1024
#: The largest git object a common host accepts (GitHub: 100 MB).
GIT_OBJECT_LIMIT = 100 * 1000 * 1000

_CONTENT = [
    (re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
     "holds a private key"),
    (re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "holds an AWS access key id"),
    (re.compile(rb"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}"),
     "holds a GitHub token"),
    (re.compile(rb"\bglpat-[A-Za-z0-9_\-]{20}\b"), "holds a GitLab token"),
    (re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "holds a Slack token"),
    (re.compile(rb"(?i)\b(?:aws_secret_access_key|api[_-]?key|secret[_-]?key|access[_-]?token|"
                rb"auth[_-]?token|password|passwd)\b\s*[:=]\s*['\"]?[A-Za-z0-9/+_.\-]{12,}"),
     "assigns a secret-looking value"),
]  # fmt: skip
_ARTIFACTS = f"{RECORD_DIR}/artifacts/"


@dataclass(frozen=True)
class Finding:
    """One path of one run that should not leave this machine as it is."""

    run_id: str
    path: str
    reason: str
    oversize: bool = False


def scan(store: Store, runs: dict[str, str]) -> list[Finding]:
    """Findings for ``{run_id: run commit}``, sorted by run and path (see the module doc)."""
    if not runs:
        return []
    by_commit: dict[str, list[str]] = {}
    for run_id, sha in runs.items():
        by_commit.setdefault(sha, []).append(run_id)
    changes = _changed_paths(store, list(by_commit))
    blobs = sorted({blob for items in changes.values() for _, blob in items})
    sizes = _sizes(store, blobs)
    reasons: dict[str, tuple[str, bool]] = {}
    readable = [b for b in blobs if 0 < sizes.get(b, 0) <= SCAN_BYTES]
    for blob, data in _contents(store, readable):
        for pattern, why in _CONTENT:
            if pattern.search(data):
                reasons[blob] = (why, False)
                break
    for blob in blobs:
        if sizes.get(blob, 0) > GIT_OBJECT_LIMIT:
            reasons[blob] = (f"is {sizes[blob]:,} bytes, over what git hosts accept", True)
    out = []
    for commit, items in changes.items():
        for path, blob in items:
            if looks_like_secret_file(path):
                found = ("has the name of a secrets file", False)
            else:
                found = reasons.get(blob)  # type: ignore[assignment]
            if found is None:
                continue
            for run_id in by_commit[commit]:
                out.append(Finding(run_id, path, found[0], found[1]))
    return sorted(out, key=lambda f: (f.run_id, f.path))


def _changed_paths(store: Store, commits: list[str]) -> dict[str, list[tuple[str, str]]]:
    """``{commit: [(path, new blob)]}`` of what each commit adds or changes vs its parent."""
    res = gitcmd.run(
        ["diff-tree", "--stdin", "-r", "--root", "--no-renames", "-z", "--diff-filter=AM"],
        git_dir=store.location.git_dir, input=("\n".join(commits) + "\n").encode(),
    )  # fmt: skip
    out: dict[str, list[tuple[str, str]]] = {c: [] for c in commits}
    tokens = res.stdout.split(b"\0")
    current = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith(b":"):
            meta = tok.split()
            path = tokens[i].decode("utf-8", "surrogateescape") if i < len(tokens) else ""
            i += 1
            if current is None or meta[1][:2] == b"16":  # a submodule: not ours to read
                continue
            if path.startswith(f"{RECORD_DIR}/") and not path.startswith(_ARTIFACTS):
                continue
            out[current].append((path, meta[3].decode()))
        elif len(tok.strip()) == 40:
            current = tok.strip().decode()
    return out


def _sizes(store: Store, blobs: list[str]) -> dict[str, int]:
    if not blobs:
        return {}
    res = gitcmd.run(
        ["cat-file", "--batch-check=%(objectname) %(objectsize)"],
        git_dir=store.location.git_dir, input=("\n".join(blobs) + "\n").encode(),
    )  # fmt: skip
    sizes = {}
    for line in res.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def _contents(store: Store, blobs: list[str]) -> list[tuple[str, bytes]]:
    if not blobs:
        return []
    proc = gitcmd.cat_file_batch(store.location.git_dir)
    assert proc.stdin is not None and proc.stdout is not None
    out = []
    stdin = proc.stdin

    def feed() -> None:  # a thread, so that a full stdout pipe cannot deadlock us
        with stdin:
            stdin.write("".join(f"{b}\n" for b in blobs).encode())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for blob in blobs:
            got = gitcmd.read_batch_object(proc.stdout, "scanning pushed files")
            if got is not None:
                out.append((blob, got[1]))
    finally:
        writer.join()
        proc.stdout.close()
        proc.wait()
    return out
