"""Figure lr_sensitivity. Median final validation loss against learning rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, momentum_palette, note, optimizer_panels
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate, select


def _window_spans(rows: pd.DataFrame) -> list[tuple[float, float]]:
    """Contiguous runs of in-window lrs as (first lr, last lr)."""
    spans, start, prev = [], None, None
    for lr, good in zip(rows["lr"], rows["in_good_window"]):
        if good and start is None:
            start = lr
        if not good and start is not None:
            spans.append((start, prev))
            start = None
        prev = lr
    if start is not None:
        spans.append((start, prev))
    return spans


def draw(agg: Aggregate) -> Figure:
    optimizers = agg.optimizers
    fig, axes = optimizer_panels(optimizers, 6.0, 4.6)
    tolerance = agg.analysis.get("good_window_tolerance")
    claimed = agg.analysis.get("claimed_windows") or {}
    for ax, optimizer in zip(axes, optimizers):
        name = OPTIMIZERS[optimizer].label
        ax.set_title(f"{name}")
        rows = agg.cell_rows(optimizer).sort_values(["momentum", "lr"])
        if not len(rows):
            note(ax, f"{name}: {NOT_IN_STUDY}")
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        drawn = rows[np.isfinite(rows["median_final_val_loss"])]
        values = drawn[["median_final_val_loss", "q25_final_val_loss", "q75_final_val_loss"]].to_numpy(float)
        values = values[np.isfinite(values) & (values > 0)]
        # Headroom above the data for the rows of divergence marks.
        low, high = (values.min() / 1.3, values.max() * 3.0) if values.size else (0.1, 1.0)
        ax.set_ylim(low, high)
        ref = agg.reference(optimizer)
        main_momentum = ref[1] if ref else float(rows["momentum"].min())
        momenta = sorted(rows["momentum"].unique())
        palette = momentum_palette(agg)
        main_color = "0.5"
        for row, momentum in enumerate(momenta):
            curve = select(rows, momentum=momentum)
            color = palette[momentum]
            label = f"{OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}"
            is_main = momentum == main_momentum
            _sensitivity_curve(ax, curve, color, label, high, main=is_main, row=row)
            if is_main:
                main_color = color
                for lo_lr, hi_lr in _window_spans(curve):
                    if lo_lr == hi_lr:
                        ax.axvline(lo_lr, color=color, alpha=0.25, linewidth=8, zorder=0)
                    else:
                        ax.axvspan(lo_lr, hi_lr, color=color, alpha=0.15, linewidth=0, zorder=0)
                best = curve["median_final_val_loss"].replace(np.inf, np.nan).min()
                if tolerance is not None and np.isfinite(best):
                    ax.axhline((1 + tolerance) * best, color=color, linestyle=":", linewidth=1)
        window = claimed.get(optimizer)
        if window:
            ax.axvspan(*window, facecolor="none", edgecolor="0.35", hatch="//", linewidth=0.8, zorder=0)
        ax.margins(x=0.08)  # room for the k/n labels beside marks at the largest lr
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final validation loss (BCE, nats)\nmedian over seeds")
        handles, _ = ax.get_legend_handles_labels()
        main_name = f"{OPTIMIZERS[optimizer].momentum_symbol} {format_number(main_momentum)}"
        extra = [Patch(facecolor=main_color, alpha=0.2,
                       label=f"measured good window ({main_name})")]
        if tolerance is not None:
            extra.append(Line2D([], [], color="0.3", linestyle=":",
                                label=f"within {format_number(100 * tolerance)}% of best ({main_name})"))
        if window:
            extra.append(Patch(facecolor="none", edgecolor="0.35", hatch="//",
                               label=f"claimed window {format_number(window[0])}-{format_number(window[1])}"))
        extra.append(Line2D([], [], color="0.2", marker="x", linestyle="none", label="diverged (k/n seeds)"))
        legend_below(ax, handles + extra)
    fig.suptitle("bars: interquartile range over seeds; filled markers: lr inside the good window "
                 "(diverged runs count as +inf)")
    return fig


def _sensitivity_curve(ax, curve: pd.DataFrame, color, label: str, top: float, main: bool,
                       row: int) -> None:
    """Median with interval; a cell whose median diverged as an x near the top of the panel with
    k/n seeds annotated, one row of marks per curve so that they do not hide each other."""
    median = curve["median_final_val_loss"].to_numpy(float)
    lr = curve["lr"].to_numpy(float)
    finite = np.isfinite(median)
    good = curve["in_good_window"].to_numpy(bool)
    width = 2.2 if main else 1.3
    ax.plot(lr[finite], median[finite], color=color, linewidth=width, label=label, zorder=3)
    lo = curve["q25_final_val_loss"].to_numpy(float)
    hi = np.minimum(curve["q75_final_val_loss"].to_numpy(float), top)  # +inf (diverged seeds) ends at the top
    ax.vlines(lr[finite], lo[finite], hi[finite], color=color, linewidth=width * 0.8, zorder=3)
    for marks, face in ((finite & good, color), (finite & ~good, "white")):
        ax.plot(lr[marks], median[marks], linestyle="none", marker="o", markersize=6,
                markerfacecolor=face, markeredgecolor=color, zorder=4)
    diverged = curve["n_diverged"].to_numpy(int)
    runs = curve["n_runs"].to_numpy(int)
    blended = ax.get_xaxis_transform()  # x in data, y in axes fraction
    height = 0.96 - 0.06 * row
    for x, y, k, n, ok in zip(lr, median, diverged, runs, finite):
        if not ok:
            ax.plot([x], [height], transform=blended, marker="x", color=color, markersize=7,
                    markeredgewidth=2, linestyle="none", zorder=5, gid="diverged")
            ax.annotate(f"{k}/{n}", (x, height), xycoords=blended, xytext=(6, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=8, color=color)
        elif k:
            ax.annotate(f"{k}/{n} div.", (x, y), xytext=(4, 4), textcoords="offset points",
                        fontsize=8, color=color)


FIGURE = FigureEntry(
    name="lr_sensitivity",
    order=3,
    per_regime=True,
    caption=(
        "Claims 3 and 4: the learning-rate sweep. "
        "Median final validation loss against learning rate; bars: interquartile range over seeds; filled "
        "markers: good learning rates; crosses: diverged runs."
    ),
    draw=draw,
)
