"""The study's figures, one module per figure in this folder, each defining FIGURE (a
base.FigureEntry: its name, caption, whether it is drawn per regime, and its drawing); every
module here but the shared ones is registered, in the order of the entries' `order`. Adding a
figure is adding one file: the workflow's outputs, Snakemake's report and the findings report read
the entries.

    python -m optimizer_dynamics.figures --aggregate-dir results/aggregate --out-dir results/figures

draws every figure as a PNG and an SVG from results/aggregate/ only (render.py).

Importing this package is light: Snakemake plans the figure files with figure_files(), which reads
each entry's name, order and per_regime from its module's source (literals), without importing
matplotlib, scipy and the claims (~1.5 s). FIGURES imports every figure module on first use.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

from optimizer_dynamics.study import regimes

__all__ = ["FIGURES", "declared", "figure_files", "figure_stems"]
SHARED_MODULES = ("base", "captions", "drawing", "render")
DECLARED_FIELDS = ("name", "order", "per_regime")  # what a module's FIGURE states as literals


def _figure_modules() -> list[str]:
    return [module.name for module in pkgutil.iter_modules(__path__)
            if module.name not in SHARED_MODULES and not module.name.startswith("_")]


def declared() -> list[tuple[str, bool]]:
    """(name, per_regime) of every figure, in catalog order, from the FigureEntry(...) literals of
    the modules' sources."""
    found = []
    for module in _figure_modules():
        tree = ast.parse((Path(__path__[0]) / f"{module}.py").read_text(encoding="utf-8"))
        entry = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "FIGURE" for t in node.targets))
        fields = {k.arg: ast.literal_eval(k.value) for k in entry.keywords if k.arg in DECLARED_FIELDS}
        found.append((fields["order"], fields["name"], fields["per_regime"]))
    return [(name, per_regime) for _, name, per_regime in sorted(found)]


def figure_files(config: dict) -> list[tuple[str, str, str | None]]:
    """(file stem, figure, regime) of every figure file: (lr_sensitivity_64, lr_sensitivity, "64"),
    ..., (sharpness, sharpness, None)."""
    return [(f"{name}_{regime}", name, regime) if regime else (name, name, None)
            for name, per_regime in declared() for regime in (regimes(config) if per_regime else [None])]


def figure_stems(config: dict) -> list[str]:
    """Every figure file's stem: lr_sensitivity_full, lr_sensitivity_64, ..., sharpness."""
    return [stem for stem, _, _ in figure_files(config)]


def __getattr__(name: str):
    if name == "FIGURES":  # every entry, name -> FigureEntry, in catalog order
        entries = [importlib.import_module(f"{__name__}.{module}").FIGURE for module in _figure_modules()]
        globals()["FIGURES"] = {entry.name: entry for entry in sorted(entries, key=lambda e: (e.order, e.name))}
        return globals()["FIGURES"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
