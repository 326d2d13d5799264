"""What the figures share: the palettes, labels, bands, legends and panel layouts (matplotlib).

A figure is built with matplotlib.figure.Figure directly, not pyplot: no global state, no GUI
backend. A cell or metric missing from the study becomes a "not in this study" note in its
panel instead of an error, so a small test grid still yields every figure.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optimizer_dynamics.config import format_number
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. Optimizers
# take theirs from the registry (vermillion, blue); momentum values take the others, so the
# two never read alike.
MOMENTUM_COLORS = ["#000000", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442"]

LR_CMAP = "viridis"  # sequential and colour-blind safe, for lr as hue

NOT_IN_STUDY = "not in this study"

def cell_label(optimizer: str, lr: float, momentum: float | None = None) -> str:
    text = f"{OPTIMIZERS[optimizer].label} lr {format_number(lr)}"
    if momentum is not None:
        text += f", {OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}"
    return text

def note(ax, text: str) -> None:
    """A panel whose data the study lacks: say so where the reader looks for the plot."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True,
            fontsize=10, color="0.3", bbox={"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.7"})
    # tick_params, not set_xticks([]): the tick locator is shared with sibling panels.
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    ax.grid(False)

def bands(ax, items: list[tuple[pd.DataFrame, str, str, str]],
           valid: tuple[float, float] | None = None) -> None:
    """Per (curve, color, label, linestyle): the seed mean as a line, its 95% interval as a band.

    A t-interval over few seeds can leave the metric's valid range (a fraction below 0): the
    band is clipped to `valid`. On a log axis the limits come from the means and the positive
    interval ends, and an interval reaching zero or below is drawn down to the panel's bottom.
    """
    bottom = None
    if ax.get_yscale() == "log":
        values = np.concatenate([curve[column].to_numpy(float)
                                 for curve, *_ in items for column in ("mean", "lo", "hi")])
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            bottom = values.min() / 1.25
            ax.set_ylim(bottom, values.max() * 1.25)
    for curve, color, label, linestyle in items:
        ax.plot(curve["step"], curve["mean"], color=color, linestyle=linestyle, label=label, linewidth=1.6)
        lo, hi = curve["lo"].to_numpy(float), curve["hi"].to_numpy(float)
        if valid is not None:
            lo, hi = np.clip(lo, *valid), np.clip(hi, *valid)
        if bottom is not None:
            # Clip at the visible bottom, not at a tiny number: Agg mis-draws far-off vertices.
            lo = np.where(lo > bottom, lo, bottom)
        ax.fill_between(curve["step"], lo, hi, color=color, alpha=0.2, linewidth=0)

def legend_below(ax, handles=None, ncols: int = 2) -> None:
    """Legend under the panel, clear of the data (constrained layout makes room for it)."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols)

def seeds_text(agg: Aggregate, cells: list[tuple[str, float, float]]) -> str:
    """'mean over 5 seeds' (or '3/5 seeds' when the cells differ) for a figure's subtitle."""
    counts = sorted({int(agg.cell_rows(o, lr, m)["n_runs"].iloc[0]) for o, lr, m in cells})
    return f"mean over {'/'.join(map(str, counts))} seeds" if counts else "mean over seeds"

def lr_colors(lrs) -> dict[float, tuple]:
    cmap = matplotlib.colormaps[LR_CMAP]
    logs = np.log10(np.asarray(lrs, float))
    span = (logs.max() - logs.min()) or 1.0
    # Stop at 0.85: viridis' last yellow is hard to see on white.
    return {lr: cmap(0.85 * (v - logs.min()) / span) for lr, v in zip(lrs, logs)}

def references(agg: Aggregate) -> list[tuple[str, float, float]]:
    found = []
    for optimizer in agg.optimizers:
        ref = agg.reference(optimizer)
        if ref is not None:
            found.append((optimizer, *ref))
    return found

def reference_curves_figure(agg: Aggregate, panels: list[tuple[str, str, str, tuple | None]],
                             log_y: list[bool], figsize) -> Figure:
    """SGD vs Adam at their reference cells, one panel per (metric, panel title, y label, valid range)."""
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    refs = references(agg)
    for ax, (metric, panel_title, ylabel, valid), log in zip(axes, panels, log_y):
        ax.set_title(panel_title)
        if log:
            ax.set_yscale("log")
        items = [(agg.curve(o, lr, m, metric), OPTIMIZERS[o].color, cell_label(o, lr, m), "-")
                 for o, lr, m in refs]
        items = [item for item in items if len(item[0])]
        if not items:
            note(ax, f"{metric} at the reference cells: {NOT_IN_STUDY}\n(analysis.reference)")
            continue
        bands(ax, items, valid)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(f"{seeds_text(agg, refs)}, band: 95% CI over seeds")
    return fig

def optimizer_panels(optimizers: list[str], width: float, height: float, **kwargs) -> tuple[Figure, list]:
    """A figure with one panel per optimizer, at most two side by side (more wrap to new rows,
    so a panel keeps its size at the report's column width); unused panels hidden."""
    columns = min(2, len(optimizers))
    rows = -(-len(optimizers) // columns)
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False, **kwargs).ravel())
    for ax in axes[len(optimizers):]:
        ax.set_visible(False)
    return fig, axes[: len(optimizers)]

def momentum_palette(agg: Aggregate) -> dict[float, str]:
    """One colour per momentum value of the whole study, the same in every panel and figure."""
    momenta = sorted(agg.cells["momentum"].unique())
    return {m: MOMENTUM_COLORS[i % len(MOMENTUM_COLORS)] for i, m in enumerate(momenta)}

NO_CURVATURE = "no curvature runs in this study\n(config: curvature.every > 0 and cells in curvature.cells)"

def curvature_groups(agg: Aggregate) -> list[tuple[str, float]]:
    """(optimizer, momentum) pairs with curvature runs, SGD before Adam, by momentum."""
    pairs = agg.curvature[["optimizer", "momentum"]].drop_duplicates().itertuples(index=False)
    order = {name: i for i, name in enumerate(agg.optimizers)}
    return sorted(((o, float(m)) for o, m in pairs), key=lambda pair: (order[pair[0]], pair[1]))
