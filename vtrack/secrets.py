"""Keeping secrets and unencodable bytes out of run records: pure helpers, no store access.

What a run records about how it was started (``source`` in ``run.yaml``) is shared with
everyone the runs are pushed to, so:

* **URLs lose their credentials** (:func:`strip_url_credentials`): ``https://alice:tok@host/x``
  is recorded as ``https://host/x``. For ``http(s)`` and every other ``scheme://`` URL the
  whole userinfo goes (a token is often the user part: ``https://ghp_…@github.com``); an
  ``ssh://`` URL keeps its user name and loses only a password; scp-like ``git@host:path``
  and local paths are left as they are (they cannot hold a password).
* **argv values that look like secrets are masked** (:func:`mask_argv`) with
  :data:`MASK`: ``--api-key=…``, ``--token …``, ``--password …``, ``--secret…``,
  ``--access-key …``, ``AWS_SECRET_ACCESS_KEY=…``-style ``NAME=value`` arguments, and the
  credentials of URLs inside arguments. The indices of masked elements are recorded, so a
  rerun knows the command is not the original.
* **Untracked files that look like secrets** (:func:`looks_like_secret_file`: ``.env``,
  private keys, ``*.pem``, ``credentials.json``, ``.netrc`` …) are left out of snapshots.
* **Bytes that are not UTF-8** (command-line arguments, paths; Python holds them as lone
  surrogates) are recorded in a readable escaped form (:func:`escape_text`, ``\\xff``) and,
  where a rerun needs them exactly, as base64 of the bytes (:func:`raw_b64`,
  :func:`from_raw_b64`).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

#: What a masked value is replaced with.
MASK = "***"

#: Words that make an option or variable name a secret's (compared on whole ``-``
#: separated tokens of the lower-cased name, ``_`` and ``.`` read as ``-``).
_SECRET_NAME = re.compile(
    r"(?:^|-)(?:(?:secret|password|passwd|passphrase)[a-z0-9]*|pwd|token|api-?key|"
    r"access-key|private-key|signing-key|session-key|credentials?)(?:-|$)"
)
_OPTION = re.compile(r"--?(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)(?:=(?P<value>.*))?", re.S)
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>.*)", re.S)
#: ``scheme://[userinfo@]authority…``: the authority ends at the first ``/``, ``?`` or ``#``.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<authority>[^/?#]*)")
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "sftp"})

#: Untracked file names left out of code snapshots (matched case-insensitively on the
#: file's name, fnmatch-style).
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", ".envrc", "*.env",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "*.ppk",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.asc",
    "credentials", "credentials.json", "credentials.yaml", "credentials.yml",
    "service-account*.json", "client_secret*.json", "*-credentials.json",
    ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials", ".htpasswd",
    ".dockercfg", "secrets.yaml", "secrets.yml", "secrets.json", "secrets.toml",
)  # fmt: skip
#: Names that match a pattern above but are, by convention, shared templates.
_NOT_SECRET_FILES = (".env.example", ".env.sample", ".env.template", ".env.dist", "*.pub")


def strip_url_credentials(url: str) -> str:
    """``url`` without the credentials in its userinfo (rules in the module docstring).

    Text that is not a ``scheme://`` URL (scp-like ``git@host:path``, paths) comes back
    unchanged, and so does a URL without userinfo.
    """
    m = _URL.match(url)
    if m is None or "@" not in m["authority"]:
        return url
    userinfo, _, host = m["authority"].rpartition("@")
    keep = ""
    if m["scheme"].lower() in _SSH_SCHEMES:
        user = userinfo.split(":", 1)[0]
        keep = f"{user}@" if user else ""
    return f"{m['scheme']}://{keep}{host}{url[m.end() :]}"


def _mask_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by :data:`MASK`."""
    out, pos = [], 0
    for m in _URL.finditer(text):
        if "@" not in m["authority"]:
            continue
        host = m["authority"].rpartition("@")[2]
        out.append(text[pos : m.start()] + f"{m['scheme']}://{MASK}@{host}")
        pos = m.end()
    return "".join(out) + text[pos:] if out else text


def is_secret_name(name: str) -> bool:
    """True if an option or variable name (``api_key``, ``AWS_SECRET_ACCESS_KEY``) names a secret."""
    return bool(_SECRET_NAME.search(name.lower().replace("_", "-").replace(".", "-")))


def mask_argv(argv: Sequence[str]) -> tuple[list[str], list[int]]:
    """``argv`` with secret-looking values replaced by :data:`MASK`; also the masked indices.

    Masked: the value of ``--name=value`` / ``-name=value`` and ``NAME=value`` when the name
    names a secret (:func:`is_secret_name`); the element after a bare ``--name`` of that
    kind (unless it is itself an option, ``--…``); and the userinfo of any ``scheme://``
    URL inside an element. Option names themselves are kept, so the record still says
    which secret was passed.
    """
    out = list(argv)
    masked: list[int] = []
    i = 0
    while i < len(out):
        arg = out[i]
        new = arg
        opt = _OPTION.fullmatch(arg) if arg.startswith("-") else None
        assign = _ASSIGNMENT.fullmatch(arg) if opt is None else None
        named = opt or assign
        if named is not None and is_secret_name(named["name"]):
            if named["value"] is not None:
                new = arg[: named.start("value")] + MASK
            elif opt is not None and i + 1 < len(out) and not out[i + 1].startswith("--"):
                out[i + 1] = MASK
                masked.append(i + 1)
                i += 2
                continue
        if new == arg:
            new = _mask_urls(arg)
        if new != arg:
            out[i] = new
            masked.append(i)
        i += 1
    return out, masked


def looks_like_secret_file(path: str) -> bool:
    """True if the file name of ``path`` (``/``-separated) matches :data:`SECRET_FILE_PATTERNS`."""
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    if any(fnmatchcase(name, p) for p in _NOT_SECRET_FILES):
        return False
    return any(fnmatchcase(name, p) for p in SECRET_FILE_PATTERNS)


def needs_escaping(text: str) -> bool:
    """True if ``text`` holds lone surrogates (bytes that were not UTF-8) and cannot be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape_text(text: str) -> str:
    """``text`` as valid UTF-8 text: undecodable bytes shown as ``\\xNN``; valid text unchanged."""
    if not needs_escaping(text):
        return text
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def raw_b64(text: str) -> str:
    """Base64 of the exact bytes ``text`` stands for (``os.fsencode``)."""
    return base64.b64encode(os.fsencode(text)).decode("ascii")


def from_raw_b64(data: str) -> str:
    """The text (lone surrogates for non-UTF-8 bytes) whose bytes :func:`raw_b64` encoded."""
    return os.fsdecode(base64.b64decode(data.encode("ascii"), validate=True))


def command_record(entry_point: str | None, argv: Sequence[str], cwd: str) -> dict[str, object]:
    """The ``source`` fields that say how a run was started, safe to record.

    ``argv`` is masked (:func:`mask_argv`; ``argv_masked`` lists the masked indices when
    there are any) and every field is valid UTF-8 (:func:`escape_text`). When some argv
    element had to be escaped, ``argv_raw`` holds base64 of every element's exact bytes
    (masked elements as masked); ``cwd_raw`` and ``entry_point_raw`` likewise when those
    had to be escaped.
    """
    shown, masked = mask_argv([str(a) for a in argv])
    out: dict[str, object] = {
        "entry_point": None if entry_point is None else escape_text(entry_point),
        "argv": [escape_text(a) for a in shown],
        "cwd": escape_text(cwd),
    }
    if masked:
        out["argv_masked"] = masked
    if any(needs_escaping(a) for a in shown):
        out["argv_raw"] = [raw_b64(a) for a in shown]
    if needs_escaping(cwd):
        out["cwd_raw"] = raw_b64(cwd)
    if entry_point is not None and needs_escaping(entry_point):
        out["entry_point_raw"] = raw_b64(entry_point)
    return out
