"""Figure effective_step. Effective step ‖update‖ / ‖gradient‖ against step for plain SGD and Adam
across the learning-rate grid."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, lr_colors, note, optimizer_panels
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate


MAX_LRS_PER_PANEL = 5


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


def draw(agg: Aggregate) -> Figure:
    """eff_step.global over steps; measured lines carry gid "measured", y = lr lines "lr"."""
    optimizers = agg.optimizers
    fig, axes = optimizer_panels(optimizers, 5.5, 4.1, sharey=True)
    for ax, optimizer in zip(axes, optimizers):
        name = OPTIMIZERS[optimizer].label
        ax.set_yscale("log")
        if not len(agg.cell_rows(optimizer)):
            ax.set_title(name)
            note(ax, f"{name}: {NOT_IN_STUDY}")
            continue
        momentum, lrs = _effective_step_cells(agg, optimizer)
        ax.set_title(f"{name}, {OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}")
        colors = lr_colors(lrs) if lrs else {}
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
            note(ax, f"{name}: eff_step.global for runs that did not diverge: {NOT_IN_STUDY}")
            continue
        ax.set_xlabel("step")
        handles, _ = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="0.3", linestyle="--", label="y = lr (plain SGD's step)"))
        legend_below(ax, handles, ncols=3)
    for ax in axes[:: min(2, len(axes))]:
        ax.set_ylabel("update / grad (effective lr)")
    fig.suptitle("solid: seed mean of the measurement; dashed: y = lr in the same colour")
    return fig


FIGURE = FigureEntry(
    name="effective_step",
    order=2,
    per_regime=True,
    caption=(
        "Claims 2 and 6: the effective step. "
        "Effective step ‖update‖ / ‖gradient‖ against step for each optimizer across its learning-rate "
        "grid; dashed: y = lr, where plain SGD must lie."
    ),
    draw=draw,
)
