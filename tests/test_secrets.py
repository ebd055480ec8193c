"""vtrack.secrets: credentials out of URLs, secret argv values masked, bytes kept exactly."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vtrack.secrets import (
    MASK,
    command_record,
    escape_text,
    from_raw_b64,
    is_secret_name,
    looks_like_secret_file,
    mask_argv,
    raw_b64,
    strip_url_credentials,
)

# --- URLs ------------------------------------------------------------------------------

_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_SUB_DELIMS = "!$&'()*+,;="
#: what users put in passwords, unencoded ``@`` and ``:`` included (git accepts them)
password_text = st.text(alphabet=_UNRESERVED + _SUB_DELIMS + "%:@", min_size=1, max_size=40)
user_text = st.text(alphabet=_UNRESERVED + _SUB_DELIMS + "%", min_size=1, max_size=20)
hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){0,2}(:[0-9]{1,5})?",
                      fullmatch=True)  # fmt: skip
paths = st.from_regex(r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}){0,4}(\?[a-z=&]{0,10})?",
                      fullmatch=True)  # fmt: skip
schemes = st.sampled_from(["https", "http", "HTTPS", "git", "ftp", "s3", "git+https"])


@given(schemes, user_text, password_text, hosts, paths)
def test_a_url_loses_its_password_and_user(
    scheme: str, user: str, password: str, host: str, path: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{path}"
    out = strip_url_credentials(url)
    assert out == f"{scheme}://{host}{path}"
    assume(password not in out.replace(f"{scheme}://", "", 1) and password not in scheme)
    assert password not in out


@given(user_text, password_text, hosts, paths)
def test_an_ssh_url_keeps_its_user_and_loses_its_password(
    user: str, password: str, host: str, path: str
) -> None:
    out = strip_url_credentials(f"ssh://{user}:{password}@{host}{path}")
    assert out == f"ssh://{user}@{host}{path}"
    assume(password not in f"ssh://{user}@{host}{path}")  # e.g. ':' or 's' are in the kept text
    assert password not in out


@given(st.sampled_from(["https", "http", "ssh", "git", "file"]), hosts, paths)
def test_urls_without_userinfo_are_unchanged(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}{path}"
    assert strip_url_credentials(url) == url


@given(st.from_regex(r"[a-z]{1,8}@[a-z0-9.-]{1,20}:[A-Za-z0-9_./-]{1,30}", fullmatch=True))
def test_scp_like_ssh_remotes_are_unchanged(url: str) -> None:
    assert strip_url_credentials(url) == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://alice:ghp_abc123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_abc123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://oauth2:glpat-x@gitlab.com/g/r", "https://gitlab.com/g/r"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("https://host/path@not-userinfo", "https://host/path@not-userinfo"),
    ],
)
def test_known_remote_forms(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


# --- argv --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "masked", "indices"),
    [
        (["--api-key=sk1", "--lr", "0.1"], ["--api-key=***", "--lr", "0.1"], [0]),
        (["--api_key", "sk1"], ["--api_key", "***"], [1]),
        (["--token", "t", "--max-tokens", "5", "--tokenizer", "bpe"],
         ["--token", "***", "--max-tokens", "5", "--tokenizer", "bpe"], [1]),
        (["--password", "-dash-start"], ["--password", "***"], [1]),
        (["--secret-file=/k", "--secretKey", "v"], ["--secret-file=***", "--secretKey", "***"],
         [0, 2]),
        (["--access-key", "AK", "--key", "not-a-secret"],
         ["--access-key", "***", "--key", "not-a-secret"], [1]),
        (["AWS_SECRET_ACCESS_KEY=zz", "db.password=p", "lr=1"],
         ["AWS_SECRET_ACCESS_KEY=***", "db.password=***", "lr=1"], [0, 1]),
        (["--db", "postgresql://u:p@h/db", "https://h/x"],
         ["--db", "postgresql://***@h/db", "https://h/x"], [1]),
        (["--hf-token", "--verbose"], ["--hf-token", "--verbose"], []),
        (["--token"], ["--token"], []),
        (["data.csv", "--epochs", "3"], ["data.csv", "--epochs", "3"], []),
    ],
)  # fmt: skip
def test_mask_argv(argv: list[str], masked: list[str], indices: list[int]) -> None:
    assert mask_argv(argv) == (masked, indices)


@given(st.lists(st.text(max_size=12), max_size=8), st.text(min_size=6, max_size=20))
def test_a_secret_value_never_survives_masking(args: list[str], secret: str) -> None:
    assume(MASK not in secret and not secret.startswith("--"))  # "--x" is the next option
    for form in ([f"--api-key={secret}"], ["--token", secret], [f"GITHUB_TOKEN={secret}"]):
        out, idx = mask_argv([*args, *form])
        assert secret not in out[len(args) :]
        assert idx and idx[-1] >= len(args)


def test_secret_names() -> None:
    for name in ("password", "DB_PASSWORD", "api_key", "apikey", "hf_token", "client-secret",
                 "aws.secret_access_key", "private_key", "credentials"):  # fmt: skip
        assert is_secret_name(name), name
    for name in ("max_tokens", "tokenizer", "key", "keyword", "lr", "passes"):
        assert not is_secret_name(name), name


# --- files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [".env", "conf/.env.production", "id_rsa", "home/.ssh/id_ed25519", "tls/server.PEM",
     "site.key", "cert.p12", "c.pfx", "credentials.json", ".netrc", ".npmrc", ".pypirc",
     "vault.kdbx", "service-account-prod.json", ".git-credentials"],
)  # fmt: skip
def test_secret_looking_files(path: str) -> None:
    assert looks_like_secret_file(path)


@pytest.mark.parametrize(
    "path", ["train.py", ".env.example", "id_rsa.pub", "keys.py", "environment.yml", "README"]
)
def test_ordinary_files(path: str) -> None:
    assert not looks_like_secret_file(path)


# --- bytes that are not UTF-8 -----------------------------------------------------------------


@given(st.binary(max_size=40))
def test_raw_round_trips_exact_bytes_and_escaping_is_valid_utf8(data: bytes) -> None:
    text = os.fsdecode(data)
    assert os.fsencode(from_raw_b64(raw_b64(text))) == data
    escape_text(text).encode("utf-8")  # never raises


def test_command_record_escapes_and_keeps_raw_only_when_needed() -> None:
    plain = command_record("train.py", ["--lr", "0.1"], "/home/a")
    assert plain == {"entry_point": "train.py", "argv": ["--lr", "0.1"], "cwd": "/home/a"}
    odd = os.fsdecode(b"\xff\xfe")
    rec = command_record(
        os.fsdecode(b"sub\xff/t.py"), [odd, "--token", odd], os.fsdecode(b"/d\xfe")
    )
    assert rec["argv"] == ["\\xff\\xfe", "--token", MASK] and rec["argv_masked"] == [2]
    assert [os.fsencode(from_raw_b64(a)) for a in rec["argv_raw"]] == [b"\xff\xfe", b"--token",
                                                                       b"***"]  # fmt: skip
    assert rec["cwd"] == "/d\\xfe" and os.fsencode(from_raw_b64(rec["cwd_raw"])) == b"/d\xfe"
    assert rec["entry_point"] == "sub\\xff/t.py"
    assert os.fsencode(from_raw_b64(rec["entry_point_raw"])) == b"sub\xff/t.py"
