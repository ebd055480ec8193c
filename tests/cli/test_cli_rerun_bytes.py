"""Command lines that are not UTF-8: recorded readably, kept exactly, rerun with the same bytes."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import yaml

from tests.cli.conftest import subprocess_env, vt
from tests.conftest import git

ARGS = """\
import os
import sys
import vtrack

with vtrack.start_run(run_name="bytes"):
    vtrack.log_param("arg_hex", os.fsencode(sys.argv[1]).hex())
    vtrack.log_param("cwd_hex", os.fsencode(os.getcwd()).hex()[-4:])
"""


def test_a_non_utf8_argument_cwd_and_script_path_are_recorded_and_rerun_exactly(
    fresh_repo,
) -> None:
    rr = fresh_repo()
    sub = os.fsencode(rr.path) + b"/d\xfe"
    os.mkdir(sub)
    script = sub + b"/tr\xffin.py"
    with open(script, "w") as f:
        f.write(ARGS)
    git(rr.path, "add", "-A")
    git(rr.path, "commit", "-q", "-m", "odd names")
    res = subprocess.run(
        [sys.executable.encode(), script, b"\xff\xfe"], cwd=sub, capture_output=True,
        env=subprocess_env(rr.path.parent), timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")

    shown = vt(rr.path, "show", "bytes", "--json")
    assert shown.exit_code == 0, shown.stderr
    src = shown.json()["source"]
    assert src["argv"] == ["\\xff\\xfe"]
    assert [base64.b64decode(a) for a in src["argv_raw"]] == [b"\xff\xfe"]
    assert src["cwd"].endswith("/d\\xfe") and base64.b64decode(src["cwd_raw"]) == sub
    assert src["entry_point"] == "d\\xfe/tr\\xffin.py"
    assert base64.b64decode(src["entry_point_raw"]) == b"d\xfe/tr\xffin.py"
    assert vt(rr.path, "show", "bytes").exit_code == 0
    (ref,) = git(rr.path, "for-each-ref", "--format=%(refname)", "refs/vtrack/runs/").split()
    record = yaml.safe_load(git(rr.path, "show", f"{ref}:.vtrack/run.yaml"))
    assert record["source"]["argv"] == ["\\xff\\xfe"]

    dry = vt(rr.path, "rerun", "bytes", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    # bash $'...' quoting: what the command shows is what it runs, byte for byte
    assert "/repo/d\\xfe' && python $'tr\\xffin.py' $'\\xff\\xfe'" in dry.stdout

    again = vt(rr.path, "rerun", "bytes", "--yes", "--json")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert again.json()["verdict"] == "reproduced"  # the same bytes reached the script
    new = vt(rr.path, "show", again.json()["rerun_id"], "--json").json()
    assert new["params"]["arg_hex"] == "fffe" and new["params"]["cwd_hex"] == "64fe"
