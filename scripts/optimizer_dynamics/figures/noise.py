"""Figure noise. Left: B_simple at the reference cells against step, per regime, beside the batch
sizes in use (dotted)."""

from __future__ import annotations

from matplotlib.figure import Figure

from optimizer_dynamics import batch_regime, study
from optimizer_dynamics.claims.gradient_noise import ALPHA_BAND
from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY, bands, cell_label, legend_below, note, references
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import Aggregate, select


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
        for optimizer, lr, momentum in references(in_regime):
            curve = in_regime.curve(optimizer, lr, momentum, "noise.b_simple")
            if len(curve):
                drawn.append((curve, OPTIMIZERS[optimizer].color,
                              f"{cell_label(optimizer, lr, momentum)}, {batch_regime.label(regime)}", style))
    if not drawn:
        note(ax, f"noise.b_simple: {NOT_IN_STUDY}\n(training.noise_every > 0)")
        return
    bands(ax, drawn)
    for regime in styles:
        size = batch_regime.batch_size(regime) or agg.config["data"]["n_train"]
        ax.axhline(size, color="0.35", linestyle=":", linewidth=1)
        ax.annotate(f"batch {size}", (0, size), xycoords=("axes fraction", "data"), xytext=(3, 3),
                    textcoords="offset points", fontsize=8, color="0.35")
    ax.set_title("noise scale B_simple = tr(Σ) / |G|²")
    ax.set_xlabel("step")
    ax.set_ylabel("B_simple (points)")
    legend_below(ax, ncols=1)


def _alpha_panel(ax, agg: Aggregate) -> None:
    """Median alpha per lr at each optimizer's reference momentum, per regime, with Cockpit's band."""
    runs = select(agg.runs, set="grid")
    if "noise_alpha_median" not in runs or runs["noise_alpha_median"].isna().all():
        note(ax, f"noise.alpha: {NOT_IN_STUDY}\n(training.noise_every > 0)")
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
    legend_below(ax, ncols=1)


def draw(agg: Aggregate) -> Figure:
    fig = Figure(figsize=(13, 5.7), layout="constrained")
    left, right = fig.subplots(1, 2)
    _noise_scale_panel(left, agg)
    _alpha_panel(right, agg)
    fig.suptitle("left: reference cells, mean over seeds, band: 95% CI; right: runs that did not diverge")
    return fig


FIGURE = FigureEntry(
    name="noise",
    order=9,
    per_regime=False,
    caption=(
        "Claims 8a-8c: gradient noise. "
        "Left: B_simple at the reference cells against step, per regime, beside the batch sizes in use "
        "(dotted). Right: median α per learning rate at each optimizer's reference momentum, per regime; "
        "grey: where Cockpit's best learning rates fell."
    ),
    draw=draw,
)
