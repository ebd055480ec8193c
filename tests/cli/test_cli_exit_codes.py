"""Exit codes scripts can trust: 1 is drift or divergence, 70 is a bug in vtrack."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import RunsRepo, subprocess_env, vt
from vtrack.errors import EXIT_DRIFT, EXIT_INTERNAL

#: A real ``vtrack`` process whose one extra command has a bug (an uncaught exception).
BUGGY = textwrap.dedent(
    """\
    import sys
    import click
    from vtrack import cli

    @cli.cli.command("boom")
    def boom():
        raise RuntimeError("kaput\\n  in two lines")

    cli.main(sys.argv[1:])
    """
)


def _buggy(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "buggy_vtrack.py"
    script.write_text(BUGGY)
    extra = {"TMPDIR": str(tmp_path), **(env or {})}
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=tmp_path, env=subprocess_env(tmp_path, extra),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_uncaught_exception_exits_70_with_one_line_naming_the_traceback_file(
    tmp_path: Path,
) -> None:
    res = _buggy(tmp_path, "boom")
    assert res.returncode == EXIT_INTERNAL == 70, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("vtrack: internal error (a bug in vtrack, please report it): ")
    assert "RuntimeError: kaput in two lines" in line
    assert "VTRACK_DEBUG=1" in line
    m = re.search(r"its traceback is in (\S+vtrack-traceback-\S+\.txt)", line)
    assert m is not None, line
    saved = Path(m.group(1))
    assert saved.parent == tmp_path
    text = saved.read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("kaput' in text and text.rstrip().endswith("in two lines")
    assert res.stdout == ""


def test_vtrack_debug_prints_the_traceback_after_the_line_and_writes_no_file(
    tmp_path: Path,
) -> None:
    res = _buggy(tmp_path, "boom", env={"VTRACK_DEBUG": "1"})
    assert res.returncode == EXIT_INTERNAL, res.stderr
    first, rest = res.stderr.split("\n", 1)
    assert first.startswith("vtrack: internal error (a bug in vtrack, please report it): ")
    assert first.endswith("RuntimeError: kaput in two lines; its traceback follows")
    assert rest.startswith("Traceback (most recent call last):")
    assert "RuntimeError: kaput" in rest
    assert not list(tmp_path.glob("vtrack-traceback-*"))


def test_vtrack_errors_and_usage_errors_keep_their_own_codes(tmp_path: Path) -> None:
    res = _buggy(tmp_path, "frobnicate")
    assert res.returncode == 2 and "internal error" not in res.stderr
    res = _buggy(tmp_path, "show", "@")  # outside any repository: StoreNotFoundError
    assert res.returncode == 3 and "internal error" not in res.stderr
    assert not list(tmp_path.glob("vtrack-traceback-*"))


def test_exit_1_still_means_the_runs_differ(runs_repo: RunsRepo) -> None:
    ids = runs_repo.ids
    res = vt(runs_repo.path, "diff", ids["base"], ids["fast"], "--exit-code")
    assert res.exit_code == EXIT_DRIFT, res.stderr
    assert "internal error" not in res.stderr
