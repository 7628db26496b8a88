"""The package's import graph, read from its source (``ast``): which of the project's modules a
file imports, at the top or inside a function, and everything a module may load."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "benchmark"


def module_file(name: str) -> Path | None:
    """The file of module ``benchmark.x.y`` (a package's ``__init__.py``), or None."""
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_modules(file: Path) -> set[str]:
    """The project's modules that ``file`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmark"):
            assert node.module is not None
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from pkg import module`
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("benchmark")}
    return {m for m in found if module_file(m) is not None}


def import_closure(entry: str) -> set[str]:
    """Every file of the package that running ``entry`` (a module or package) may import,
    parents' ``__init__.py`` included, as paths relative to the repository."""
    start = ROOT / entry
    todo = sorted(start.rglob("*.py")) if start.is_dir() else [start]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        for name in imported_modules(file):
            parts = name.split(".")
            for i in range(2, len(parts) + 1):
                parent = module_file(".".join(parts[:i]))
                assert parent is not None
                todo.append(parent)
    return {str(f.relative_to(ROOT)) for f in seen} - {"benchmark/__init__.py"}
