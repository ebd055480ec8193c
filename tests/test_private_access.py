"""No module reaches into another module's private names (LAYOUT.md: one way to reach a run).

A private name (``_x``, not a dunder) belongs to the module that defines it: other modules
may neither import it (``from vtrack.a import _x``; a package's own modules may import its
private submodules, like ``vtrack.cli._term``) nor reach it as an attribute
(``other._x`` where ``_x`` is not defined in the module doing it). ``self._x`` and
``cls._x`` are always a module's own business.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_here(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, attributes and variables."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)  # dataclass fields set by keyword (replace(x, _f=...))
    return {n for n in names if _private(n)}


def private_reaches(source: str, me: str, is_package: bool = False) -> list[str]:
    """Where module ``me`` (whose code is ``source``) uses another module's private names."""
    tree = ast.parse(source)
    package = me if is_package else me.rpartition(".")[0]
    own = _defined_here(tree)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("vtrack"):
                continue
            for alias in node.names:
                if not _private(alias.name) or node.module == me:
                    continue
                if node.module == package:
                    continue  # a package's private submodule or name, used inside the package
                problems.append(f"{me}:{node.lineno} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if node.attr in own:
                continue
            problems.append(f"{me}:{node.lineno} reaches {ast.unparse(node)}")
    return problems


def test_no_module_reaches_another_modules_private_names() -> None:
    problems = [
        p
        for path in sorted((ROOT / "vtrack").rglob("*.py"))
        for p in private_reaches(path.read_text(), _module(path), path.name == "__init__.py")
    ]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_private_reach() -> None:
    """The checker itself: each kind of reach it must refuse is refused, and only those."""
    source = (
        "from vtrack.store.writer import _helper\n"
        "from vtrack.store import _fileio_helpers\n"
        "import vtrack.fluent as fluent\n"
        "def f(writer, _mine):\n"
        "    writer._secret()\n"
        "    self._fine, cls._fine = 1, 2\n"
        "    _mine._fine_too = 3\n"
        "    return fluent._client()\n"
    )
    found = private_reaches(source, "vtrack.cli.probe")
    assert [f.split(" ", 1)[1] for f in found] == [
        "imports vtrack.store.writer._helper",
        "imports vtrack.store._fileio_helpers",
        "reaches writer._secret",
        "reaches fluent._client",
    ]
    # inside vtrack.store, the package's own private submodule may be imported
    inside = [f.split(" ", 1)[1] for f in private_reaches(source, "vtrack.store.probe")]
    assert "imports vtrack.store._fileio_helpers" not in inside and len(inside) == 3
