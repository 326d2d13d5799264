"""A figure's entry in the catalog (figures/__init__.py): its name, its one caption, whether the
grid's regimes get one file each, and its drawing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FigureEntry:
    name: str  # the file stem, with "_<regime>" appended where per_regime
    order: int  # its place in the catalog (and in Snakemake's report)
    per_regime: bool  # one file per batch regime of the grid (drawn on that regime's cells), else one file
    # the caption, stated here only: the findings report and Snakemake's report (a generated .rst) show it
    caption: str
    draw: Callable  # Aggregate -> matplotlib Figure; tests and the report inspect the drawn data
