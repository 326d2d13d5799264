"""Figure norms. L2 norms of the gradient, the parameters and the update, for the whole network and
per tensor, at the reference settings: a column per optimizer, a colour per tensor, so the figure
keeps six panels readable at the report's column width (a panel per tensor made fifteen)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, bands, cell_label, note, references, seeds_text
from optimizer_dynamics.tables import Aggregate

# the whole network, then each parameter tensor; Okabe-Ito colours, the whole network in black
SCOPES = {"global": "#000000", "fc1.weight": "#E69F00", "fc1.bias": "#009E73", "fc2.weight": "#CC79A7",
          "fc2.bias": "#56B4E9"}
KINDS = {"grad": "gradient", "param": "parameters", "update": "update"}


def draw(agg: Aggregate) -> Figure:
    scopes = [s for s in SCOPES if (agg.curves["metric"] == f"grad.{s}").any()] or ["global"]
    refs = references(agg)
    fig = Figure(figsize=(4.0 * max(1, len(refs)) + 0.6, 8.5), layout="constrained")
    axes = fig.subplots(len(KINDS), max(1, len(refs)), sharex=True, squeeze=False)
    if not refs:
        for ax in axes.ravel():
            note(ax, f"the reference cells: {NOT_IN_STUDY}\n(analysis.reference)")
    for col, (optimizer, lr, momentum) in enumerate(refs):
        axes[0, col].set_title(cell_label(optimizer, lr, momentum))
        for row, (kind, kind_name) in enumerate(KINDS.items()):
            ax = axes[row, col]
            ax.set_yscale("log")
            items = [(agg.curve(optimizer, lr, momentum, f"{kind}.{scope}"), SCOPES[scope], scope, "-")
                     for scope in scopes]
            items = [item for item in items if len(item[0])]
            if not items:
                note(ax, f"{kind} norms:\n{NOT_IN_STUDY}")
                continue
            bands(ax, items)
            if col == 0:
                ax.set_ylabel(f"{kind_name}\nL2 norm")
            if row == len(KINDS) - 1:
                ax.set_xlabel("step")
    for row in axes:  # one y range per row, spanning every column's bands, so the columns compare
        drawn = [ax for ax in row if ax.lines]
        if len(drawn) > 1:
            low, high = min(ax.get_ylim()[0] for ax in drawn), max(ax.get_ylim()[1] for ax in drawn)
            for ax in drawn:
                ax.set_ylim(low, high)
    handles = [Line2D([], [], color=SCOPES[s], label="whole network" if s == "global" else f"tensor {s}")
               for s in scopes]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    fig.suptitle(f"reference cells, {seeds_text(agg, refs)}, band: 95% CI; log scale")
    return fig


FIGURE = FigureEntry(
    name="norms",
    order=1,
    per_regime=True,
    caption=(
        "Norms of the gradient, the parameters and the update. "
        "L2 norms of the gradient, the parameters and the update at the reference settings, a column per "
        "optimizer and a colour per tensor, the whole network in black (mean over seeds, shaded: 95 % interval)."
    ),
    draw=draw,
)
