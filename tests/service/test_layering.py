"""The control plane never imports the ML stack or the workers' code: the API image has neither."""

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
FORBIDDEN = {"torch", "transformers", "peft", "workers"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_service_imports_neither_the_ml_stack_nor_workers() -> None:
    offenders = {str(p.relative_to(SERVICE)): sorted(imported_roots(p) & FORBIDDEN) for p in SERVICE.rglob("*.py")}
    assert {name: roots for name, roots in offenders.items() if roots} == {}
