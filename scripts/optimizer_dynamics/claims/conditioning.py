"""Per-coordinate scaling and conditioning: what Adam's division per coordinate fixes, read from
the conditioning runs (study.py): plain SGD and Adam on moons, on moons with its first input
stretched by kappa (problems.conditioned), and on a stretched problem rotated. Each claim is
judged per regime, loss metric and budget, at each optimizer's best lr on each problem (a tuned
comparison: the lrs that are good differ from problem to problem, which is the point).

Stretching one input by kappa multiplies that input's curvature by about kappa^2 (the loss's
gradient with respect to its first-layer weights, and the hidden units it drives, scale with
it). Plain SGD's stable and best lr should then fall by up to log10(kappa^2) decades; Adam's
update is invariant to a per-coordinate rescaling of the gradient, so its best lr should not
move. A rotation keeps the spectrum but mixes the stiff input into both coordinates, so a
diagonal preconditioner can no longer single it out; SGD is rotation-equivariant (rotating the
inputs and the initial first-layer weights together rotates its whole trajectory:
tests/test_training.py), so its result should not change.

  10a the step-0 sharpness grows as kappa^2: per seed, the exponent log(lambda_kappa /
      lambda_moons) / log(kappa^2) (the same seed: the same initial weights), its mean and t
      95 % interval judged equal to 1 within EXPONENT_TIE (judge_equal); a half per stretched
      problem.
  10b SGD's best lr falls: the fall in decades log10(best lr on moons / on the stretched
      problem), its 95 % interval from BOOTSTRAP_RESAMPLES resamples of the seeds (the same
      seeds on both problems). Two halves per stretched problem: (i) it falls by at least one
      grid step (GRID_STEP_DECADES), (ii) by at most log10(kappa^2) decades plus one grid step.
  10c Adam's best lr moves by at most one grid point: the move in grid points (signed), its
      bootstrap interval inside [-1, 1]; a half per stretched problem.
  10d rotating the stretched problem takes away Adam's advantage, and SGD's result does not
      change. Adam's advantage is the seed-paired ratio of SGD's best-lr val loss to Adam's
      (geometric mean, t interval; above 1: Adam lower). Three halves per rotated problem (of any
      kappa, paired with the unrotated problem of the same kappa):
      (i) Adam is ahead on the unrotated problem of the same kappa (beyond the tie band TIE; the
      claim's premise), (ii) it is not ahead on the rotated one (within the tie band, or behind),
      (iii) SGD's best-lr val loss rotated / unrotated equals 1 within TIE (judge_equal).
  10e the Hessian's block heterogeneity (Zhang et al. 2024; curvature.py's simpler measure:
      log10 of the largest over the smallest top eigenvalue of the diagonal blocks, at step 0)
      rises with kappa and with Adam's advantage. (i) Per stretched problem, the seed-paired
      rise over moons (decades; t interval) beyond HETEROGENEITY_TIE; (ii) over every problem,
      the Spearman rank correlation of the median heterogeneity with Adam's advantage (10d's
      ratio) at least RANK_AGREEMENT (at most 0: refuted).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from optimizer_dynamics.claims.base import (
    Claim,
    Family,
    Missing,
    RANK_AGREEMENT,
    Outcome,
    Study,
    halves_outcome,
    judge_effect,
    judge_equal,
    judge_rank,
    line_name,
    paired_ratio,
)
from optimizer_dynamics.claims.experiment2 import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from optimizer_dynamics.problems import PROBLEMS
from optimizer_dynamics.stats import mean_interval

EXPONENT_TIE = 0.1  # the sharpness grows as kappa^(2 x exponent): exponent 1 within 10 %
GRID_STEP_DECADES = math.log10(2.5)  # the widest step of a 1-2-5 lr grid (2 -> 5): 0.4 decades
TIE = 0.05  # best-lr val losses within 5 % count as equal (as the ladder's claims)
BASE = "moons"  # the problem of kappa 1, which the stretched problems are compared with
AXES = ("regime", "metric", "budget")
HETEROGENEITY_TIE = 0.1  # decades of block heterogeneity that count as no change


def problems_in(study: Study, stretched: bool | None = True, rotated: bool = False) -> list[str]:
    """The study's problems that are stretched (kappa > 1; None: either) and rotated or not, registry order."""
    present = set(study.runs["problem"])
    return [name for name, entry in PROBLEMS.items() if name in present
            and (stretched is None or (entry.kappa > 1) == stretched) and (entry.rotation_degrees != 0) == rotated]


def needed(problems: list[str], what: str) -> list[str]:
    if not problems:
        raise Missing(f"no {what} among the conditioning runs' problems (config conditioning.problems)")
    return problems


def line(study: Study, optimizer: str) -> tuple[str, float]:
    """The optimizer and its reference momentum: plain SGD, Adam with its β₁."""
    return optimizer, study.reference(optimizer)[1]


def sharpness_grows(study: Study) -> Outcome:
    base = study.on_problem(BASE).runs.groupby("seed")["initial_sharpness"].median()
    if not base.notna().any():
        raise Missing("the conditioning runs measured no step-0 sharpness (initial_sharpness)")
    halves, parts = [], []
    for problem in needed(problems_in(study), "stretched problem"):
        kappa = PROBLEMS[problem].kappa
        stretched = study.on_problem(problem).runs.groupby("seed")["initial_sharpness"].median()
        exponent = np.log(stretched / base) / math.log(kappa**2)
        mean, lo, hi, n = mean_interval(exponent)
        halves.append(judge_equal(mean, lo, hi, tie=EXPONENT_TIE))
        ratio = float(np.exp(np.log(stretched / base).mean()))
        parts.append((problem, kappa, ratio, mean, lo, hi, n))
    last = parts[-1]
    key = (f"κ {last[1]:g} multiplies the step-0 sharpness by {last[2]:.3g} (κ² = {last[1] ** 2:g}): exponent "
           f"{last[3]:.2f} [{last[4]:.2f}, {last[5]:.2f}] of the predicted 1")
    measured = "; ".join(f"{problem}: x{ratio:.3g} of moons' {base.median():.3g}, exponent {mean:.2f} "
                         f"[{lo:.2f}, {hi:.2f}] over {n} seeds" for problem, _, ratio, mean, lo, hi, n in parts)
    detail = (f"Exponent log(λ_κ / λ_1) / log κ², per seed, judged equal to 1 within ±{EXPONENT_TIE:.0%}: "
              + ", ".join(f"{p[0]} {half}" for p, half in zip(parts, halves)) + ".")
    return halves_outcome(halves, key, measured, detail, last[3], last[4], last[5])


def resampled_best(studies: list[Study], optimizer: str, momentum: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per study: (its lrs, the index of the best lr in each resample of the seeds all share)."""
    matrices = [s.loss_matrix(optimizer, momentum) for s in studies]
    seeds = sorted(set.intersection(*(set(m.index) for m in matrices)))
    if len(seeds) < 2:
        raise Missing(f"{len(seeds)} seeds shared by the problems' {line_name(optimizer, momentum)} runs; need 2")
    picks = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(seeds), size=(BOOTSTRAP_RESAMPLES, len(seeds)))
    result = []
    for matrix in matrices:
        values = matrix.loc[seeds].to_numpy(dtype=float)  # seeds x lrs, +inf diverged
        medians = np.median(values[picks], axis=1)
        best = np.where(np.isfinite(medians).any(axis=1), np.argmin(medians, axis=1), -1)
        result.append((matrix.columns.to_numpy(dtype=float), best))
    return result


def best_lr_moves(study: Study, optimizer: str) -> list[dict]:
    """Per stretched problem: the best lr on moons and on it, and the move with its interval in
    decades (positive: it fell) and in grid points (negative: it fell)."""
    optimizer, momentum = line(study, optimizer)
    base = study.on_problem(BASE)
    moves = []
    for problem in needed(problems_in(study), "stretched problem"):
        other = study.on_problem(problem)
        base_lr, best_lr = base.best_lr(optimizer, momentum), other.best_lr(optimizer, momentum)
        (base_lrs, base_picks), (lrs, picks) = resampled_best([base, other], optimizer, momentum)
        if not np.array_equal(base_lrs, lrs):
            raise Missing(f"{line_name(optimizer, momentum)} has other lrs on {problem} than on {BASE}: "
                          "grid points are not comparable")
        ok = (base_picks >= 0) & (picks >= 0)
        fall = np.log10(base_lrs[base_picks[ok]] / lrs[picks[ok]])
        steps = np.searchsorted(lrs, lrs[picks[ok]]) - np.searchsorted(lrs, base_lrs[base_picks[ok]])
        edge = best_lr in (lrs.min(), lrs.max())
        moves.append({
            "problem": problem, "kappa": PROBLEMS[problem].kappa, "base_lr": base_lr, "lr": best_lr,
            "fall": math.log10(base_lr / best_lr), "fall_ci": tuple(np.percentile(fall, [2.5, 97.5])),
            "steps": int(np.searchsorted(lrs, best_lr) - np.searchsorted(lrs, base_lr)),
            "steps_ci": tuple(np.percentile(steps, [2.5, 97.5])), "edge": edge,
        })
    return moves


def best_lr_change(move: dict, whose: str) -> str:
    """ "moves Adam's best lr from 0.002 to 0.1", or "leaves Adam's best lr at 0.01" where the best
    lr is the same (as printed)."""
    base, lr = f"{move['base_lr']:g}", f"{move['lr']:g}"
    return f"leaves {whose} best lr at {base}" if base == lr else f"moves {whose} best lr from {base} to {lr}"


def sgd_best_lr_falls(study: Study) -> Outcome:
    moves = best_lr_moves(study, "sgd")
    halves, notes = [], []
    for move in moves:
        lo, hi = move["fall_ci"]
        bound = math.log10(move["kappa"] ** 2) + GRID_STEP_DECADES
        halves.append(judge_effect(move["fall"], lo, hi, neutral=0, tie=0, minimum=GRID_STEP_DECADES))
        halves.append("supported" if hi <= bound else "refuted" if lo > bound else "inconclusive")
        notes.append(f"{move['problem']}: falls {halves[-2]}, within log10 κ² + a grid step ({bound:.2f}): "
                     f"{halves[-1]}" + (" (its best lr is at the grid's edge: the move is a bound)"
                                        if move["edge"] else ""))
    last = moves[-1]
    predicted = math.log10(last["kappa"] ** 2)
    change = best_lr_change(last, "plain SGD's")
    key = (f"κ {last['kappa']:g} {change}: "
           f"{last['fall']:.2f} decades [{last['fall_ci'][0]:.2f}, {last['fall_ci'][1]:.2f}] of the "
           f"{predicted:.0f} that κ² allows")
    measured = "; ".join(f"{m['problem']} {best_lr_change(m, 'the')}, {m['fall']:.2f} decades "
                         f"[{m['fall_ci'][0]:.2f}, {m['fall_ci'][1]:.2f}]" for m in moves)
    detail = ("; ".join(notes) + f". Intervals: {BOOTSTRAP_RESAMPLES} resamples of the seeds; one grid step is "
              f"{GRID_STEP_DECADES:.2f} decades.")
    return halves_outcome(halves, key, measured, detail, last["fall"], *last["fall_ci"])


def adam_best_lr_stays(study: Study) -> Outcome:
    moves = best_lr_moves(study, "adam")
    halves = []
    for move in moves:
        lo, hi = move["steps_ci"]
        halves.append("supported" if -1 <= lo and hi <= 1 else "refuted" if lo > 1 or hi < -1 else "inconclusive")
    last = moves[-1]
    change = best_lr_change(last, "Adam's")
    key = (f"κ {last['kappa']:g} {change}: "
           f"{last['steps']:+d} grid points [{last['steps_ci'][0]:+.0f}, {last['steps_ci'][1]:+.0f}]")
    measured = "; ".join(f"{m['problem']} {best_lr_change(m, 'the')}, {m['steps']:+d} grid points "
                         f"[{m['steps_ci'][0]:+.0f}, {m['steps_ci'][1]:+.0f}]" for m in moves)
    detail = ("At most one grid point: the move's 95 % interval inside [-1, +1]: "
              + ", ".join(f"{m['problem']} {half}" + (" (its best lr is at the grid's edge: the move is a bound)"
                                                       if m["edge"] else "") for m, half in zip(moves, halves))
              + f". Intervals: {BOOTSTRAP_RESAMPLES} resamples of the seeds.")
    return halves_outcome(halves, key, measured, detail, last["steps"], *last["steps_ci"])


def best_loss(study: Study, optimizer: str) -> tuple[float, pd.Series]:
    optimizer, momentum = line(study, optimizer)
    lr = study.best_lr(optimizer, momentum)
    return lr, study.seed_values(optimizer, lr, momentum, study.loss_columns[0])


def rotation_takes_advantage(study: Study) -> Outcome:
    halves, parts = [], []
    for problem in needed(problems_in(study, stretched=None, rotated=True), "rotated problem"):
        entry = PROBLEMS[problem]
        partner = next((name for name, other in PROBLEMS.items() if other.kappa == entry.kappa
                        and other.rotation_degrees == 0 and name in set(study.runs["problem"])), None)
        if partner is None:
            raise Missing(f"{problem} has no unrotated problem of κ {entry.kappa:g} among the conditioning runs")
        unrotated, rotated = study.on_problem(partner), study.on_problem(problem)
        sgd_u, adam_u = best_loss(unrotated, "sgd")[1], best_loss(unrotated, "adam")[1]
        sgd_r, adam_r = best_loss(rotated, "sgd")[1], best_loss(rotated, "adam")[1]
        ahead_u, ahead_r, sgd_change = paired_ratio(sgd_u, adam_u), paired_ratio(sgd_r, adam_r), paired_ratio(sgd_r, sgd_u)
        premise = judge_effect(*ahead_u[:3], neutral=1, tie=TIE, minimum=1 + TIE, ratio=True)
        after = judge_effect(*ahead_r[:3], neutral=1, tie=TIE, minimum=1 + TIE, ratio=True)
        taken = "refuted" if after == "supported" else "inconclusive" if after == "inconclusive" else "supported"
        halves += [premise, taken, judge_equal(*sgd_change[:3], tie=TIE)]
        parts.append((problem, partner, ahead_u, ahead_r, sgd_change, halves[-3:]))
    problem, partner, ahead_u, ahead_r, sgd_change, last = parts[-1]

    def ratio(value):
        return f"{value[0]:.3f}x [{value[1]:.3f}, {value[2]:.3f}]"

    key = (f"SGD's best-lr val loss / Adam's: {ratio(ahead_u)} on {partner}, {ratio(ahead_r)} rotated; SGD's "
           f"rotated / unrotated {ratio(sgd_change)}")
    measured = "; ".join(f"{p}: SGD / Adam {ratio(u)} unrotated ({q}), {ratio(r)} rotated; SGD rotated / unrotated "
                         f"{ratio(c)}" for p, q, u, r, c, _ in parts)
    detail = "; ".join(
        f"{p}: Adam ahead unrotated (beyond {TIE:.0%}): {h[0]}; not ahead rotated: {h[1]}; SGD unchanged "
        f"(within {TIE:.0%}): {h[2]}" for p, _, _, _, _, h in parts) + "."
    return halves_outcome(halves, key, measured, detail, ahead_r[0], ahead_r[1], ahead_r[2])


def heterogeneity_tracks_advantage(study: Study) -> Outcome:
    def per_seed(problem: str) -> pd.Series:
        return study.on_problem(problem).runs.groupby("seed")["initial_block_heterogeneity"].median()

    base = per_seed(BASE)
    if not base.notna().any():
        raise Missing("the conditioning runs measured no block spectra (initial_block_heterogeneity)")
    halves, rises = [], []
    for problem in needed(problems_in(study), "stretched problem"):
        mean, lo, hi, n = mean_interval(per_seed(problem) - base)
        halves.append(judge_effect(mean, lo, hi, neutral=0, tie=HETEROGENEITY_TIE, minimum=HETEROGENEITY_TIE))
        rises.append(f"{problem} {mean:+.2f} [{lo:+.2f}, {hi:+.2f}] decades: {halves[-1]}")
    present = [name for name in PROBLEMS if name in set(study.runs["problem"])]
    heterogeneity = [float(per_seed(name).median()) for name in present]
    advantage = [paired_ratio(best_loss(study.on_problem(name), "sgd")[1],
                              best_loss(study.on_problem(name), "adam")[1])[0] for name in present]
    rho, rises = judge_rank(heterogeneity, advantage)
    halves.append(rises)
    pairs = "; ".join(f"{name}: {h:.2f} decades, SGD / Adam {a:.2f}x" for name, h, a in zip(present, heterogeneity,
                                                                                          advantage))
    key = (f"block heterogeneity {heterogeneity[0]:.2f} decades on {present[0]}, {max(heterogeneity):.2f} at most; "
           f"rank correlation with Adam's advantage {rho:.2f}")
    detail = (f"Rise with κ (beyond {HETEROGENEITY_TIE:g} decades): " + "; ".join(rises)
              + f". Rank correlation over {len(present)} problems ≥ {RANK_AGREEMENT:g}: {halves[-1]}.")
    return halves_outcome(halves, key, f"median step-0 block heterogeneity and best-lr loss ratio: {pairs}", detail,
                          rho)


SOURCE = "the per-coordinate scaling argument (issue: why Adam differs); Adam's invariance to diagonal rescaling"
FAMILY = Family(
    name="Conditioning: what per-coordinate scaling fixes",
    findings=("10c",),
    claims=[
        Claim("10a", "Stretching one input by κ multiplies the step-0 sharpness by about κ².", SOURCE,
              "the exponent log(λ_κ / λ_1) / log κ² is 1 within ±10 %",
              "step-0 top Hessian eigenvalue on each stretched problem against moons, seed by seed",
              sharpness_grows, axes=("regime", "budget"), run_set="conditioning"),
        Claim("10b", "Stretching one input by κ lowers plain SGD's best lr, by up to log10 κ² decades.", SOURCE,
              f"falls by at least one grid step ({GRID_STEP_DECADES:.2f} decades) and at most log10 κ² + one",
              "best lr by the median val loss over seeds, moons against each stretched problem",
              sgd_best_lr_falls, axes=AXES, run_set="conditioning"),
        Claim("10c", "Stretching one input by κ moves Adam's best lr by at most one grid point.", SOURCE,
              "the move's 95 % interval within ±1 grid point",
              "best lr by the median val loss over seeds, moons against each stretched problem",
              adam_best_lr_stays, axes=AXES, run_set="conditioning"),
        Claim("10d", "Rotating the stretched inputs takes away Adam's advantage; SGD's result does not change.",
              SOURCE, f"Adam ahead of SGD unrotated, not ahead rotated (tie band {TIE:.0%}); SGD equal within {TIE:.0%}",
              "best-lr val losses of SGD and Adam, seed-paired, on each rotated problem and its unrotated partner",
              rotation_takes_advantage, axes=AXES, run_set="conditioning"),
        Claim("10e", "The Hessian's block heterogeneity rises with κ, and Adam's advantage rises with it.",
              "Zhang et al., 2024",
              f"step-0 block heterogeneity above moons' by more than {HETEROGENEITY_TIE:g} decades on every "
              f"stretched problem; rank correlation with Adam's advantage ≥ {RANK_AGREEMENT:g}",
              "step-0 top eigenvalues of the Hessian's diagonal blocks, and 10d's best-lr loss ratio, per problem",
              heterogeneity_tracks_advantage, axes=AXES, run_set="conditioning"),
    ],
    figures=("conditioning",),
)
