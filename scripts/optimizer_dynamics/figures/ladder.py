"""Figure ladder. Each rung's median final validation loss at its best learning rate, per regime,
with an average of the gradients (solid, β = Adam's β₁) and without (dashed)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime
from optimizer_dynamics.claims.ladder import RUNGS
from optimizer_dynamics.config import format_number
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, note
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate, select


def draw(agg: Aggregate) -> Figure:
    """Each rung's median final val loss at its best lr (bars: quartiles over seeds), per regime,
    with averaging (β = Adam's β₁) and without (β = 0); points carry gid "rung"."""
    regimes = sorted(agg.cells["batch"].unique(), key=batch_regime.full_first)
    fig = Figure(figsize=(6.0 * max(1, len(regimes)), 4.3), layout="constrained")
    axes = fig.subplots(1, max(1, len(regimes)), sharey=True, squeeze=False)[0]
    ref = agg.reference("adam")
    betas = sorted({ref[1] if ref else 0.9, 0.0}, reverse=True)
    for ax, regime in zip(axes, regimes or ["full"]):
        ax.set_title(batch_regime.label(regime))
        cells = select(agg.cells, batch=regime)
        drawn = False
        for beta, style in zip(betas, ("-", "--")):
            x, y, lo, hi = [], [], [], []
            for rung, optimizer in enumerate(RUNGS):
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
        ax.set_xticks(range(len(RUNGS)), [OPTIMIZERS[name].label for name in RUNGS])
        if not drawn:
            note(ax, f"the ladder's optimizers: {NOT_IN_STUDY}")
            continue
        ax.set_xlabel("rung: SGD → step normalized → per coordinate → Adam")
        legend_below(ax)
    axes[0].set_ylabel("final validation loss at the best lr\n(median over seeds, bars: quartiles)")
    return fig


FIGURE = FigureEntry(
    name="ladder",
    order=10,
    per_regime=False,
    caption=(
        "Claims 9a-9c: the ablation ladder from SGD to Adam. "
        "Each rung's median final validation loss at its best learning rate, per regime, with an average "
        "of the gradients (solid, β = Adam's β₁) and without (dashed); bars: quartiles over seeds."
    ),
    draw=draw,
)
