"""The seed's Experiment 1: SGD against Adam at their usual lrs (and each at its best lr).

  1a Adam converges faster: seed-paired ratio of steps to the target val loss, Adam / SGD
     (geometric mean over seeds, t interval); a run that never reaches the target within the
     budget counts as taking one step more than the budget (a lower bound), so two runs that
     both miss it tie.
  1b Adam reaches a lower val loss: the same ratio of the setting's val loss (final, or
     selected without hindsight); seeds where a run diverged are left out and counted.
  2  plain SGD's update / grad = lr: per finished plain-SGD run, the largest relative deviation
     over its steps below EXACT_TOLERANCE.
  6a Adam's effective step is much larger: seed-paired ratio of the late effective step, Adam
     at its usual lr / SGD at its usual lr; the minimum effect is MUCH_LARGER_FACTOR.
  6b Adam's step is adaptive per coordinate: the per-coordinate spread (p90 / median of
     |update_i| / |grad_i|, late) of Adam against heavy ball at the same momentum (beta1), seed-
     paired: momentum alone spreads the coordinates too (a velocity of noisy gradients has no
     fixed ratio to the current gradient), so only a spread beyond heavy ball's is adaptivity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer_dynamics.claims.base import (
    Claim,
    Family,
    Missing,
    Outcome,
    Study,
    cell_name,
    count_phrase,
    interval_text,
    judge_count,
    judge_effect,
    median_range,
    paired_ratio,
    plain,
)

EXACT_TOLERANCE = 1e-6  # float64 arithmetic puts rounding near 1e-16; anything above 1e-6 is real
SPEED_TIE, SPEED_MIN = 0.05, 1.2  # steps within 5 % tie; "faster" means at least 1.2x fewer steps
LOSS_TIE, LOSS_MIN = 0.03, 1.05  # losses within 3 % tie; "lower" means at least 5 % lower
MUCH_LARGER_FACTOR = 10.0  # "much larger" read as at least an order of magnitude
ADAPTIVE_SPREAD_MIN = 2.0  # adaptivity: at least twice heavy ball's per-coordinate spread
SPREAD_TIE = 0.1


def compared_values(study: Study, column: str, missing: float) -> tuple[pd.Series, pd.Series, str]:
    """Per seed: Adam's and SGD's column in the setting's comparison, and what was compared."""
    adam, sgd = study.compared_cell("adam"), study.compared_cell("sgd")
    where = f"{cell_name('adam', *adam)} against {cell_name('sgd', *sgd)}"
    return (study.seed_values("adam", *adam, column, missing=missing),
            study.seed_values("sgd", *sgd, column, missing=missing), where)


def ratio_outcome(adam: pd.Series, sgd: pd.Series, where: str, *, quantity: str, tie: float, minimum: float,
                  show) -> Outcome:
    """Adam / SGD of a to-be-minimized quantity, judged lower-is-better."""
    ratio, lo, hi, n = paired_ratio(adam, sgd)
    if n < 2:
        raise Missing(f"{n} seeds where both finished at {where}; need 2")
    verdict = judge_effect(ratio, lo, hi, neutral=1, tie=tie, minimum=minimum, higher=False, ratio=True)
    left_out = len(pd.concat([adam, sgd], axis=1, join="inner")) - n
    measured = (f"{where}: Adam {median_range(adam, show)}, SGD {median_range(sgd, show)}; Adam / SGD "
                f"{interval_text(ratio, lo, hi, n)}")
    if verdict == "no difference":
        key = f"no difference in {quantity} (Adam / SGD {ratio:.2f}, within {tie:.0%})"
    else:
        key = f"Adam's {quantity} is {ratio:.2f}x SGD's [{lo:.2f}, {hi:.2f}]"
    detail = f"Geometric mean of the seed-paired ratio, t 95 % interval; tie band {tie:.0%}, minimum effect " \
             f"{minimum:g}x." + (f" {left_out} seeds left out (a run diverged)." if left_out else "")
    return Outcome(verdict, key, measured, detail, ratio, lo, hi)


def faster(study: Study) -> Outcome:
    if study.runs.empty:
        raise Missing("no grid runs in this regime")
    budget = int(study.runs["budget_steps"].max())
    adam, sgd, where = compared_values(study, "steps_to_target", missing=budget + 1)
    target = study.analysis["target_val_loss"]
    return ratio_outcome(adam, sgd, where, quantity=f"steps to val loss {target:g}", tie=SPEED_TIE,
                         minimum=SPEED_MIN, show=lambda x: f"{x:.0f}" if x <= budget else "not reached")


def lower_val_loss(study: Study) -> Outcome:
    adam, sgd, where = compared_values(study, study.loss_columns[0], missing=np.inf)
    return ratio_outcome(adam, sgd, where, quantity=f"{study.metric} val loss", tie=LOSS_TIE, minimum=LOSS_MIN,
                         show=lambda x: f"{x:.3g}")


def sgd_step_is_lr(study: Study) -> Outcome:
    runs = study.runs[(study.runs["optimizer"] == "sgd") & ~study.runs["diverged"]]
    plain_runs = runs[runs["momentum"] == 0]
    if plain_runs.empty:
        raise Missing("no finished plain-SGD (momentum 0) run")
    deviation = plain_runs["sgd_eff_step_max_rel_dev"]
    held = deviation < EXACT_TOLERANCE
    names = plain_runs["lr"].map(lambda lr: f"lr {lr:g}")
    detail = f"Largest relative deviation {deviation.max():.2g}, threshold {EXACT_TOLERANCE:g}."
    heavy_ball = runs[runs["momentum"] > 0]
    if not heavy_ball.empty:
        detail += (f" For contrast, with momentum the ratio moves away from lr by up to "
                   f"{heavy_ball['sgd_eff_step_max_rel_dev'].max():.3g} (relative).")
    return Outcome(judge_count(int(held.sum()), len(held)), count_phrase(held, names, "runs"),
                   f"max |update/grad / lr - 1| = {deviation.max():.3g} over {len(plain_runs)} runs", detail,
                   n_held=int(held.sum()), n_tested=len(held), unit="runs")


def adam_step_larger(study: Study) -> Outcome:
    adam = study.seed_values("adam", *study.reference("adam"), "eff_step_late", missing=np.nan)
    sgd = study.seed_values("sgd", *study.reference("sgd"), "eff_step_late", missing=np.nan)
    ratio, lo, hi, n = paired_ratio(adam, sgd)
    if n < 2:
        raise Missing(f"{n} finished paired seeds at the usual lrs; need 2")
    verdict = judge_effect(ratio, lo, hi, neutral=1, tie=0.05, minimum=MUCH_LARGER_FACTOR, ratio=True)
    adam_lr = study.reference("adam")[0]
    return Outcome(
        verdict, f"Adam's late effective step is {plain(ratio)}x SGD's [{plain(lo)}, {plain(hi)}] "
                 f"({plain(adam.median() / adam_lr)}x its lr)",
        f"Adam / SGD {interval_text(ratio, lo, hi, n)} (medians: Adam {adam.median():.3g}, SGD {sgd.median():.3g})",
        f"Much larger: at least {MUCH_LARGER_FACTOR:g}x; tie band 5 %.", ratio, lo, hi)


def adam_adaptive(study: Study) -> Outcome:
    adam_lr, beta1 = study.reference("adam")
    sgd_lr = study.reference("sgd")[0]

    def spread(optimizer: str, lr: float, momentum: float) -> pd.Series:
        return study.seed_values(optimizer, lr, momentum, "coord_eff_lr_spread_late", missing=np.nan)

    adam, heavy_ball = spread("adam", adam_lr, beta1), spread("sgd", sgd_lr, beta1)
    ratio, lo, hi, n = paired_ratio(adam, heavy_ball)
    if n < 2:
        raise Missing(f"{n} seeds where Adam and heavy ball both finished; need 2")
    verdict = judge_effect(ratio, lo, hi, neutral=1, tie=SPREAD_TIE, minimum=ADAPTIVE_SPREAD_MIN, ratio=True)
    measured = (f"per-coordinate spread (p90 / median): Adam β₁ {beta1:g} {median_range(adam, plain)}, heavy ball "
                f"m {beta1:g} {median_range(heavy_ball, plain)}; Adam / heavy ball {interval_text(ratio, lo, hi, n)}")
    try:
        without = spread("adam", adam_lr, 0.0)
        measured += f"; without momentum: Adam β₁ 0 {median_range(without, plain)}, plain SGD 1 (one lr for all)"
    except Missing:
        pass
    if verdict == "no difference":
        key = f"no difference: Adam's per-coordinate spread ties heavy ball's at the same momentum (ratio {ratio:.2f})"
    else:
        key = f"Adam's per-coordinate spread is {plain(ratio)}x heavy ball's at the same momentum [{plain(lo)}, {plain(hi)}]"
    key += f" (Adam {plain(adam.median())}, heavy ball {plain(heavy_ball.median())})"
    return Outcome(verdict, key,
                   measured, f"Adaptive: at least {ADAPTIVE_SPREAD_MIN:g}x heavy ball's spread (momentum alone "
                   f"spreads the coordinates too); tie band {SPREAD_TIE:.0%}.", ratio, lo, hi)


FAMILY = Family(
    name="Experiment 1: SGD vs Adam at their usual learning rates",
    findings=("1b", "6a"),
    figures=("loss_curves", "norms", "effective_step", "adaptivity"),
    claims=[
        Claim("1a", "Adam converges faster than SGD", "the seed, Experiment 1",
              f"Adam / SGD steps to the target val loss < 1: at least {SPEED_MIN:g}x fewer (tie within "
              f"{SPEED_TIE:.0%})",
              "steps to reach the target val loss, Adam vs SGD, seed-paired, at the usual lrs and at each one's best lr",
              faster, axes=("regime", "comparison", "budget")),
        Claim("1b", "Adam reaches a lower validation loss than SGD", "the seed, Experiment 1",
              f"Adam / SGD val loss < 1: at least {LOSS_MIN - 1:.0%} lower (tie within {LOSS_TIE:.0%})",
              "val loss (final, or at the step selected on the other half of the validation set), Adam vs SGD, "
              "seed-paired, at the usual lrs and at each one's best lr",
              lower_val_loss, axes=("regime", "metric", "comparison", "budget")),
        Claim("2", "For plain SGD, update/grad = lr (a constant)", "the seed, Experiment 1",
              f"|update/grad / lr - 1| < {EXACT_TOLERANCE:g} at every step of every run",
              "per finished plain-SGD run, the largest relative deviation over its steps",
              sgd_step_is_lr),
        Claim("6a", "Adam's effective step is much larger than SGD's", "the seed, Experiment 1",
              f"Adam / SGD late effective step at the usual lrs >= {MUCH_LARGER_FACTOR:g}",
              "late ‖update‖ / ‖grad‖, Adam vs SGD at the usual lrs, seed-paired",
              adam_step_larger),
        Claim("6b", "Adam's effective step is adaptive (per-coordinate)", "the seed, Experiment 1",
              f"Adam's per-coordinate spread / heavy ball's at the same momentum >= {ADAPTIVE_SPREAD_MIN:g}",
              "late p90 / median of |update_i| / |grad_i|, Adam vs heavy ball (m = Adam's β₁, SGD's usual lr), "
              "seed-paired",
              adam_adaptive),
    ],
)
