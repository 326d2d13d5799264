"""Figure momentum. Left: late effective step of SGD against the prediction lr / (1 − m) for
every learning rate and momentum (dashed: equality)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, lr_colors, momentum_palette, note
from optimizer_dynamics.tables import Aggregate, select


def _momentum_scale(ax) -> None:
    """Momentum axis spaced by -log10(1 - m): 0, 0.5, 0.9, 0.99 become evenly readable."""
    ax.set_xscale("function", functions=(lambda m: -np.log10(1 - np.clip(m, None, 1 - 1e-12)),
                                         lambda x: 1 - 10.0 ** (-x)))


def draw(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    rows = agg.cell_rows("sgd")
    rows = rows[rows["n_diverged"] < rows["n_runs"]]
    momenta = sorted(rows["momentum"].unique())
    left.set_title("late effective step vs heavy-ball prediction")
    right.set_title("late cosine of consecutive updates")
    if len(momenta) < 2:
        for ax in (left, right):
            note(ax, f"SGD with several momentum values: {NOT_IN_STUDY}")
    else:
        palette = momentum_palette(agg)
        left.set_xscale("log")
        left.set_yscale("log")
        for momentum in momenta:
            cell = select(rows, momentum=momentum)
            predicted = cell["lr"] / (1 - momentum)
            _errorbar(left, predicted, cell, "eff_step_late", palette[momentum],
                      f"momentum {format_number(momentum)}")
        (x_low, x_high), (y_low, y_high) = left.get_xlim(), left.get_ylim()
        lims = np.array([min(x_low, y_low), max(x_high, y_high)])
        left.plot(lims, lims, color="0.3", linestyle="--", linewidth=1, label="measured = predicted",
                  zorder=1)
        left.set_xlim(lims)
        left.set_ylim(lims)
        left.set_aspect("equal")
        left.set_xlabel("predicted step lr / (1 − m)")
        left.set_ylabel("measured update / grad (effective lr)\nmean over the late steps")
        left.legend(loc="upper left")
        lrs = sorted(rows["lr"].unique())
        colors = lr_colors(lrs)
        _momentum_scale(right)
        for lr in lrs:
            cell = select(rows, lr=lr).sort_values("momentum")
            _errorbar(right, cell["momentum"], cell, "update_cosine_late", colors[lr],
                      f"lr {format_number(lr)}", line=True)
        right.set_xticks(momenta, [format_number(m) for m in momenta])
        right.set_xlabel("momentum m (axis spaced as log 1 / (1 − m))")
        right.set_ylabel("cosine(update_t, update_t-1)\nmean over the late steps")
        right.axhline(0, color="0.5", linewidth=0.8)
        right.set_ylim(-1.05, 1.05)  # a cosine; a t-interval over few seeds can reach past +-1
        right.legend(loc="upper left", bbox_to_anchor=(1.02, 1), title="SGD")
    fig.suptitle("mean over the seeds that did not diverge, bars: 95% t-interval over those seeds")
    return fig


def _errorbar(ax, x, cell: pd.DataFrame, value: str, color, label: str, line: bool = False) -> None:
    y = cell[f"{value}_mean"].to_numpy(float)
    lo, hi = cell[f"{value}_lo"].to_numpy(float), cell[f"{value}_hi"].to_numpy(float)
    # A single finished seed has no interval (NaN): draw the point without a bar.
    yerr = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
    yerr = np.where(np.isfinite(yerr), yerr, 0)
    ax.errorbar(np.asarray(x, float), y, yerr=yerr, color=color, marker="o", markersize=5,
                linestyle="-" if line else "none", capsize=2, label=label, zorder=3)


FIGURE = FigureEntry(
    name="momentum",
    order=4,
    per_regime=True,
    caption=(
        "Claim 5: momentum's step and smoothness. "
        "Left: late effective step of SGD against the prediction lr / (1 − m) for every learning "
        "rate and momentum m (dashed: equality). Right: late cosine of consecutive updates."
    ),
    draw=draw,
)
