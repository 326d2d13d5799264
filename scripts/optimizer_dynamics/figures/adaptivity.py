"""Figure adaptivity. Per-coordinate effective learning rate at the reference settings: median and
90th percentile over coordinates (left) and their ratio (right) against step."""

from __future__ import annotations

from matplotlib.figure import Figure

from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, bands, cell_label, legend_below, note, references, seeds_text
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate


def draw(agg: Aggregate) -> Figure:
    """Per-coordinate effective lr: its median and 90th percentile over coordinates."""
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    spread_ax, ratio_ax = fig.subplots(1, 2, sharex=True)
    spread_ax.set_title("per-coordinate |update_i| / |grad_i|")
    ratio_ax.set_title("spread over coordinates: p90 / median")
    spread_ax.set_yscale("log")
    refs = references(agg)
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
            note(ax, f"coord_eff_lr at the reference cells: {NOT_IN_STUDY}")
    else:
        bands(spread_ax, items)
        ratio_ax.axhline(1, color="0.3", linestyle=":", linewidth=1,
                         label="1: same step for every coordinate")
        ratio_ax.set_ylim(bottom=0)
        for ax in (spread_ax, ratio_ax):
            ax.set_xlabel("step")
            legend_below(ax)
        spread_ax.set_ylabel("update / grad per coordinate (effective lr)")
        ratio_ax.set_ylabel("p90 / median (ratio of seed means)")
    fig.suptitle(f"{seeds_text(agg, refs)}, band: 95% CI over seeds")
    return fig


FIGURE = FigureEntry(
    name="adaptivity",
    order=6,
    per_regime=True,
    caption=(
        "Claim 6b: the step per coordinate. "
        "Per-coordinate effective learning rate at the reference settings: median and 90th percentile "
        "over coordinates (left) and their ratio (right) against step."
    ),
    draw=draw,
)
