"""The layering of docs/design-decisions.md, checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

RANKS = {  # ../shared/LAYOUT.md, second edition
    "vtrack.errors": 0,
    "vtrack.limits": 0,
    "vtrack.logs": 0,
    "vtrack.entities": 0,
    "vtrack.validation": 1,
    "vtrack.hashing": 1,
    "vtrack.query": 1,
    "vtrack.diff": 1,
    "vtrack.config": 1,
    "vtrack.pathsafety": 1,
    "vtrack.gitcmd": 1,
    "vtrack.secrets": 1,
    "vtrack.progress": 1,
    "vtrack.views": 1,
    "vtrack.store": 2,
    "vtrack.statcache": 2,
    "vtrack.datasets": 2,
    "vtrack.resolve": 3,
    "vtrack.artifacts": 3,
    "vtrack.capture": 3,
    "vtrack.models": 3,
    "vtrack.gc": 3,
    "vtrack.sharing": 3,
    "vtrack.hooks": 3,
    "vtrack.sysmetrics": 3,
    "vtrack.importers": 3,
    "vtrack.provenance": 3,
    "vtrack.repro": 3,
    "vtrack.registry": 3,
    "vtrack.mlflow_io": 3,
    "vtrack.distributions": 1,
    "vtrack.viewtree": 1,
    "vtrack.client": 4,
    "vtrack.fluent": 4,
    "vtrack._session": 4,
    "vtrack": 4,
    "vtrack.sklearn": 4,
    "vtrack.pytorch": 4,
    "vtrack.pyfunc": 4,
    "vtrack.tracking": 4,
    "vtrack.data": 4,
    "vtrack.fluent_mlflow": 4,
    "vtrack.fluent_registry": 4,
    "vtrack.__main__": 5,
    "vtrack.cli": 5,
    "vtrack.ui": 5,
    "vtrack.autolog": 5,
    "vtrack.integrations": 5,
}
#: (importer prefix, imported prefix): upward imports allowed inside functions only.
ALLOWED_LAZY_UPWARD = {
    ("vtrack.models", "vtrack.fluent"),
    # mlflow.artifacts' module-level functions read through the fluent API's store
    ("vtrack.artifacts", "vtrack.fluent"),
    # the MLflow-named facade hands autolog() over to the autologging face when called
    ("vtrack.sklearn", "vtrack.autolog"),
}


def rank_of(module: str) -> int | None:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in RANKS:
            return RANKS[name]
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import outside TYPE_CHECKING blocks."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.extend((f"{child.module}.{a.name}", top) for a in child.names)
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(tree, True)
    return out


def test_no_module_imports_a_higher_layer() -> None:
    problems = []
    for path in sorted((ROOT / "vtrack").rglob("*.py")):
        me = _module_name(path)
        my_rank = rank_of(me)
        assert my_rank is not None, f"{me} has no rank in tests/test_layers.py"
        for imported, top in _imports(ast.parse(path.read_text())):
            if not imported.startswith("vtrack"):
                continue
            r = rank_of(imported)
            if r is None or r <= my_rank:
                continue
            if not top and any(
                me.startswith(a) and imported.startswith(b) for a, b in ALLOWED_LAZY_UPWARD
            ):
                continue
            problems.append(f"{me} (R{my_rank}) imports {imported} (R{r})")
    assert not problems, "\n".join(problems)


def test_faces_reach_storage_only_through_the_client() -> None:
    problems = []
    for sub in ("cli", "ui"):
        for path in (
            sorted((ROOT / "vtrack" / sub).rglob("*.py"))
            if (ROOT / "vtrack" / sub).exists()
            else []
        ):
            for imported, _ in _imports(ast.parse(path.read_text())):
                if imported.startswith(("vtrack.store", "vtrack.gitobj")):
                    problems.append(f"{_module_name(path)} imports {imported}")
    assert not problems, "\n".join(problems)
