"""Figure norms. L2 norms of the gradient, the parameters and the update, for the whole network and
per tensor, at the reference settings (mean over seeds, shaded: 95 % interval)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, bands, cell_label, note, references, seeds_text
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate


SCOPES = ["global", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def draw(agg: Aggregate) -> Figure:
    kinds = [("grad", "gradient"), ("param", "parameters"), ("update", "update")]
    scopes = [s for s in SCOPES if (agg.curves["metric"] == f"grad.{s}").any()] or ["global"]
    refs = references(agg)
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
                note(ax, f"{kind}.{scope}:\n{NOT_IN_STUDY}")
                continue
            bands(ax, [(curve, OPTIMIZERS[o].color, cell_label(o, lr, m), "-")
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
                 f"reference cells, {seeds_text(agg, refs)}, band: 95% CI; log scale")
    return fig


FIGURE = FigureEntry(
    name="norms",
    order=1,
    per_regime=True,
    caption=(
        "L2 norms of the gradient, the parameters and the update, for the whole network and per tensor, "
        "at the reference settings (mean over seeds, shaded: 95 % interval)."
    ),
    draw=draw,
)
