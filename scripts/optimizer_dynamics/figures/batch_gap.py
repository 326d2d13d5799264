"""Figure batch_gap. Plain SGD's and Adam's median final validation loss at their best learning
rates against the batch size, over the learning rates every batch size has."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime
from optimizer_dynamics.claims.base import line_name
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, legend_below, note
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate, lrs_in_every_regime, select


def draw(agg: Aggregate) -> Figure:
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
        note(ax, f"batch-size runs: {NOT_IN_STUDY} (config batch_sizes.batch_size)")
        return fig
    ax.set_xticks(range(len(regimes)), [f"full ({n_train})" if regime == "full" else regime for regime in regimes])
    ax.set_xlabel("batch size (in order; the claim compares ranks)")
    ax.set_ylabel("final validation loss at the best lr\n(median over seeds, bars: quartiles)")
    legend_below(ax)
    return fig


FIGURE = FigureEntry(
    name="batch_gap",
    order=11,
    per_regime=False,
    caption=(
        "Claim 9e: the gap and the batch size. "
        "Plain SGD's and Adam's median final validation loss at their best learning rates against the "
        "batch size, over the learning rates every batch size has; bars: quartiles over seeds."
    ),
    draw=draw,
)
