"""Figure eps_overlay. Adam at each ε, its learning rate converted to heavy ball's, (1 − β₁)/ε ×
lr, against the grid's heavy ball."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime
from optimizer_dynamics.claims.base import line_name
from optimizer_dynamics.claims.ladder import eps_of
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, note
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.optimizers.adam import heavy_ball_lr
from optimizer_dynamics.tables import Aggregate, select


EPS_MARKERS = ["o", "s", "^", "D", "v"]  # Adam's eps values, smallest first


def draw(agg: Aggregate) -> Figure:
    """Claim 9f: per regime of the epsilon runs, the median final val loss against the heavy-ball
    lr: the grid's heavy ball at its lrs (gid "heavy_ball"), and Adam at each eps at its lr x (1 -
    beta1) / eps (gid "adam"); bands: quartiles over seeds; a cross on the top edge: half the seeds
    or more diverged there."""
    adam = select(agg.side_cells_by_budget["epsilon"], budget=1.0)
    regimes = sorted(set(adam["batch"]), key=batch_regime.full_first) or ["none"]
    fig = Figure(figsize=(6.4 * len(regimes), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(regimes), squeeze=False)[0])
    if adam.empty:
        note(axes[0], f"epsilon runs: {NOT_IN_STUDY} (config epsilon.eps)")
        return fig
    beta1 = float(adam["momentum"].iloc[0])
    settings = sorted(adam["hyperparameters"].unique(), key=eps_of)
    for ax, regime in zip(axes, regimes):
        heavy = select(agg.cells, optimizer="sgd", momentum=beta1, batch=regime).sort_values("lr")
        lines = [(heavy, heavy["lr"], OPTIMIZERS["sgd"].color, "-", "o", line_name("sgd", beta1) + " (the grid)",
                  "heavy_ball")]
        for index, text in enumerate(settings):
            cells = select(adam, batch=regime, hyperparameters=text).sort_values("lr")
            eps = eps_of(text)
            lines.append((cells, heavy_ball_lr(cells["lr"], beta1, eps), OPTIMIZERS["adam"].color, "--",
                          EPS_MARKERS[index % len(EPS_MARKERS)], f"Adam β₁ {beta1:g}, ε {eps:g}, at lr × (1 − β₁)/ε",
                          "adam"))
        shown = np.concatenate([np.asarray(x, float) for _, x, *_ in lines])  # the x range: every line's lrs
        for cells, x, color, style, marker, label, gid in lines:
            x = np.asarray(x, float)
            median = cells["median_final_val_loss"].to_numpy(float)
            finite = np.isfinite(median)
            ax.fill_between(x[finite], cells["q25_final_val_loss"].to_numpy(float)[finite],
                            cells["q75_final_val_loss"].to_numpy(float)[finite], color=color, alpha=0.12, linewidth=0)
            ax.plot(x[finite], median[finite], linestyle=style, marker=marker, color=color, label=label, gid=gid,
                    markerfacecolor="none" if gid == "adam" else color)
            ax.plot(x[~finite], np.full((~finite).sum(), 1.0), linestyle="none", marker="x", color=color,
                    transform=ax.get_xaxis_transform(), clip_on=False, markersize=8)
        ax.set_xscale("log")
        ax.set_xlim(shown.min() / 1.5, shown.max() * 1.5)
        ax.set_xlabel("heavy-ball learning rate (Adam: lr × (1 − β₁)/ε)")
        ax.set_title(batch_regime.label(regime))
        legend_below(ax, ncols=1)
    axes[0].set_ylabel("final validation loss\n(median over seeds, band: quartiles; ×: diverged)")
    return fig


FIGURE = FigureEntry(
    name="eps_overlay",
    order=14,
    per_regime=False,
    caption=(
        "Claim 9f: Adam with a large ε against heavy ball. "
        "Adam at each ε, its learning rate converted to heavy ball's, (1 − β₁)/ε × lr, against the grid's "
        "heavy ball; median final validation loss, bands: quartiles over seeds; ×: half the seeds or more "
        "diverged."
    ),
    draw=draw,
)
