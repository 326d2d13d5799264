"""The seed's Experiment 2: the lr sweep. Good window: the contiguous lrs around the best lr
whose median val loss over seeds (diverged counts as +inf) is within analysis.good_window_tolerance
of the best one, at the reference momentum; its width is log10(hi / lo) decades at the lr grid's
resolution. The best lr is the one with the lowest median: a tuned comparison, as the seed's.

  3a SGD's window is the claimed one: each grid lr inside the claimed window lies in the
     measured window (a count over those lrs).
  3b a small lr slows SGD: each grid lr below the window needs more steps to the target than
     the fastest lr inside it (a count).
  4  Adam's window is the claimed one: as 3a.
  3c Adam is much more robust to the lr than SGD (the seed's key conclusion): Adam's window is
     wider than SGD's by at least ROBUST_MIN_DECADES, and spans more than ROBUST_WIDTH_DECADES.
     Both widths with a 95 % interval from resampling the seeds (the same resampled seeds for
     both optimizers: seeds are paired), BOOTSTRAP_RESAMPLES times with a fixed generator.

window_table() lists every good window the verdicts read (per regime, budget, metric, optimizer
and momentum of the grid): the claims stage writes it as tables.WINDOWS_FILE, which the report
and the interactive sweep show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer_dynamics.tables import LOSS_METRICS
from optimizer_dynamics.claims.base import (
    Claim,
    Family,
    Missing,
    Outcome,
    Study,
    Window,
    count_phrase,
    good_window_index,
    halves_outcome,
    judge_count,
    judge_effect,
)

ROBUST_WIDTH_DECADES = 1.0  # the seed's "more than an order of magnitude"
ROBUST_MIN_DECADES = 0.3  # wider by at least one step of the 1-2-5 grid
WIDTH_TIE = 0.15  # widths closer than half a grid step tie
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # resampling is part of the measurement: the same tables give the same verdicts


WINDOW_COLUMNS = ["batch", "budget", "metric", "optimizer", "momentum", "best_lr", "best_median_loss", "lo", "hi",
                  "decades", "at_lowest_lr", "at_highest_lr", "good_outside", "missing"]


def window_table(cells: pd.DataFrame, analysis: dict) -> pd.DataFrame:
    """Every good window of the grid's cells (Study.window, as the verdicts read it): its best lr
    and that lr's median loss, its ends, its width in decades, whether it reaches an end of the lr
    grid (it may extend beyond), the good lrs outside it; or, where there is none, why (missing)."""
    rows = []
    for (batch, budget), group in cells.groupby(["batch", "budget"], sort=True):
        for metric, (_, median, in_window) in LOSS_METRICS.items():
            study = Study(group.iloc[:0], group, analysis, metric)
            for (optimizer, momentum), line in group.groupby(["optimizer", "momentum"], sort=True):
                row = {"batch": batch, "budget": budget, "metric": metric, "optimizer": optimizer,
                       "momentum": momentum, "good_outside": [], "missing": None}
                try:
                    window = study.window(optimizer, momentum)
                except Missing as reason:
                    rows.append({**row, "missing": str(reason)})
                    continue
                outside = line[line[in_window] & ~line["lr"].between(window.lo, window.hi)]
                rows.append({**row, "best_lr": window.best, "lo": window.lo, "hi": window.hi,
                             "best_median_loss": float(line.loc[line["lr"] == window.best, median].iloc[0]),
                             "decades": window.width, "at_lowest_lr": window.lo == window.grid[0],
                             "at_highest_lr": window.hi == window.grid[-1],
                             "good_outside": sorted(outside["lr"].astype(float))})
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def relative_loss_text(window: Window, lr: float) -> str:
    ratio = window.relative_loss(lr)
    if not np.isfinite(ratio):
        return f"{lr:g} diverged in at least half of its seeds"
    return f"{lr:g} with {ratio:.3g}x the best median {window.metric} val loss"


def location(study: Study, optimizer: str) -> Outcome:
    """3a, 4: the claimed window judged on the grid lrs inside it."""
    window = study.window(optimizer, study.reference(optimizer)[1])
    lo, hi = study.claimed_window(optimizer)
    inside = [lr for lr in window.grid if lo * (1 - 1e-9) <= lr <= hi * (1 + 1e-9)]
    if not inside:
        raise Missing(f"no {optimizer} grid lr lies in the claimed window [{lo:g}, {hi:g}]")
    held = pd.Series([window.lo <= lr <= window.hi for lr in inside])
    outside = [lr for lr, ok in zip(inside, held) if not ok]
    name = "SGD" if optimizer == "sgd" else "Adam"
    if held.all():
        key = f"{name}'s good window {window.span()} holds the claimed {lo:g}-{hi:g}"
    else:
        key = f"{name}'s good window is {window.span()}, not {lo:g}-{hi:g}"
    key += f" ({int(held.sum())} of {len(held)} claimed grid lrs in it)"
    detail = f"Measured window {window.describe()}."
    if outside:
        detail += " Outside it: " + ", ".join(relative_loss_text(window, lr) for lr in outside) + "."
    return Outcome(judge_count(int(held.sum()), len(held)), key,
                   f"{name} {window.describe()}; claimed [{lo:g}, {hi:g}]", detail,
                   n_held=int(held.sum()), n_tested=len(held), unit="claimed grid lrs")


def sgd_window(study: Study) -> Outcome:
    return location(study, "sgd")


def adam_window(study: Study) -> Outcome:
    return location(study, "adam")


def small_lr_slows(study: Study) -> Outcome:
    momentum = study.reference("sgd")[1]
    window = study.window("sgd", momentum)
    cells = study.lr_cells("sgd", momentum).set_index("lr")["median_steps_to_target"]
    below = cells[cells.index < window.lo]
    if below.empty:
        raise Missing(f"no SGD lr below the good window {window.describe()} in the grid")
    in_window = cells[(cells.index >= window.lo) & (cells.index <= window.hi)]
    fastest_lr, fastest = in_window.idxmin(), in_window.min()
    if not np.isfinite(fastest):
        raise Missing("no lr in SGD's good window reaches the target val loss in at least half of its seeds")
    held = pd.Series(below.to_numpy() > fastest)
    names = pd.Series([f"lr {lr:g}" for lr in below.index])

    def steps(value: float) -> str:
        return f"{value:g}" if np.isfinite(value) else "not reached"

    listing = ", ".join(f"lr {lr:g}: {steps(value)}" for lr, value in below.items())
    return Outcome(judge_count(int(held.sum()), len(held)),
                   count_phrase(held, names, "lrs below the good window", holds="slower") +
                   f" than lr {fastest_lr:g} ({steps(fastest)} steps)",
                   f"median steps to the target: {listing}; fastest in the window: lr {fastest_lr:g}: {steps(fastest)}",
                   "Slower: more median steps to the target val loss than the fastest lr of the good window.",
                   n_held=int(held.sum()), n_tested=len(held), unit="lrs below the window")


def bootstrap_widths(study: Study, optimizers: list[str]) -> dict[str, np.ndarray]:
    """Each optimizer's window width (decades) in every resample of the seeds they share."""
    matrices = {name: study.loss_matrix(name, study.reference(name)[1]) for name in optimizers}
    seeds = sorted(set.intersection(*(set(m.index) for m in matrices.values())))
    if len(seeds) < 2:
        raise Missing(f"{len(seeds)} seeds shared by {' and '.join(optimizers)}; need 2")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(seeds), size=(BOOTSTRAP_RESAMPLES, len(seeds)))
    widths = {}
    for name, matrix in matrices.items():
        lrs = matrix.columns.to_numpy(dtype=float)
        values = matrix.loc[seeds].to_numpy(dtype=float)  # seeds x lrs, +inf diverged
        medians = np.median(values[picks], axis=1)  # resamples x lrs
        spans = [good_window_index(row, study.tolerance) for row in medians]
        widths[name] = np.array([np.log10(lrs[hi] / lrs[lo]) if np.isfinite(row).any() else np.nan
                                 for (lo, hi, _), row in zip(spans, medians)])
    return widths


def adam_more_robust(study: Study) -> Outcome:
    sgd, adam = study.window("sgd", study.reference("sgd")[1]), study.window("adam", study.reference("adam")[1])
    widths = bootstrap_widths(study, ["sgd", "adam"])
    gain = widths["adam"] - widths["sgd"]
    effect = adam.width - sgd.width
    lo, hi = np.nanpercentile(gain, [2.5, 97.5])
    wider = judge_effect(effect, lo, hi, neutral=0, tie=WIDTH_TIE, minimum=ROBUST_MIN_DECADES)
    adam_lo, adam_hi = np.nanpercentile(widths["adam"], [2.5, 97.5])
    over_decade = judge_effect(adam.width, adam_lo, adam_hi, neutral=ROBUST_WIDTH_DECADES, tie=0, minimum=0)
    halves = [wider, over_decade]
    key = (f"Adam's good window is {adam.width:.2f} decades ({adam.span()}), SGD's {sgd.width:.2f} ({sgd.span()}): "
           + ("no difference" if wider == "no difference" else f"{effect:+.2f} decades")
           + f" [{lo:+.2f}, {hi:+.2f}]")
    detail = (f"Wider: {wider} (at least {ROBUST_MIN_DECADES:g} decades, tie within {WIDTH_TIE:g}); over "
              f"{ROBUST_WIDTH_DECADES:g} decade: {over_decade} (Adam's width interval [{adam_lo:.2f}, {adam_hi:.2f}]). "
              f"Intervals: {BOOTSTRAP_RESAMPLES} resamples of the seeds.")
    gaps = []
    for name, window in (("SGD", sgd), ("Adam", adam)):
        cell = study.lr_cells(window.optimizer, window.momentum).set_index("lr")
        if "median_overfit_gap" in cell:
            gaps.append(f"{name} {100 * cell.loc[window.best, 'median_overfit_gap']:+.0f} %")
    if gaps:
        detail += (" Overfitting at each best lr (final over selected val loss on the report half, median): "
                   + ", ".join(gaps) + ".")
    return halves_outcome(halves, key, f"SGD {sgd.describe()}; Adam {adam.describe()}", detail, effect, lo, hi)


FAMILY = Family(
    name="Experiment 2: the learning-rate sweep",
    findings=("3c",),
    figures=("lr_sensitivity",),
    claims=[
        Claim("3a", "SGD's good lr window is {sgd_window}", "the seed, Experiment 2",
              "every grid lr in the claimed window lies in the measured good window",
              "good window of SGD at its reference momentum vs the claimed one, on the grid lrs inside the claim",
              sgd_window, axes=("regime", "metric", "budget")),
        Claim("3b", "For SGD, a small lr slows training down", "the seed, Experiment 2",
              "every grid lr below SGD's good window needs more steps to the target than its fastest lr",
              "median steps to the target val loss of each SGD lr below the good window vs the fastest inside it",
              small_lr_slows),
        Claim("4", "Adam's good lr window is {adam_window}", "the seed, Experiment 2",
              "every grid lr in the claimed window lies in the measured good window",
              "good window of Adam at its reference momentum vs the claimed one, on the grid lrs inside the claim",
              adam_window, axes=("regime", "metric", "budget")),
        Claim("3c", "Adam is much more robust to the lr than SGD: its good window spans over an order of "
              "magnitude, SGD's is narrow", "the seed, its key conclusion (Experiments 2 and 3)",
              f"Adam's window - SGD's >= {ROBUST_MIN_DECADES:g} decades (tie within {WIDTH_TIE:g}), and Adam's "
              f"> {ROBUST_WIDTH_DECADES:g} decade",
              "good-window widths in decades, Adam vs SGD, 95 % interval from resampling the seeds",
              adam_more_robust, axes=("regime", "metric", "budget")),
    ],
)
