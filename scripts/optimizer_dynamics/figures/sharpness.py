"""Figure sharpness. Sharpness (SGD) and preconditioned sharpness (Adam) against step, one colour
per learning rate, with the thresholds dashed in the same colour (mean over seeds, band: range)."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NO_CURVATURE, bands, curvature_groups, legend_below, lr_colors, note
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate, select


# curvature.parquet column -> (name, what it is, its threshold when it is the one compared)
SHARPNESS_QUANTITIES = {
    "sharpness": ("sharpness λmax(H)", "top eigenvalue of the loss Hessian", "2 (1 + momentum) / lr"),
    "precond_sharpness": ("preconditioned sharpness λmax(P⁻¹H)", "P: Adam's preconditioner",
                          "(2+2β1) / ((1−β1) lr)"),
}


def _seed_range(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """step, mean, lo, hi of one cell's column over its seeds, lo/hi being the smallest and largest
    seed: the sharpness spans decades and differs by seed from step 0 on, and on a log axis a
    t-interval over few seeds would reach below zero."""
    stats = rows.groupby("step", sort=True)[column].agg(["mean", "min", "max"])
    return stats.rename(columns={"min": "lo", "max": "hi"}).reset_index()


def _sharpness_panels(agg: Aggregate) -> list[tuple[str, float, str, bool]]:
    """(optimizer, momentum, column, thresholded): per (optimizer, momentum) with curvature runs, the
    quantity compared with the threshold; where that is the preconditioned sharpness (Adam), also
    the plain sharpness, which has no threshold."""
    panels = []
    for optimizer, momentum in curvature_groups(agg):
        preconditioned = select(agg.curvature, optimizer=optimizer, momentum=momentum)["precond_sharpness"].notna().any()
        panels.append((optimizer, momentum, "precond_sharpness" if preconditioned else "sharpness", True))
        if preconditioned:
            panels.append((optimizer, momentum, "sharpness", False))
    return panels


def draw(agg: Aggregate) -> Figure:
    """The sharpness over steps per lr (seed mean, range band), thresholds dashed (gid "threshold")."""
    panels = _sharpness_panels(agg)
    ncols = 2 if len(panels) > 1 else 1
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(6.0 * ncols, 4.1 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[max(1, len(panels)):]:
        ax.set_visible(False)
    if not panels:
        note(axes[0], NO_CURVATURE)
    for ax, (optimizer, momentum, column, thresholded) in zip(axes, panels):
        name, meaning, formula = SHARPNESS_QUANTITIES[column]
        rows = select(agg.curvature, optimizer=optimizer, momentum=momentum)
        lrs = sorted(rows["lr"].unique())
        colors = lr_colors(lrs)
        ax.set_yscale("log")
        bands(ax, [(_seed_range(select(rows, optimizer=optimizer, lr=lr), column), colors[lr],
                     f"lr {format_number(lr)}", "-") for lr in lrs])
        handles, _ = ax.get_legend_handles_labels()
        title = (f"{OPTIMIZERS[optimizer].label}, {OPTIMIZERS[optimizer].momentum_symbol} "
                 f"{format_number(momentum)}: {name}")
        if thresholded:
            thresholds = [float(select(rows, optimizer=optimizer, lr=lr)["threshold"].iloc[0]) for lr in lrs]
            for lr, threshold in zip(lrs, thresholds):
                ax.axhline(threshold, color=colors[lr], linestyle="--", linewidth=1.2, gid="threshold")
            low, high = ax.get_ylim()  # a threshold far from the data must stay in view
            ax.set_ylim(min(low, min(thresholds) / 1.25), max(high, max(thresholds) * 1.25))
            handles.append(Line2D([], [], color="0.3", linestyle="--",
                                  label=f"threshold {formula}, same colour"))
        else:
            title += "\n(no threshold: Adam's applies to P⁻¹H)"
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name}\n({meaning})")
        legend_below(ax, handles, ncols=2)
    every = (agg.config.get("curvature") or {}).get("every")
    measured = "exact Hessian of the full-batch training loss" + (f" every {every} steps" if every else "")
    fig.suptitle(f"{measured}; line: mean over seeds, band: range over seeds; dashed: thresholds")
    return fig


FIGURE = FigureEntry(
    name="sharpness",
    order=7,
    per_regime=False,
    caption=(
        "Claims 7a and 7b: sharpness against the stability thresholds. "
        "Sharpness (SGD) and preconditioned sharpness (Adam) against step, one colour per learning rate, "
        "with the thresholds dashed in the same colour (mean over seeds, band: range)."
    ),
    draw=draw,
)
