"""Gradient-noise claims, on the grid runs' exact noise instruments (noise.py; aggregate.py's noise_*
run columns; every run with noise steps, a diverged one up to its divergence where the column
allows).

  8a the batch in use lies below the noise scale B_simple (McCandlish et al. 2018: below it a
     step is mostly noise): minibatch regimes only; a count of runs whose median B_simple over
     their noise steps exceeds their batch size.
  8b B_simple grows as training goes on (McCandlish et al. 2018): a count of finished runs whose
     last / step-0 B_simple - 1 exceeds TREND_TOLERANCE.
  8c the best lr's median alpha lies in ALPHA_BAND (Cockpit: the best lrs of its problems had a
     median alpha from 0 to about 0.3): a count over (optimizer, momentum) lines, the best lr by
     the setting's metric, the median over seeds of noise_alpha_median there.
  8d momentum's smoothing follows the noise (this project, on claim 5b): per SGD (lr, m > 0)
     finished in both regimes, the gain in late update cosine over plain SGD at the same lr, at
     the first minibatch regime minus at full batch (no sampling noise); a count of pairs where
     it is larger by more than COSINE_TIE (pairs within it tie).
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
    judge_count,
    line_name,
    median_range,
    plain,
)
from optimizer_dynamics.claims.experiment3 import COSINE_TIE
from optimizer_dynamics import batch_regime
from optimizer_dynamics.tables import select

TREND_TOLERANCE = 0.1  # B_simple "grew" when it rose by more than 10 %
ALPHA_BAND = (0.0, 0.3)  # Cockpit's finding for the best lrs of its four problems


def count_outcome(held: pd.Series, names: pd.Series, unit: str, holds: str, measured: str, detail: str) -> Outcome:
    held, names = held.reset_index(drop=True), names.reset_index(drop=True)
    return Outcome(judge_count(int(held.sum()), len(held)), count_phrase(held, names, unit, holds=holds), measured,
                   detail, effect=float(held.mean()), n_held=int(held.sum()), n_tested=len(held), unit=unit)


def run_names(runs: pd.DataFrame) -> pd.Series:
    return runs.apply(lambda r: cell_name(r["optimizer"], r["lr"], r["momentum"]), axis=1)


def below_noise_scale(study: Study) -> Outcome:
    runs = study.noise_runs()
    if runs["batch"].iloc[0] == "full":
        raise Missing("full batch has no sampling noise; the claim is about minibatches")
    size = int(runs["batch_size"].iloc[0])
    held = runs["noise_b_simple_median"].fillna(runs["noise_b_simple_initial"]) > size
    first = runs["noise_first_step_above_batch"].dropna()
    measured = (f"B_simple at step 0 {median_range(runs['noise_b_simple_initial'], plain)}, median over the run "
                f"{median_range(runs['noise_b_simple_median'].dropna(), plain)}, against batch {size}")
    detail = f"The median run spends {runs['noise_above_batch_frac'].median():.0%} of its noise steps above {size}"
    if len(first):
        detail += f", from step {first.median():.0f} (median over the {len(first)} runs that get there)"
    return count_outcome(held, run_names(runs), "runs", f"B_simple above {size}", measured, detail + ".")


def noise_scale_grows(study: Study) -> Outcome:
    finished = study.noise_runs().dropna(subset=["noise_b_simple_final"])
    if finished.empty:
        raise Missing("every run with noise steps diverged")
    ratio = finished["noise_b_simple_final"] / finished["noise_b_simple_initial"]
    held = ratio - 1 > TREND_TOLERANCE
    fell = int((ratio - 1 < -TREND_TOLERANCE).sum())
    by_optimizer = ratio.groupby(finished["optimizer"]).median()
    detail = (f"Grew: last / step-0 B_simple above {1 + TREND_TOLERANCE:g}; fell in {fell}. Median last / step-0 by "
              "optimizer: " + ", ".join(f"{name} {value:.3g}x" for name, value in by_optimizer.items()) + ".")
    return count_outcome(held, run_names(finished), "finished runs", "grows",
                         f"last / step-0 B_simple: median {ratio.median():.3g}x over {len(ratio)} runs", detail)


def best_lr_alpha(study: Study) -> Outcome:
    runs = study.noise_runs()
    lo, hi = ALPHA_BAND
    measured, held, names = [], [], []
    for (optimizer, momentum), line in runs.groupby(["optimizer", "momentum"], sort=True):
        try:
            best = study.best_lr(optimizer, momentum)
        except Missing:
            continue
        per_lr = line.groupby("lr")["noise_alpha_median"].median()
        alpha = per_lr.get(best, np.nan)
        if not np.isfinite(alpha):
            continue
        held.append(lo <= alpha <= hi)
        names.append(f"{line_name(optimizer, momentum)} (α {alpha:.2f} at lr {best:g})")
        per_lr = per_lr.dropna()
        measured.append(f"{line_name(optimizer, momentum)}: best lr {best:g}, median α {alpha:.2f} (from "
                        f"{per_lr.iloc[0]:.2f} at lr {per_lr.index[0]:g} to {per_lr.iloc[-1]:.2f} at lr {per_lr.index[-1]:g})")
    if not held:
        raise Missing("no line has a best lr with finished noise measurements")
    return count_outcome(pd.Series(held), pd.Series(names), "optimizer lines", f"α in [{lo:g}, {hi:g}]",
                         "; ".join(measured), "α < 0: the step stops short of the minimum of the local quadratic "
                         "along it; α > 0: it passes the minimum.")


def smoothing_follows_noise(study: Study) -> Outcome:
    cells = select(study.all_cells, optimizer="sgd")
    regimes = sorted(cells["batch"].unique(), key=batch_regime.full_first)
    if "full" not in regimes or len(regimes) < 2:
        raise Missing("needs a full-batch and a minibatch regime")
    noisy = regimes[1]
    cosine = cells.pivot_table(index=["lr", "momentum"], columns="batch", values="update_cosine_late_mean")
    pairs = [{"lr": lr, "momentum": m, "full": row["full"] - cosine.loc[(lr, 0.0), "full"],
              noisy: row[noisy] - cosine.loc[(lr, 0.0), noisy]}
             for (lr, m), row in cosine.iterrows() if m > 0 and (lr, 0.0) in cosine.index]
    gains = pd.DataFrame(pairs, columns=["lr", "momentum", "full", noisy]).dropna()
    if gains.empty:
        raise Missing("no (lr, momentum) pair finished in both regimes")
    difference = gains[noisy] - gains["full"]
    held = difference > COSINE_TIE
    equal = int((difference.abs() <= COSINE_TIE).sum())
    names = gains.apply(lambda r: f"m {r['momentum']:g} at lr {r['lr']:g}", axis=1)
    measured = (f"gain in late update cosine from momentum, {batch_regime.label(noisy)} - full batch: median "
                f"{difference.median():+.3g} (range {difference.min():+.3g} to {difference.max():+.3g})")
    detail = f"Larger at {batch_regime.label(noisy)} by more than {COSINE_TIE:g}; within it (a tie) at {equal} pairs."
    plain_noise = select(study.all_runs, batch=noisy, optimizer="sgd", momentum=0.0)
    if "noise_norm_test_median" in plain_noise and plain_noise["noise_norm_test_median"].notna().any():
        detail += (f" Plain SGD's norm test at {batch_regime.label(noisy)}: "
                   f"{plain_noise['noise_norm_test_median'].median():.2f} (median; above 1 the minibatch gradient's "
                   "error exceeds the gradient).")
    return count_outcome(held, names, "(m, lr) pairs", f"larger at {batch_regime.label(noisy)}", measured, detail)


FAMILY = Family(
    name="Gradient noise",
    figures=("noise",),
    claims=[
        Claim("8a", "A minibatch of the seed's size lies below the gradient noise scale B_simple, so its steps are "
              "mostly noise", "McCandlish et al., 2018",
              "every run's median B_simple = tr(Σ) / |G|² over its noise steps exceeds its batch size",
              "per grid run, the median over its noise steps of B_simple (exact, over the training set)",
              below_noise_scale, minibatch_only=True),
        Claim("8b", "The gradient noise scale B_simple grows as training goes on", "McCandlish et al., 2018",
              f"last / step-0 B_simple > {1 + TREND_TOLERANCE:g} in every finished run",
              "per finished grid run, B_simple at the last noise step / at step 0",
              noise_scale_grows),
        Claim("8c", f"At the best learning rate the step lands slightly past the local minimum: median α from "
              f"{ALPHA_BAND[0]:g} to about {ALPHA_BAND[1]:g}", "Schneider, Dangel and Hennig, 2021 (Cockpit)",
              f"the best lr's median α in [{ALPHA_BAND[0]:g}, {ALPHA_BAND[1]:g}] in every optimizer line",
              "per optimizer and momentum, Cockpit's α (exact, on the full-batch loss) at the best lr by the "
              "setting's metric: median over the noise steps, then over seeds",
              best_lr_alpha, axes=("regime", "metric", "budget")),
        Claim("8d", "Momentum's smoothing (claim 5b) follows the gradient noise: it gains more at minibatch than at "
              "full batch", "this project, on the seed's Experiment 3",
              f"momentum's cosine gain over plain SGD, minibatch - full batch > {COSINE_TIE:g} at every (m, lr) pair",
              "per SGD (lr, m > 0) finished in both regimes, the late update cosine minus plain SGD's at the same lr",
              smoothing_follows_noise, axes=("budget",)),
    ],
)
