"""Figure stochastic_edge. Late batch sharpness and late full-batch sharpness over 2 (1 + m) / lr,
per learning rate of the minibatch curvature runs, one dot per seed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime
from optimizer_dynamics.claims.base import line_name
from optimizer_dynamics.claims.stability import EDGE_BAND
from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, note
from optimizer_dynamics.tables import Aggregate


def draw(agg: Aggregate) -> Figure:
    """Claim 7e: per minibatch curvature cell, the late batch sharpness and the late full-batch
    sharpness over the threshold 2 (1 + m) / lr, a dot per finished seed (gids "batch", "full")."""
    runs = agg.runs[agg.runs["set"] == "minibatch_curvature"]
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    if runs.empty:
        note(ax, f"minibatch curvature runs: {NOT_IN_STUDY} (config curvature.minibatch.cells)")
        return fig
    ax.axhspan(*EDGE_BAND, color="0.85", zorder=0, label=f"edge: {EDGE_BAND[0]:g} to {EDGE_BAND[1]:g}")
    ax.axhline(1, color="0.3", linestyle="--", linewidth=1)
    lrs = sorted(runs["lr"].unique())
    for column, offset, color, label in (("late_batch_sharpness_ratio", -0.12, "#D55E00", "batch sharpness"),
                                         ("late_sharpness_ratio", 0.12, "0.25", "full-batch sharpness")):
        for x, lr in enumerate(lrs):
            values = runs.loc[runs["lr"] == lr, column].dropna().to_numpy(float)
            ax.plot(np.full(len(values), x + offset), values, linestyle="none", marker="o", markersize=5,
                    color=color, alpha=0.7, gid="batch" if column.startswith("late_batch") else "full",
                    label=f"{label}, one seed" if x == 0 else None)
    ax.set_yscale("log")
    optimizer, momentum = runs["optimizer"].iloc[0], runs["momentum"].iloc[0]
    ax.set_xticks(range(len(lrs)), [f"lr {format_number(lr)}" for lr in lrs])
    ax.set_xlim(-0.6, len(lrs) - 0.4)
    ax.set_ylabel("late sharpness / (2 (1 + m) / lr)")
    ax.set_title(f"{line_name(optimizer, momentum)}, {batch_regime.label(runs['batch'].iloc[0])}")
    legend_below(ax)
    return fig


FIGURE = FigureEntry(
    name="stochastic_edge",
    order=13,
    per_regime=False,
    caption=(
        "Claim 7e: the edge of stochastic stability. "
        "Late batch sharpness and late full-batch sharpness over 2 (1 + m) / lr, per learning rate of the "
        "minibatch curvature runs, one dot per seed; shaded: the edge band."
    ),
    draw=draw,
)
