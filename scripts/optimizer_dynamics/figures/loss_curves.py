"""Figure loss_curves. Training and validation loss of the reference pair against step (mean over
seeds, shaded: 95 % interval)."""

from __future__ import annotations

from matplotlib.figure import Figure

from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import reference_curves_figure
from optimizer_dynamics.tables import Aggregate


def draw(agg: Aggregate) -> Figure:
    fig = reference_curves_figure(
        agg,
        [("train.loss", "training loss (full train set)", "BCE loss (nats)", None),
         ("val.loss", "validation loss", "BCE loss (nats)", None)],
        log_y=[True, True], figsize=(11, 4.0))
    target = agg.analysis.get("target_val_loss")
    val_ax = fig.axes[1]
    if target is not None and val_ax.lines:
        val_ax.axhline(target, color="0.3", linestyle=":", linewidth=1,
                       label=f"target val loss {format_number(target)}")
        val_ax.legend()
    return fig


FIGURE = FigureEntry(
    name="loss_curves",
    order=0,
    per_regime=True,
    caption=(
        "Claim 1: SGD and Adam at the seed's learning rates. "
        "Training and validation loss of the reference pair against step (mean over seeds, shaded: 95 % "
        "interval)."
    ),
    draw=draw,
)
