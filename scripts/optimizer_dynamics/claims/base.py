"""What every claim family shares: a claim's form (Claim), what judging it in one setting gives
(Outcome), the two judges that turn a measured effect into a verdict, the view of the aggregate
tables a judge reads (Study), the settings a claim is judged in and its headline.

A claim is a stated prediction (Claim.prediction: a number or a law) and, in each setting, a
measured effect with a 95 % interval over seeds (seed-paired where seeds are paired), from one
of two judges:

  judge_effect: one effect against a neutral value (1 for ratios, 0 for differences). Within
      the tie band of neutral: "no difference". Past the stated minimum effect in the predicted
      direction with an interval that excludes neutral: "supported". Past the tie band the
      other way with an interval that excludes neutral, or an interval wholly short of the
      minimum effect: "refuted". Anything else (an interval that spans neutral, an effect
      between the tie band and the minimum): "inconclusive". Ratios are judged on a log scale
      (a tie band of 5 % is [1/1.05, 1.05]).
  judge_count: a prediction made of every unit (run, cell, lr pair) tested: "supported" where it
      holds in at least HOLDS_SHARE of them, "refuted" where in at most 1 - HOLDS_SHARE,
      "mixed" in between; the headline says how many ("holds in 356 of 360 runs (99 %)") and
      names the few exceptions.

A threshold a run still moves toward at its end is "not reached", never refuted. A setting the
data cannot judge (no such runs, every run diverged) is "inconclusive" with the reason.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from optimizer_dynamics import batch_regime
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.stats import mean_interval
from optimizer_dynamics.tables import LOSS_METRICS, select

VERDICTS = ("supported", "mixed", "refuted", "no difference", "not reached", "inconclusive")
# how a verdict reads in a headline
VERDICT_WORDS = {"supported": "holds", "mixed": "mixed", "refuted": "fails", "no difference": "no difference",
                 "not reached": "not reached", "inconclusive": "undecided"}
# The axes a setting is made of, in the order a setting's label names them.
SETTING_AXES = ["regime", "metric", "comparison", "budget"]
# judge_count: "holds" in at least 95 % of the units, "fails" in at most 5 %
HOLDS_SHARE = 0.95
# a count's exceptions are named one by one up to this many
MAX_NAMED_EXCEPTIONS = 6
RANK_AGREEMENT = 0.8  # a rank correlation this high says two quantities rise together
MIN_PAIRED_SEEDS = 2  # an interval over seeds needs at least two of them
# Seed-paired comparisons of optimizers: at the lrs the seed names, or each at its best lr.
COMPARISONS = ("usual lrs", "tuned lrs")


class Missing(Exception):
    """The data cannot test a claim; the message says what is missing."""


@dataclass(frozen=True)
class Outcome:
    """A claim judged in one setting. effect, effect_lo, effect_hi: the measured effect in the
    prediction's units and its 95 % interval (NaN where the claim is a count); n_held of
    n_tested units (runs, cells, pairs, lrs) follow the prediction; key: the key number as a
    phrase for the headline ("SGD's good window is 0.2-1, not 0.1-0.3")."""

    verdict: str
    key: str
    measured: str
    detail: str
    effect: float = math.nan
    effect_lo: float = math.nan
    effect_hi: float = math.nan
    n_held: int | None = None
    n_tested: int | None = None
    unit: str = ""  # what n_held and n_tested count: "runs", "cells", "halves", ...


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str  # may name {sgd_window} / {adam_window}: the claimed windows from the config
    source: str  # who makes the claim: the seed's experiment, a paper, or this project
    prediction: str  # the stated prediction: a number or a law, with its tie band and minimum effect
    test: str  # what is measured, over what
    judge: Callable[["Study"], Outcome]
    axes: tuple[str, ...] = ("regime", "budget")  # the setting axes it is judged over
    minibatch_only: bool = False  # judged in the minibatch regimes only (a claim about sampling noise)
    run_set: str = "grid"  # the runs it reads (study.RUN_SETS): the grid's or the curvature runs
    across_regimes: bool = False  # judged on every regime at once (its settings' regime: batch_regime.ALL)


@dataclass(frozen=True)
class Family:
    """A claim family: its claims, and the report section and figures that show them."""

    name: str  # the report section's title
    claims: list[Claim]
    figures: tuple[str, ...] = field(default_factory=tuple)  # figures.FIGURES names
    # the claims whose key numbers answer the family's question: the study's key findings quote them
    findings: tuple[str, ...] = ()


# --- judges -------------------------------------------------------------------------------


def judge_effect(effect: float, lo: float, hi: float, *, neutral: float, tie: float, minimum: float,
                 higher: bool = True, ratio: bool = False) -> str:
    """The verdict on one effect (module docstring). For ratios, tie is relative (0.05: within
    5 % of neutral) and minimum a factor (10: ten times neutral); else both are differences."""
    if not all(np.isfinite([effect, lo, hi])):
        return "inconclusive"
    if ratio:
        effect, lo, hi, neutral = (math.log(v) for v in (effect, lo, hi, neutral))
        tie, minimum = math.log1p(tie), math.log(minimum)
    sign = 1 if higher else -1
    gain, low, high = sign * (effect - neutral), sign * (lo - neutral), sign * (hi - neutral)
    low, high = min(low, high), max(low, high)
    if abs(gain) <= tie:
        return "no difference"
    if gain >= minimum and low > 0:
        return "supported"
    if (gain < -tie and high < 0) or high < minimum and minimum > tie:
        return "refuted"
    return "inconclusive"


def judge_equal(ratio: float, lo: float, hi: float, *, tie: float) -> str:
    """A prediction of equality (a ratio of 1): "supported" where the ratio's whole interval lies
    inside the tie band [1/(1 + tie), 1 + tie], "refuted" where it lies wholly outside it,
    "inconclusive" where it straddles an edge (equal within the band, but not shown to be)."""
    if not all(np.isfinite([ratio, lo, hi])):
        return "inconclusive"
    band = (1 / (1 + tie), 1 + tie)
    if band[0] <= lo and hi <= band[1]:
        return "supported"
    if hi < band[0] or lo > band[1]:
        return "refuted"
    return "inconclusive"


def combine_halves(verdicts: list[str]) -> str:
    """A claim made of halves, each judged: "supported" only if every half is; "mixed" if some
    half holds (or holds in part) and another does not; with no half holding, the weakest
    reason: refuted, else not reached, else no difference, else inconclusive."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if {"supported", "mixed"} & set(verdicts):
        return "mixed"
    return next(v for v in ("refuted", "not reached", "no difference", "inconclusive") if v in verdicts)


def halves_outcome(halves: list[str], key: str, measured: str, detail: str, effect: float = math.nan,
                   effect_lo: float = math.nan, effect_hi: float = math.nan) -> Outcome:
    """The Outcome of a claim made of halves: combine_halves' verdict, the halves that held counted."""
    return Outcome(combine_halves(halves), key, measured, detail, effect, effect_lo, effect_hi,
                   n_held=sum(half == "supported" for half in halves), n_tested=len(halves), unit="halves of the claim")


def judge_rank(x, y) -> tuple[float, str]:
    """(Spearman's rank correlation of y with x, the verdict on "y rises with x"): supported at
    RANK_AGREEMENT or more, refuted at 0 or less; fewer than three points: inconclusive."""
    rho = float(spearmanr(x, y).statistic) if len(x) >= 3 else math.nan
    verdict = ("inconclusive" if not np.isfinite(rho) else "supported" if rho >= RANK_AGREEMENT
               else "refuted" if rho <= 0 else "inconclusive")
    return rho, verdict


def judge_count(held: int, tested: int) -> str:
    if tested == 0:
        return "inconclusive"
    share = held / tested
    return "supported" if share >= HOLDS_SHARE else "refuted" if share <= 1 - HOLDS_SHARE else "mixed"


def percent(held: int, tested: int) -> str:
    """"99 %": a share of units, never rounded up to 100 % or down to 0 % when it is not."""
    value = 100 * held / tested
    if 0 < held < tested:
        value = min(max(value, 1), 99)
    return f"{value:.0f} %"


def count_phrase(held: pd.Series, names: pd.Series, unit: str, holds: str = "holds") -> str:
    """"holds in 356 of 360 runs (99 %); the 4 exceptions: Adam lr 1e-05, 2e-05", or "... (4 %),
    only in: ...": held is a boolean per unit, names what each unit is (the minority is named
    when it has few distinct names; units sharing a name are named once)."""
    held = pd.Series(held).reset_index(drop=True).astype(bool)
    names = pd.Series(names).reset_index(drop=True)
    n_held, n = int(held.sum()), len(held)
    text = f"{holds} in {n_held} of {n} {unit} ({percent(n_held, n)})"
    for minority, lead in ((~held, "the {k} exception{s}"), (held, "only in")):
        listed = list(dict.fromkeys(names[minority]))
        k = int(minority.sum())
        if 0 < k <= n / 2 and len(listed) <= MAX_NAMED_EXCEPTIONS:
            return f"{text}; {lead.format(k=k, s='' if k == 1 else 's')}: " + "; ".join(listed)
    return text


def paired_ratio(a: pd.Series, b: pd.Series) -> tuple[float, float, float, int]:
    """(geometric mean of a / b, its t 95 % interval, n) over the seeds where both are finite
    and positive: a mean of log ratios, so 2x and 0.5x cancel."""
    both = pd.concat({"a": a, "b": b}, axis=1, join="inner").astype(float)
    both = both[np.isfinite(both).all(axis=1) & (both > 0).all(axis=1)]
    mean, lo, hi, n = mean_interval(np.log(both["a"] / both["b"]))
    return math.exp(mean) if n else math.nan, math.exp(lo) if n > 1 else math.nan, \
        math.exp(hi) if n > 1 else math.nan, n


# --- texts ----------------------------------------------------------------------------------


def spoken_list(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def plain(value: float) -> str:
    """3 significant digits without an exponent below 10^6 (38000, not 3.8e+04)."""
    return f"{value:.3g}" if abs(value) < 1000 or not np.isfinite(value) else f"{value:.0f}"


def interval_text(mean: float, lo: float, hi: float, n: int, show: Callable[[float], str] = plain) -> str:
    if n > 1:
        return f"{show(mean)} [{show(lo)}, {show(hi)}] over {n} seeds"
    return f"{show(mean)} (1 seed)" if n else "no finished seed"


def median_range(values: pd.Series, show: Callable[[float], str]) -> str:
    return f"{show(values.median())} (range {show(values.min())} to {show(values.max())})"


def lrs_text(lrs) -> str:
    return ", ".join(f"{lr:g}" for lr in lrs)


def line_name(optimizer: str, momentum: float) -> str:
    """"SGD m 0.9", "Adam β₁ 0"."""
    entry = OPTIMIZERS[optimizer]  # the registry's labels
    return f"{entry.label} {entry.momentum_symbol} {momentum:g}"


def cell_name(optimizer: str, lr: float, momentum: float) -> str:
    return f"{line_name(optimizer, momentum)} lr {lr:g}"


# --- the study a judge reads ----------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A good lr window at the resolution of the lr grid of one (optimizer, momentum)."""

    optimizer: str
    momentum: float
    grid: tuple[float, ...]
    lo: float
    hi: float
    best: float
    losses: tuple[float, ...]  # median val loss per grid lr (+inf: half or more diverged)
    metric: str = "final"

    @property
    def width(self) -> float:
        return math.log10(self.hi / self.lo)

    def relative_loss(self, lr: float) -> float:
        """Median val loss at a grid lr as a multiple of the best lr's."""
        return self.losses[self.grid.index(lr)] / self.losses[self.grid.index(self.best)]

    def span(self) -> str:
        return f"{self.lo:g}-{self.hi:g}" if self.lo != self.hi else f"{self.lo:g} alone"

    def describe(self) -> str:
        edges = [side for side, at_edge in (("below", self.lo == self.grid[0]), ("above", self.hi == self.grid[-1]))
                 if at_edge]
        note = f" (may extend {' and '.join(edges)} the lr grid)" if edges else ""
        return f"[{self.lo:g}, {self.hi:g}], {self.width:.2f} decades, best lr {self.best:g}{note}"


def contiguous_span(good: np.ndarray, best: int) -> tuple[int, int]:
    """(lo, hi) indices of the unbroken run of good lrs around the best one."""
    lo = hi = best
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < len(good) - 1 and good[hi + 1]:
        hi += 1
    return lo, hi


def good_window_index(losses: np.ndarray, tolerance: float) -> tuple[int, int, int]:
    """(lo, hi, best) indices of the contiguous window of lrs around the lowest loss whose
    losses are within (1 + tolerance) of it; losses may hold +inf (diverged)."""
    best = int(np.argmin(losses))
    good = np.isfinite(losses) & (losses <= (1 + tolerance) * losses[best])
    return (*contiguous_span(good, best), best)


class Study:
    """One setting's tables and the lookups the claims share; lookups raise Missing. runs and
    cells: the grid of one regime at one budget; curvature: the curvature runs at that budget;
    all_runs, all_cells: every regime's grid at that budget (claims that compare regimes);
    metric: the loss metric of the claims about loss (tables.LOSS_METRICS); comparison: which
    lrs two optimizers are compared at (COMPARISONS)."""

    def __init__(self, runs: pd.DataFrame, cells: pd.DataFrame, analysis: dict, metric: str = "final",
                 curvature: pd.DataFrame | None = None, comparison: str = COMPARISONS[0],
                 all_cells: pd.DataFrame | None = None, all_runs: pd.DataFrame | None = None):
        self.runs, self.cells, self.analysis, self.metric = runs, cells, analysis, metric
        self.comparison = comparison
        self.curvature = runs.iloc[:0] if curvature is None else curvature
        self.all_cells = cells if all_cells is None else all_cells
        self.all_runs = runs if all_runs is None else all_runs

    @property
    def regime(self) -> str:
        return str(self.runs["batch"].iloc[0]) if len(self.runs) else "full"

    def on_problem(self, problem: str) -> Study:
        """The setting's runs and cells of one problem (the conditioning runs hold several)."""
        return self.subset(f"no runs on the problem {problem} (config conditioning.problems)", problem=problem)

    def on_regime(self, regime: str) -> Study:
        """The setting's runs and cells of one regime (a claim judged across regimes holds several)."""
        return self.subset(f"no runs in the regime {regime}", batch=regime)

    def subset(self, missing: str, **keys) -> Study:
        runs = select(self.runs, **keys)
        if runs.empty:
            raise Missing(missing)
        return Study(runs, select(self.cells, **keys), self.analysis, self.metric, comparison=self.comparison)

    @property
    def loss_columns(self) -> tuple[str, str, str]:
        """(per-run loss, cells' median, cells' good-window flag) of the setting's metric."""
        return LOSS_METRICS[self.metric]

    @property
    def tolerance(self) -> float:
        return float(self.analysis["good_window_tolerance"])

    def noise_runs(self) -> pd.DataFrame:
        """The setting's grid runs that measured gradient noise (training.noise_every > 0)."""
        if "noise_b_simple_initial" not in self.runs:
            raise Missing("runs.parquet has no noise summaries; re-run the aggregation")
        chosen = self.runs[self.runs["noise_b_simple_initial"].notna()]
        if chosen.empty:
            raise Missing("no run measured gradient noise (config training.noise_every > 0)")
        return chosen

    def reference(self, optimizer: str) -> tuple[float, float]:
        try:
            pair = self.analysis["reference"][optimizer]
            return float(pair["lr"]), float(pair["momentum"])
        except (KeyError, TypeError) as error:
            raise Missing(f"analysis.reference.{optimizer} (lr, momentum) is not set") from error

    def compared_cell(self, optimizer: str) -> tuple[float, float]:
        """(lr, momentum) of the optimizer in the setting's comparison: its reference pair, or its
        best lr at the reference momentum."""
        lr, momentum = self.reference(optimizer)
        return (lr, momentum) if self.comparison == COMPARISONS[0] else (self.best_lr(optimizer, momentum), momentum)

    def claimed_window(self, optimizer: str) -> tuple[float, float]:
        try:
            lo, hi = self.analysis["claimed_windows"][optimizer]
            return float(lo), float(hi)
        except (KeyError, TypeError, ValueError) as error:
            raise Missing(f"analysis.claimed_windows.{optimizer} [lo, hi] is not set") from error

    def cell_runs(self, optimizer: str, lr: float, momentum: float) -> pd.DataFrame:
        chosen = select(self.runs, optimizer=optimizer, lr=lr, momentum=momentum)
        if chosen.empty:
            raise Missing(f"no {cell_name(optimizer, lr, momentum)} runs")
        return chosen

    def curvature_runs(self, optimizer: str | None = None) -> pd.DataFrame:
        """The optimizer's (every optimizer's) curvature runs."""
        runs = self.curvature
        if "initial_sharpness" not in runs:
            raise Missing("runs.parquet has no curvature summaries (initial_sharpness); re-run the aggregation")
        chosen = select(runs, optimizer=optimizer)
        chosen = chosen[chosen["initial_sharpness"].notna()]
        if chosen.empty:
            raise Missing(f"no {optimizer or ''} runs measured curvature (config curvature.cells, "
                          "curvature.every > 0)".replace("no  runs", "no runs"))
        return chosen

    def seed_values(self, optimizer: str, lr: float, momentum: float, column: str, missing=np.inf) -> pd.Series:
        """column per seed; NaN (diverged, target never reached) becomes `missing`: by default +inf,
        the worst outcome of a to-be-minimized quantity."""
        chosen = self.cell_runs(optimizer, lr, momentum)
        return chosen.set_index("seed")[column].astype("float64").fillna(missing)

    def lr_cells(self, optimizer: str, momentum: float) -> pd.DataFrame:
        chosen = select(self.cells, optimizer=optimizer, momentum=momentum).sort_values("lr")
        if chosen.empty:
            raise Missing(f"no {line_name(optimizer, momentum)} cells")
        if not np.isfinite(chosen[self.loss_columns[1]]).any():
            raise Missing(f"every lr of {line_name(optimizer, momentum)} diverged in at least half of its seeds")
        return chosen.reset_index(drop=True)

    def best_lr(self, optimizer: str, momentum: float) -> float:
        cells = self.lr_cells(optimizer, momentum)
        return float(cells.loc[cells[self.loss_columns[1]].idxmin(), "lr"])

    def window(self, optimizer: str, momentum: float) -> Window:
        """The good window by the setting's metric (the cells' good-window flag)."""
        _, median, in_window = self.loss_columns
        cells = self.lr_cells(optimizer, momentum)
        best = int(cells[median].idxmin())
        lo, hi = contiguous_span(cells[in_window].to_numpy(dtype=bool), best)
        lrs = tuple(cells["lr"].astype(float))
        return Window(optimizer, momentum, lrs, lrs[lo], lrs[hi], lrs[best], tuple(cells[median]), self.metric)

    def loss_matrix(self, optimizer: str, momentum: float) -> pd.DataFrame:
        """The setting's per-run loss, seeds x lrs, a diverged run +inf (as the cells rank it)."""
        column = self.loss_columns[0]
        runs = select(self.runs, optimizer=optimizer, momentum=momentum)
        if runs.empty:
            raise Missing(f"no {line_name(optimizer, momentum)} runs")
        values = runs[column].where(~runs["diverged"].astype(bool), np.inf)
        return runs.assign(value=values).pivot_table(index="seed", columns="lr", values="value", aggfunc="first")


# --- settings and headlines -----------------------------------------------------------------


def settings_of(claim: Claim, regimes: list[str], budgets: list[float]) -> list[dict]:
    """Every setting a claim is judged in: the product of its axes' values (the curvature
    claims: the curvature runs, full batch, at each budget)."""
    minibatch = [regime for regime in regimes if regime != "full"]
    values = {"regime": (minibatch or ["full"]) if claim.minibatch_only else regimes,
              "metric": list(LOSS_METRICS), "comparison": list(COMPARISONS), "budget": budgets}
    fixed = {"regime": batch_regime.ALL if claim.across_regimes else "full", "metric": None, "comparison": None}
    settings = [{}]
    for axis in SETTING_AXES:
        options = values[axis] if axis in claim.axes else [fixed[axis]]
        settings = [{**setting, axis: option} for setting in settings for option in options]
    return settings


def primary_setting(settings: list[dict]) -> int:
    """The setting a headline's key number comes from: the whole run, the seed's minibatch
    regime where there is one, the final val loss, the usual lrs."""
    def rank(setting: dict) -> tuple:
        return (-setting["budget"], setting["regime"] == "full", setting["metric"] not in (None, "final"),
                setting["comparison"] not in (None, COMPARISONS[0]))
    return min(range(len(settings)), key=lambda i: rank(settings[i]))


def axis_word(axis: str, value) -> str:
    if axis == "regime":
        return batch_regime.label(value)
    if axis == "metric":
        return f"{value} val loss"
    if axis == "comparison":
        return str(value)
    return f"{value:.0%}"


def setting_label(setting: dict, steps: int | None) -> str:
    """"batch 64, selected val loss, tuned lrs, 50% (500 steps)"."""
    parts = [axis_word(axis, setting[axis]) for axis in SETTING_AXES[:-1] if setting[axis] is not None]
    parts.append(f"{setting['budget']:.0%}" + (f" ({steps} steps)" if steps else ""))
    return ", ".join(parts)


def lead(outcomes: list[Outcome], settings: list[dict]) -> str:
    """The key number of a claim's primary setting, and where it was measured (the axes its
    settings differ in)."""
    main = primary_setting(settings)
    varying = [axis for axis in SETTING_AXES if len({s[axis] for s in settings}) > 1]
    where = ", ".join(axis_word(axis, settings[main][axis]) for axis in varying)
    return outcomes[main].key + (f" ({where})" if where else "")


def headline(outcomes: list[Outcome], settings: list[dict]) -> str:
    """A claim's verdicts over its settings in one line: its lead, then the verdicts with the
    settings they hold in, counts of units where a setting is mixed."""
    text = lead(outcomes, settings)
    verdicts = [outcome.verdict for outcome in outcomes]
    n = len(verdicts)
    if n == 1:
        return text
    if len(set(verdicts)) == 1:
        return f"{text}; {VERDICT_WORDS[verdicts[0]]} in every setting ({n})"
    parts = []
    for verdict in VERDICTS:
        chosen = {i for i, v in enumerate(verdicts) if v == verdict}
        if not chosen:
            continue
        part = f"{VERDICT_WORDS[verdict]} in {len(chosen)} of {n}: {describe_settings(chosen, settings)}"
        counted = [outcomes[i] for i in sorted(chosen) if outcomes[i].n_tested]
        if verdict == "mixed" and counted:
            shares = [percent(o.n_held, o.n_tested) for o in counted]
            low, high = min(shares, key=lambda t: float(t[:-2])), max(shares, key=lambda t: float(t[:-2]))
            unit = counted[0].unit or "units"
            part += f" (in {low} of the {unit})" if low == high else f" (in {low[:-2]}-{high} of the {unit})"
        parts.append(part)
    return f"{text}; " + "; ".join(parts)


def describe_settings(chosen: set[int], settings: list[dict]) -> str:
    """The chosen settings named as briefly as the axes allow ("batch 64"; "full batch, final
    val loss | batch 64, 50%"): greedily, the largest group of settings that share some axis
    values and are all chosen, fewest axes first; groups are separated by " | "."""
    varying = [axis for axis in SETTING_AXES if len({s[axis] for s in settings}) > 1]
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
        names.append(", ".join(axis_word(a, v) for a, v in zip(axes, key)))
        left -= members
    return " | ".join(names)
