"""Curvature claims: the papers' and this project's, judged on the curvature runs (full batch,
Hessians in pairs of consecutive steps; aggregate.py's late_sharpness_ratio averages each pair,
so a period-2 orbit counts at both phases).

Each SGD or Adam curvature cell is placed by the t 95 % interval of its mean late ratio to the
threshold over the seeds that finished:
  "at the edge": the interval inside EDGE_BAND;
  "not reached": below (above) the band while the ratio still rises (falls) by more than
      TREND_TOLERANCE over the last quarter of the run (late_ratio_trend): the budget, not the
      claim, decided;
  "no progressive sharpening": settled below the band while the sharpness fell from its step-0
      value: the sharpness never rose toward the threshold;
  "below", "above": settled off the band otherwise; "undecided": the interval straddles an end
      of the band (or one seed finished); "diverged": every seed diverged.

  7a/7b at the edge of stability (Cohen et al. 2021, 2022): a count of cells at the edge; with
      none at the edge, "not reached" where a cell still moves toward it, else refuted.
  7c the catapult (Lewkowycz et al. 2020), both halves. (i) A catapult: an SGD curvature run
      starting above its threshold that trained (final train loss below the step-0 loss) and
      whose loss rose by more than LOSS_RISE_MIN before the sharpness fell below the threshold
      within the dense early steps; a run whose loss never rose is not a catapult. (ii) The
      largest lr that trains is a small multiple of the critical lr 2 (1 + m) / lambda_0: per
      momentum, over the full-batch grid and the curvature runs, the largest lr whose runs all
      trained and the smallest above it where one did not (diverged, or final train loss not
      below the initial), as multiples of the critical lr (lambda_0 per seed); held where the
      largest lies within [1, MAX_CATAPULT_MULTIPLE]; with no lr failing, "not reached".
  7d the sharpness falls late in training: a count of finished curvature runs whose
      sharpness_late_change is below -TREND_TOLERANCE.
  7e the edge of stochastic stability (Andreyev and Beneventano 2024), on the minibatch
      curvature runs: (i) a count of cells whose late batch sharpness ratio (aggregate.py's
      late_batch_sharpness_ratio) lies inside EDGE_BAND, interval and all; (ii) a count of
      cells whose late full-batch sharpness ratio lies below 1, interval and all.
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
    combine_halves,
    count_phrase,
    halves_outcome,
    interval_text,
    judge_count,
    plain,
)
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.stats import mean_interval

EDGE_BAND = (0.8, 1.2)  # "at the edge": the late (preconditioned) sharpness within 20 % of the threshold
TREND_TOLERANCE = 0.1  # a ratio or sharpness that moved by more than 10 % moved
LOSS_RISE_MIN = 0.01  # a catapult's loss rises by more than 1 % of its step-0 value
# The paper's MSE model survives up to 2x the critical lr (4/lambda_0); its ReLU networks further.
# "A small multiple" is read as at most 4x: twice the model's.
MAX_CATAPULT_MULTIPLE = 4.0
PLACES = ("at the edge", "not reached", "no progressive sharpening", "below", "above", "undecided", "diverged")


def edge_place(cell: pd.DataFrame) -> tuple[str, str]:
    """A cell's place against EDGE_BAND (module docstring) and its 'mean [lo, hi]' text."""
    mean, lo, hi, n = mean_interval(cell["late_sharpness_ratio"])
    if n == 0:
        return "diverged", "every seed diverged"
    text = interval_text(mean, lo, hi, n)
    edge_lo, edge_hi = EDGE_BAND
    trend = cell["late_ratio_trend"].mean()
    if n > 1 and edge_lo <= lo and hi <= edge_hi:
        return "at the edge", text
    if n > 1 and hi < edge_lo:
        if trend > TREND_TOLERANCE:
            return "not reached", f"{text}, still rising {trend:+.0%}"
        late = cell["stability_threshold"] * cell["late_sharpness_ratio"]
        fell = (late < cell["initial_stability_sharpness"]).all()
        return ("no progressive sharpening" if fell else "below"), text
    if n > 1 and lo > edge_hi:
        return ("not reached", f"{text}, still falling {trend:+.0%}") if trend < -TREND_TOLERANCE else ("above", text)
    return "undecided", text


def edge_of_stability(study: Study, optimizer: str) -> Outcome:
    runs = study.curvature_runs(optimizer)
    quantity = OPTIMIZERS[optimizer].stability_quantity
    places: dict[str, list[str]] = {}
    measured, ratios = [], []
    for (lr, momentum), cell in runs.groupby(["lr", "momentum"], sort=True):
        place, text = edge_place(cell)
        name = cell_name(optimizer, lr, momentum)
        places.setdefault(place, []).append(f"lr {lr:g}" + (f" m {momentum:g}" if optimizer == "sgd" else ""))
        ratios.append(cell["late_sharpness_ratio"].mean())
        threshold = cell["stability_threshold"].iloc[0]
        measured.append(f"{name} (threshold {plain(threshold)}): late ratio {text}; {quantity} "
                        f"{plain(cell['initial_stability_sharpness'].mean())} at step 0")
    tested = sum(len(v) for k, v in places.items() if k != "diverged")
    at_edge = len(places.get("at the edge", []))
    if at_edge:
        verdict = judge_count(at_edge, tested)
    elif "not reached" in places:
        verdict = "not reached"
    elif "undecided" in places or not tested:
        verdict = "inconclusive"
    else:
        verdict = "refuted"
    lo, hi = EDGE_BAND
    parts = [f"at the edge in {at_edge} of {tested} cells" + (f": {', '.join(places['at the edge'])}" if at_edge else "")]
    parts += [f"{place} in {len(places[place])}: {', '.join(places[place])}" for place in PLACES[1:] if place in places]
    detail = (f"At the edge: the late ratio's interval inside [{lo:g}, {hi:g}]. No progressive sharpening: settled below "
              f"the band while the {quantity} fell from its step-0 value. Not reached: still moving toward the band "
              f"by more than {TREND_TOLERANCE:.0%} over the last quarter of the run.")
    finite = [r for r in ratios if np.isfinite(r)]
    return Outcome(verdict, "; ".join(parts), "; ".join(measured), detail,
                   effect=float(np.median(finite)) if finite else np.nan, n_held=at_edge, n_tested=tested,
                   unit="cells")


def sgd_edge_of_stability(study: Study) -> Outcome:
    return edge_of_stability(study, "sgd")


def adam_edge_of_stability(study: Study) -> Outcome:
    return edge_of_stability(study, "adam")


def catapult(study: Study) -> Outcome:
    curvature = study.curvature_runs("sgd")
    lambda0 = curvature.groupby("seed")["initial_sharpness"].median()  # depends on the initial weights only
    # (i) the catapults
    above = curvature[curvature["initial_sharpness"] > curvature["stability_threshold"]]
    if above.empty:
        raise Missing("no SGD curvature run starts above its threshold (lr > 2 (1 + m) / lambda_0)")
    trained = above[~above["diverged"].astype(bool) & (above["final_train_loss_ratio"] < 1)]
    early = trained["curvature_early_steps"].where(trained["curvature_early_steps"] > 0, trained["steps"])
    caught = trained["first_stable_step"] <= early
    rose = trained["loss_rise_before_stable"] > LOSS_RISE_MIN
    held = (caught & rose).reset_index(drop=True)
    names = trained.apply(lambda r: f"lr {r['lr']:g} m {r['momentum']:g}", axis=1).reset_index(drop=True)
    catapults = judge_count(int(held.sum()), len(held)) if len(held) else "inconclusive"
    # (ii) the largest lr that trains, per momentum
    grid = select_full_batch_sgd(study)
    runs = pd.concat([grid, curvature], ignore_index=True)
    runs = runs[runs["seed"].isin(lambda0.index)]
    runs = runs.assign(multiple=runs["lr"] * runs["seed"].map(lambda0) / (2 * (1 + runs["momentum"])),
                       trained=~runs["diverged"].astype(bool) & (runs["final_train_loss_ratio"] < 1))
    brackets, in_range, bracketed = [], 0, 0
    for momentum, group in runs.groupby("momentum", sort=True):
        per_lr = group.groupby("lr").agg(all_trained=("trained", "all"), multiple=("multiple", "median"))
        good = per_lr[per_lr["all_trained"]]
        if good.empty:
            brackets.append(f"m {momentum:g}: no lr trained in every seed")
            continue
        largest = good.index.max()
        failing = per_lr[(per_lr.index > largest) & ~per_lr["all_trained"]]
        text = f"m {momentum:g}: trains up to lr {largest:g} ({per_lr.loc[largest, 'multiple']:.3g}x)"
        if failing.empty:
            text += ", fails at no larger lr (not reached)"
        else:
            bracketed += 1
            text += f", fails from lr {failing.index.min():g} ({failing['multiple'].iloc[0]:.3g}x)"
            in_range += int(1 <= per_lr.loc[largest, "multiple"] <= MAX_CATAPULT_MULTIPLE)
        brackets.append(text)
    n_lines = runs["momentum"].nunique()
    largest_verdict = ("not reached" if bracketed == 0 else judge_count(in_range, bracketed))
    verdict = combine_halves([catapults, largest_verdict])
    key = (count_phrase(held, names, "trained runs above the threshold", holds="catapult") if len(held)
           else "no run above the threshold trained") + "; largest lr that trains: " + "; ".join(brackets)
    detail = (f"λ0 per seed {lambda0.min():.3g} to {lambda0.max():.3g}; multiples of the critical lr 2 (1 + m) / λ0. "
              f"(i) catapults: {catapults}: {len(above)} curvature runs start above the threshold, {len(trained)} "
              f"trained (final train loss below the step-0 loss), {int(caught.sum())} of those brought the sharpness "
              f"below it within the dense early steps, {int(rose.sum())} had a loss rising by more than "
              f"{LOSS_RISE_MIN:.0%} before. (ii) largest lr: {largest_verdict}: within [1, {MAX_CATAPULT_MULTIPLE:g}]x "
              f"in {in_range} of {bracketed} bracketed momentum lines (of {n_lines}). The paper's MSE model trains up "
              "to 2x; with momentum the critical lr is 2 (1 + m) / λ0, this project's extension.")
    return Outcome(verdict, key, "; ".join(brackets), detail, effect=held.mean() if len(held) else np.nan,
                   n_held=int(held.sum()), n_tested=len(held), unit="trained runs above the threshold")


def select_full_batch_sgd(study: Study) -> pd.DataFrame:
    runs = study.all_runs
    return runs[(runs["optimizer"] == "sgd") & (runs["batch"] == "full")]


def sharpness_falls_late(study: Study) -> Outcome:
    finished = study.curvature_runs().dropna(subset=["sharpness_late_change"])
    if finished.empty:
        raise Missing("every curvature run diverged")
    change = finished["sharpness_late_change"].reset_index(drop=True)
    held = change < -TREND_TOLERANCE
    rose = int((change > TREND_TOLERANCE).sum())
    names = finished.apply(lambda r: cell_name(r["optimizer"], r["lr"], r["momentum"]), axis=1).reset_index(drop=True)
    return Outcome(judge_count(int(held.sum()), len(held)),
                   count_phrase(held, names, "finished curvature runs", holds="falls") + f"; rises in {rose}",
                   f"late / mid-run sharpness - 1: median {change.median():+.1%} over {len(change)} runs",
                   f"Falls: by more than {TREND_TOLERANCE:.0%} from mid-run to the late steps.",
                   effect=float(held.mean()), n_held=int(held.sum()), n_tested=len(held), unit="runs")


def stochastic_edge(study: Study) -> Outcome:
    runs = study.curvature_runs()
    finished = runs[~runs["diverged"].astype(bool)]
    halves, parts, counts = [], [], []
    for name, ratio_column, predicate, holds in (
            ("batch sharpness at 2/lr", "late_batch_sharpness_ratio",
             lambda lo, hi: EDGE_BAND[0] <= lo and hi <= EDGE_BAND[1], f"in [{EDGE_BAND[0]:g}, {EDGE_BAND[1]:g}]"),
            ("full-batch sharpness below 2/lr", "late_sharpness_ratio", lambda lo, hi: hi < 1, "below 1")):
        held, names, texts = [], [], []
        for (optimizer, lr, momentum), cell in finished.groupby(["optimizer", "lr", "momentum"]):
            mean, lo, hi, n = mean_interval(cell[ratio_column])
            if n < 2:
                continue
            held.append(predicate(lo, hi))
            names.append(cell_name(optimizer, lr, momentum))
            texts.append(f"{cell_name(optimizer, lr, momentum)} {interval_text(mean, lo, hi, n)}")
        if not held:
            raise Missing("no minibatch curvature cell with two finished seeds (config curvature.minibatch.cells)")
        halves.append(judge_count(sum(held), len(held)))
        counts.append(count_phrase(pd.Series(held), pd.Series(names), "cells", holds=holds))
        parts.append(f"{name}: " + "; ".join(texts))
    batch = finished["late_batch_sharpness_ratio"].median()
    full = finished["late_sharpness_ratio"].median()
    regime = finished["batch"].iloc[0]
    key = (f"at batch {regime}, the late batch sharpness is {batch:.2f} x 2(1+m)/lr and the full-batch sharpness "
           f"{full:.2f} x (medians over {len(finished)} finished runs)")
    detail = (f"Batch sharpness, late ratio to the threshold per cell, 95 % interval {counts[0]}; full-batch "
              f"sharpness {counts[1]}. Halves: {', '.join(halves)}.")
    return halves_outcome(halves, key, ". ".join(parts), detail, float(batch))


CURVATURE_AXES = ("budget",)

FAMILY = Family(
    name="Curvature: the edge of stability and the catapult",
    findings=("7a",),
    figures=("sharpness", "stability", "stochastic_edge"),
    claims=[
        Claim("7a", "Full-batch gradient descent, with or without heavy-ball momentum, trains at the edge of "
              "stability: the sharpness rises to 2(1+m)/lr and hovers there", "Cohen et al., 2021",
              f"late sharpness / (2(1+m)/lr), averaged over each Hessian pair, in [{EDGE_BAND[0]:g}, {EDGE_BAND[1]:g}] "
              "in every SGD curvature cell",
              "per SGD curvature cell, the late ratio to the threshold (mean, t 95 % interval over seeds)",
              sgd_edge_of_stability, axes=CURVATURE_AXES, run_set="curvature"),
        Claim("7b", "Adam trains at the edge of stability: its preconditioned sharpness rises to "
              "(2+2β₁)/((1-β₁) lr), 38/lr at β₁ = 0.9, and hovers there", "Cohen et al., 2022",
              f"late preconditioned sharpness / (2+2β₁)/((1-β₁) lr) in [{EDGE_BAND[0]:g}, {EDGE_BAND[1]:g}] in every "
              "Adam curvature cell",
              "per Adam curvature cell, the late ratio of the top eigenvalue of P^-1 H to the threshold",
              adam_edge_of_stability, axes=CURVATURE_AXES, run_set="curvature"),
        Claim("7c", "Above the step-0 critical lr 2/λ0, gradient descent survives by a catapult (the loss rises, "
              "then falls as the sharpness drops below 2/lr), up to a largest lr that is a small multiple of 2/λ0",
              "Lewkowycz et al., 2020",
              f"every trained run above the threshold catapults (loss rise > {LOSS_RISE_MIN:.0%}, sharpness below the "
              f"threshold in the early steps); the largest lr that trains is 1-{MAX_CATAPULT_MULTIPLE:g}x 2(1+m)/λ0",
              "SGD curvature runs above their threshold; per momentum, full-batch grid and curvature runs: the "
              "largest lr that trains and the next that does not, in multiples of 2(1+m)/λ0",
              catapult, axes=CURVATURE_AXES, run_set="curvature"),
        Claim("7d", "The sharpness falls late in training (logistic loss: the logits keep growing)",
              "this project: with logistic loss the logits keep growing",
              f"late / mid-run sharpness - 1 < -{TREND_TOLERANCE:.0%} in every finished curvature run",
              "per finished curvature run: mean sharpness over the late Hessian pairs / over as many ending at mid-run",
              sharpness_falls_late, axes=CURVATURE_AXES, run_set="curvature"),
        Claim("7e", "With minibatches, the batch sharpness E_B[g_Bᵀ H_B g_B / |g_B|²] settles at 2/lr while the "
              "full-batch sharpness stays below it: the edge of stochastic stability",
              "Andreyev and Beneventano, 2024",
              f"late batch sharpness / (2(1+m)/lr) in [{EDGE_BAND[0]:g}, {EDGE_BAND[1]:g}] and late full-batch sharpness "
              "/ (2(1+m)/lr) below 1, interval and all, in every minibatch curvature cell",
              "per minibatch curvature cell, the late ratios to the threshold (mean, t 95 % interval over seeds)",
              stochastic_edge, axes=CURVATURE_AXES, run_set="minibatch_curvature"),
    ],
)
