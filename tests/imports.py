"""What a source file imports, read from its syntax tree: the layering tests of both planes use it."""

import ast
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """Every absolute import's module, wherever it stands in the file (a function-level import counts too)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def under(module: str, packages: set[str]) -> bool:
    """Whether `module` is one of `packages` or inside one."""
    return any(module == p or module.startswith(p + ".") for p in packages)
