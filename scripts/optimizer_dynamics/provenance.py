"""The package modules a command executes: its own module and, transitively, every module of
this package it imports. The workflow lists them as each rule's inputs, so that editing the
code that made an output (the verdicts, the figures, the engine) makes that output and
everything after it stale. Read with ast, without importing anything (torch-free, fast).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "optimizer_dynamics"
PACKAGE_DIR = Path(__file__).resolve().parent


def package_imports(source: Path) -> set[str]:
    """Names of the package's modules that `source` imports directly."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                names.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + "."))
    return {name for name in names if (PACKAGE_DIR / f"{name}.py").exists()}


def module_closure(*sources: Path) -> list[Path]:
    """The package modules that `sources` (module files, or a script such as the report's
    source) execute, themselves included when they are package modules; sorted."""
    seen: set[Path] = set()
    pending = [Path(s).resolve() for s in sources]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(PACKAGE_DIR / f"{name}.py" for name in package_imports(path))
    return sorted(seen)


def module_file(name: str) -> Path:
    return PACKAGE_DIR / f"{name}.py"
