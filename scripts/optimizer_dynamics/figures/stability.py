"""Figure stability. Left: late (preconditioned) sharpness over its threshold for every run and
setting."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimizer_dynamics.claims.stability import EDGE_BAND
from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NO_CURVATURE, curvature_groups, legend_below, lr_colors, note
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.stats import mean_interval
from optimizer_dynamics.tables import Aggregate, select


def _late_ratio_panel(ax, agg: Aggregate) -> None:
    """Each curvature cell's late sharpness / threshold: a dot per finished seed (gid "seed"), and
    their mean with its t-interval (gid "mean")."""
    runs = agg.runs[agg.runs["set"] == "curvature"]
    ax.set_title("late sharpness / threshold, per curvature setting (m: momentum)")
    if runs.empty:
        note(ax, NO_CURVATURE)
        return
    cells = [(o, lr, m) for o, m in curvature_groups(agg)
             for lr in sorted(select(runs, optimizer=o, momentum=m)["lr"].unique())]
    ax.set_yscale("log")
    finished = runs["late_sharpness_ratio"]
    bottom = finished[finished > 0].min() / 2 if (finished > 0).any() else 0.1
    ax.axhspan(*EDGE_BAND, color="0.85", zorder=0,
               label=f"edge of stability: {EDGE_BAND[0]:g} to {EDGE_BAND[1]:g}")
    ax.axhline(1, color="0.3", linestyle="--", linewidth=1, label="threshold (ratio 1)")
    for x, (optimizer, lr, momentum) in enumerate(cells):
        cell = select(runs, optimizer=optimizer, lr=lr, momentum=momentum)
        ratios = cell["late_sharpness_ratio"].dropna().to_numpy(float)
        color = OPTIMIZERS[optimizer].color
        if len(ratios):
            offsets = np.linspace(-0.15, 0.15, len(ratios)) if len(ratios) > 1 else np.zeros(1)
            ax.plot(x + offsets, ratios, linestyle="none", marker="o", markersize=4, color=color, alpha=0.6,
                    gid="seed")
            mean, lo, hi, _ = mean_interval(ratios)
            if np.isfinite(lo):  # a t-interval reaching below 0 is drawn down to the panel's bottom
                ax.vlines(x + 0.3, max(lo, bottom), hi, color="0.15", linewidth=1.5)
            ax.plot([x + 0.3], [mean], marker="D", markersize=6, color="0.15", linestyle="none", gid="mean")
        n_diverged = int(cell["diverged"].sum())
        if n_diverged:
            ax.annotate(f"{n_diverged}/{len(cell)}\ndiverged", (x, 1), xycoords=ax.get_xaxis_transform(),
                        xytext=(0, -4), textcoords="offset points", ha="center", va="top", fontsize=8,
                        color=color)
    ax.set_ylim(bottom=bottom)
    ax.set_xticks(range(len(cells)), [f"{OPTIMIZERS[o].label}\n{OPTIMIZERS[o].momentum_symbol} "
                                      f"{format_number(m)}\nlr {format_number(lr)}" for o, lr, m in cells],
                  fontsize=8)
    ax.grid(False, axis="x")
    for x in range(1, len(cells)):  # a line between (optimizer, momentum) groups
        if cells[x][::2] != cells[x - 1][::2]:
            ax.axvline(x - 0.5, color="0.6", linewidth=0.8)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    ax.set_ylabel("late (preconditioned) sharpness / threshold")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color=entry.color, marker="o", linestyle="none", alpha=0.6,
                       label=f"{entry.label}: one seed")
                for name, entry in OPTIMIZERS.items() if (runs["optimizer"] == name).any()]
    handles.append(Line2D([], [], color="0.15", marker="D", label="mean and 95% t-interval over seeds"))
    # further down than legend_below: clear of the three-line tick labels
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)


def _catapult_panel(ax, agg: Aggregate) -> None:
    """SGD curvature runs over the dense early steps: sharpness / threshold per (lr, momentum),
    mean over seeds (gid "catapult"); a run starting above 1 that survives drops below it."""
    ax.set_title("SGD, first steps: sharpness / threshold 2 (1 + m) / lr (catapult)")
    rows = select(agg.curvature, optimizer="sgd")
    early = int((agg.config.get("curvature") or {}).get("early_steps") or 0) or 100
    rows = rows[rows["step"] <= early]
    if rows.empty:
        note(ax, NO_CURVATURE.replace("curvature runs", "SGD curvature runs"))
        return
    ax.set_yscale("log")
    colors = lr_colors(sorted(rows["lr"].unique()))
    for (momentum, lr), cell in rows.groupby(["momentum", "lr"], sort=True):
        ratio = (cell["sharpness"] / cell["threshold"]).groupby(cell["step"]).mean()
        ax.plot(ratio.index, ratio.to_numpy(), color=colors[lr], linestyle="-" if momentum == 0 else "--",
                marker="o", markersize=2.5, linewidth=1.3, gid="catapult",
                label=f"lr {format_number(lr)}, m {format_number(momentum)}")
    ax.axhline(1, color="0.3", linestyle=":", linewidth=1, label="threshold (ratio 1)")
    ax.set_xlabel("step")
    ax.set_ylabel("sharpness / threshold (mean over seeds)")
    legend_below(ax, ncols=3)


def draw(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(13, 5.7), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    _late_ratio_panel(left, agg)
    _catapult_panel(right, agg)
    fig.suptitle("threshold: 2 (1 + momentum) / lr for SGD, (2+2β1) / ((1−β1) lr) on P⁻¹H for Adam; "
                 "late: the last curvature steps of runs that did not diverge")
    return fig


FIGURE = FigureEntry(
    name="stability",
    order=8,
    per_regime=False,
    caption=(
        "Claims 7a-7c: the edge of stability and the catapult. "
        "Left: late (preconditioned) sharpness over its threshold for every run and setting. Right: SGD's "
        "sharpness over its threshold in the first steps, where the runs that start above it catapult "
        "below it."
    ),
    draw=draw,
)
