"""The study's figures, one module per figure in this folder, each defining FIGURE (a
base.FigureEntry: its name, caption, whether it is drawn per regime, and its drawing); every
module here but the shared ones is registered, in the order of the entries' `order`. Adding a
figure is adding one file: the workflow's outputs, Snakemake's report and the findings report read
FIGURES.

    python -m optimizer_dynamics.figures --aggregate-dir results/aggregate --out-dir results/figures

draws every figure as a PNG and an SVG from results/aggregate/ only (render.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.study import regimes

__all__ = ["FIGURES", "NOT_IN_STUDY", "FigureEntry", "build_figure", "figure_files", "figure_stems", "main"]
SHARED_MODULES = ("base", "captions", "drawing", "render")


def _discover() -> dict[str, FigureEntry]:
    entries = [importlib.import_module(f"{__name__}.{module.name}").FIGURE
               for module in pkgutil.iter_modules(__path__)
               if module.name not in SHARED_MODULES and not module.name.startswith("_")]
    return {entry.name: entry for entry in sorted(entries, key=lambda entry: (entry.order, entry.name))}


FIGURES: dict[str, FigureEntry] = _discover()


def figure_files(config: dict) -> list[tuple[str, str, str | None]]:
    """(file stem, figure, regime) of every figure file: (lr_sensitivity_64, lr_sensitivity, "64"),
    ..., (sharpness, sharpness, None)."""
    return [(f"{name}_{regime}", name, regime) if regime else (name, name, None)
            for name, entry in FIGURES.items() for regime in (regimes(config) if entry.per_regime else [None])]


def figure_stems(config: dict) -> list[str]:
    """Every figure file's stem: lr_sensitivity_full, lr_sensitivity_64, ..., sharpness."""
    return [stem for stem, _, _ in figure_files(config)]


# (render.py reads FIGURES: imported after it.)
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY  # noqa: E402
from optimizer_dynamics.figures.render import build_figure, main  # noqa: E402
