"""Figure conditioning. The learning-rate sweep of plain SGD and Adam on each problem."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime
from optimizer_dynamics.claims.base import line_name
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import LR_CMAP, NOT_IN_STUDY, legend_below, note, optimizer_panels
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.problems import PROBLEMS
from optimizer_dynamics.tables import Aggregate, select


PROBLEM_STYLES = ["-", "--", "-.", ":"]  # the problems of one panel, with a colour ramp


def draw(agg: Aggregate) -> Figure:
    """Per optimizer line of the conditioning runs and regime: median final val loss against lr,
    one curve per problem (bars: quartiles over seeds), its best lr circled; lines carry gid
    "problem"."""
    cells = select(agg.side_cells_by_budget["conditioning"], budget=1.0)
    lines = list(dict.fromkeys(zip(cells["batch"], cells["optimizer"], cells["momentum"])))
    lines.sort(key=lambda line: (batch_regime.full_first(line[0]), OPTIMIZERS[line[1]].order))
    fig, axes = optimizer_panels(lines or [None], 6.0, 4.3, sharey=True)
    if not lines:
        note(axes[0], f"conditioning runs: {NOT_IN_STUDY} (config conditioning.problems)")
        return fig
    problems = [name for name in PROBLEMS if name in set(cells["problem"])]
    shades = matplotlib.colormaps[LR_CMAP](np.linspace(0.0, 0.8, len(problems)))
    for ax, (regime, optimizer, momentum) in zip(axes, lines):
        ax.set_title(f"{line_name(optimizer, momentum)}, {batch_regime.label(regime)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for index, (problem, color) in enumerate(zip(problems, shades)):
            curve = select(cells, batch=regime, optimizer=optimizer, momentum=momentum, problem=problem)
            curve = curve.sort_values("lr")
            finite = curve[np.isfinite(curve["median_final_val_loss"])]
            if finite.empty:
                continue
            y = finite["median_final_val_loss"].to_numpy(float)
            low, high = finite["q25_final_val_loss"].to_numpy(float), finite["q75_final_val_loss"].to_numpy(float)
            ax.errorbar(finite["lr"], y, yerr=np.vstack([y - low, np.where(np.isfinite(high), high - y, 0)]),
                        color=color, linestyle=PROBLEM_STYLES[index % len(PROBLEM_STYLES)], marker="o",
                        markersize=3, capsize=2, label=PROBLEMS[problem].label, gid="problem")
            best = finite.loc[finite["median_final_val_loss"].idxmin()]
            ax.plot(best["lr"], best["median_final_val_loss"], marker="o", markersize=11, markerfacecolor="none",
                    markeredgecolor=color, linestyle="none")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final validation loss (BCE, nats)\nmedian over seeds")
        legend_below(ax)
    fig.suptitle("bars: interquartile range over seeds; circled: each problem's best lr")
    return fig


FIGURE = FigureEntry(
    name="conditioning",
    order=12,
    per_regime=False,
    caption=(
        "Claims 10b-10d: one input stretched by κ, and rotated. "
        "The learning-rate sweep of plain SGD and Adam on each problem; median final validation loss over "
        "seeds, bars: quartiles, each problem's best learning rate circled."
    ),
    draw=draw,
)
