"""The report's figure files, named once for the workflow (common.smk), figures.py and the
report: one file per figure and regime for the grid's figures, one for each figure of the whole study.
Torch- and matplotlib-free (Snakemake reads it when it plans), and outside study.py, which the
training jobs import: renaming a figure does not make the runs stale.
"""

from __future__ import annotations

from optimizer_dynamics.study import regimes

# The report's figures: one per regime of the grid's, and one each of those that show the whole
# study at once (the curvature runs; gradient noise, both regimes side by side).
REGIME_FIGURES = ("loss_curves", "norms", "effective_step", "lr_sensitivity", "momentum", "saturation", "adaptivity")
STUDY_FIGURES = ("sharpness", "stability", "stochastic_edge", "noise", "ladder", "batch_gap", "eps_overlay", "conditioning")


def figure_files(config: dict) -> list[tuple[str, str, str | None]]:
    """(file stem, figure, regime) of every figure: (lr_sensitivity_64, lr_sensitivity, "64"),
    ..., (sharpness, sharpness, None)."""
    return [(f"{figure}_{regime}", figure, regime) for figure in REGIME_FIGURES for regime in regimes(config)] + [
        (figure, figure, None) for figure in STUDY_FIGURES]


def figure_stems(config: dict) -> list[str]:
    """Every figure file's stem: lr_sensitivity_full, lr_sensitivity_64, ..., sharpness."""
    return [stem for stem, _, _ in figure_files(config)]
