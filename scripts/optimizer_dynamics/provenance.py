"""The package modules a command executes: its own module and, transitively, every module of
this package it imports. The workflow lists them as each rule's inputs, so that editing the
code that made an output (the claims, the figures, the engine) makes that output and
everything after it stale. Read with ast, without importing anything (torch-free, fast).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "optimizer_dynamics"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_path(dotted: str) -> Path | None:
    """The file of a module of this package ("optimizer_dynamics.claims.base"), if it is one."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if len(parts) > 1 and path.is_file():
            return path
    return None


def package_imports(source: Path) -> set[Path]:
    """Files of the package's modules that `source` imports directly, with the __init__.py of
    each subpackage they sit in (importing a submodule runs its package first)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    paths = set()
    for name in names:
        parts = name.split(".")
        for depth in range(2, len(parts) + 1):  # the subpackages on the way, then the module
            path = module_path(".".join(parts[:depth]))
            if path is not None:
                paths.add(path)
    return paths


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
        pending.extend(package_imports(path))
        if path.name == "__init__.py" and path.parent != PACKAGE_DIR:
            # a registry subpackage imports every module of its folder (optimizers, claims)
            pending.extend(path.parent.glob("*.py"))
    return sorted(seen)


def module_file(name: str) -> Path:
    """The file of a module ("aggregate") or subpackage ("claims") of this package."""
    path = module_path(f"{PACKAGE}.{name}")
    if path is None:
        raise FileNotFoundError(f"{PACKAGE}.{name} is not a module of this package")
    return path
