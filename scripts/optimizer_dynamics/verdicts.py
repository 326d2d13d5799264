"""The seed's claims, each tested against the aggregated runs in every setting it depends on:
one row per claim and setting, every number from data.

evaluate(runs, cells, analysis) -> DataFrame with columns COLUMNS: id, claim, source (the seed's
experiment, a paper, or this project), headline, the setting (regime, metric, control, budget,
budget_steps, and its label `setting`), test (what is measured), measured, verdict, detail.
verdict is one of VERDICTS; a claim the data cannot test (a missing optimizer, momentum or lr,
every run diverged, ...) is "inconclusive" with the reason, never an exception.

Settings. A claim is judged over its `axes` (Claim.axes): the batch regime of the grid (full
batch, minibatch sizes), the loss metric for claims about loss (final or best val loss,
LOSS_METRICS), the control for momentum's claims (plain SGD at the same lr, or at lr / (1 - m),
the matched control), and the budget (analysis.budgets: the runs cut to a fraction of their
steps; aggregate.budget_prefix). The curvature claims (7a-7d) read the curvature runs, full
batch, at each budget. The headline sums a claim's verdicts over its settings: "holds in every
setting", "fails in every setting", "inconclusive in every setting", or "holds in k of N:
<where>" and where it held partly, failed, or could not be decided, each place named by the
fewest axis values that pick it out (describe_settings).

Shared definitions. Reference pair: analysis.reference (the seed's Experiment 1 lrs). Best lr:
the lr with the lowest median final val loss among the cells of one (optimizer, momentum), the
momentum being the reference one (0 for SGD, 0.9 for Adam by default). Good window: the
contiguous range of lrs around the best lr whose cells are in_good_window (aggregate.py); its
width is log10(hi / lo) decades at the resolution of the lr grid. Seeds are paired across
optimizers and momenta (the same seed gives the same initial weights). Intervals "lo-hi" after
a median are the range over seeds; "[lo, hi]" after a mean is the t 95% interval (stats.py).
Diverged runs and runs that never reached the target count as the worst outcome (+inf).

The tests, as the metric column states them:
  1a faster: steps_to_target, Adam vs SGD, at the reference pair and at each optimizer's best
     lr. At each comparison Adam counts as faster only if it is faster in every paired seed.
     supported: faster at both comparisons; partly: at one; refuted: at neither.
  1b lower val loss: best_val_loss, same comparisons and rule.
  2  max over finished plain-SGD runs and all their steps of |eff_step.global / lr - 1|;
     supported if below EXACT_TOLERANCE (training is float64), else refuted.
  3a the measured SGD good window vs the claimed one, judged on the grid lrs inside the claimed
     window: supported if all are in the measured window, refuted if none, else partly; and
     "narrow": SGD's width < Adam's. Both parts supported -> supported, both refuted ->
     refuted, else partly supported.
  3b small lr slows SGD: median steps_to_target of each grid lr below the good window vs the
     fastest lr in the window; supported if all are slower, refuted if none, else partly.
  4  the measured Adam window vs the claimed one (as 3a) and "robust": width > ROBUST_WIDTH_DECADES.
  5a for each momentum m > 0 and each lr where SGD(m) and plain SGD at the control lr (the same
     lr, or lr / (1 - m)) have finished runs: seed-paired ratio eff_step_late(m) /
     eff_step_late(0), averaged over seeds; within STEP_TIE of 1 counts as equal. supported if
     it is > 1 at every decided (m, lr) pair, refuted if at none or if most pairs are equal
     (no effect), else partly. The ratios are set beside the prediction: 1 / (1 - m) at the
     same lr, 1 at the matched control.
  5b same with the difference update_cosine_late(m) - update_cosine_late(0) > 0; pairs whose
     difference is within COSINE_TIE count as equal and are left out of the vote (all equal:
     refuted, momentum did not raise the cosine).
  6a seed-paired ratio of Adam's eff_step_late at its reference lr to SGD's at its reference
     lr (mean, t interval): supported if the interval's low end >= MUCH_LARGER_FACTOR, partly
     if > 1, refuted if the high end <= 1, else inconclusive.
  6b per-coordinate spread coord_eff_lr_spread_late (p90 / median, aggregate.py) of Adam at its
     reference pair (plain SGD's is 1: one lr for every coordinate): supported if the
     interval's low end >= ADAPTIVE_SPREAD_MIN, partly if > 1 + EXACT_TOLERANCE, refuted if
     the high end <= 1 + EXACT_TOLERANCE, else inconclusive.

Curvature claims (the papers' and this project's, not the seed's; the curvature runs of the
config's curvature section, summarized in aggregate.py: late_sharpness_ratio, ...). Each SGD or
Adam curvature cell is placed by the t 95% interval of its mean late_sharpness_ratio over the
seeds that finished: "at the edge" if the interval lies inside EDGE_BAND, "below" / "above"
if it lies entirely below / above it, "undecided" if it straddles an end of the band (or fewer
than two seeds finished), "diverged" if every seed diverged. A cell below (above) the band
whose ratio still rises (falls) by more than TREND_TOLERANCE over the last quarter of its
measured steps (late_ratio_trend, mean over seeds) has "not reached" it within the run's steps:
a threshold not yet reached is not refuted.
  7a GD and heavy ball at the edge of stability: SGD curvature cells; supported if every cell
     is at the edge, partly if some are, inconclusive if none is but some are undecided or not
     reached, else (every cell settled off the band) refuted. The detail says which cells stay below, and how far the sharpness moved from
     step 0 to the late steps.
  7b Adam at the edge of stability: the same on Adam's cells, with the preconditioned sharpness.
  7c the catapult (Lewkowycz et al. 2020): SGD curvature runs whose step-0 sharpness lies above
     their threshold 2 (1 + m) / lr. supported if every one that survived brought its ratio to
     the threshold to <= 1 within the dense early Hessian steps (first_stable_step <=
     curvature_early_steps), partly if some did, refuted if none did or if no run above the
     threshold survived (no catapult phase). The measured column gives, per momentum, the
     largest surviving and the smallest diverging lr of the curvature and full-batch grid runs
     as multiples of the step-0 critical lr 2 (1 + m) / lambda_0, lambda_0 per seed (it
     depends on the initial weights only); the paper's MSE analysis puts the largest at 2.
  7d sharpness falls late in training (BCE on nearly separable data: as the logits grow, the
     loss curvature shrinks): per finished curvature run, sharpness_late_change < -TREND_TOLERANCE
     is a fall, > TREND_TOLERANCE a rise; supported if every run fell, partly if some, refuted
     if none. Measured from mid-run, not from the maximum: the maximum of every run seen so far
     is its step-0 value, so "below its maximum" would count the early drop, not a late fall.

Gradient-noise claims (the grid runs' exact noise instruments, noise.py; aggregate.py's noise_*
run columns; every run with noise steps, diverged ones up to their divergence where the column
allows):
  8a the batch in use lies below the noise scale B_simple (McCandlish et al. 2018: below it a
     step is mostly noise): minibatch regimes only; a run counts if its median B_simple over its
     noise steps exceeds its batch size; supported if every run's does, partly if some, refuted
     if none. The detail says when: the median fraction of noise steps above, the first step.
  8b B_simple grows as training goes on (McCandlish et al. 2018): per finished run,
     noise_b_simple_final / noise_b_simple_initial - 1 > TREND_TOLERANCE is growth; counted as
     7d.
  8c the best lr's alpha (Schneider et al. 2021, Cockpit: the best lrs of its problems had a
     median alpha between 0 and about ALPHA_BAND[1]): per (optimizer, momentum) line, the best lr
     by the setting's metric, the median over seeds of noise_alpha_median there; held if inside
     ALPHA_BAND; counted over the lines.
  8d momentum's smoothing follows the noise (this project, on claim 5b): per SGD (lr, m > 0)
     pair finished in both regimes, the gain in late update cosine over plain SGD at the same lr,
     at the first minibatch regime against full batch (no sampling noise); larger by more than
     COSINE_TIE counts for, smaller against, the rest as equal; the vote as 5b's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.stats import mean_interval
from optimizer_dynamics.study import regime_label
from optimizer_dynamics.tables import select

VERDICTS = ("supported", "partly supported", "refuted", "inconclusive")
# The axes a setting is made of, in the order a setting's label names them.
SETTING_AXES = ["regime", "metric", "control", "budget"]
COLUMNS = ["id", "claim", "source", "headline", *SETTING_AXES, "budget_steps", "setting", "test", "measured",
           "verdict", "detail"]
# The loss metrics a claim about loss is judged by: per-run column, cells' median and good window
# (aggregate.py computes them).
LOSS_METRICS = {
    "final": ("final_val_loss", "median_final_val_loss", "in_good_window"),
    "best": ("best_val_loss", "median_best_val_loss", "in_good_window_best"),
}

EXACT_TOLERANCE = 1e-6  # float64 arithmetic puts rounding near 1e-16; anything above 1e-6 is real
ROBUST_WIDTH_DECADES = 1.0  # the seed's "more than an order of magnitude"
MUCH_LARGER_FACTOR = 10.0  # "much larger" read as at least an order of magnitude
ADAPTIVE_SPREAD_MIN = 2.0  # p90 coordinate at least twice the median coordinate's effective lr
MIN_PAIRED_SEEDS = 2  # a comparison over seeds needs at least two of them
# "At the edge of stability": the late (preconditioned) sharpness within 20% of the threshold.
EDGE_BAND = (0.8, 1.2)
# How edge_side's places other than "at the edge" read in a detail, in this order.
EDGE_SIDE_LABELS = {
    "below": "below it",
    "above": "above it",
    "not reached": "not reached within {steps} steps (still moving toward it)",
    "undecided": "undecided",
    "diverged": "diverged",
}
# Sharpness "fell" / "rose" from mid-run to the late steps when it moved by more than 10%.
TREND_TOLERANCE = 0.1
OPTIMIZER_WORDS = {"sgd": "SGD", "adam": "Adam"}
MOMENTUM_WORDS = {"sgd": "momentum", "adam": "β1"}
# Late update cosines closer than this count as equal: at small lr, full-batch SGD's late cosine is
# 1 - O(1e-6) with or without momentum, and a difference in the sixth decimal is not smoothing.
COSINE_TIE = 1e-3
# Late effective-step ratios within 5% of 1 count as equal: momentum's matched control (plain SGD
# at lr / (1 - m)) predicts exactly 1, and seeds spread a few percent around it.
STEP_TIE = 0.05
# Cockpit's finding for the best lrs of its four problems: a median alpha from 0 to about 0.3.
ALPHA_BAND = (0.0, 0.3)
# The control momentum is compared with (claims 5a, 5b): plain SGD at the same lr, or at lr / (1 - m).
SAME_LR_CONTROL, MATCHED_CONTROL = "same lr", "equal effective lr"


class Missing(Exception):
    """The data cannot test a claim; the message says what is missing."""


@dataclass(frozen=True)
class Outcome:
    measured: str
    verdict: str
    detail: str


@dataclass(frozen=True)
class Window:
    """A good lr window at the resolution of the lr grid of one (optimizer, momentum)."""

    optimizer: str
    momentum: float
    grid: tuple[float, ...]
    lo: float
    hi: float
    best: float
    losses: tuple[float, ...]  # median val loss (final or best) per grid lr (+inf: half or more diverged)
    metric: str = "final"  # which val loss

    @property
    def width(self) -> float:
        return math.log10(self.hi / self.lo)

    def relative_loss(self, lr: float) -> float:
        """Median val loss at a grid lr as a multiple of the best lr's."""
        return self.losses[self.grid.index(lr)] / self.losses[self.grid.index(self.best)]

    def describe(self) -> str:
        edges = [
            side
            for side, at_edge in (("below", self.lo == self.grid[0]), ("above", self.hi == self.grid[-1]))
            if at_edge
        ]
        note = f" (may extend {' and '.join(edges)} the lr grid)" if edges else ""
        return f"[{self.lo:g}, {self.hi:g}], {self.width:.2f} decades, best lr {self.best:g}{note}"


class Study:
    """One setting's tables and the lookups the claims share; lookups raise Missing. runs and
    cells: the grid of one regime at one budget; curvature: the curvature runs at that budget;
    metric: the loss metric of the claims about loss ("final" or "best", LOSS_METRICS); control:
    what momentum is compared with (claims 5a, 5b)."""

    def __init__(self, runs: pd.DataFrame, cells: pd.DataFrame, analysis: dict, metric: str = "final",
                 curvature: pd.DataFrame | None = None, control: str = SAME_LR_CONTROL,
                 all_cells: pd.DataFrame | None = None, all_runs: pd.DataFrame | None = None):
        self.runs, self.cells, self.analysis, self.metric = runs, cells, analysis, metric
        self.control = control
        self.curvature = runs.iloc[:0] if curvature is None else curvature
        # every regime's grid at the setting's budget, for the claims that compare regimes (8d)
        self.all_cells = cells if all_cells is None else all_cells
        self.all_runs = runs if all_runs is None else all_runs

    def noise_runs(self) -> pd.DataFrame:
        """The setting's grid runs that measured gradient noise (training.noise_every > 0)."""
        if "noise_b_simple_initial" not in self.runs:
            raise Missing("runs.parquet has no noise summaries; re-run the aggregation")
        chosen = self.runs[self.runs["noise_b_simple_initial"].notna()]
        if chosen.empty:
            raise Missing("no run measured gradient noise (config training.noise_every > 0)")
        return chosen

    @property
    def loss_columns(self) -> tuple[str, str, str]:
        """(per-run loss, cells' median, cells' good-window flag) of the setting's metric."""
        return LOSS_METRICS[self.metric]

    def reference(self, optimizer: str) -> tuple[float, float]:
        try:
            pair = self.analysis["reference"][optimizer]
            return float(pair["lr"]), float(pair["momentum"])
        except (KeyError, TypeError) as error:
            raise Missing(f"analysis.reference.{optimizer} (lr, momentum) is not set") from error

    def claimed_window(self, optimizer: str) -> tuple[float, float]:
        try:
            lo, hi = self.analysis["claimed_windows"][optimizer]
            return float(lo), float(hi)
        except (KeyError, TypeError, ValueError) as error:
            raise Missing(f"analysis.claimed_windows.{optimizer} [lo, hi] is not set") from error

    def cell_runs(self, optimizer: str, lr: float, momentum: float) -> pd.DataFrame:
        chosen = select(self.runs, optimizer=optimizer, lr=lr, momentum=momentum)
        if chosen.empty:
            raise Missing(f"no {optimizer} runs at lr {lr:g}, momentum {momentum:g}")
        return chosen

    def curvature_runs(self, optimizer: str) -> pd.DataFrame:
        """The optimizer's curvature runs (initial_sharpness is set)."""
        runs = self.curvature
        if "initial_sharpness" not in runs:
            raise Missing("runs.parquet has no curvature summaries (initial_sharpness); re-run the aggregation")
        chosen = select(runs, optimizer=optimizer)
        chosen = chosen[chosen["initial_sharpness"].notna()]
        if chosen.empty:
            raise Missing(
                f"no {optimizer} runs measured curvature (config curvature.cells.{optimizer}, curvature.every > 0)"
            )
        return chosen

    def seed_values(
        self, optimizer: str, lr: float, momentum: float, column: str, missing=np.inf
    ) -> pd.Series:
        """column per seed; NaN (diverged, target never reached) becomes `missing`: by default +inf,
        the worst outcome of a to-be-minimized quantity."""
        chosen = self.cell_runs(optimizer, lr, momentum)
        return chosen.set_index("seed")[column].astype("float64").fillna(missing)

    def lr_cells(self, optimizer: str, momentum: float) -> pd.DataFrame:
        chosen = select(self.cells, optimizer=optimizer, momentum=momentum).sort_values("lr")
        if chosen.empty:
            raise Missing(f"no {optimizer} cells with momentum {momentum:g}")
        if not np.isfinite(chosen[self.loss_columns[1]]).any():
            raise Missing(
                f"every {optimizer} lr with momentum {momentum:g} diverged in at least half of its seeds"
            )
        return chosen.reset_index(drop=True)

    def best_lr(self, optimizer: str, momentum: float) -> float:
        cells = self.lr_cells(optimizer, momentum)
        return float(cells.loc[cells[self.loss_columns[1]].idxmin(), "lr"])

    def window(self, optimizer: str, momentum: float, tolerance: float | None = None) -> Window:
        """The window by the setting's metric at the study's good_window_tolerance (the cells'
        in_good_window*), or at another tolerance, to show how much the window depends on it."""
        _, median, in_window = self.loss_columns
        cells = self.lr_cells(optimizer, momentum)
        best = int(cells[median].idxmin())
        if tolerance is None:
            good = cells[in_window].to_numpy(dtype=bool)
        else:
            losses = cells[median].to_numpy(dtype=float)
            good = np.isfinite(losses) & (losses <= (1 + tolerance) * losses[best])
        lo = hi = best
        while lo > 0 and good[lo - 1]:
            lo -= 1
        while hi < len(cells) - 1 and good[hi + 1]:
            hi += 1
        lrs = tuple(cells["lr"].astype(float))
        return Window(optimizer, momentum, lrs, lrs[lo], lrs[hi], lrs[best], tuple(cells[median]), self.metric)


# --- the claims -------------------------------------------------------------------------


def adam_vs_sgd(study: Study, column: str, label: str, show: Callable[[float], str]) -> Outcome:
    """Claim 1: Adam better (smaller column) than SGD in every paired seed, per comparison."""
    sgd_ref, adam_ref = study.reference("sgd"), study.reference("adam")
    comparisons = {
        "the reference pair": (sgd_ref, adam_ref),
        "the best lrs": (
            (study.best_lr("sgd", sgd_ref[1]), sgd_ref[1]),
            (study.best_lr("adam", adam_ref[1]), adam_ref[1]),
        ),
    }
    measured, counts, wins = [], [], 0
    for name, (sgd, adam) in comparisons.items():
        paired = pd.concat(
            {"adam": study.seed_values("adam", *adam, column), "sgd": study.seed_values("sgd", *sgd, column)},
            axis=1,
            join="inner",
        )
        if len(paired) < MIN_PAIRED_SEEDS:
            raise Missing(f"{len(paired)} paired seeds at {name}; need {MIN_PAIRED_SEEDS}")
        better = int((paired["adam"] < paired["sgd"]).sum())
        wins += better == len(paired)
        counts.append(f"{better}/{len(paired)} paired seeds at {name}")
        measured.append(
            f"{name} (SGD lr {sgd[0]:g}, Adam lr {adam[0]:g}): Adam {_median_range(paired['adam'], show)}"
            f" vs SGD {_median_range(paired['sgd'], show)}"
        )
    verdict = _count_verdict(wins, len(comparisons))
    return Outcome("; ".join(measured), verdict, f"Adam {label} in " + " and ".join(counts) + ".")


def faster(study: Study) -> Outcome:
    return adam_vs_sgd(study, "steps_to_target", "needs fewer steps to reach the target", _show_steps)


def lower_val_loss(study: Study) -> Outcome:
    return adam_vs_sgd(study, study.loss_columns[0], f"reaches a lower {study.metric} val loss",
                       lambda x: f"{x:.4g}")


def sgd_step_is_lr(study: Study) -> Outcome:
    runs = study.runs[(study.runs["optimizer"] == "sgd") & ~study.runs["diverged"]]
    plain = runs[runs["momentum"] == 0]
    if plain.empty:
        raise Missing("no finished plain-SGD (momentum 0) run")
    deviation = plain["sgd_eff_step_max_rel_dev"].max()
    verdict = "supported" if deviation < EXACT_TOLERANCE else "refuted"
    detail = f"threshold {EXACT_TOLERANCE:g}"
    heavy_ball = runs[runs["momentum"] > 0]
    if not heavy_ball.empty:
        detail += (
            f"; for contrast, with momentum the ratio moves away from lr by up to "
            f"{heavy_ball['sgd_eff_step_max_rel_dev'].max():.3g} (relative)"
        )
    return Outcome(f"{deviation:.3g} over {len(plain)} runs", verdict, detail + ".")


def location(window: Window, claimed: tuple[float, float]) -> tuple[str, str]:
    """The claimed window judged on the grid lrs inside it: how many are in the measured window."""
    lo, hi = claimed
    inside = [lr for lr in window.grid if lo * (1 - 1e-9) <= lr <= hi * (1 + 1e-9)]
    if not inside:
        raise Missing(f"no {window.optimizer} grid lr lies in the claimed window [{lo:g}, {hi:g}]")
    below = [lr for lr in inside if lr < window.lo]
    above = [lr for lr in inside if lr > window.hi]
    n_good = len(inside) - len(below) - len(above)
    verdict = _count_verdict(n_good, len(inside))
    text = f"{n_good}/{len(inside)} grid lrs of the claimed [{lo:g}, {hi:g}] are in the measured window"
    for side, lrs in (("below", below), ("above", above)):
        if lrs:
            text += f" ({side} it: " + ", ".join(_relative_loss_text(window, lr) for lr in lrs) + ")"
    return verdict, text


def sgd_window(study: Study) -> Outcome:
    sgd = study.window("sgd", study.reference("sgd")[1])
    adam = study.window("adam", study.reference("adam")[1])
    where, where_text = location(sgd, study.claimed_window("sgd"))
    narrow = "supported" if sgd.width < adam.width else "refuted"
    return Outcome(
        f"SGD {sgd.describe()}; Adam {adam.describe()}",
        _combine([where, narrow]),
        f"{where_text}; SGD's window is {'' if narrow == 'supported' else 'not '}narrower than Adam's "
        f"({sgd.width:.2f} vs {adam.width:.2f} decades).",
    )


def adam_window(study: Study) -> Outcome:
    adam = study.window("adam", study.reference("adam")[1])
    where, where_text = location(adam, study.claimed_window("adam"))
    robust = "supported" if adam.width > ROBUST_WIDTH_DECADES else "refuted"
    return Outcome(
        f"Adam {adam.describe()}",
        _combine([where, robust]),
        f"{where_text}; its width {adam.width:.2f} decades is "
        f"{'more' if robust == 'supported' else 'not more'} than {ROBUST_WIDTH_DECADES:g}.",
    )


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
    slower = int((below > fastest).sum())
    listing = ", ".join(f"lr {lr:g}: {_show_steps(steps)}" for lr, steps in below.items())
    return Outcome(
        f"{listing}; fastest in the window: lr {fastest_lr:g}: {_show_steps(fastest)}",
        _count_verdict(slower, len(below)),
        f"{slower}/{len(below)} lrs below the good window need more steps to reach the target "
        f"than lr {fastest_lr:g}.",
    )


def momentum_effect(
    study: Study, column: str, *, ratio: bool, tie: float, predicted: bool, higher: str
) -> Outcome:
    """Claim 5: seed-paired effect of each momentum m > 0 at lr against plain SGD at the
    setting's control lr: the same lr, or lr / (1 - m), the lr whose plain step equals heavy
    ball's late step (the matched control), wherever both are in the grid.

    The effect is momentum's value / plain SGD's (ratio) or momentum's - plain SGD's, averaged
    over seeds at each lr where both finished; within `tie` of no effect it counts as equal.
    """
    finished = study.runs[(study.runs["optimizer"] == "sgd") & ~study.runs["diverged"]]
    table = finished.pivot_table(index=["lr", "seed"], columns="momentum", values=column)
    momenta = [m for m in table.columns if m > 0]
    if 0.0 not in table.columns or not momenta:
        raise Missing("needs finished SGD runs with momentum 0 and with some momentum > 0")
    plain = table[0.0].dropna()
    plain_lrs = sorted(set(plain.index.get_level_values("lr")))
    matched = study.control == MATCHED_CONTROL

    def control_lr(lr: float, m: float) -> float | None:
        target = lr / (1 - m) if matched else lr
        return next((p for p in plain_lrs if math.isclose(p, target, rel_tol=1e-6)), None)

    neutral = 1.0 if ratio else 0.0
    measured, counts, lower = [], {"higher": 0, "lower": 0, "equal": 0}, []
    for m in momenta:
        effects = {}
        for (lr, seed), value in table[m].dropna().items():
            partner = control_lr(lr, m)
            if partner is not None and (partner, seed) in plain.index:
                base = plain[(partner, seed)]
                effects[(lr, seed)] = value / base if ratio else value - base
        if not effects:
            continue
        per_seed = pd.Series(effects).rename_axis(["lr", "seed"])
        per_lr = per_seed.groupby("lr").mean()
        text = (
            f"m={m:g}: {per_lr.median():.3g} (median over {len(per_lr)} lrs, "
            f"range {per_lr.min():.3g} to {per_lr.max():.3g}"
        )
        expected = 1 if matched else 1 / (1 - m)
        text += f"; prediction {expected:.3g})" if predicted else ")"
        measured.append(text)
        side = np.where(
            (per_lr - neutral).abs() <= tie, "equal", np.where(per_lr > neutral, "higher", "lower")
        )
        for name in counts:
            counts[name] += int((side == name).sum())
        if (side == "lower").any():
            lower.append(f"m={m:g} at lr {_lrs(list(per_lr.index[side == 'lower']))}")
    if not measured:
        raise Missing(f"no (momentum, lr) pair whose control lr ({study.control}) has finished plain-SGD runs")
    decided, total = counts["higher"] + counts["lower"], sum(counts.values())
    # No effect at most pairs is no effect: refuted, not "partly" on the few pairs left.
    no_effect = counts["equal"] > total / 2
    verdict = "refuted" if no_effect or not decided else _count_verdict(counts["higher"], decided)
    against = "plain SGD at lr / (1 - m)" if matched else "plain SGD at the same lr"
    detail = f"Against {against}: {higher} at {counts['higher']} of {total} (momentum, lr) pairs"
    if counts["equal"]:
        detail += f", equal within {tie:g} at {counts['equal']}"
        if no_effect:
            detail += " (no effect at most pairs)"
    if lower:
        detail += "; the opposite for " + "; ".join(lower)
    return Outcome("; ".join(measured), verdict, detail + ".")


def momentum_enlarges_step(study: Study) -> Outcome:
    return momentum_effect(study, "eff_step_late", ratio=True, tie=STEP_TIE, predicted=True, higher="larger step")


def momentum_smooths(study: Study) -> Outcome:
    return momentum_effect(
        study, "update_cosine_late", ratio=False, tie=COSINE_TIE, predicted=False, higher="higher cosine"
    )


def adam_step_larger(study: Study) -> Outcome:
    adam = study.seed_values("adam", *study.reference("adam"), "eff_step_late", missing=np.nan)
    sgd = study.seed_values("sgd", *study.reference("sgd"), "eff_step_late", missing=np.nan)
    ratio = (adam / sgd).dropna()  # seeds where both finished
    mean, lo, hi, n = mean_interval(ratio)
    if n < MIN_PAIRED_SEEDS:
        raise Missing(f"{n} finished paired seeds at the reference pair; need {MIN_PAIRED_SEEDS}")
    verdict = _threshold_verdict(lo, hi, strong=MUCH_LARGER_FACTOR, weak=1.0)
    return Outcome(
        f"x{mean:.3g} [{lo:.3g}, {hi:.3g}] over {n} seeds "
        f"(medians: Adam {adam.median():.3g}, SGD {sgd.median():.3g})",
        verdict,
        f"'much larger' means a ratio of at least {MUCH_LARGER_FACTOR:g}; 1 means equal.",
    )


def adam_adaptive(study: Study) -> Outcome:
    def spread(optimizer: str, lr: float, momentum: float) -> pd.Series:
        runs = study.cell_runs(optimizer, lr, momentum)  # diverged runs: NaN, left out by mean_interval
        return runs["coord_eff_lr_spread_late"]

    mean, lo, hi, n = mean_interval(spread("adam", *study.reference("adam")))
    if n < MIN_PAIRED_SEEDS:
        raise Missing(f"{n} finished Adam runs at the reference pair; need {MIN_PAIRED_SEEDS}")
    verdict = _threshold_verdict(lo, hi, strong=ADAPTIVE_SPREAD_MIN, weak=1 + EXACT_TOLERANCE)
    sgd_lr, sgd_momentum = study.reference("sgd")
    contrasts = []
    for momentum in sorted(study.runs.loc[study.runs["optimizer"] == "sgd", "momentum"].unique()):
        try:
            contrasts.append(f"SGD momentum {momentum:g}: {spread('sgd', sgd_lr, momentum).median():.3g}")
        except Missing:
            continue
    return Outcome(
        f"Adam {mean:.3g} [{lo:.3g}, {hi:.3g}] over {n} seeds; medians at SGD's lr {sgd_lr:g}: "
        + ", ".join(contrasts),
        verdict,
        f"one lr for every coordinate gives 1; adaptive means a spread of at least {ADAPTIVE_SPREAD_MIN:g}.",
    )


def edge_side(late_ratios: pd.Series, trends: pd.Series) -> tuple[str, str]:
    """A cell's place against EDGE_BAND (see the module docstring) and its 'mean [lo, hi]' text.
    A cell off the band whose ratio still moves toward it over the last quarter of the run
    (mean late_ratio_trend beyond TREND_TOLERANCE) has "not reached" it: the budget, not the
    claim, decided, so it counts as undecided."""
    mean, lo, hi, n = mean_interval(late_ratios)
    if n == 0:
        return "diverged", "every seed diverged"
    text = f"{mean:.3g} [{lo:.3g}, {hi:.3g}] over {n} seeds" if n > 1 else f"{mean:.3g} (1 seed)"
    edge_lo, edge_hi = EDGE_BAND
    trend = trends.mean()
    if edge_lo <= lo and hi <= edge_hi:
        return "at the edge", text
    if hi < edge_lo:
        return ("not reached", f"{text}, still rising {trend:+.0%}") if trend > TREND_TOLERANCE else ("below", text)
    if lo > edge_hi:
        return ("not reached", f"{text}, still falling {trend:+.0%}") if trend < -TREND_TOLERANCE else ("above", text)
    return "undecided", text


def edge_of_stability(study: Study, optimizer: str) -> Outcome:
    """Claims 7a / 7b: each curvature cell's late (preconditioned) sharpness against its threshold."""
    runs = study.curvature_runs(optimizer)
    quantity = OPTIMIZERS[optimizer].stability_quantity
    sides: dict[str, list[str]] = {}
    measured, dropped = [], []
    for (lr, momentum), cell in runs.groupby(["lr", "momentum"], sort=True):
        side, text = edge_side(cell["late_sharpness_ratio"], cell["late_ratio_trend"])
        name = f"lr {lr:g}, {MOMENTUM_WORDS.get(optimizer, 'momentum')} {momentum:g}"
        sides.setdefault(side, []).append(name)
        threshold = cell["stability_threshold"].iloc[0]
        initial = cell["initial_stability_sharpness"].mean()
        late = threshold * cell["late_sharpness_ratio"].mean()  # NaN if every seed diverged
        measured.append(
            f"{name} (threshold {_plain(threshold)}): late ratio {text}; {quantity} {_plain(initial)} at step 0, "
            f"{_plain(late)} late"
        )
        if np.isfinite(late):
            dropped.append(late < initial)
    at_edge = len(sides.get("at the edge", []))
    if at_edge:
        verdict = _count_verdict(at_edge, len(measured))
    else:
        # Refuted only where every cell settled off the band; one still moving toward it, or
        # undecided, leaves the claim open.
        verdict = "inconclusive" if {"undecided", "not reached"} & set(sides) else "refuted"
    lo, hi = EDGE_BAND
    detail = (
        f"{at_edge} of {len(measured)} cells hover at the threshold (late ratio's interval inside "
        f"[{lo:g}, {hi:g}])"
    )
    steps = f"{int(runs['steps'].max())}" if "steps" in runs else "the run's"
    for side, label in EDGE_SIDE_LABELS.items():
        if side in sides:
            detail += f"; {label.format(steps=steps)}: " + "; ".join(sides[side])
    detail += f". The late {quantity} is below its step-0 value in {sum(dropped)} of {len(dropped)} cells."
    return Outcome("; ".join(measured), verdict, detail)


def sgd_edge_of_stability(study: Study) -> Outcome:
    return edge_of_stability(study, "sgd")


def adam_edge_of_stability(study: Study) -> Outcome:
    return edge_of_stability(study, "adam")


def catapult(study: Study) -> Outcome:
    """Claim 7c: plain and heavy-ball GD above its step-0 threshold, on the curvature runs and the
    full-batch grid runs (lambda_0 depends on the seed's initial weights only)."""
    curvature = study.curvature_runs("sgd")
    lambda0 = curvature.groupby("seed")["initial_sharpness"].median()
    grid = study.runs[(study.runs["optimizer"] == "sgd") & (study.runs["batch"] == "full")]
    runs = pd.concat([grid, curvature], ignore_index=True)
    runs = runs[runs["seed"].isin(lambda0.index)]
    # lr in units of the step-0 critical lr 2 (1 + m) / lambda_0: above 1 the step-0 quadratic diverges
    runs = runs.assign(multiple=runs["lr"] * runs["seed"].map(lambda0) / (2 * (1 + runs["momentum"])))
    measured, survivors_above = [], 0
    for momentum, group in runs.groupby("momentum", sort=True):
        survived, died = group.loc[~group["diverged"], "multiple"], group.loc[group["diverged"], "multiple"]
        survivors_above += int((survived > 1).sum())
        text = f"momentum {momentum:g}: " + (f"survived up to {survived.max():.3g}" if len(survived) else "none survived")
        text += f", diverged from {died.min():.3g}" if len(died) else ", none diverged (the largest lr lies beyond the grid)"
        measured.append(text + f" (x the step-0 critical lr, {len(group)} runs)")
    above = curvature[curvature["initial_sharpness"] > curvature["stability_threshold"]]
    if above.empty:
        raise Missing("no SGD curvature run starts above its threshold (lr > 2 (1 + m) / lambda_0)")
    finished = above[~above["diverged"]]
    early = finished["curvature_early_steps"].where(finished["curvature_early_steps"] > 0, finished["steps"])
    caught = finished["first_stable_step"] <= early
    detail = (
        f"λ0 per seed {lambda0.min():.3g} to {lambda0.max():.3g}. Of {len(above)} curvature runs starting above "
        f"the threshold, {len(finished)} survived; {int(caught.sum())} of those brought the sharpness below it "
        f"within the dense early steps"
    )
    if caught.any():
        detail += f" (by step {finished.loc[caught, 'first_stable_step'].median():.0f}, median)"
    detail += (". Survived: did not meet the divergence criterion (training.divergence_factor), which says "
               "nothing of how well it trained. The paper's MSE analysis puts the largest lr at 2x the critical one (4/λ0), more for its ReLU "
               "networks; the multiples above are this study's, for logistic loss (with momentum m the critical "
               "lr is 2 (1 + m) / λ0, this project's extension).")
    # No survivor above the threshold: no catapult phase, every such run diverged.
    verdict = _count_verdict(int(caught.sum()), len(finished)) if survivors_above and len(finished) else "refuted"
    return Outcome("; ".join(measured), verdict, detail)


def sharpness_falls_late(study: Study) -> Outcome:
    """Claim 7d: sharpness_late_change of every finished curvature run against TREND_TOLERANCE."""
    runs = []
    for optimizer in ("sgd", "adam"):
        try:
            runs.append(study.curvature_runs(optimizer))
        except Missing:
            continue
    if not runs:
        raise Missing("no runs measured curvature (config curvature.cells, curvature.every > 0)")
    finished = pd.concat(runs).dropna(subset=["sharpness_late_change"])
    if finished.empty:
        raise Missing("every curvature run diverged")
    change = finished["sharpness_late_change"]
    fell, rose = int((change < -TREND_TOLERANCE).sum()), int((change > TREND_TOLERANCE).sum())
    per_cell = finished.groupby(["optimizer", "lr", "momentum"], sort=True)["sharpness_late_change"].mean()
    cells = {"fell": [], "rose": [], "flat": []}
    for (optimizer, lr, momentum), mean in per_cell.items():
        trend = "fell" if mean < -TREND_TOLERANCE else "rose" if mean > TREND_TOLERANCE else "flat"
        word = MOMENTUM_WORDS.get(optimizer, "momentum")
        cells[trend].append(
            f"{OPTIMIZER_WORDS.get(optimizer, optimizer)} lr {lr:g}, {word} {momentum:g} ({mean:+.1%})"
        )
    measured = (
        f"fell in {fell}, rose in {rose}, within ±{TREND_TOLERANCE:.0%} in {len(change) - fell - rose} of "
        f"{len(change)} finished curvature runs (median change {change.median():+.1%})"
    )
    tolerance = f"{TREND_TOLERANCE:.0%}"
    labels = {
        "fell": f"fell by more than {tolerance}",
        "rose": f"rose by more than {tolerance}",
        "flat": f"moved less than {tolerance}",
    }
    detail = ". ".join(
        f"Settings whose mean change {labels[trend]}: " + "; ".join(found)
        for trend, found in cells.items()
        if found
    )
    return Outcome(measured, _count_verdict(fell, len(change)), detail + ".")


def below_noise_scale(study: Study) -> Outcome:
    """Claim 8a: the minibatch below B_simple, run by run."""
    runs = study.noise_runs()
    if runs["batch"].iloc[0] == "full":
        raise Missing("full batch has no sampling noise; the claim is about minibatches")
    size = int(runs["batch_size"].iloc[0])
    below = runs["noise_b_simple_median"].fillna(runs["noise_b_simple_initial"]) > size
    first = runs["noise_first_step_above_batch"].dropna()
    measured = (
        f"B_simple at step 0 {_median_range(runs['noise_b_simple_initial'], _plain)}, median over the run "
        f"{_median_range(runs['noise_b_simple_median'].dropna(), _plain)} (over {len(runs)} runs), against "
        f"batch {size}"
    )
    detail = (
        f"{int(below.sum())} of {len(runs)} runs have a median B_simple above {size}; the median run spends "
        f"{runs['noise_above_batch_frac'].median():.0%} of its noise steps above it"
    )
    if len(first):
        detail += f", from step {first.median():.0f} (median over the {len(first)} runs that get there)"
    return Outcome(measured, _count_verdict(int(below.sum()), len(runs)), detail + ".")


def noise_scale_grows(study: Study) -> Outcome:
    """Claim 8b: B_simple at the last noise step against the first, per finished run."""
    finished = study.noise_runs().dropna(subset=["noise_b_simple_final"])
    if finished.empty:
        raise Missing("every run with noise steps diverged")
    ratio = finished["noise_b_simple_final"] / finished["noise_b_simple_initial"]
    grew, fell = int((ratio - 1 > TREND_TOLERANCE).sum()), int((ratio - 1 < -TREND_TOLERANCE).sum())
    measured = (f"grew in {grew}, fell in {fell}, within ±{TREND_TOLERANCE:.0%} in {len(ratio) - grew - fell} of "
                f"{len(ratio)} finished runs (last / step-0 B_simple: median {ratio.median():.3g}x)")
    by_optimizer = ratio.groupby(finished["optimizer"]).median()
    detail = "Median last / step-0 B_simple by optimizer: " + ", ".join(
        f"{OPTIMIZER_WORDS.get(name, name)} {value:.3g}x" for name, value in by_optimizer.items()) + "."
    return Outcome(measured, _count_verdict(grew, len(ratio)), detail)


def best_lr_alpha(study: Study) -> Outcome:
    """Claim 8c: the median alpha at each line's best lr against ALPHA_BAND."""
    runs = study.noise_runs()
    lo, hi = ALPHA_BAND
    measured, held, lines = [], 0, 0
    for (optimizer, momentum), line in runs.groupby(["optimizer", "momentum"], sort=True):
        try:
            best = study.best_lr(optimizer, momentum)
        except Missing:
            continue
        per_lr = line.groupby("lr")["noise_alpha_median"].median()
        alpha = per_lr.get(best, np.nan)
        if not np.isfinite(alpha):
            continue
        lines += 1
        held += int(lo <= alpha <= hi)
        per_lr = per_lr.dropna()
        measured.append(
            f"{OPTIMIZER_WORDS.get(optimizer, optimizer)} {MOMENTUM_WORDS.get(optimizer, 'momentum')} {momentum:g}: "
            f"best lr {best:g}, median α {alpha:.2f} (α from {per_lr.iloc[0]:.2f} at lr {per_lr.index[0]:g} to "
            f"{per_lr.iloc[-1]:.2f} at lr {per_lr.index[-1]:g})")
    if not lines:
        raise Missing("no line has a best lr with finished noise measurements")
    detail = (f"{held} of {lines} lines have their best lr's median α in [{lo:g}, {hi:g}]. α < 0: the step "
              "stops short of the minimum of the local quadratic along it; α > 0: it passes the minimum.")
    return Outcome("; ".join(measured), _count_verdict(held, lines), detail)


def smoothing_follows_noise(study: Study) -> Outcome:
    """Claim 8d: momentum's cosine gain over plain SGD, minibatch against full batch."""
    cells = select(study.all_cells, optimizer="sgd")
    regimes = sorted(cells["batch"].unique(), key=regime_order)
    if "full" not in regimes or len(regimes) < 2:
        raise Missing("needs a full-batch and a minibatch regime")
    noisy = regimes[1]
    cosine = cells.pivot_table(index=["lr", "momentum"], columns="batch", values="update_cosine_late_mean")
    pairs = [{"full": row["full"] - cosine.loc[(lr, 0.0), "full"], noisy: row[noisy] - cosine.loc[(lr, 0.0), noisy]}
             for (lr, momentum), row in cosine.iterrows() if momentum > 0 and (lr, 0.0) in cosine.index]
    gains = pd.DataFrame(pairs, columns=["full", noisy]).dropna()
    if gains.empty:
        raise Missing("no (lr, momentum) pair finished in both regimes")
    difference = gains[noisy] - gains["full"]
    larger, smaller = int((difference > COSINE_TIE).sum()), int((difference < -COSINE_TIE).sum())
    equal = len(difference) - larger - smaller
    measured = (f"gain in late update cosine from momentum, {regime_label(noisy)} - full batch: median "
                f"{difference.median():+.3g} (range {difference.min():+.3g} to {difference.max():+.3g}) over "
                f"{len(difference)} (lr, momentum) pairs")
    decided = larger + smaller
    verdict = "refuted" if equal > len(difference) / 2 or not decided else _count_verdict(larger, decided)
    detail = (f"Larger at {regime_label(noisy)} at {larger} pairs, smaller at {smaller}, equal within "
              f"{COSINE_TIE:g} at {equal}.")
    if "noise_norm_test_median" in study.all_runs:
        plain_noise = select(study.all_runs, batch=noisy, optimizer="sgd", momentum=0.0)["noise_norm_test_median"]
        plain_noise = plain_noise.dropna()
        if len(plain_noise):
            detail += (f" At full batch the step has no sampling noise; plain SGD's norm test at "
                       f"{regime_label(noisy)} would be {plain_noise.median():.2f} (median; above 1 the "
                       "minibatch gradient's error exceeds the gradient).")
    return Outcome(measured, verdict, detail)


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str  # may name {sgd_window} / {adam_window}: the claimed windows from the config
    source: str  # who makes the claim: the seed's experiment, a paper, or this project
    test: str  # what is measured and when it counts as holding
    evaluate: Callable[[Study], Outcome]
    axes: tuple[str, ...] = ("regime", "budget")  # the setting axes it is judged over
    minibatch_only: bool = False  # judged in the minibatch regimes only (a claim about sampling noise)
    run_set: str = "grid"  # the runs it reads (study.RUN_SETS): the grid's or the curvature runs


LOSS_AXES = ("regime", "metric", "budget")  # claims about loss: by final and by best val loss
MOMENTUM_AXES = ("regime", "control", "budget")  # momentum against plain SGD at two control lrs
CURVATURE_AXES = ("budget",)  # the curvature runs: full batch, their own steps
REGIMES_COMPARED_AXES = ("budget",)  # one regime against another


CLAIMS = [
    Claim(
        "1a",
        "Adam converges faster than SGD",
        "the seed, Experiment 1",
        "steps to reach analysis.target_val_loss (median, range over seeds), Adam vs SGD at the reference "
        "pair and at each optimizer's best lr; faster = fewer steps in every paired seed; diverged or never "
        "reached counts as not reached",
        faster,
    ),
    Claim(
        "1b",
        "Adam reaches a lower validation loss than SGD",
        "the seed, Experiment 1",
        "best val loss (median, range over seeds), Adam vs SGD at the reference pair and at each "
        "optimizer's best lr; lower = lower in every paired seed; diverged counts as +inf",
        lower_val_loss,
        axes=LOSS_AXES,
    ),
    Claim(
        "2",
        "For plain SGD, update/grad = lr (a constant)",
        "the seed, Experiment 1",
        f"max over finished plain-SGD runs and all steps of |eff_step.global / lr - 1|; supported if < "
        f"{EXACT_TOLERANCE:g}",
        sgd_step_is_lr,
    ),
    Claim(
        "3a",
        "SGD's good lr window is {sgd_window}, a narrow region",
        "the seed, Experiment 2",
        "good window of SGD at its reference momentum (lrs with median final val loss within the tolerance "
        "of the best, contiguous around the best lr) vs the claimed one, on the grid lrs inside the claim; "
        "narrow = fewer decades than Adam's window",
        sgd_window,
        axes=LOSS_AXES,
    ),
    Claim(
        "3b",
        "For SGD, a small lr slows training down",
        "the seed, Experiment 2",
        "median steps to target of each SGD lr below the good window vs the fastest lr inside it",
        small_lr_slows,
    ),
    Claim(
        "4",
        "Adam's good lr window is {adam_window}, robust over more than an order of magnitude",
        "the seed, Experiment 2",
        "good window of Adam at its reference momentum vs the claimed one, on the grid lrs inside the "
        f"claim; robust = width > {ROBUST_WIDTH_DECADES:g} decade",
        adam_window,
        axes=LOSS_AXES,
    ),
    Claim(
        "5a",
        "Momentum increases SGD's effective step (prediction: ~lr/(1-momentum) late in training)",
        "the seed, Experiment 3",
        "eff_step_late(momentum m) / eff_step_late(momentum 0), paired by seed, mean over seeds at each lr "
        "where both finished; supported if > 1 at every (m, lr) pair; compared with 1/(1-m)",
        momentum_enlarges_step,
        axes=MOMENTUM_AXES,
    ),
    Claim(
        "5b",
        "Momentum smooths SGD's update trajectory (higher cosine between consecutive updates)",
        "the seed, Experiment 3",
        "update_cosine_late(momentum m) - update_cosine_late(momentum 0), paired by seed, mean over seeds "
        "at each lr where both finished; supported if > 0 at every (m, lr) pair whose difference exceeds "
        f"{COSINE_TIE:g}",
        momentum_smooths,
        axes=MOMENTUM_AXES,
    ),
    Claim(
        "6a",
        "Adam's effective step is much larger than SGD's",
        "the seed, Experiment 1",
        f"eff_step_late of Adam / of SGD at the reference pair, paired by seed (mean, t 95% interval); much "
        f"larger = interval above {MUCH_LARGER_FACTOR:g}",
        adam_step_larger,
    ),
    Claim(
        "6b",
        "Adam's effective step is adaptive (per-coordinate)",
        "the seed, Experiment 1",
        "spread coord_eff_lr_p90_late / coord_eff_lr_median_late at the reference pair (mean, t 95% "
        f"interval); adaptive = interval above {ADAPTIVE_SPREAD_MIN:g}",
        adam_adaptive,
    ),
    Claim(
        "7a",
        "Full-batch gradient descent, with or without heavy-ball momentum, trains at the edge of stability: "
        "the sharpness rises to 2(1+m)/lr and hovers there",
        "Cohen et al., 2021",
        "late sharpness ratio: top Hessian eigenvalue / (2(1+m)/lr), averaged over the late curvature steps, "
        f"per SGD curvature cell (mean, t 95% interval over seeds); at the edge = interval inside "
        f"[{EDGE_BAND[0]:g}, {EDGE_BAND[1]:g}]; supported if every cell is at the edge",
        sgd_edge_of_stability,
        axes=CURVATURE_AXES,
        run_set="curvature",
    ),
    Claim(
        "7b",
        "Adam trains at the edge of stability: its preconditioned sharpness rises to (2+2β1)/((1-β1) lr), "
        "38/lr at β1 = 0.9, and hovers there",
        "Cohen et al., 2022",
        "late ratio of the top eigenvalue of P^-1 H to (2+2β1)/((1-β1) lr), as 7a, per Adam curvature cell",
        adam_edge_of_stability,
        axes=CURVATURE_AXES,
        run_set="curvature",
    ),
    Claim(
        "7c",
        "Above the step-0 critical lr 2/λ0, gradient descent survives by a catapult: the sharpness falls "
        "below 2/lr in the first steps, up to a largest lr that is a multiple of 2/λ0",
        "Lewkowycz et al., 2020",
        "SGD curvature runs starting above their threshold: sharpness below it within the dense early Hessian "
        "steps; largest surviving and smallest diverging lr (curvature and full-batch grid runs) as "
        "multiples of 2(1+m)/λ0, λ0 per seed; supported if every surviving run caught",
        catapult,
        axes=CURVATURE_AXES,
        run_set="curvature",
    ),
    Claim(
        "7d",
        "The sharpness falls late in training (logistic loss: the logits keep growing)",
        "this project: with logistic loss the logits keep growing",
        "per finished curvature run: mean sharpness over the late curvature steps / over as many ending at "
        f"mid-run - 1; fell = below -{TREND_TOLERANCE:.0%}; supported if every run fell",
        sharpness_falls_late,
        axes=CURVATURE_AXES,
        run_set="curvature",
    ),
    Claim(
        "8a",
        "A minibatch of the seed's size lies below the gradient noise scale B_simple, so its steps are mostly noise",
        "McCandlish et al., 2018",
        "per grid run, the median over its noise steps of B_simple = tr(Σ) / |G|² (exact, over the training "
        "set) against the batch size; supported if every run's is above it",
        below_noise_scale,
        minibatch_only=True,
    ),
    Claim(
        "8b",
        "The gradient noise scale B_simple grows as training goes on",
        "McCandlish et al., 2018",
        f"per finished grid run, B_simple at the last noise step / at step 0 - 1; grew = above +{TREND_TOLERANCE:.0%}; "
        "supported if every run grew",
        noise_scale_grows,
    ),
    Claim(
        "8c",
        f"At the best learning rate the step lands slightly past the local minimum: median α from "
        f"{ALPHA_BAND[0]:g} to about {ALPHA_BAND[1]:g}",
        "Schneider, Dangel and Hennig, 2021 (Cockpit)",
        "per optimizer and momentum, Cockpit's α (exact, on the full-batch loss) at the best lr by the "
        "setting's metric: median over the noise steps, then over seeds; supported if every line's is in "
        f"[{ALPHA_BAND[0]:g}, {ALPHA_BAND[1]:g}]",
        best_lr_alpha,
        axes=LOSS_AXES,
    ),
    Claim(
        "8d",
        "Momentum's smoothing (claim 5b) follows the gradient noise: it gains more at minibatch than at full batch",
        "this project, on the seed's Experiment 3",
        "per SGD (lr, m > 0) finished in both regimes, the late update cosine minus plain SGD's at the same lr, "
        f"minibatch minus full batch; larger beyond {COSINE_TIE:g} counts for; refuted if equal at most pairs",
        smoothing_follows_noise,
        axes=REGIMES_COMPARED_AXES,
    ),
]


def regime_order(regime: str) -> tuple[int, int]:
    """Full batch first, then minibatch regimes by batch size."""
    return (0, 0) if regime == "full" else (1, int(regime))


def settings_of(claim: Claim, regimes: list[str], budgets: list[float]) -> list[dict]:
    """Every setting a claim is judged in: the product of its axes' values (the curvature
    claims: the curvature runs, full batch, at each budget)."""
    minibatch = [regime for regime in regimes if regime != "full"]
    values = {"regime": minibatch or ["full"] if claim.minibatch_only else regimes, "metric": list(LOSS_METRICS),
              "control": [SAME_LR_CONTROL, MATCHED_CONTROL], "budget": budgets}
    fixed = {"regime": "full", "metric": None, "control": None}
    settings = [{}]
    for axis in SETTING_AXES:
        options = values[axis] if axis in claim.axes else [fixed[axis]]
        settings = [{**setting, axis: option} for setting in settings for option in options]
    return settings


def setting_label(setting: dict, steps: int | None) -> str:
    """"batch 64, best val loss, vs plain SGD at lr / (1 - m), 50% (500 steps)"."""
    parts = [regime_label(setting["regime"])]
    if setting["metric"]:
        parts.append(f"{setting['metric']} val loss")
    if setting["control"]:
        parts.append("vs plain SGD at the same lr" if setting["control"] == SAME_LR_CONTROL
                     else "vs plain SGD at lr / (1 - m)")
    parts.append(f"{setting['budget']:.0%}" + (f" ({steps} steps)" if steps else ""))
    return ", ".join(parts)


def evaluate(runs: pd.DataFrame, cells: pd.DataFrame, analysis: dict) -> pd.DataFrame:
    """One row per claim in CLAIMS and setting (see the module docstring for each test).
    runs and cells as aggregate.py writes them: every budget, runs of both sets."""
    grid, curvature = runs[runs["set"] == "grid"], runs[runs["set"] == "curvature"]
    regimes = sorted(grid["batch"].unique(), key=regime_order) or ["full"]  # no runs: inconclusive rows
    budgets = sorted(runs["budget"].unique()) or [1.0]
    windows = {}
    for optimizer in ("sgd", "adam"):
        try:
            lo, hi = Study(grid, cells, analysis).claimed_window(optimizer)
            windows[f"{optimizer}_window"] = f"~{lo:g}-{hi:g}"
        except Missing:
            windows[f"{optimizer}_window"] = "(no claimed window in the config)"
    rows = []
    for claim in CLAIMS:
        claim_rows = []
        for setting in settings_of(claim, regimes, budgets):
            regime, budget = setting["regime"], setting["budget"]
            in_grid = grid[(grid["batch"] == regime) & (grid["budget"] == budget)]
            at_budget = curvature[curvature["budget"] == budget]
            study = Study(in_grid, cells[(cells["batch"] == regime) & (cells["budget"] == budget)], analysis,
                          setting["metric"] or "final", at_budget, setting["control"] or SAME_LR_CONTROL,
                          all_cells=cells[cells["budget"] == budget], all_runs=grid[grid["budget"] == budget])
            source = at_budget if claim.run_set == "curvature" else in_grid
            steps = int(source["budget_steps"].max()) if len(source) else None  # no runs to take it from
            try:
                outcome = claim.evaluate(study)
            except Missing as missing:
                outcome = Outcome("", "inconclusive", f"cannot be tested: {missing}.")
            claim_rows.append({
                "id": claim.id, "claim": claim.claim.format(**windows), "source": claim.source, **setting,
                "budget_steps": steps, "setting": setting_label(setting, steps), "test": claim.test,
                "measured": outcome.measured, "verdict": outcome.verdict, "detail": outcome.detail,
            })
        summary = headline([row["verdict"] for row in claim_rows],
                           [{axis: row[axis] for axis in claim.axes} for row in claim_rows])
        rows += [{**row, "headline": summary} for row in claim_rows]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"budget_steps": "Int64"})


def headline(verdicts: list[str], settings: list[dict]) -> str:
    """A claim's verdicts over its settings in one line: "holds in every setting", "fails in
    every setting", "inconclusive in every setting", or "holds in k of N settings: <where>",
    then where it held partly, failed, or the data could not decide."""
    n = len(verdicts)
    words = {"supported": "holds", "partly supported": "partly holds", "refuted": "fails",
             "inconclusive": "inconclusive"}
    for verdict, text in words.items():
        if verdicts.count(verdict) == n:
            return f"{text} in every setting ({n})" if n > 1 else f"{text} in its one setting"
    parts = []
    for verdict, text in words.items():
        chosen = {i for i, v in enumerate(verdicts) if v == verdict}
        if chosen:
            parts.append(f"{text} in {len(chosen)} of {n}: {describe_settings(chosen, settings)}")
        elif verdict == "supported":
            parts.append(f"holds in 0 of {n} settings")
    return "; ".join(parts)


def describe_settings(chosen: set[int], settings: list[dict]) -> str:
    """The chosen settings named as briefly as the axes allow ("batch 64"; "full batch, final
    val loss; batch 64, 50%"): greedily, the largest group of settings that share some axis
    values and are all chosen, fewest axes first."""

    def word(axis: str, value) -> str:
        if axis == "regime":
            return regime_label(value)
        if axis == "metric":
            return f"{value} val loss"
        if axis == "control":
            return "same lr" if value == SAME_LR_CONTROL else "lr / (1 - m)"
        return f"{value:.0%}"

    varying = [axis for axis in settings[0] if len({s[axis] for s in settings}) > 1]
    groups = []  # (members, axes, values) of every group lying wholly inside `chosen`
    for size in range(1, len(varying) + 1):
        for axes in itertools.combinations(varying, size):
            found: dict[tuple, set[int]] = {}
            for i, setting in enumerate(settings):
                found.setdefault(tuple(setting[a] for a in axes), set()).add(i)
            groups += [(members, axes, key) for key, members in found.items() if members <= chosen]
    left, names = set(chosen), []
    while left:
        members, axes, key = max(groups, key=lambda g: (len(g[0] & left), -len(g[1])))
        names.append(", ".join(word(a, v) for a, v in zip(axes, key)))
        left -= members
    return "; ".join(names)


# --- helpers ----------------------------------------------------------------------------


def _count_verdict(held: int, tested: int) -> str:
    return "supported" if held == tested else "refuted" if held == 0 else "partly supported"


def _combine(verdicts: list[str]) -> str:
    """A claim of several parts: supported only if every part is, refuted only if every part is."""
    return verdicts[0] if len(set(verdicts)) == 1 else "partly supported"


def _threshold_verdict(lo: float, hi: float, *, strong: float, weak: float) -> str:
    if lo >= strong:
        return "supported"
    if lo > weak:
        return "partly supported"
    if hi <= weak:
        return "refuted"
    return "inconclusive"


def _median_range(values: pd.Series, show: Callable[[float], str]) -> str:
    return f"{show(values.median())} (range {show(values.min())} to {show(values.max())})"


def _show_steps(steps: float) -> str:
    return f"{steps:g}" if np.isfinite(steps) else "not reached"


def _relative_loss_text(window: Window, lr: float) -> str:
    ratio = window.relative_loss(lr)
    if not np.isfinite(ratio):
        return f"{lr:g} diverged in at least half of its seeds"
    return f"{lr:g} with {ratio:.3g}x the best median {window.metric} val loss"


def _plain(value: float) -> str:
    """3 significant digits without an exponent below 10^6 (38000, not 3.8e+04)."""
    return f"{value:.3g}" if abs(value) < 1000 or not np.isfinite(value) else f"{value:.0f}"


def _lrs(lrs: list[float]) -> str:
    return ", ".join(f"{lr:g}" for lr in lrs)
