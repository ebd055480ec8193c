"""The documentation's Python snippets run, in order, in a real repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT, run_script


def _python_blocks(md: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", md.read_text(), re.S)


def test_quickstart_snippets_run_in_a_fresh_repository(repo: Path) -> None:
    code = "\n".join(_python_blocks(ROOT / "docs" / "quickstart.md"))
    assert "start_run" in code
    res = run_script(code, cwd=repo)
    assert res.returncode == 0, res.stderr  # type: ignore[union-attr]


def test_readme_snippet_runs(repo: Path) -> None:
    code = "\n".join(_python_blocks(ROOT / "README.md"))
    res = run_script(code, cwd=repo)
    assert res.returncode == 0, res.stderr  # type: ignore[union-attr]


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\s+```(?:bash)?\n(.*?)```", text, re.S)
    assert block is not None
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "examples/demo.py" in lines[0] and "pytest" in lines[1]
    assert "README.md" in (ROOT / ".ci" / "run").read_text()
