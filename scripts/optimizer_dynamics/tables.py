"""The one reader of the aggregate tables (results/aggregate/): the figures, the claims and the
report look cells and runs up here, on exact keys; and the tables' column contract.

Exact equality is right for lr and momentum: the config checks admit only numbers that
format_number prints exactly, the run paths carry them in that form, and float(repr) round
trips through YAML, JSON and Parquet, so every value in the tables is the config's float64.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.study import SIDE_SETS

KEY_COLUMNS = ("set", "problem", "batch", "budget", "optimizer", "hyperparameters", "lr", "momentum", "seed")
# The validation-loss metrics of the runs and cells tables: per-run column, cells' median over
# seeds and good-window flag. final: at the last step, the seed's measure; selected: at the step
# with the lowest loss on the validation set's first half, reported on its second half (no
# step is picked in hindsight on the data its loss is reported on).
LOSS_METRICS = {
    "final": ("final_val_loss", "median_final_val_loss", "in_good_window"),
    "selected": ("selected_val_loss", "median_selected_val_loss", "in_good_window_selected"),
}
# what each table must have (at least), for the figures and the report
REQUIRED_COLUMNS = {
    "cells.parquet": [
        "batch", "budget", "optimizer", "lr", "momentum", "n_runs", "n_diverged", "median_final_val_loss",
        "q25_final_val_loss", "q75_final_val_loss", "in_good_window", "eff_step_late_mean", "eff_step_late_lo",
        "eff_step_late_hi", "update_cosine_late_mean", "update_cosine_late_lo", "update_cosine_late_hi",
    ],
    **dict.fromkeys([f"{run_set}.parquet" for run_set in SIDE_SETS], [
        "problem", "batch", "budget", "optimizer", "lr", "momentum", "n_runs", "n_diverged",
        "median_final_val_loss", "median_selected_val_loss", "in_good_window", "in_good_window_selected",
    ]),
    "curves.parquet": ["batch", "optimizer", "lr", "momentum", "step", "metric", "mean", "lo", "hi", "n"],
    "curvature.parquet": ["optimizer", "lr", "momentum", "seed", "step", "sharpness", "precond_sharpness",
                          "threshold"],
    "runs.parquet": ["set", "problem", "batch", "budget", "optimizer", "lr", "momentum", "seed", "diverged",
                     "late_sharpness_ratio"],
    "curvature_cells.parquet": ["budget", "optimizer", "lr", "momentum", "n_runs", "n_diverged",
                                "stability_threshold", "late_sharpness_ratio_mean"],
}
AGGREGATE_FILES = (*REQUIRED_COLUMNS, "study.json")  # what the aggregation writes, every file
# what the claims stage (optimizer_dynamics.claims) writes beside them, and what it must hold
VERDICTS_FILE = "verdicts.parquet"
VERDICTS_COLUMNS = ["id", "family", "claim", "source", "headline", "lead", "setting", "prediction", "effect", "effect_lo",
                    "effect_hi", "n_held", "n_tested", "verdict", "measured", "detail"]
KEY_FINDINGS_FILE = "key_findings.json"  # [{"claims": [ids], "text": sentence}] (claims/key_findings.py)
WINDOWS_FILE = "windows.parquet"  # every good window the verdicts read (claims/experiment2.py)
WINDOWS_COLUMNS = ["batch", "budget", "metric", "optimizer", "momentum", "best_lr", "lo", "hi", "decades"]
CLAIMS_FILES = (VERDICTS_FILE, KEY_FINDINGS_FILE, WINDOWS_FILE)  # what the claims stage writes
AGGREGATE_HINT = "run python -m optimizer_dynamics.aggregate first"


class AggregateError(ValueError):
    """An aggregate file missing or not shaped as the contract says; the message names it."""


def select(frame: pd.DataFrame, **keys) -> pd.DataFrame:
    """The rows whose KEY_COLUMNS equal the given values exactly; a key given as None matches all."""
    unknown = set(keys) - set(KEY_COLUMNS)
    if unknown:
        raise TypeError(f"select: {sorted(unknown)} are not key columns {KEY_COLUMNS}")
    keep = pd.Series(True, index=frame.index)
    for column, value in keys.items():
        if value is not None:
            keep &= frame[column] == value
    return frame[keep]


def lrs_in_every_regime(cells: pd.DataFrame, optimizer: str, momentum: float) -> list[float]:
    """The lrs of an optimizer line that every regime of `cells` trained: a comparison across
    regimes over them gives no regime a wider grid to pick its best lr from."""
    line = select(cells, optimizer=optimizer, momentum=momentum)
    if line.empty:
        return []
    return sorted(set.intersection(*(set(group["lr"]) for _, group in line.groupby("batch"))))


def one(frame: pd.DataFrame, **keys) -> pd.Series:
    """The one row with these keys; LookupError names the keys when there is none or several."""
    rows = select(frame, **keys)
    if len(rows) != 1:
        wanted = ", ".join(f"{k} {v}" for k, v in keys.items() if v is not None)
        raise LookupError(f"{len(rows)} rows for {wanted}")
    return rows.iloc[0]


@dataclass(frozen=True)
class Aggregate:
    """The study's aggregate tables. cells, runs and curvature_cells hold the whole runs
    (budget 1); cells_by_budget, runs_by_budget and verdicts every budget (analysis.budgets).
    verdicts is None where the claims were not judged yet (the claims stage reads the rest)."""

    cells: pd.DataFrame  # one row per (batch, optimizer, lr, momentum)
    curves: pd.DataFrame  # long: per cell, step and metric: mean, lo, hi over seeds
    config: dict  # the study config recorded in study.json
    curvature: pd.DataFrame  # per curvature run and Hessian step: sharpness and threshold
    runs: pd.DataFrame  # one row per run: the grid's and the curvature runs
    curvature_cells: pd.DataFrame  # one row per curvature setting (optimizer, lr, momentum)
    cells_by_budget: pd.DataFrame
    runs_by_budget: pd.DataFrame
    # the side sets' runs (study.SIDE_SETS: conditioning, batch_sizes), apart from the grid's:
    # their cells repeat the grid's (optimizer, lr, momentum) on other problems or batch sizes;
    # per set, its cells (<set>.parquet) at every budget; and their runs at every budget
    side_cells_by_budget: dict[str, pd.DataFrame]
    side_runs_by_budget: pd.DataFrame
    verdicts: pd.DataFrame | None
    study: dict  # study.json: the config, run counts and library versions
    key_findings: list[dict] | None = None  # with the verdicts: the study's key findings
    windows: pd.DataFrame | None = None  # with the verdicts: every good window they read

    def in_regime(self, regime: str) -> Aggregate:
        """The grid of one batch regime (its cells, curves and runs); the curvature stays."""
        return dataclasses.replace(
            self, cells=select(self.cells, batch=regime), curves=select(self.curves, batch=regime),
            runs=select(self.runs, set="grid", batch=regime))

    @property
    def analysis(self) -> dict:
        return self.config.get("analysis") or {}

    @property
    def optimizers(self) -> list[str]:
        """The optimizers of the config's grid, in registry order (a panel each, also for one
        whose runs are absent, to say so) and of the runs."""
        wanted = set(self.config.get("optimizers") or {}) | set(self.cells["optimizer"])
        return [name for name in OPTIMIZERS if name in wanted]

    def reference(self, optimizer: str) -> tuple[float, float] | None:
        """(lr, momentum) of the optimizer's reference cell, if configured and trained."""
        ref = (self.analysis.get("reference") or {}).get(optimizer)
        if not ref or "lr" not in ref:
            return None
        lr, momentum = float(ref["lr"]), float(ref.get("momentum", 0.0))
        return (lr, momentum) if len(self.cell_rows(optimizer, lr=lr, momentum=momentum)) else None

    def cell_rows(self, optimizer: str, lr: float | None = None, momentum: float | None = None) -> pd.DataFrame:
        return select(self.cells, optimizer=optimizer, lr=lr, momentum=momentum)

    def cell(self, optimizer: str, lr: float, momentum: float) -> pd.Series:
        return one(self.cells, optimizer=optimizer, lr=lr, momentum=momentum)

    def cell_runs(self, optimizer: str, lr: float, momentum: float) -> pd.DataFrame:
        return select(self.runs, optimizer=optimizer, lr=lr, momentum=momentum)

    def curve(self, optimizer: str, lr: float, momentum: float, metric: str) -> pd.DataFrame:
        """step, mean, lo, hi of one metric of one cell, sorted by step (empty if absent)."""
        rows = select(self.curves, optimizer=optimizer, lr=lr, momentum=momentum)
        return rows[rows["metric"] == metric].sort_values("step")


def load_aggregate(directory: str | Path, with_verdicts: bool = True) -> Aggregate:
    """The tables of `directory`; with_verdicts: verdicts.parquet too (the claims stage's)."""
    directory = Path(directory)
    frames = {name: read_table(directory / name, columns) for name, columns in REQUIRED_COLUMNS.items()}
    study_path = directory / "study.json"
    if not study_path.is_file():
        raise AggregateError(f"{study_path}: missing; {AGGREGATE_HINT}")
    study = json.loads(study_path.read_text(encoding="utf-8"))
    if not isinstance(study.get("config"), dict):
        raise AggregateError(f"{study_path}: key 'config' (the study config as a mapping) is missing")
    for frame in frames.values():
        if "optimizer" in frame:
            frame["optimizer"] = frame["optimizer"].astype(str)
    all_runs = frames["runs.parquet"]
    side = all_runs["set"].isin(SIDE_SETS)
    runs_by_budget = all_runs[~side]
    whole = {name: select(frame, budget=1.0) for name, frame in (
        ("cells", frames["cells.parquet"]), ("runs", runs_by_budget),
        ("curvature_cells", frames["curvature_cells.parquet"]))}
    return Aggregate(cells=whole["cells"], curves=frames["curves.parquet"], config=study["config"],
                     curvature=frames["curvature.parquet"], runs=whole["runs"],
                     curvature_cells=whole["curvature_cells"], cells_by_budget=frames["cells.parquet"],
                     runs_by_budget=runs_by_budget,
                     side_cells_by_budget={run_set: frames[f"{run_set}.parquet"] for run_set in SIDE_SETS},
                     side_runs_by_budget=all_runs[side], study=study,
                     verdicts=read_table(directory / VERDICTS_FILE, VERDICTS_COLUMNS) if with_verdicts else None,
                     key_findings=read_key_findings(directory / KEY_FINDINGS_FILE) if with_verdicts else None,
                     windows=read_table(directory / WINDOWS_FILE, WINDOWS_COLUMNS) if with_verdicts else None)


def read_key_findings(path: Path) -> list[dict]:
    if not path.is_file():
        raise AggregateError(f"{path}: missing; run python -m optimizer_dynamics.claims first")
    findings = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(findings, list) or not all(isinstance(f, dict) and {"claims", "text"} <= f.keys()
                                                 for f in findings):
        raise AggregateError(f"{path}: expected a list of {{claims, text}}")
    return findings


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise AggregateError(f"{path}: missing; {AGGREGATE_HINT}")
    frame = pd.read_parquet(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AggregateError(f"{path}: columns {missing} are missing; expected at least {columns}")
    return frame
