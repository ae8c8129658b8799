"""The layers point one way: flows -> tasks -> finscale; only tracking.py imports mlflow."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "src" / "finscale"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_library_never_imports_orchestration() -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_roots(p) & {"prefect", "flows", "tasks"})
        for p in LIBRARY.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_tracking_imports_mlflow() -> None:
    importers = sorted(
        str(p.relative_to(LIBRARY)) for p in LIBRARY.rglob("*.py") if "mlflow" in _imported_roots(p)
    )
    assert importers in ([], ["tracking.py"])


def test_tasks_never_import_flows() -> None:
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "tasks").rglob("*.py")
        if "flows" in _imported_roots(p)
    ]
    assert offenders == []
