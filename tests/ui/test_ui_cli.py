"""``vtrack ui`` as a user starts it: the missing extra, the bind warning, ``-e``."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import run_script
from tests.ui.conftest import http_get, start_server, stop_server


def test_without_the_extra_it_names_the_extra_to_install(ui_store: dict[str, Any]) -> None:
    res = run_script(
        """
        import sys
        sys.modules["starlette"] = None  # what an environment without starlette looks like
        from vtrack.cli import main
        main(["ui"])
        """,
        cwd=ui_store["path"],
    )
    assert res.returncode == 2, res.stderr
    assert "vtrack ui needs starlette" in res.stderr and "vtrack[ui]" in res.stderr


def test_binding_elsewhere_than_localhost_is_warned_about(ui_store: dict[str, Any]) -> None:
    proc, url = start_server(ui_store["path"], "--host", "0.0.0.0")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert proc.stderr is not None
        line = proc.stderr.readline()  # written before the URL line
    finally:
        stop_server(proc)
    assert "warning: listening on 0.0.0.0, not 127.0.0.1" in line


def test_e_starts_the_table_on_an_experiment(
    ui_store: dict[str, Any],
) -> None:
    proc, url = start_server(ui_store["path"], "-e", "other")
    try:
        status, body = http_get(url + "api/runs?exp=" + ui_store["other"])
        assert status == 200
        status, page = http_get(url)
        assert status == 200
        names = {r["name"] for r in json.loads(body)["rows"]}
        assert "elsewhere" in names and b"elsewhere" in page and b"run0" not in page
    finally:
        stop_server(proc)


def test_an_unknown_experiment_is_a_usage_error(ui_store: dict[str, Any]) -> None:
    res = run_script(
        "from vtrack.cli import main; main(['ui', '-e', 'no-such-exp', '--port', '0'])",
        cwd=ui_store["path"],
    )
    assert res.returncode == 2
    assert "no experiment named 'no-such-exp'" in res.stderr
