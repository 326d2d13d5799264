"""The seed's Experiment 3: momentum. Every (m > 0, lr) pair of SGD is compared with plain SGD at
the same lr, seed by seed (the same seed gives the same initial weights), over the seeds where
both finished: the ratio of the late effective steps (geometric mean over seeds) or the
difference of the late update cosines (mean over seeds).

  5a momentum enlarges the step: the ratio above 1 + STEP_TIE (a count over the pairs).
  5b momentum smooths the path: the cosine difference above COSINE_TIE (pairs within it tie).
  5c the size is 1/(1 - m) (the seed's prediction; equivalently, plain SGD at lr / (1 - m), the
     matched control, takes the same step: ratio 1): the velocity of a persistent gradient
     sums to g / (1 - m). Held where the ratio is within LAW_TIE of 1/(1 - m).
  5d the size is 1/sqrt(1 - m^2) where the gradient is noise: the velocity of independent
     gradients has variance sum m^2k = 1/(1 - m^2). Held where within LAW_TIE of it.
     Both laws are the ends (lag-one correlation rho = 1, 0) of one: for gradients whose
     consecutive values correlate by rho, |v| / |g| = sqrt((1 + rho m) / ((1 - m^2)(1 - rho m)))
     (rho = -1, an oscillation, gives 1/(1 + m)); the details test it with rho = plain SGD's late
     update cosine at that lr, and give plain SGD's norm test (above 1: the minibatch
     gradient's error exceeds the gradient: noise-dominated) where each law holds.
  5e momentum brings SGD closer to Adam without per-coordinate adaptivity (the seed's
     conclusion): at the usual lrs, seed-paired, heavy ball with m = Adam's beta1 is closer to
     Adam's late update cosine than plain SGD is (the gap it closes, above CLOSER_MIN), and the
     smoothness comes from beta1: Adam with beta1 = 0 (the same per-coordinate scaling, no
     momentum) has a lower cosine than Adam, by more than CLOSER_MIN. That heavy ball's step is
     not per-coordinate is claim 6b's test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from optimizer_dynamics.claims.base import (
    Claim,
    Family,
    Missing,
    Outcome,
    Study,
    count_phrase,
    halves_outcome,
    interval_text,
    judge_count,
    judge_effect,
)
from optimizer_dynamics.stats import mean_interval

OPTIMIZER = "sgd"  # the optimizer whose momentum the seed's Experiment 3 varies (heavy ball)
STEP_TIE = 0.05  # late steps within 5 % count as equal
COSINE_TIE = 1e-3  # full-batch SGD at small lr has cosine 1 - O(1e-6) with or without momentum
LAW_TIE = 0.15  # a law holds at a pair within 15 % of its value (seeds spread a few percent)
CLOSER_MIN = 0.05  # a cosine gap that matters


def persistent_law(m):
    return 1 / (1 - m)


def noise_law(m):
    return 1 / np.sqrt(1 - m**2)


def correlated_law(m, rho):
    """|v| / |g| for gradients with lag-one correlation rho (AR(1)): 1/(1 - m) at rho 1, 1/sqrt(1 - m^2) at 0."""
    return np.sqrt((1 + rho * m) / ((1 - m**2) * (1 - rho * m)))


def momentum_pairs(study: Study) -> pd.DataFrame:
    """One row per SGD (momentum > 0, lr) with finished runs of it and of plain SGD at that lr:
    step_ratio (geometric mean over seeds), cosine_gain (mean), seeds, and plain SGD's late
    update cosine and median norm test there (medians over seeds)."""
    finished = study.runs[(study.runs["optimizer"] == OPTIMIZER) & ~study.runs["diverged"].astype(bool)]
    if finished.empty:
        raise Missing("no finished SGD runs")
    table = finished.pivot_table(index=["lr", "seed"], columns="momentum",
                                 values=["eff_step_late", "update_cosine_late"])
    momenta = sorted(m for m in table["eff_step_late"].columns if m > 0)
    if 0.0 not in table["eff_step_late"].columns or not momenta:
        raise Missing("needs finished SGD runs with momentum 0 and with some momentum > 0")
    plain_runs = finished[finished["momentum"] == 0].groupby("lr")
    rows = []
    for m in momenta:
        both = table.xs(m, axis=1, level=1).join(table.xs(0.0, axis=1, level=1).add_suffix("_plain")).dropna(
            subset=["eff_step_late", "eff_step_late_plain"])
        for lr, seeds in both.groupby(level="lr"):
            log_ratio = np.log(seeds["eff_step_late"] / seeds["eff_step_late_plain"])
            noise = plain_runs.get_group(lr)["noise_norm_test_median"] if "noise_norm_test_median" in finished else []
            rows.append({"momentum": m, "lr": lr, "seeds": len(seeds), "step_ratio": math.exp(log_ratio.mean()),
                         "cosine_gain": (seeds["update_cosine_late"] - seeds["update_cosine_late_plain"]).mean(),
                         "plain_cosine": seeds["update_cosine_late_plain"].median(),
                         "plain_norm_test": pd.Series(noise, dtype=float).median()})
    if not rows:
        raise Missing("no (momentum, lr) pair where SGD with momentum and plain SGD both finished")
    return pd.DataFrame(rows)


def pair_names(pairs: pd.DataFrame) -> pd.Series:
    return pairs.apply(lambda row: f"m {row['momentum']:g} at lr {row['lr']:g}", axis=1)


def lr_ranges(pairs: pd.DataFrame, chosen: pd.Series) -> str:
    """"m 0.9: lr 0.001-0.02, 5; m 0.99: none": the chosen pairs' lrs, runs of consecutive grid lrs joined."""
    parts = []
    for m, group in pairs.groupby("momentum"):
        lrs, keep = group["lr"].to_list(), chosen[group.index].to_list()
        spans, start = [], None
        for i, (lr, ok) in enumerate(zip(lrs, keep)):
            if ok and start is None:
                start = lr
            if ok and (i == len(lrs) - 1 or not keep[i + 1]):
                spans.append(f"{start:g}" if start == lr else f"{start:g}-{lr:g}")
                start = None
        parts.append(f"m {m:g}: " + (("lr " + ", ".join(spans)) if spans else "none"))
    return "; ".join(parts)


def count_outcome(pairs: pd.DataFrame, held: pd.Series, what: str, measured: str, detail: str,
                  equal: pd.Series | None = None) -> Outcome:
    if equal is not None and equal.all():
        return Outcome("no difference", f"no difference at any of {len(pairs)} (m, lr) pairs", measured, detail,
                       n_held=0, n_tested=len(pairs), unit="(m, lr) pairs")
    key = count_phrase(held, pair_names(pairs), "(m, lr) pairs", holds=what)
    if 0 < held.sum() < len(held) and key.count(";") == 0:  # the pairs were too many to name: their lr ranges
        key += f"; where: {lr_ranges(pairs, held)}"
    share = held.mean()
    return Outcome(judge_count(int(held.sum()), len(held)), key, measured, detail, effect=share,
                   n_held=int(held.sum()), n_tested=len(held), unit="(m, lr) pairs")


def ratio_summary(pairs: pd.DataFrame) -> str:
    return "; ".join(f"m {m:g}: step ratio to plain SGD at the same lr {g['step_ratio'].median():.3g} (median over "
                     f"{len(g)} lrs, range {g['step_ratio'].min():.3g} to {g['step_ratio'].max():.3g}; "
                     f"1/(1 − m) = {persistent_law(m):.3g}, 1/√(1 − m²) = {noise_law(m):.3g})"
                     for m, g in pairs.groupby("momentum"))


def enlarges_step(study: Study) -> Outcome:
    pairs = momentum_pairs(study)
    held = pairs["step_ratio"] > 1 + STEP_TIE
    equal = (pairs["step_ratio"] - 1).abs() <= STEP_TIE
    return count_outcome(pairs, held, "larger", ratio_summary(pairs),
                         f"Larger: a late effective step more than {STEP_TIE:.0%} above plain SGD's at the same lr; "
                         f"within {STEP_TIE:.0%} at {int(equal.sum())} pairs.", equal)


def smooths(study: Study) -> Outcome:
    pairs = momentum_pairs(study)
    held = pairs["cosine_gain"] > COSINE_TIE
    equal = pairs["cosine_gain"].abs() <= COSINE_TIE
    measured = "; ".join(f"m {m:g}: cosine gain over plain SGD {g['cosine_gain'].median():+.3g} (median over {len(g)} "
                         f"lrs, range {g['cosine_gain'].min():+.3g} to {g['cosine_gain'].max():+.3g})"
                         for m, g in pairs.groupby("momentum"))
    return count_outcome(pairs, held, "smoother", measured,
                         f"Smoother: late update cosine more than {COSINE_TIE:g} above plain SGD's at the same lr; "
                         f"within it (a tie) at {int(equal.sum())} pairs, lower at {int((~held & ~equal).sum())}.",
                         equal)


def law_outcome(study: Study, law, name: str) -> Outcome:
    pairs = momentum_pairs(study)
    predicted = law(pairs["momentum"])
    held = (np.log(pairs["step_ratio"] / predicted)).abs() <= math.log1p(LAW_TIE)
    correlated = correlated_law(pairs["momentum"], pairs["plain_cosine"].clip(-0.999, 0.999))
    fits = (np.log(pairs["step_ratio"] / correlated)).abs() <= math.log1p(LAW_TIE)
    detail = (f"Held: the step ratio within {LAW_TIE:.0%} of {name}. The lag-one law with ρ = plain SGD's late update "
              f"cosine fits {int(fits.sum())} of {len(pairs)} pairs.")
    def median_text(values: pd.Series) -> str:
        return f"{values.median():.2g}" if values.notna().any() else "no pair"

    detail += (f" Plain SGD at those lrs, where the law holds and elsewhere: late update cosine (1: a persistent "
               f"gradient, 0: independent steps, -1: an oscillation) {median_text(pairs['plain_cosine'][held])} and "
               f"{median_text(pairs['plain_cosine'][~held])}")
    if pairs["plain_norm_test"].notna().any():
        detail += (f"; median norm test (above 1: the minibatch gradient's error exceeds the gradient) "
                   f"{median_text(pairs['plain_norm_test'][held])} and {median_text(pairs['plain_norm_test'][~held])}")
    detail += "."
    return count_outcome(pairs, held, f"follows {name}", ratio_summary(pairs), detail)


def persistent_size(study: Study) -> Outcome:
    return law_outcome(study, persistent_law, "1/(1 − m)")


def noise_size(study: Study) -> Outcome:
    return law_outcome(study, noise_law, "1/√(1 − m²)")


def closer_to_adam(study: Study) -> Outcome:
    sgd_lr = study.reference("sgd")[0]
    adam_lr, beta1 = study.reference("adam")

    def cosine(optimizer: str, lr: float, momentum: float) -> pd.Series:
        return study.seed_values(optimizer, lr, momentum, "update_cosine_late", missing=np.nan)

    adam, adam_plain = cosine("adam", adam_lr, beta1), cosine("adam", adam_lr, 0.0)
    sgd_plain, heavy_ball = cosine("sgd", sgd_lr, 0.0), cosine("sgd", sgd_lr, beta1)
    seeds = pd.concat({"adam": adam, "adam0": adam_plain, "sgd": sgd_plain, "hb": heavy_ball}, axis=1).dropna()
    if len(seeds) < 2:
        raise Missing(f"{len(seeds)} seeds where the four cells finished; need 2")
    closed = (seeds["adam"] - seeds["sgd"]).abs() - (seeds["adam"] - seeds["hb"]).abs()
    from_beta1 = seeds["adam"] - seeds["adam0"]
    effect, lo, hi, n = mean_interval(closed)
    b_effect, b_lo, b_hi, _ = mean_interval(from_beta1)
    halves = [judge_effect(effect, lo, hi, neutral=0, tie=COSINE_TIE, minimum=CLOSER_MIN),
              judge_effect(b_effect, b_lo, b_hi, neutral=0, tie=COSINE_TIE, minimum=CLOSER_MIN)]
    medians = seeds.median()
    key = (f"late update cosine: Adam β₁ {beta1:g} {medians['adam']:.2f}, heavy ball m {beta1:g} {medians['hb']:.2f}, "
           f"plain SGD {medians['sgd']:.2f}, Adam β₁ 0 {medians['adam0']:.2f}")
    measured = (f"gap to Adam's cosine closed by heavy ball {interval_text(effect, lo, hi, n, lambda x: f'{x:+.3f}')}; "
                f"Adam β₁ {beta1:g} - β₁ 0: {interval_text(b_effect, b_lo, b_hi, n, lambda x: f'{x:+.3f}')}")
    cells = {f"Adam β₁ {beta1:g}": ("adam", adam_lr, beta1), "Adam β₁ 0": ("adam", adam_lr, 0.0),
             "plain SGD": ("sgd", sgd_lr, 0.0), f"heavy ball m {beta1:g}": ("sgd", sgd_lr, beta1)}
    profiles = []
    for name, (optimizer, lr, momentum) in cells.items():
        step = study.seed_values(optimizer, lr, momentum, "eff_step_late", missing=np.nan).median() / lr
        spread = study.seed_values(optimizer, lr, momentum, "coord_eff_lr_spread_late", missing=np.nan).median()
        profiles.append(f"{name} {step:.3g}x lr, spread {spread:.3g}")
    measured += "; late effective step and per-coordinate spread (medians): " + ", ".join(profiles)
    detail = (f"Closer: {halves[0]}; smoothness from β₁: {halves[1]} (each at least {CLOSER_MIN:g}, mean over seeds, "
              f"t 95 % interval). SGD at lr {sgd_lr:g}, Adam at lr {adam_lr:g}. That heavy ball has no per-coordinate "
              "step is claim 6b's test.")
    return halves_outcome(halves, key, measured, detail, effect, lo, hi)


FAMILY = Family(
    name="Experiment 3: momentum",
    figures=("momentum",),
    claims=[
        Claim("5a", "Momentum increases SGD's effective step", "the seed, Experiment 3",
              f"late ‖update‖ / ‖grad‖ of heavy ball / plain SGD's at the same lr > 1 (tie within {STEP_TIE:.0%})",
              "per (m, lr) pair, the seed-paired ratio of late effective steps to plain SGD at the same lr",
              enlarges_step),
        Claim("5b", "Momentum smooths SGD's update trajectory (higher cosine between consecutive updates)",
              "the seed, Experiment 3",
              f"late update cosine of heavy ball - plain SGD's at the same lr > 0 (tie within {COSINE_TIE:g})",
              "per (m, lr) pair, the seed-paired difference of late update cosines",
              smooths),
        Claim("5c", "Momentum's effective step is ~lr/(1 − m) late in training (plain SGD at lr/(1 − m) takes "
              "the same step)", "the seed, Experiment 3",
              f"step ratio to plain SGD at the same lr = 1/(1 − m), within {LAW_TIE:.0%} (the matched control's ratio = 1)",
              "per (m, lr) pair, the seed-paired step ratio against 1/(1 − m)",
              persistent_size),
        Claim("5d", "Where the gradient is noise, momentum's step is lr/√(1 − m²), not lr/(1 − m)",
              "this project, on the seed's Experiment 3 (the variance of an exponential average of independent "
              "gradients)",
              f"step ratio to plain SGD at the same lr = 1/√(1 − m²), within {LAW_TIE:.0%}",
              "per (m, lr) pair, the seed-paired step ratio against 1/√(1 − m²)",
              noise_size),
        Claim("5e", "Momentum brings SGD closer to Adam, but without per-coordinate adaptivity: the smoothness "
              "comes from momentum (β₁)", "the seed, its conclusion (Experiment 3)",
              f"heavy ball closes the gap to Adam's late update cosine by at least {CLOSER_MIN:g}, and Adam β₁ 0 is at "
              f"least {CLOSER_MIN:g} below Adam's cosine",
              "late update cosine at the usual lrs: Adam (β₁ as configured, and 0), plain SGD and heavy ball with "
              "m = Adam's β₁, seed-paired",
              closer_to_adam),
    ],
)
