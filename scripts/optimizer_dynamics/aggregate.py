"""Summarize a study's run files into the tables the figures, report and verdicts read.

    python -m optimizer_dynamics.aggregate --runs-dir results/runs \\
        --config-json '<full workflow config as JSON>' --out-dir results/aggregate

reads every run file of the config (the grid in each regime and the curvature runs,
optimizer_dynamics.study.expected_runs) under --runs-dir.

Writes runs.parquet (one row per run and budget), cells.parquet (one row per problem, batch
regime, optimizer, hyperparameters, lr, momentum and budget, over the grid's runs),
conditioning.parquet, batch_sizes.parquet and epsilon.parquet (the same of each side set's runs,
study.SIDE_SETS), curves.parquet (seed-summarized curves of the grid at eval steps, long format), curvature.parquet (the measured sharpness of
the curvature runs, one row per run and Hessian step), curvature_cells.parquet (one row per
curvature setting and budget, over its seeds) and study.json. The claims are judged from these
tables in a stage of their own (optimizer_dynamics.claims, verdicts.parquet).

Budgets. Every summary is computed at each budget of analysis.budgets: from the runs cut to
their first ceil(budget x steps) steps (budget_prefix), as if trained that long. At a constant
lr a shorter run is the prefix of a longer one (tests/test_training.py), so this is exact; a
run that diverged after the cut-off had not diverged yet. Every file is written to a temporary
name and renamed into place, and only after all of them were computed: a failed or killed
aggregation leaves the previous aggregate, never a partial one. A run file that cannot be
read stops the aggregation with a message naming it.

Divergence policy. A run diverges when its loss turns non-finite or exceeds
divergence_factor x its initial loss; training stops there. Diverged runs are counted and
shown, never dropped and never imputed:
  - runs.parquet keeps them (diverged = True) with NaN for every end-of-run summary
    (final_*, best_*, *_late) and a null steps_to_target;
  - cells.parquet counts them (n_diverged) and ranks them as the worst possible outcome:
    for median_final_val_loss and its quartiles a diverged run counts as +inf, so a cell
    where at least half of the seeds diverged has an infinite median and is never in the good
    window; for median_steps_to_target a run that diverged or never reached the target counts
    as +inf (not reached within the step budget);
  - means and intervals of late-training quantities (eff_step_late, ...) are over the runs
    that finished (n_finished of them);
  - curves.parquet averages over the seeds still running at each step; its n column says how
    many contributed.

Definitions (thresholds from the config's analysis section):
  steps_to_target: number of updates taken (step + 1) at the first eval step whose val.loss
      <= analysis.target_val_loss; null if never reached or diverged.
  selected_val_loss: the best step picked without hindsight: the eval step with the lowest loss
      on the validation set's first half (val_select.loss), its loss reported on the second half
      (val_report.loss); selected_step is that step. final_report_val_loss: the last eval step's
      loss on the second half; overfit_gap = final_report_val_loss / selected_val_loss - 1 (how
      much the run lost by training on past its selected step, on the same half).
  initial_loss: the batch loss at step 0 (full batch: the training loss at the initial weights);
      final_train_loss_ratio = final_train_loss / initial_loss (below 1: the run trained).
  late window: the last ceil(late_fraction x steps_completed) steps (at least one);
      *_late = mean of the per-step column over it.
  in_good_window: median_final_val_loss <= (1 + good_window_tolerance) x the lowest finite
      median_final_val_loss among the lrs of the same (batch, optimizer, momentum);
      in_good_window_selected the same of median_selected_val_loss (tables.LOSS_METRICS).
  median_overfit_gap: the median over the cell's finished runs of overfit_gap.
  median_final_val_acc: the median over the cell's finished runs of final_val_acc.
  intervals (lo, hi): the Student-t 95% interval of the mean over seeds (stats.py).

Curvature (the curvature runs, curvature_every > 0, log the exact Hessian of the full-batch
training loss on their schedule, RunConfig.is_hessian_step; see curvature.py):
  curvature.parquet: one row per such run and measured step: optimizer, lr, momentum, seed,
      step, sharpness (top Hessian eigenvalue, hessian.top1), precond_sharpness (top
      eigenvalue of P^-1 H, Adam only, else NaN), stability_sharpness (the one compared with
      the threshold: precond_sharpness for Adam, sharpness otherwise), threshold
      (curvature.stability_threshold: 2 (1 + m) / lr for SGD, (2 + 2 beta1) / ((1 - beta1) lr)
      for Adam) and ratio = stability_sharpness / threshold (above 1: a quadratic with this
      curvature would diverge).
  runs.parquet, every run: stability_threshold; runs with curvature (NaN otherwise):
      initial_sharpness, initial_precond_sharpness (at step 0; the latter Adam only),
      initial_stability_sharpness (the one of the two compared with the threshold),
      predicted_critical_lr = the lr whose threshold equals the initial stability_sharpness,
      max_sharpness_ratio (over all measured steps, step 0 included),
      first_stable_step = the first measured step whose ratio is <= 1 (a run starting above its
          threshold that gets there has catapulted; NaN if never),
      initial_block_heterogeneity = log10(largest / smallest top eigenvalue of the Hessian's
          diagonal blocks fc1.weight, fc1.bias, fc2.weight) at step 0 (curvature.py),
      loss_rise_before_stable = the largest batch loss from step 0 to first_stable_step / the
          step-0 loss - 1 (above 0: the loss rose before the sharpness came down: a catapult's
          signature; NaN if the run never got below its threshold),
      The late summaries below average over pairs of consecutive Hessian steps first
      (RunConfig.is_hessian_step takes them in pairs), so a period-2 orbit counts at both phases:
      late_sharpness_ratio = mean ratio over the late curvature pairs: the last
          ceil(late_fraction x number of measured pairs) of them (at least one),
      late_batch_sharpness_ratio = the same of the batch sharpness (minibatch runs: curvature.py)
          over the same threshold: the edge of stochastic stability (claim 7e); NaN at full batch,
      sharpness_late_change = mean sharpness over the late curvature steps / mean sharpness
          over as many measured steps ending at the middle one, minus 1 (how the sharpness
          moved from mid-run to the end); stability_sharpness_late_change the same of
          stability_sharpness (equal to it for SGD).
      late_ratio_trend = over the last quarter of the measured pairs (at least two), the mean
          ratio over its second half / over its first half, minus 1: whether the run ends still
          moving toward (or away from) its threshold.
      The last four are NaN for a diverged run (late summaries, see the divergence policy).
  curvature_cells.parquet, per curvature setting (optimizer, lr, momentum) and budget: n_runs,
      n_diverged, stability_threshold, initial_stability_sharpness (mean over seeds of the
      step-0 value compared with the threshold), late_sharpness_ratio_mean / _lo / _hi / _n
      (over the seeds that finished), and the means of sharpness_late_change and
      late_ratio_trend.
  Gradient noise (runs with training.noise_every > 0; noise.py; B the run's batch size, n_train
  at full batch), over the run's noise steps:
      noise_b_simple_initial / _final / _median: B_simple at the first and last noise step, and
          its median; noise_above_batch_frac: the fraction of noise steps where B_simple > B
          (the batch in use is below the noise scale); noise_first_step_above_batch: the first
          such step (NaN if none); noise_alpha_median, noise_norm_test_median: medians of alpha
          and of the norm test. All but the initial value and the first step are NaN for a
          diverged run (end-of-run summaries). curves.parquet has the noise instruments at the
          noise steps.
  coord_eff_lr_spread_late (runs) = coord_eff_lr_p90_late / coord_eff_lr_median_late: how far
      the per-coordinate effective lrs spread (1: one lr for every coordinate); cells.parquet
      has its mean and interval like the other late means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from optimizer_dynamics import batch_regime, study
from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.optimizers import OPTIMIZERS, stability_threshold
from optimizer_dynamics.runfile import run_schema_fields, schema_metadata
from optimizer_dynamics.stats import half_width
from optimizer_dynamics.tables import LOSS_METRICS

CELL = study.CELL_COLUMNS  # a cell: problem, batch regime, optimizer, lr, momentum
LINE = [column for column in CELL if column != "lr"]  # the lrs of a line share a good window
THRESHOLD_ARGS = ["optimizer", "lr", "momentum"]  # what stability_threshold takes
RUN_COLUMNS = [field.name for field in run_schema_fields()]
NULLABLE_INT_COLUMNS = ["batch_size", "diverged_step"]  # null = full batch / did not diverge
SCOPES = ["global", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
# the noise instruments the curves keep (noise.trace_cov is B_simple's numerator)
NOISE_CURVES = ["noise.b_simple", "noise.norm_test", "noise.alpha", "noise.gsnr_mean"]
# per-run summaries of the noise steps (module docstring); the ones over the whole run are NaN
# for a diverged run, like the other end-of-run summaries
NOISE_RUN_COLUMNS = ["noise_b_simple_initial", "noise_b_simple_final", "noise_b_simple_median",
                     "noise_above_batch_frac", "noise_first_step_above_batch", "noise_alpha_median",
                     "noise_norm_test_median"]
NOISE_END_COLUMNS = ["noise_b_simple_final", "noise_b_simple_median", "noise_above_batch_frac",
                     "noise_alpha_median", "noise_norm_test_median"]
CURVE_METRICS = [
    "batch.loss",
    "train.loss",
    "val.loss",
    "val.acc",
    *(f"{kind}.{scope}" for kind in ("grad", "param", "update") for scope in SCOPES),
    "eff_step.global",
    "update.cosine",
    "coord_eff_lr.median",
    "coord_eff_lr.p90",
    "logit.mean_abs",
    "logit.max_abs",
    "logit.saturated_frac",
    *NOISE_CURVES,
]
# per-run column <- per-step column averaged over the late window
LATE_COLUMNS = {
    "eff_step_late": "eff_step.global",
    "update_rms_late": "update.rms",
    "update_cosine_late": "update.cosine",
    "coord_eff_lr_median_late": "coord_eff_lr.median",
    "coord_eff_lr_p90_late": "coord_eff_lr.p90",
    "saturated_frac_late": "logit.saturated_frac",
}
# the diagonal blocks of more than one parameter whose top eigenvalues (curvature.BLOCK_COLUMN,
# named here so the aggregation needs no torch) make the block heterogeneity
HETEROGENEITY_BLOCKS = [f"hessian.block_top1.{name}" for name in ("fc1.weight", "fc1.bias", "fc2.weight")]
# curvature.parquet column <- per-step column
SHARPNESS_COLUMNS = {"sharpness": "hessian.top1", "precond_sharpness": "hessian.precond_top1",
                     "batch_sharpness": "hessian.batch_sharpness"}
CURVATURE_TABLE_COLUMNS = [
    *CELL,
    "seed",
    "step",
    *SHARPNESS_COLUMNS,
    "stability_sharpness",
    "threshold",
    "ratio",
    "batch_ratio",
]
# per-run curvature summaries that describe the late steps
CURVATURE_LATE_COLUMNS = [
    "late_sharpness_ratio",
    "late_batch_sharpness_ratio",
    "sharpness_late_change",
    "stability_sharpness_late_change",
    "late_ratio_trend",
]
CURVATURE_RUN_COLUMNS = [
    "initial_sharpness",
    "initial_precond_sharpness",
    "initial_stability_sharpness",
    "predicted_critical_lr",
    "max_sharpness_ratio",
    "first_stable_step",
    "loss_rise_before_stable",
    *CURVATURE_LATE_COLUMNS,
]
# end-of-run summaries that are NaN for a diverged run
END_COLUMNS = [
    "final_val_loss",
    "final_val_acc",
    "selected_val_loss",
    "selected_step",
    "final_report_val_loss",
    "overfit_gap",
    "final_train_loss",
    "final_train_loss_ratio",
    *LATE_COLUMNS,
    *CURVATURE_LATE_COLUMNS,
    *NOISE_END_COLUMNS,
]
# cells.parquet: mean, lo, hi over finished runs of these
CELL_MEAN_COLUMNS = [*LATE_COLUMNS, "coord_eff_lr_spread_late"]
CURVATURE_CELL = ["optimizer", "hyperparameters", "lr", "momentum"]
RUN_COUNTS = {"n_runs": ("seed", "size"), "n_diverged": ("diverged", "sum")}  # per cell, in both cell tables
REQUIRED_ANALYSIS = {
    "target_val_loss": "a number (val loss counted as reached)",
    "late_fraction": "a number in (0, 1]",
    "good_window_tolerance": "a number >= 0",
    "reference": "{sgd: {lr, momentum}, adam: {lr, momentum}}",
    "budgets": "a list of fractions in (0, 1], 1 among them",
    "claimed_windows": "{sgd: [lo, hi], adam: [lo, hi]}",
}
# run column <- (config section, key): run files must have been trained with the config's
# settings; the settings a set or regime decides (steps, batch_size, the Hessian schedule) come
# from study.expected_runs. (adam_* are left out: they do not apply to every optimizer's runs.)
CONFIG_RUN_SETTINGS = {
    "eval_every": ("training", "eval_every"),
    "divergence_factor": ("training", "divergence_factor"),
    "n_train": ("data", "n_train"),
    "n_val": ("data", "n_val"),
    "noise": ("data", "noise"),
    "data_seed": ("data", "seed"),
}
# run column <- the config key that decides it, per set of runs (the cell's keys: its path)
EXPECTED_RUN_SETTINGS = {
    **dict.fromkeys([*CELL, "seed"], dict.fromkeys(study.RUN_SETS, "its path")),
    "steps": {"grid": "training.steps", "curvature": "curvature.steps", "conditioning": "training.steps",
              "batch_sizes": "training.steps", "minibatch_curvature": "training.steps", "epsilon": "training.steps"},
    "batch_size": {"grid": "training.batch_size", "curvature": "full batch",
                   "conditioning": "conditioning.batch_size", "batch_sizes": "batch_sizes.batch_size",
                   "minibatch_curvature": "curvature.minibatch.batch_size", "epsilon": "epsilon.batch_size"},
    **{f"curvature_{key}": {"grid": "0 on grid runs", "curvature": f"curvature.{key}",
                            "conditioning": "the step-0 Hessian", "batch_sizes": "0 on batch-size runs",
                            "minibatch_curvature": f"curvature.{key}", "epsilon": "0 on epsilon runs"}
       for key in ("every", "early_steps", "early_every")},
    "curvature_consecutive": {**dict.fromkeys(study.RUN_SETS, "pairs of steps"),
                              "conditioning": "the step-0 Hessian alone"},
    "noise_every": {run_set: f"0 on {run_set} runs" if run_set in study.SIDE_SETS else "training.noise_every"
                    for run_set in study.RUN_SETS},
}
# curvature summaries that need a Hessian schedule past step 0: NaN for the conditioning runs,
# whose one Hessian is step 0's
SCHEDULE_CURVATURE_COLUMNS = ["max_sharpness_ratio", "first_stable_step", "loss_rise_before_stable",
                              *CURVATURE_LATE_COLUMNS]
# what the summaries read; other per-step columns (per-layer ratios, other eigenvalues) stay on disk
# the per-step columns the summaries read; a run's settings come once per run (read_runs)
STEP_COLUMNS = ["step", *CURVE_METRICS, "update.rms", *HETEROGENEITY_BLOCKS, "val_select.loss", "val_report.loss",
                *SHARPNESS_COLUMNS.values()]
READ_COLUMNS = [*RUN_COLUMNS, *STEP_COLUMNS]  # what a run file must have
READ_THREADS = 2
FIX_HINT = "delete it and rerun snakemake to retrain it"


class AggregationError(RuntimeError):
    """Input that cannot be aggregated; the message names the file or key and the fix."""


# --- reading ----------------------------------------------------------------------------


def read_runs(paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """All steps of all runs in one frame, the per-step columns only (column `run` = index into
    paths); one row per run of its settings and outcome (RUN_COLUMNS, index `run`), from the
    metadata its file stores beside the same values' columns; and each run's metadata."""
    if not paths:
        raise AggregationError("the config's grid names no run files")
    for path in paths:
        if not Path(path).exists():
            raise AggregationError(f"run file {path} of the config's grid is missing; rerun snakemake to train it")
    # Two files at a time: reading is decompression in Arrow's C++, which releases the GIL.
    with ThreadPoolExecutor(READ_THREADS) as pool:
        read = list(pool.map(_read_run, paths))
    first_schema = read[0][0].schema
    for path, (table, _) in zip(paths, read):
        if not table.schema.equals(first_schema, check_metadata=False):
            raise AggregationError(f"run file {path} has column types unlike {paths[0]}'s; {FIX_HINT}")
    tables = [table.append_column("run", pa.array(np.full(table.num_rows, run))) for run, (table, _) in enumerate(read)]
    metadata = [meta for _, meta in read]
    steps = pa.concat_tables(tables).to_pandas()
    settings = [{**meta.get("config", {}), "batch": batch_regime.name(meta.get("config", {}).get("batch_size")),
                 **{key: meta.get(key) for key in ("diverged", "diverged_step", "diverged_cause")}} for meta in metadata]
    run_table = pa.Table.from_pylist(settings, schema=pa.schema(run_schema_fields())).to_pandas()
    # to_pandas turns an int column with nulls into float; keep those two as nullable ints
    for column in NULLABLE_INT_COLUMNS:
        run_table[column] = run_table[column].astype("Int64")
    return steps, run_table.rename_axis("run"), metadata


def _read_run(path: str | Path) -> tuple[pa.Table, dict]:
    """One run file's per-step columns and its metadata."""
    try:
        with pq.ParquetFile(path) as file:
            schema = file.schema_arrow
            meta = schema_metadata(schema)
            missing = [c for c in READ_COLUMNS if c not in schema.names]
            table = None if missing else file.read(columns=STEP_COLUMNS, use_threads=False)
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError) as error:
        raise AggregationError(
            f"run file {path} is truncated or not a run Parquet file ({type(error).__name__}: {error}); "
            f"{FIX_HINT}"
        ) from error
    if missing or table.num_rows == 0:
        problem = f"lacks columns {missing}" if missing else "has no rows"
        raise AggregationError(f"run file {path} {problem}; {FIX_HINT}")
    return table, meta


def check_runs(runs: pd.DataFrame, expected: pd.DataFrame, config: dict) -> None:
    """Each run file holds the run its path names, trained with the config's settings.
    `expected` is study.expected_runs (row i: the i-th file read)."""
    for column in EXPECTED_RUN_SETTINGS:
        found, wanted = runs[column].reset_index(drop=True), expected[column].reset_index(drop=True)
        differs = ~((found == wanted) | (found.isna() & wanted.isna())).fillna(False).astype(bool)
        if differs.any():
            run = int(np.flatnonzero(differs)[0])
            raise AggregationError(
                f"run file {expected.at[run, 'path']} has {column} = {_setting_text(found[run])} but the "
                f"config asks {_setting_text(wanted[run])} for it "
                f"({EXPECTED_RUN_SETTINGS[column][expected.at[run, 'set']]}): it is stale; {FIX_HINT}"
            )
    for column, (section, key) in CONFIG_RUN_SETTINGS.items():
        if key not in config.get(section, {}):
            continue
        differs = ~(runs[column] == config[section][key]).fillna(False)
        if differs.any():
            run = runs.index[differs][0]
            raise AggregationError(
                f"run file {expected.at[run, 'path']} has {column} = {runs.at[run, column]!r} but the config's "
                f"{section}.{key} is {config[section][key]!r}: it is stale; {FIX_HINT}"
            )


def _setting_text(value) -> str:
    return "null" if pd.isna(value) else str(value)


def analysis_settings(config: dict) -> dict:
    analysis = config.get("analysis")
    if not isinstance(analysis, dict):
        raise AggregationError("config has no 'analysis' section: " + ", ".join(REQUIRED_ANALYSIS))
    for key, allowed in REQUIRED_ANALYSIS.items():
        if key not in analysis:
            raise AggregationError(f"config analysis.{key} is missing: must be {allowed}")
    for key in ("target_val_loss", "late_fraction", "good_window_tolerance"):
        value = analysis[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AggregationError(f"analysis.{key} = {value!r}: must be {REQUIRED_ANALYSIS[key]}")
    if not 0 < analysis["late_fraction"] <= 1:
        raise AggregationError(f"analysis.late_fraction = {analysis['late_fraction']!r}: must be in (0, 1]")
    budgets = analysis["budgets"]
    if not isinstance(budgets, list) or 1 not in budgets or not all(0 < b <= 1 for b in budgets):
        raise AggregationError(f"analysis.budgets = {budgets!r}: must be {REQUIRED_ANALYSIS['budgets']}")
    if analysis["good_window_tolerance"] < 0:
        raise AggregationError(
            f"analysis.good_window_tolerance = {analysis['good_window_tolerance']!r}: must be >= 0"
        )
    return analysis


# --- summaries --------------------------------------------------------------------------


def curvature_rows(steps: pd.DataFrame, run_table: pd.DataFrame) -> pd.DataFrame:
    """The steps where a Hessian was measured, as curvature.parquet's columns plus `run`."""
    measured = steps.loc[steps["hessian.top1"].notna(), ["run", "step", *SHARPNESS_COLUMNS.values()]]
    measured = measured.join(run_table[[*CELL, "seed"]], on="run")[
        ["run", *CELL, "seed", "step", *SHARPNESS_COLUMNS.values()]
    ].rename(columns={column: name for name, column in SHARPNESS_COLUMNS.items()})
    # The registry says which quantity meets each optimizer's threshold (P^-1 H for adaptive ones).
    adaptive = measured["optimizer"].map(lambda name: OPTIMIZERS[name].adaptive)
    measured["stability_sharpness"] = measured["precond_sharpness"].where(adaptive, measured["sharpness"])
    measured["threshold"] = np.array(
        [stability_threshold(*cell) for cell in measured[THRESHOLD_ARGS].itertuples(index=False, name=None)],
        dtype=float,
    )
    measured["ratio"] = measured["stability_sharpness"] / measured["threshold"]
    measured["batch_ratio"] = measured["batch_sharpness"] / measured["threshold"]
    return measured.sort_values(["run", "step"]).reset_index(drop=True)


def hessian_pairs(curvature: pd.DataFrame) -> pd.DataFrame:
    """curvature_rows averaged over each pair of consecutive Hessian steps (a step whose
    predecessor was measured joins it): one row per run and pair, `step` its first step."""
    previous = curvature.groupby("run")["step"].shift()
    starts = curvature["step"].where(curvature["step"] - previous != 1)
    pair = starts.groupby(curvature["run"]).ffill()
    columns = ["ratio", "batch_ratio", "sharpness", "stability_sharpness"]
    return (curvature.assign(step=pair)[["run", "step", *columns]].groupby(["run", "step"], sort=True)
            .mean().reset_index())


def summarize_curvature(curvature: pd.DataFrame, analysis: dict, batch_loss: pd.DataFrame) -> pd.DataFrame:
    """Per curvature run (index `run`): the CURVATURE_RUN_COLUMNS (see the module docstring).
    batch_loss: run, step and batch.loss of every step."""
    by_run = curvature.groupby("run", sort=True)
    initial = by_run.nth(0).set_index("run")
    summary = pd.DataFrame(
        {
            "initial_sharpness": initial["sharpness"],
            "initial_precond_sharpness": initial["precond_sharpness"],
            "initial_stability_sharpness": initial["stability_sharpness"],
            # threshold = c / lr, so the critical lr c / initial sharpness is lr * threshold / initial
            "predicted_critical_lr": initial["lr"] * initial["threshold"] / initial["stability_sharpness"],
            "max_sharpness_ratio": by_run["ratio"].max(),
            "first_stable_step": curvature[curvature["ratio"] <= 1].groupby("run")["step"].min(),
        }
    )
    stable_step = batch_loss["run"].map(summary["first_stable_step"])
    before_stable = batch_loss[batch_loss["step"] <= stable_step].groupby("run")["batch.loss"]
    summary["loss_rise_before_stable"] = before_stable.max() / before_stable.first() - 1
    pairs = hessian_pairs(curvature)
    by_run = pairs.groupby("run", sort=True)
    position = by_run.cumcount()
    count = by_run["step"].transform("size")
    n_late = np.maximum(1, np.ceil(analysis["late_fraction"] * count))
    middle = (count - 1) // 2
    late = pairs[position >= count - n_late].groupby("run")
    mid = pairs[(position <= middle) & (position > middle - n_late)].groupby("run")
    summary["late_sharpness_ratio"] = late["ratio"].mean()
    summary["late_batch_sharpness_ratio"] = late["batch_ratio"].mean()
    for column in ("sharpness", "stability_sharpness"):
        summary[f"{column}_late_change"] = late[column].mean() / mid[column].mean() - 1
    quarter = np.maximum(2, np.ceil(count / 4))
    last_quarter = position >= count - quarter
    second_half = position >= count - quarter // 2
    halves = (
        pairs[last_quarter]
        .groupby([pairs["run"], second_half[last_quarter]])["ratio"]
        .mean()
        .unstack()
        .reindex(columns=[False, True])
    )
    summary["late_ratio_trend"] = halves[True] / halves[False] - 1
    return summary[CURVATURE_RUN_COLUMNS]


def summarize_runs(steps: pd.DataFrame, run_table: pd.DataFrame, analysis: dict,
                   curvature: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its settings (run_table, as read_runs gives it) and what it reached (see
    the module docstring); `curvature` is curvature_rows(steps, run_table)."""
    by_run = steps.groupby("run", sort=True)
    runs = run_table[RUN_COLUMNS].copy()
    runs["steps_completed"] = by_run.size()
    last = by_run[["val.loss", "val.acc", "train.loss", "val_report.loss"]].last()  # last non-NaN: the last eval step
    runs["final_val_loss"], runs["final_val_acc"], runs["final_train_loss"], runs["final_report_val_loss"] = (
        last["val.loss"],
        last["val.acc"],
        last["train.loss"],
        last["val_report.loss"],
    )
    runs["initial_loss"] = by_run["batch.loss"].first()
    runs["final_train_loss_ratio"] = runs["final_train_loss"] / runs["initial_loss"]
    evaluated = steps[steps["val_select.loss"].notna()]
    chosen = evaluated.loc[evaluated.groupby("run")["val_select.loss"].idxmin()].set_index("run")
    runs["selected_step"] = chosen["step"]
    runs["selected_val_loss"] = chosen["val_report.loss"]
    runs["overfit_gap"] = runs["final_report_val_loss"] / runs["selected_val_loss"] - 1
    reached = steps[steps["val.loss"] <= analysis["target_val_loss"]]
    runs["steps_to_target"] = (reached.groupby("run")["step"].min() + 1).reindex(runs.index).astype("Int64")

    n_late = np.maximum(1, np.ceil(analysis["late_fraction"] * runs["steps_completed"]))
    late_start = steps["run"].map(runs["steps_completed"] - n_late)
    late = steps[steps["step"] >= late_start]
    late_means = late.groupby("run")[list(LATE_COLUMNS.values())].mean()
    for name, column in LATE_COLUMNS.items():
        runs[name] = late_means[column]

    relative = (steps["eff_step.global"] / steps["run"].map(runs["lr"]) - 1).abs()
    runs["sgd_eff_step_max_rel_dev"] = relative.groupby(steps["run"]).max().where(runs["optimizer"] == "sgd")

    runs["stability_threshold"] = [
        stability_threshold(*cell) for cell in runs[THRESHOLD_ARGS].itertuples(index=False, name=None)
    ]
    runs = runs.join(summarize_curvature(curvature, analysis, steps[["run", "step", "batch.loss"]]).reindex(runs.index))
    measured = steps[steps["hessian.top1"].notna()]
    blocks = measured.groupby("run")[HETEROGENEITY_BLOCKS].first()  # at the first Hessian step: step 0
    runs["initial_block_heterogeneity"] = np.log10(blocks.max(axis=1) / blocks.min(axis=1)).reindex(runs.index)
    runs = runs.join(summarize_noise(steps, runs).reindex(runs.index))

    diverged = runs["diverged"].astype(bool)
    runs.loc[diverged, END_COLUMNS] = np.nan
    runs.loc[diverged, "steps_to_target"] = pd.NA
    runs["coord_eff_lr_spread_late"] = runs["coord_eff_lr_p90_late"] / runs["coord_eff_lr_median_late"]
    return runs


def summarize_noise(steps: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run with noise steps (index `run`): the NOISE_RUN_COLUMNS (module docstring); runs:
    the runs' settings (batch_size, n_train), index `run`."""
    measured = steps.loc[steps["noise.b_simple"].notna(),
                         ["run", "step", "noise.b_simple", "noise.alpha", "noise.norm_test"]]
    batch = measured["run"].map(runs["batch_size"].astype("float64").fillna(runs["n_train"]))
    measured = measured.assign(above=measured["noise.b_simple"] > batch)
    by_run = measured.groupby("run", sort=True)
    return pd.DataFrame({
        "noise_b_simple_initial": by_run["noise.b_simple"].first(),
        "noise_b_simple_final": by_run["noise.b_simple"].last(),
        "noise_b_simple_median": by_run["noise.b_simple"].median(),
        "noise_above_batch_frac": by_run["above"].mean(),
        "noise_first_step_above_batch": measured[measured["above"]].groupby("run")["step"].min(),
        "noise_alpha_median": by_run["noise.alpha"].median(),
        "noise_norm_test_median": by_run["noise.norm_test"].median(),
    }, columns=NOISE_RUN_COLUMNS)


def summarize_cells(runs: pd.DataFrame, analysis: dict) -> pd.DataFrame:
    """One row per (batch, optimizer, lr, momentum) over its seeds (see the module docstring);
    the loss summaries and the good window by final and by best val loss (LOSS_METRICS)."""
    ranked = runs.assign(
        steps_rank=runs["steps_to_target"].astype("float64").fillna(np.inf),
        **{f"{column}_rank": runs[column].where(~runs["diverged"], np.inf)
           for column, _, _ in LOSS_METRICS.values()},
    )
    by_cell = ranked.groupby(CELL, sort=True)
    cells = by_cell.agg(
        **RUN_COUNTS,
        median_steps_to_target=("steps_rank", "median"),
        n_reached_target=("steps_to_target", "count"),
    )
    cells["n_finished"] = cells["n_runs"] - cells["n_diverged"]
    cells["median_final_val_acc"] = by_cell["final_val_acc"].median()  # over the finished runs
    cells["median_overfit_gap"] = by_cell["overfit_gap"].median()
    tolerance = analysis["good_window_tolerance"]
    for column, median, good in LOSS_METRICS.values():
        cells[median] = by_cell[f"{column}_rank"].median()
        # Each quartile is one seed's value, rounded outwards (exact for 5 seeds): interpolating
        # towards a diverged run's +inf would give NaN.
        cells[f"q25_{column}"] = by_cell[f"{column}_rank"].quantile(0.25, interpolation="lower")
        cells[f"q75_{column}"] = by_cell[f"{column}_rank"].quantile(0.75, interpolation="higher")
        best = cells.groupby(LINE)[median].transform("min")
        cells[good] = np.isfinite(best) & (cells[median] <= (1 + tolerance) * best)
    return cells.join(mean_intervals(by_cell, CELL_MEAN_COLUMNS)).reset_index()


def mean_intervals(groups, columns: list[str]) -> pd.DataFrame:
    """Per group and column: {column}_mean, _lo, _hi (the t interval) and _n, over the finite values."""
    parts = {}
    for column in columns:
        stats = groups[column].agg(["mean", "std", "count"])
        h = half_width(stats["std"], stats["count"])
        parts.update({f"{column}_mean": stats["mean"], f"{column}_lo": stats["mean"] - h,
                      f"{column}_hi": stats["mean"] + h, f"{column}_n": stats["count"]})
    return pd.DataFrame(parts)


def summarize_curvature_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per curvature setting of the curvature runs of one budget (module docstring)."""
    by_cell = runs.groupby(CURVATURE_CELL, sort=True)
    cells = by_cell.agg(
        **RUN_COUNTS,
        stability_threshold=("stability_threshold", "first"),
        initial_stability_sharpness=("initial_stability_sharpness", "mean"),
        sharpness_late_change=("sharpness_late_change", "mean"),
        late_ratio_trend=("late_ratio_trend", "mean"),
    )
    return cells.join(mean_intervals(by_cell, ["late_sharpness_ratio"])).reset_index()


def summarize_curves(steps: pd.DataFrame, run_table: pd.DataFrame) -> pd.DataFrame:
    """Long table: mean and 95% interval over seeds of each metric at each eval step of each cell."""
    eval_every, last = steps["run"].map(run_table["eval_every"]), steps["run"].map(run_table["steps"]) - 1
    is_eval = ((steps["step"] + 1) % eval_every == 0) | (steps["step"] == last)
    is_noise = steps["noise.b_simple"].notna()
    shown = steps.loc[is_eval | is_noise, ["run", "step", *CURVE_METRICS]].join(run_table[CELL], on="run")
    by_step = shown[[*CELL, "step", *CURVE_METRICS]].groupby([*CELL, "step"], sort=True)
    parts = {
        name: by_step.agg(name).rename_axis(columns="metric").stack() for name in ("mean", "std", "count")
    }
    curves = pd.DataFrame(parts).reset_index()
    curves = curves[curves["count"] > 0]  # an eval-step metric at a noise step, or the reverse
    h = half_width(curves["std"], curves["count"])
    curves["lo"], curves["hi"] = curves["mean"] - h, curves["mean"] + h
    curves = curves.rename(columns={"count": "n"}).astype({"n": "int64"})
    return curves[[*CELL, "step", "metric", "mean", "lo", "hi", "n"]]


def study_summary(config: dict, runs: pd.DataFrame, metadata: list[dict]) -> dict:
    versions: dict[str, list[str]] = {}
    for meta in metadata:
        for library, version in meta.get("versions", {}).items():
            versions.setdefault(library, [])
            if version not in versions[library]:
                versions[library].append(version)
    by_optimizer = runs.groupby("optimizer")
    return {
        "config": config,
        "versions": {library: ", ".join(found) for library, found in versions.items()},
        "aggregation_versions": {
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "numpy": np.__version__,
        },
        "n_runs": int(len(runs)),
        "n_diverged": int(runs["diverged"].sum()),
        "n_runs_per_optimizer": {k: int(v) for k, v in by_optimizer.size().items()},
        "n_diverged_per_optimizer": {k: int(v) for k, v in by_optimizer["diverged"].sum().items()},
        # the grid's runs per regime: {batch: {diverged, runs, per_optimizer: {optimizer: [diverged, runs]}}}
        "grid_divergence": {
            batch: {"diverged": int(in_regime["diverged"].sum()), "runs": int(len(in_regime)),
                    "per_optimizer": {name: [int(group["diverged"].sum()), int(len(group))]
                                      for name, group in in_regime.groupby("optimizer")}}
            for batch, in_regime in runs[runs["set"] == "grid"].groupby("batch")
        },
        "divergence_policy": __doc__.split("Divergence policy. ")[1].split("\n\nDefinitions")[0],
    }


def budget_prefix(steps: pd.DataFrame, run_table: pd.DataFrame, budget: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs (steps, run_table) as if trained for ceil(budget x steps) steps: at a constant lr
    a shorter run is the prefix of a longer one (tests/test_training.py checks it), so its first
    rows are it. A run that diverged after the cut-off had not diverged yet."""
    cutoff = np.ceil(budget * run_table["steps"]).astype("int64")
    prefix = steps[steps["step"] < steps["run"].map(cutoff)]
    table = run_table.assign(steps=cutoff)
    later = table["diverged_step"].fillna(-1).to_numpy() >= cutoff.to_numpy()
    table.loc[later, "diverged"] = False
    table.loc[later, "diverged_step"] = pd.NA
    table.loc[later, "diverged_cause"] = None
    return prefix, table


def aggregate(config: dict, root: str = study.RUNS_DIR) -> dict:
    """All outputs in memory: {file name: DataFrame or dict}. runs.parquet and cells.parquet
    hold one row per run (cell) and budget (analysis.budgets): `budget` the fraction of the
    steps, `budget_steps` the steps it is; runs.parquet's `set` says grid or curvature."""
    analysis = analysis_settings(config)
    expected = study.expected_runs(config, root)
    steps, run_table, metadata = read_runs(list(expected["path"]))
    curvature = curvature_rows(steps, run_table)
    run_set = steps["run"].map(expected["set"])
    runs_per_budget, cells_per_budget, curvature_cells_per_budget = [], [], []
    side_cells_per_budget = {side_set: [] for side_set in study.SIDE_SETS}
    for budget in sorted(analysis["budgets"]):
        prefix, table = (steps, run_table) if budget == 1 else budget_prefix(steps, run_table, budget)
        runs = summarize_runs(prefix, table, analysis, curvature if budget == 1 else curvature_rows(prefix, table))
        if budget == 1:
            check_runs(runs, expected, config)
        runs = runs.assign(set=expected["set"].to_numpy(), budget=budget, budget_steps=runs["steps"])
        runs.loc[runs["set"] == "conditioning", SCHEDULE_CURVATURE_COLUMNS] = np.nan
        runs_per_budget.append(runs.reset_index(drop=True))
        cells_per_budget.append(summarize_cells(runs[runs["set"] == "grid"], analysis).assign(budget=budget))
        for side_set, per_budget in side_cells_per_budget.items():
            per_budget.append(summarize_cells(runs[runs["set"] == side_set], analysis).assign(budget=budget))
        curvature_cells_per_budget.append(
            summarize_curvature_cells(runs[runs["set"] == "curvature"]).assign(budget=budget))
    runs, cells = pd.concat(runs_per_budget, ignore_index=True), pd.concat(cells_per_budget, ignore_index=True)
    curvature_set = curvature[curvature["run"].map(expected["set"]) == "curvature"]
    return {
        "runs.parquet": runs,
        "cells.parquet": cells,
        **{f"{side_set}.parquet": pd.concat(per_budget, ignore_index=True)
           for side_set, per_budget in side_cells_per_budget.items()},
        "curves.parquet": summarize_curves(steps[run_set == "grid"], run_table),
        "curvature.parquet": curvature_set.sort_values([*CELL, "seed", "step"])[CURVATURE_TABLE_COLUMNS],
        "curvature_cells.parquet": pd.concat(curvature_cells_per_budget, ignore_index=True),
        "study.json": study_summary(config, runs[runs["budget"] == 1], metadata),
    }


# --- writing ----------------------------------------------------------------------------


def write_outputs(outputs: dict, out_dir: Path) -> None:
    """Every file to a temporary name first, then all renamed: a kill leaves no partial file and
    at most a moment in which old and new files sit side by side (Snakemake reruns the job)."""
    with contextlib.ExitStack() as renames:  # on exit: all renamed, or on failure all removed
        for name, value in outputs.items():
            tmp = renames.enter_context(atomic_path(out_dir / name))
            if isinstance(value, pd.DataFrame):
                value.to_parquet(tmp, index=False)
            else:
                tmp.write_text(json.dumps(value, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def summary_text(outputs: dict) -> str:
    study = outputs["study.json"]
    per_optimizer = ", ".join(
        f"{name}: {n} runs, {study['n_diverged_per_optimizer'][name]} diverged"
        for name, n in study["n_runs_per_optimizer"].items()
    )
    return f"aggregated {study['n_runs']} runs ({per_optimizer})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--runs-dir", default=study.RUNS_DIR,
                        help="the directory of run files; the config's grid names the files read "
                        f"(default {study.RUNS_DIR})")
    parser.add_argument("--config-json", required=True, help="the full workflow config as a JSON string")
    parser.add_argument("--out-dir", default="results/aggregate", help="default results/aggregate")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config_json)
    except json.JSONDecodeError as error:
        parser.error(f"--config-json is not valid JSON: {error}")
    if not isinstance(config, dict):
        parser.error("--config-json must be a JSON object (the workflow config)")
    try:
        outputs = aggregate(config, args.runs_dir)
    except AggregationError as error:
        sys.exit(f"aggregate: {error}")
    write_outputs(outputs, Path(args.out_dir))
    print(summary_text(outputs))


if __name__ == "__main__":
    main()
