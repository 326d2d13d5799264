"""The study's figures, one PNG and one SVG per question, drawn from results/aggregate/ only.

Run: python -m optimizer_dynamics.figures --aggregate-dir results/aggregate --out-dir results/figures

Each figure is built by a function Aggregate -> matplotlib Figure (listed in FIGURES), so tests
and the report can inspect the drawn data. Figures are made with matplotlib.figure.Figure
directly, not pyplot: no global state, no GUI backend, saving goes through Agg (PNG) and the
SVG backend. A cell or metric missing from the study becomes a "not in this study" note in its
panel instead of an error, so a small test grid still yields every figure; the curvature
figures (sharpness, stability) of a study without curvature runs say so and name the config
keys that turn them on.
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from optimizer_dynamics import batch_regime, figure_files, study
from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.config import format_number
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.problems import PROBLEMS
from optimizer_dynamics.stats import mean_interval
from optimizer_dynamics.tables import Aggregate, AggregateError, load_aggregate, lrs_in_every_regime, select
from optimizer_dynamics.claims.base import line_name
from optimizer_dynamics.claims.gradient_noise import ALPHA_BAND
from optimizer_dynamics.claims.ladder import eps_of
from optimizer_dynamics.optimizers.adam import heavy_ball_lr
from optimizer_dynamics.claims.stability import EDGE_BAND

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. Optimizers
# take theirs from the registry (vermillion, blue); momentum values take the others, so the
# two never read alike.
MOMENTUM_COLORS = ["#000000", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442"]
LR_CMAP = "viridis"  # sequential and colour-blind safe, for lr as hue
SCOPES = ["global", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
MAX_LRS_PER_PANEL = 5
DPI = 150
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "optimizer-dynamics",  # fixed SVG element ids: identical input, identical file
}
NOT_IN_STUDY = "not in this study"

# --- labels and small drawing helpers ---------------------------------------------------------


def cell_label(optimizer: str, lr: float, momentum: float | None = None) -> str:
    text = f"{OPTIMIZERS[optimizer].label} lr {format_number(lr)}"
    if momentum is not None:
        text += f", {OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}"
    return text


def _note(ax, text: str) -> None:
    """A panel whose data the study lacks: say so where the reader looks for the plot."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True,
            fontsize=10, color="0.3", bbox={"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.7"})
    # tick_params, not set_xticks([]): the tick locator is shared with sibling panels.
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    ax.grid(False)


def _bands(ax, items: list[tuple[pd.DataFrame, str, str, str]],
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


def _legend_below(ax, handles=None, ncols: int = 2) -> None:
    """Legend under the panel, clear of the data (constrained layout makes room for it)."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols)


def _tick_text(value: float, _position=None) -> str:
    return f"{value:g}"


def _minor_tick_text(value: float, _position=None) -> str:
    """Label the 2x and 5x minor ticks: on an axis spanning about a decade they are the only labels."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (2, 5)) else ""


def _plain_log_ticks(fig: Figure) -> Figure:
    """Log-axis ticks as plain numbers (0.01, 2, 50) instead of mathtext powers like 2x10^0."""
    for ax in fig.axes:
        for axis, scale, (low, high) in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                         (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
            if scale != "log" or not (low > 0 and high > 0):
                continue
            decades = abs(math.log10(high / low))
            if decades < 0.7:
                # Too narrow for the 1-2-5 ticks of a log axis (e.g. 14..18): evenly spaced ones.
                axis.set_major_locator(MaxNLocator(nbins=4))
            axis.set_major_formatter(FuncFormatter(_tick_text))
            label_minor = 0.7 <= decades < 1.5
            axis.set_minor_formatter(FuncFormatter(_minor_tick_text) if label_minor else NullFormatter())
    return fig


def _seeds_text(agg: Aggregate, cells: list[tuple[str, float, float]]) -> str:
    """'mean over 5 seeds' (or '3/5 seeds' when the cells differ) for a figure's subtitle."""
    counts = sorted({int(agg.cell_rows(o, lr, m)["n_runs"].iloc[0]) for o, lr, m in cells})
    return f"mean over {'/'.join(map(str, counts))} seeds" if counts else "mean over seeds"


def _lr_colors(lrs) -> dict[float, tuple]:
    cmap = matplotlib.colormaps[LR_CMAP]
    logs = np.log10(np.asarray(lrs, float))
    span = (logs.max() - logs.min()) or 1.0
    # Stop at 0.85: viridis' last yellow is hard to see on white.
    return {lr: cmap(0.85 * (v - logs.min()) / span) for lr, v in zip(lrs, logs)}


def _references(agg: Aggregate) -> list[tuple[str, float, float]]:
    found = []
    for optimizer in agg.optimizers:
        ref = agg.reference(optimizer)
        if ref is not None:
            found.append((optimizer, *ref))
    return found


def _reference_curves_figure(agg: Aggregate, panels: list[tuple[str, str, str, tuple | None]], title: str,
                             log_y: list[bool], figsize) -> Figure:
    """SGD vs Adam at their reference cells, one panel per (metric, panel title, y label, valid range)."""
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    refs = _references(agg)
    for ax, (metric, panel_title, ylabel, valid), log in zip(axes, panels, log_y):
        ax.set_title(panel_title)
        if log:
            ax.set_yscale("log")
        items = [(agg.curve(o, lr, m, metric), OPTIMIZERS[o].color, cell_label(o, lr, m), "-")
                 for o, lr, m in refs]
        items = [item for item in items if len(item[0])]
        if not items:
            _note(ax, f"{metric} at the reference cells: {NOT_IN_STUDY}\n(analysis.reference)")
            continue
        _bands(ax, items, valid)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(f"{title}\n{_seeds_text(agg, refs)}, band: 95% CI over seeds")
    return fig


# --- the figures -------------------------------------------------------------------------------


def loss_curves_figure(agg: Aggregate) -> Figure:
    fig = _reference_curves_figure(
        agg,
        [("train.loss", "training loss (full train set)", "BCE loss (nats)", None),
         ("val.loss", "validation loss", "BCE loss (nats)", None)],
        "Claim 1: SGD vs Adam at the reference learning rates", log_y=[True, True], figsize=(11, 4.5))
    target = agg.analysis.get("target_val_loss")
    val_ax = fig.axes[1]
    if target is not None and val_ax.lines:
        val_ax.axhline(target, color="0.3", linestyle=":", linewidth=1,
                       label=f"target val loss {format_number(target)}")
        val_ax.legend()
    return fig


def norms_figure(agg: Aggregate) -> Figure:
    kinds = [("grad", "gradient"), ("param", "parameters"), ("update", "update")]
    scopes = [s for s in SCOPES if (agg.curves["metric"] == f"grad.{s}").any()] or ["global"]
    refs = _references(agg)
    fig = Figure(figsize=(3.0 * len(scopes) + 1, 8), layout="constrained")
    axes = fig.subplots(len(kinds), len(scopes), sharex=True, squeeze=False)
    for row, (kind, kind_name) in enumerate(kinds):
        for col, scope in enumerate(scopes):
            ax = axes[row, col]
            ax.set_yscale("log")
            if row == 0:
                ax.set_title(scope if scope == "global" else f"tensor {scope}")
            curves = [(o, lr, m, agg.curve(o, lr, m, f"{kind}.{scope}")) for o, lr, m in refs]
            curves = [c for c in curves if len(c[3])]
            if not curves:
                _note(ax, f"{kind}.{scope}:\n{NOT_IN_STUDY}")
                continue
            _bands(ax, [(curve, OPTIMIZERS[o].color, cell_label(o, lr, m), "-")
                        for o, lr, m, curve in curves])
            if col == 0:
                ax.set_ylabel(f"{kind_name}\nL2 norm")
            if row == len(kinds) - 1:
                ax.set_xlabel("step")
    handles = [Line2D([], [], color=OPTIMIZERS[o].color, label=cell_label(o, lr, m))
               for o, lr, m in refs]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("L2 norms of gradient, parameters and update, whole network and per tensor\n"
                 f"reference cells, {_seeds_text(agg, refs)}, band: 95% CI; log scale")
    return fig


def _effective_step_cells(agg: Aggregate, optimizer: str) -> tuple[float, list[float]]:
    """The momentum to show (reference, else the smallest) and up to MAX_LRS_PER_PANEL lrs
    spread over the grid among cells where no seed diverged, the reference lr included."""
    ref = agg.reference(optimizer)
    rows = agg.cell_rows(optimizer)
    momentum = ref[1] if ref else float(rows["momentum"].min())
    rows = agg.cell_rows(optimizer, momentum=momentum)
    lrs = sorted(rows.loc[rows["n_diverged"] == 0, "lr"])
    if len(lrs) > MAX_LRS_PER_PANEL:
        picks = {lrs[i] for i in np.linspace(0, len(lrs) - 1, MAX_LRS_PER_PANEL).round().astype(int)}
        reference_lr = next((lr for lr in lrs if ref and lr == ref[0]), None)
        if reference_lr is not None:
            nearest = min(picks, key=lambda lr: abs(math.log(lr / reference_lr)))
            picks = (picks - {nearest}) | {reference_lr}
        lrs = sorted(picks)
    return momentum, lrs


def _optimizer_panels(optimizers: list[str], width: float, height: float, **kwargs) -> tuple[Figure, list]:
    """A figure with one panel per optimizer, at most two side by side (more wrap to new rows,
    so a panel keeps its size at the report's column width); unused panels hidden."""
    columns = min(2, len(optimizers))
    rows = -(-len(optimizers) // columns)
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False, **kwargs).ravel())
    for ax in axes[len(optimizers):]:
        ax.set_visible(False)
    return fig, axes[: len(optimizers)]


def effective_step_figure(agg: Aggregate) -> Figure:
    """eff_step.global over steps; measured lines carry gid "measured", y = lr lines "lr"."""
    optimizers = agg.optimizers
    fig, axes = _optimizer_panels(optimizers, 5.5, 4.8, sharey=True)
    for ax, optimizer in zip(axes, optimizers):
        name = OPTIMIZERS[optimizer].label
        ax.set_yscale("log")
        if not len(agg.cell_rows(optimizer)):
            ax.set_title(name)
            _note(ax, f"{name}: {NOT_IN_STUDY}")
            continue
        momentum, lrs = _effective_step_cells(agg, optimizer)
        ax.set_title(f"{name}, {OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}")
        colors = _lr_colors(lrs) if lrs else {}
        drawn = []
        for lr in lrs:
            curve = agg.curve(optimizer, lr, momentum, "eff_step.global")
            if not len(curve):
                continue
            # The measured line is wide and light so the dashed y = lr line stays visible on it.
            ax.plot(curve["step"], curve["mean"], color=colors[lr], linewidth=3.5, alpha=0.55,
                    label=f"lr {format_number(lr)}", gid="measured")
            ax.axhline(lr, color=colors[lr], linestyle="--", linewidth=1.1, gid="lr")
            drawn.append(lr)
        if not drawn:
            _note(ax, f"{name}: eff_step.global for runs that did not diverge: {NOT_IN_STUDY}")
            continue
        ax.set_xlabel("step")
        handles, _ = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="0.3", linestyle="--", label="y = lr (plain SGD's step)"))
        _legend_below(ax, handles, ncols=3)
    for ax in axes[:: min(2, len(axes))]:
        ax.set_ylabel("update / grad (effective lr)")
    fig.suptitle("Claims 2 and 6: effective step ‖update‖ / ‖grad‖ of the whole network\n"
                 "solid: seed mean of the measurement; dashed: y = lr in the same colour")
    return fig


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


def lr_sensitivity_figure(agg: Aggregate) -> Figure:
    optimizers = agg.optimizers
    fig, axes = _optimizer_panels(optimizers, 6.0, 5.2)
    tolerance = agg.analysis.get("good_window_tolerance")
    claimed = agg.analysis.get("claimed_windows") or {}
    for ax, optimizer in zip(axes, optimizers):
        name = OPTIMIZERS[optimizer].label
        ax.set_title(f"{name}")
        rows = agg.cell_rows(optimizer).sort_values(["momentum", "lr"])
        if not len(rows):
            _note(ax, f"{name}: {NOT_IN_STUDY}")
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
        palette = _momentum_palette(agg)
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
        _legend_below(ax, handles + extra)
    fig.suptitle("Claims 3 and 4: final validation loss vs learning rate\n"
                 "bars: interquartile range over seeds; filled markers: lr inside the good window "
                 "(diverged runs count as +inf)")
    return fig


def _momentum_palette(agg: Aggregate) -> dict[float, str]:
    """One colour per momentum value of the whole study, the same in every panel and figure."""
    momenta = sorted(agg.cells["momentum"].unique())
    return {m: MOMENTUM_COLORS[i % len(MOMENTUM_COLORS)] for i, m in enumerate(momenta)}


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


def _momentum_scale(ax) -> None:
    """Momentum axis spaced by -log10(1 - m): 0, 0.5, 0.9, 0.99 become evenly readable."""
    ax.set_xscale("function", functions=(lambda m: -np.log10(1 - np.clip(m, None, 1 - 1e-12)),
                                         lambda x: 1 - 10.0 ** (-x)))


def momentum_figure(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    rows = agg.cell_rows("sgd")
    rows = rows[rows["n_diverged"] < rows["n_runs"]]
    momenta = sorted(rows["momentum"].unique())
    left.set_title("late effective step vs heavy-ball prediction")
    right.set_title("late cosine of consecutive updates")
    if len(momenta) < 2:
        for ax in (left, right):
            _note(ax, f"SGD with several momentum values: {NOT_IN_STUDY}")
    else:
        palette = _momentum_palette(agg)
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
        left.set_xlabel("predicted step lr / (1 - momentum)")
        left.set_ylabel("measured update / grad (effective lr)\nmean over the late steps")
        left.legend(loc="upper left")
        lrs = sorted(rows["lr"].unique())
        colors = _lr_colors(lrs)
        _momentum_scale(right)
        for lr in lrs:
            cell = select(rows, lr=lr).sort_values("momentum")
            _errorbar(right, cell["momentum"], cell, "update_cosine_late", colors[lr],
                      f"lr {format_number(lr)}", line=True)
        right.set_xticks(momenta, [format_number(m) for m in momenta])
        right.set_xlabel("momentum (axis spaced as log 1 / (1 - momentum))")
        right.set_ylabel("cosine(update_t, update_t-1)\nmean over the late steps")
        right.axhline(0, color="0.5", linewidth=0.8)
        right.set_ylim(-1.05, 1.05)  # a cosine; a t-interval over few seeds can reach past +-1
        right.legend(loc="upper left", bbox_to_anchor=(1.02, 1), title="SGD")
    fig.suptitle("Claim 5: SGD momentum, effective step and smoothness in the late steps\n"
                 "mean over the seeds that did not diverge, bars: 95% t-interval over those seeds")
    return fig


def _errorbar(ax, x, cell: pd.DataFrame, value: str, color, label: str, line: bool = False) -> None:
    y = cell[f"{value}_mean"].to_numpy(float)
    lo, hi = cell[f"{value}_lo"].to_numpy(float), cell[f"{value}_hi"].to_numpy(float)
    # A single finished seed has no interval (NaN): draw the point without a bar.
    yerr = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
    yerr = np.where(np.isfinite(yerr), yerr, 0)
    ax.errorbar(np.asarray(x, float), y, yerr=yerr, color=color, marker="o", markersize=5,
                linestyle="-" if line else "none", capsize=2, label=label, zorder=3)


def saturation_figure(agg: Aggregate) -> Figure:
    return _reference_curves_figure(
        agg,
        [("logit.saturated_frac", "saturated logits",
          "fraction of the step's batch with\nsigmoid(logit) outside [0.01, 0.99]", (0.0, 1.0)),
         ("logit.mean_abs", "logit size", "mean |logit| on the step's batch", (0.0, np.inf))],
        "Logit dynamics and saturation, SGD vs Adam at the reference learning rates",
        log_y=[False, False], figsize=(11, 4.5))


def adaptivity_figure(agg: Aggregate) -> Figure:
    """Per-coordinate effective lr: its median and 90th percentile over coordinates."""
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    spread_ax, ratio_ax = fig.subplots(1, 2, sharex=True)
    spread_ax.set_title("per-coordinate |update_i| / |grad_i|")
    ratio_ax.set_title("spread over coordinates: p90 / median")
    spread_ax.set_yscale("log")
    refs = _references(agg)
    items = []
    for optimizer, lr, momentum in refs:
        median = agg.curve(optimizer, lr, momentum, "coord_eff_lr.median")
        p90 = agg.curve(optimizer, lr, momentum, "coord_eff_lr.p90")
        if not len(median) or not len(p90):
            continue
        color = OPTIMIZERS[optimizer].color
        label = cell_label(optimizer, lr, momentum)
        items += [(median, color, f"{label}: median", "-"), (p90, color, f"{label}: p90", "--")]
        both = median.merge(p90, on="step", suffixes=("_median", "_p90"))
        ratio_ax.plot(both["step"], both["mean_p90"] / both["mean_median"], color=color, label=label,
                      linewidth=1.6)
    if not items:
        for ax in (spread_ax, ratio_ax):
            _note(ax, f"coord_eff_lr at the reference cells: {NOT_IN_STUDY}")
    else:
        _bands(spread_ax, items)
        ratio_ax.axhline(1, color="0.3", linestyle=":", linewidth=1,
                         label="1: same step for every coordinate")
        ratio_ax.set_ylim(bottom=0)
        for ax in (spread_ax, ratio_ax):
            ax.set_xlabel("step")
            _legend_below(ax)
        spread_ax.set_ylabel("update / grad per coordinate (effective lr)")
        ratio_ax.set_ylabel("p90 / median (ratio of seed means)")
    fig.suptitle("Claim 6: is the step adaptive per coordinate? (reference learning rates)\n"
                 f"{_seeds_text(agg, refs)}, band: 95% CI over seeds")
    return fig


# --- curvature ---------------------------------------------------------------------------------

NO_CURVATURE = "no curvature runs in this study\n(config: curvature.every > 0 and cells in curvature.cells)"
# curvature.parquet column -> (name, what it is, its threshold when it is the one compared)
SHARPNESS_QUANTITIES = {
    "sharpness": ("sharpness λmax(H)", "top eigenvalue of the loss Hessian", "2 (1 + momentum) / lr"),
    "precond_sharpness": ("preconditioned sharpness λmax(P⁻¹H)", "P: Adam's preconditioner",
                          "(2+2β1) / ((1−β1) lr)"),
}


def _curvature_groups(agg: Aggregate) -> list[tuple[str, float]]:
    """(optimizer, momentum) pairs with curvature runs, SGD before Adam, by momentum."""
    pairs = agg.curvature[["optimizer", "momentum"]].drop_duplicates().itertuples(index=False)
    order = {name: i for i, name in enumerate(agg.optimizers)}
    return sorted(((o, float(m)) for o, m in pairs), key=lambda pair: (order[pair[0]], pair[1]))


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
    for optimizer, momentum in _curvature_groups(agg):
        preconditioned = select(agg.curvature, optimizer=optimizer, momentum=momentum)["precond_sharpness"].notna().any()
        panels.append((optimizer, momentum, "precond_sharpness" if preconditioned else "sharpness", True))
        if preconditioned:
            panels.append((optimizer, momentum, "sharpness", False))
    return panels


def sharpness_figure(agg: Aggregate) -> Figure:
    """The sharpness over steps per lr (seed mean, range band), thresholds dashed (gid "threshold")."""
    panels = _sharpness_panels(agg)
    ncols = 2 if len(panels) > 1 else 1
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(6.0 * ncols, 4.6 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[max(1, len(panels)):]:
        ax.set_visible(False)
    if not panels:
        _note(axes[0], NO_CURVATURE)
    for ax, (optimizer, momentum, column, thresholded) in zip(axes, panels):
        name, meaning, formula = SHARPNESS_QUANTITIES[column]
        rows = select(agg.curvature, optimizer=optimizer, momentum=momentum)
        lrs = sorted(rows["lr"].unique())
        colors = _lr_colors(lrs)
        ax.set_yscale("log")
        _bands(ax, [(_seed_range(select(rows, optimizer=optimizer, lr=lr), column), colors[lr],
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
        _legend_below(ax, handles, ncols=2)
    every = (agg.config.get("curvature") or {}).get("every")
    measured = "exact Hessian of the full-batch training loss" + (f" every {every} steps" if every else "")
    fig.suptitle("Sharpness against the stability thresholds (Cohen et al. 2021, 2022)\n"
                 f"{measured}; line: mean over seeds, band: range over seeds; dashed: thresholds")
    return fig


def _late_ratio_panel(ax, agg: Aggregate) -> None:
    """Each curvature cell's late sharpness / threshold: a dot per finished seed (gid "seed"), and
    their mean with its t-interval (gid "mean")."""
    runs = agg.runs[agg.runs["set"] == "curvature"]
    ax.set_title("late sharpness / threshold, per curvature setting (m: momentum)")
    if runs.empty:
        _note(ax, NO_CURVATURE)
        return
    cells = [(o, lr, m) for o, m in _curvature_groups(agg)
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
    # further down than _legend_below: clear of the three-line tick labels
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)


def _catapult_panel(ax, agg: Aggregate) -> None:
    """SGD curvature runs over the dense early steps: sharpness / threshold per (lr, momentum),
    mean over seeds (gid "catapult"); a run starting above 1 that survives drops below it."""
    ax.set_title("SGD, first steps: sharpness / threshold 2 (1 + m) / lr (catapult)")
    rows = select(agg.curvature, optimizer="sgd")
    early = int((agg.config.get("curvature") or {}).get("early_steps") or 0) or 100
    rows = rows[rows["step"] <= early]
    if rows.empty:
        _note(ax, NO_CURVATURE.replace("curvature runs", "SGD curvature runs"))
        return
    ax.set_yscale("log")
    colors = _lr_colors(sorted(rows["lr"].unique()))
    for (momentum, lr), cell in rows.groupby(["momentum", "lr"], sort=True):
        ratio = (cell["sharpness"] / cell["threshold"]).groupby(cell["step"]).mean()
        ax.plot(ratio.index, ratio.to_numpy(), color=colors[lr], linestyle="-" if momentum == 0 else "--",
                marker="o", markersize=2.5, linewidth=1.3, gid="catapult",
                label=f"lr {format_number(lr)}, m {format_number(momentum)}")
    ax.axhline(1, color="0.3", linestyle=":", linewidth=1, label="threshold (ratio 1)")
    ax.set_xlabel("step")
    ax.set_ylabel("sharpness / threshold (mean over seeds)")
    _legend_below(ax, ncols=3)


def stability_figure(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    _late_ratio_panel(left, agg)
    _catapult_panel(right, agg)
    fig.suptitle("Edge of stability: where the late sharpness sits against its threshold, and the catapult "
                 "of the runs that start above it (Lewkowycz et al. 2020)\n"
                 "threshold: 2 (1 + momentum) / lr for SGD, (2+2β1) / ((1−β1) lr) on P⁻¹H for Adam; "
                 "late: the last curvature steps of runs that did not diverge")
    return fig

def _regime_styles(agg: Aggregate) -> dict[str, str]:
    """A line style per regime, the same in both noise panels."""
    return dict(zip(study.regimes(agg.config), ["-", "--", ":", "-."]))


def _noise_scale_panel(ax, agg: Aggregate) -> None:
    """B_simple against step at the reference cells, per regime (line style), beside the batch
    sizes in use (dotted): below a dotted line of its regime, the batch exceeds the noise scale."""
    ax.set_yscale("log")
    styles = _regime_styles(agg)
    drawn = []
    for regime, style in styles.items():
        in_regime = agg.in_regime(regime)
        for optimizer, lr, momentum in _references(in_regime):
            curve = in_regime.curve(optimizer, lr, momentum, "noise.b_simple")
            if len(curve):
                drawn.append((curve, OPTIMIZERS[optimizer].color,
                              f"{cell_label(optimizer, lr, momentum)}, {batch_regime.label(regime)}", style))
    if not drawn:
        _note(ax, f"noise.b_simple: {NOT_IN_STUDY}\n(training.noise_every > 0)")
        return
    _bands(ax, drawn)
    for regime in styles:
        size = batch_regime.batch_size(regime) or agg.config["data"]["n_train"]
        ax.axhline(size, color="0.35", linestyle=":", linewidth=1)
        ax.annotate(f"batch {size}", (0, size), xycoords=("axes fraction", "data"), xytext=(3, 3),
                    textcoords="offset points", fontsize=8, color="0.35")
    ax.set_title("noise scale B_simple = tr(Σ) / |G|²")
    ax.set_xlabel("step")
    ax.set_ylabel("B_simple (points)")
    _legend_below(ax, ncols=1)


def _alpha_panel(ax, agg: Aggregate) -> None:
    """Median alpha per lr at each optimizer's reference momentum, per regime, with Cockpit's band."""
    runs = select(agg.runs, set="grid")
    if "noise_alpha_median" not in runs or runs["noise_alpha_median"].isna().all():
        _note(ax, f"noise.alpha: {NOT_IN_STUDY}\n(training.noise_every > 0)")
        return
    styles = _regime_styles(agg)
    ax.axhspan(*ALPHA_BAND, color="0.85", label=f"Cockpit's best lrs: {ALPHA_BAND[0]:g} to {ALPHA_BAND[1]:g}")
    for optimizer in agg.optimizers:
        ref = agg.reference(optimizer)
        if ref is None:
            continue
        for regime, style in styles.items():
            rows = select(runs, batch=regime, optimizer=optimizer, momentum=ref[1])
            alpha = rows.groupby("lr")["noise_alpha_median"].median().dropna()
            if len(alpha):
                ax.plot(alpha.index, alpha.to_numpy(), marker="o", markersize=3, linestyle=style,
                        color=OPTIMIZERS[optimizer].color,
                        label=f"{OPTIMIZERS[optimizer].label} ({OPTIMIZERS[optimizer].momentum_symbol} {ref[1]:g}), "
                              f"{batch_regime.label(regime)}")
    ax.set_xscale("log")
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_title("Cockpit's α of the step: median over noise steps and seeds")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("α  (−1: no move, 0: to the minimum, 1: across)")
    _legend_below(ax, ncols=1)


def noise_figure(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    _noise_scale_panel(left, agg)
    _alpha_panel(right, agg)
    fig.suptitle("Claims 8a-8c: gradient noise, exact over the training set at every noise step\n"
                 "left: reference cells, mean over seeds, band: 95% CI; right: runs that did not diverge")
    return fig


# The ablation ladder's rungs, SGD to Adam (claims 9a-9c), and the averaging betas drawn.
LADDER = ("sgd", "normalized", "sign", "adam")


def ladder_figure(agg: Aggregate) -> Figure:
    """Each rung's median final val loss at its best lr (bars: quartiles over seeds), per regime,
    with averaging (β = Adam's β₁) and without (β = 0); points carry gid "rung"."""
    regimes = sorted(agg.cells["batch"].unique(), key=batch_regime.full_first)
    fig = Figure(figsize=(6.0 * max(1, len(regimes)), 4.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(regimes)), sharey=True, squeeze=False)[0]
    ref = agg.reference("adam")
    betas = sorted({ref[1] if ref else 0.9, 0.0}, reverse=True)
    for ax, regime in zip(axes, regimes or ["full"]):
        ax.set_title(batch_regime.label(regime))
        cells = select(agg.cells, batch=regime)
        drawn = False
        for beta, style in zip(betas, ("-", "--")):
            x, y, lo, hi = [], [], [], []
            for rung, optimizer in enumerate(LADDER):
                line = select(cells, optimizer=optimizer, momentum=beta)
                finite = line[np.isfinite(line["median_final_val_loss"])]
                if finite.empty:
                    continue
                best = finite.loc[finite["median_final_val_loss"].idxmin()]
                x.append(rung)
                y.append(best["median_final_val_loss"])
                lo.append(best["q25_final_val_loss"])
                hi.append(best["q75_final_val_loss"])
            if not x:
                continue
            drawn = True
            y, lo, hi = (np.asarray(v, float) for v in (y, lo, hi))
            ax.errorbar(x, y, yerr=np.vstack([y - lo, np.where(np.isfinite(hi), hi - y, 0)]), color="0.2",
                        linestyle=style, marker="o", capsize=3, label=f"β {format_number(beta)}", gid="rung")
        ax.set_xticks(range(len(LADDER)), [OPTIMIZERS[name].label for name in LADDER])
        if not drawn:
            _note(ax, f"the ladder's optimizers: {NOT_IN_STUDY}")
            continue
        ax.set_xlabel("rung: SGD → step normalized → per coordinate → Adam")
        _legend_below(ax)
    axes[0].set_ylabel("final validation loss at the best lr\n(median over seeds, bars: quartiles)")
    fig.suptitle("Claims 9a-9c: the ablation ladder from SGD to Adam, each rung at its best learning rate")
    return fig


def batch_gap_figure(agg: Aggregate) -> Figure:
    """Claim 9e: plain SGD's and Adam's median final val loss at their best lr against the batch
    size (the grid's regimes and the batch-size runs, smallest first, full batch last), over the
    lrs every batch size has, as the claim compares them; bars: quartiles (gid "best")."""
    cells = pd.concat([agg.cells, select(agg.side_cells_by_budget["batch_sizes"], budget=1.0)])
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    n_train = int((agg.config.get("data") or {}).get("n_train") or 0)
    regimes = sorted(set(cells["batch"]), key=batch_regime.by_batch_size)
    drawn = False
    for optimizer in ("sgd", "adam"):
        momentum = (agg.reference(optimizer) or (None, 0.0))[1]
        line = select(cells, optimizer=optimizer, momentum=momentum)
        line = line[line["lr"].isin(lrs_in_every_regime(cells, optimizer, momentum))]
        x, y, lo, hi = [], [], [], []
        for regime in regimes:
            finite = line[(line["batch"] == regime) & np.isfinite(line["median_final_val_loss"])]
            if finite.empty:
                continue
            best = finite.loc[finite["median_final_val_loss"].idxmin()]
            x.append(regimes.index(regime))
            y.append(best["median_final_val_loss"])
            lo.append(best["q25_final_val_loss"])
            hi.append(best["q75_final_val_loss"])
        if len(x) < 2:
            continue
        drawn = True
        y, lo, hi = (np.asarray(v, float) for v in (y, lo, hi))
        ax.errorbar(x, y, yerr=np.vstack([y - lo, np.where(np.isfinite(hi), hi - y, 0)]), marker="o", capsize=3,
                    color=OPTIMIZERS[optimizer].color, label=line_name(optimizer, momentum), gid="best")
    if not drawn:
        _note(ax, f"batch-size runs: {NOT_IN_STUDY} (config batch_sizes.batch_size)")
        return fig
    ax.set_xticks(range(len(regimes)), [f"full ({n_train})" if regime == "full" else regime for regime in regimes])
    ax.set_xlabel("batch size (in order; the claim compares ranks)")
    ax.set_ylabel("final validation loss at the best lr\n(median over seeds, bars: quartiles)")
    _legend_below(ax)
    fig.suptitle("Claim 9e: SGD and Adam at their best learning rates, by batch size")
    return fig


EPS_MARKERS = ["o", "s", "^", "D", "v"]  # Adam's eps values, smallest first


def eps_overlay_figure(agg: Aggregate) -> Figure:
    """Claim 9f: per regime of the epsilon runs, the median final val loss against the heavy-ball
    lr: the grid's heavy ball at its lrs (gid "heavy_ball"), and Adam at each eps at its lr x (1 -
    beta1) / eps (gid "adam"); bands: quartiles over seeds; a cross on the top edge: half the seeds
    or more diverged there."""
    adam = select(agg.side_cells_by_budget["epsilon"], budget=1.0)
    regimes = sorted(set(adam["batch"]), key=batch_regime.full_first) or ["none"]
    fig = Figure(figsize=(6.4 * len(regimes), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(regimes), squeeze=False)[0])
    if adam.empty:
        _note(axes[0], f"epsilon runs: {NOT_IN_STUDY} (config epsilon.eps)")
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
        _legend_below(ax, ncols=1)
    axes[0].set_ylabel("final validation loss\n(median over seeds, band: quartiles; ×: diverged)")
    fig.suptitle("Claim 9f: Adam with a large ε against heavy ball at lr (1 − β₁)/ε")
    return fig


def stochastic_edge_figure(agg: Aggregate) -> Figure:
    """Claim 7e: per minibatch curvature cell, the late batch sharpness and the late full-batch
    sharpness over the threshold 2 (1 + m) / lr, a dot per finished seed (gids "batch", "full")."""
    runs = agg.runs[agg.runs["set"] == "minibatch_curvature"]
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    if runs.empty:
        _note(ax, f"minibatch curvature runs: {NOT_IN_STUDY} (config curvature.minibatch.cells)")
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
    _legend_below(ax)
    fig.suptitle("Claim 7e: the edge of stochastic stability")
    return fig


PROBLEM_STYLES = ["-", "--", "-.", ":"]  # the problems of one panel, with a colour ramp


def conditioning_figure(agg: Aggregate) -> Figure:
    """Per optimizer line of the conditioning runs and regime: median final val loss against lr,
    one curve per problem (bars: quartiles over seeds), its best lr circled; lines carry gid
    "problem"."""
    cells = select(agg.side_cells_by_budget["conditioning"], budget=1.0)
    lines = list(dict.fromkeys(zip(cells["batch"], cells["optimizer"], cells["momentum"])))
    lines.sort(key=lambda line: (batch_regime.full_first(line[0]), OPTIMIZERS[line[1]].order))
    fig, axes = _optimizer_panels(lines or [None], 6.0, 4.8, sharey=True)
    if not lines:
        _note(axes[0], f"conditioning runs: {NOT_IN_STUDY} (config conditioning.problems)")
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
        _legend_below(ax)
    fig.suptitle("Claims 10b-10d: the lr sweep on moons, stretched (κ) and rotated\n"
                 "bars: interquartile range over seeds; circled: each problem's best lr")
    return fig


FIGURES = {
    "loss_curves": loss_curves_figure,
    "norms": norms_figure,
    "effective_step": effective_step_figure,
    "lr_sensitivity": lr_sensitivity_figure,
    "momentum": momentum_figure,
    "saturation": saturation_figure,
    "adaptivity": adaptivity_figure,
    "sharpness": sharpness_figure,
    "stability": stability_figure,
    "noise": noise_figure,
    "ladder": ladder_figure,
    "batch_gap": batch_gap_figure,
    "conditioning": conditioning_figure,
    "stochastic_edge": stochastic_edge_figure,
    "eps_overlay": eps_overlay_figure,
}


if set(FIGURES) != {*figure_files.REGIME_FIGURES, *figure_files.STUDY_FIGURES}:
    raise RuntimeError("figures.FIGURES and figure_files name different figures")


def build_figure(stem: str, agg: Aggregate) -> Figure:
    return _plain_log_ticks(FIGURES[stem](agg))


# --- writing -----------------------------------------------------------------------------------


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """PNG and SVG, each written under a temporary name and renamed into place."""
    written = []
    for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        if written:
            # The layout is settled by the first save; recomputing it for the SVG doubles the time.
            fig.set_layout_engine("none")
        path = out_dir / f"{stem}.{fmt}"
        with atomic_path(path) as tmp:
            if fmt == "png":
                _save_palette_png(fig, tmp, metadata)
            else:
                fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        written.append(path)
    return written


def _save_palette_png(fig: Figure, path: Path, metadata: dict) -> None:
    """The PNG with a 256-colour palette: line plots have few colours, and the file is less than
    half the size of the full-colour one (the HTML report embeds every figure)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=metadata)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, format="png", optimize=True)


def render_all(agg: Aggregate, out_dir: str | Path, stems: list[str] | None = None, jobs: int = 1) -> list[Path]:
    """Every figure file of figure_files (the grid's figures once per regime); `stems` picks
    figures by name; `jobs` processes draw them side by side (forked: each inherits agg)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [file for file in figure_files.figure_files(agg.config) if not stems or file[1] in stems]
    if jobs <= 1 or len(files) <= 1:
        return [path for file in files for path in render_file(agg, out_dir, *file)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(files)), mp_context=multiprocessing.get_context("fork"),
                             initializer=_keep_aggregate, initargs=(agg, out_dir)) as pool:
        return [path for paths in pool.map(_render_kept, files) for path in paths]


_KEPT: dict = {}  # a worker's aggregate and output directory, inherited at fork


def _keep_aggregate(agg: Aggregate, out_dir: Path) -> None:
    _KEPT.update(agg=agg, out_dir=out_dir)


def _render_kept(file: tuple[str, str, str | None]) -> list[Path]:
    return render_file(_KEPT["agg"], _KEPT["out_dir"], *file)


def render_file(agg: Aggregate, out_dir: Path, stem: str, figure: str, regime: str | None) -> list[Path]:
    """One figure file: a study figure, or a grid figure in one regime (its title says which)."""
    with matplotlib.rc_context(STYLE):
        if regime is None:
            return save_figure(build_figure(figure, agg), out_dir, stem)
        fig = build_figure(figure, agg.in_regime(regime))
        fig.suptitle(f"[{batch_regime.label(regime)}] {fig.get_suptitle()}")
        return save_figure(fig, out_dir, stem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aggregate-dir", required=True,
                        help="directory with cells.parquet, curves.parquet, curvature.parquet, runs.parquet, "
                             "study.json")
    parser.add_argument("--out-dir", required=True, help="where <stem>.png and <stem>.svg are written")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), help="draw only these figures")
    parser.add_argument("--jobs", type=int, default=1, help="processes drawing figures side by side (default 1)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        agg = load_aggregate(args.aggregate_dir, with_verdicts=False)
    except AggregateError as error:
        parser.error(str(error))
    render_all(agg, args.out_dir, args.only, args.jobs)


if __name__ == "__main__":
    main()
