"""Shared fixtures: a tiny dataset and a tiny study trained for real (nothing hard-coded)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from optimizer_dynamics import batch_regime, study
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset
from optimizer_dynamics.runfile import write_run
from optimizer_dynamics.train import default_out, set_determinism, train

REPO = Path(__file__).resolve().parents[1]
# What a copy of the repository needs for `snakemake` to run the study in it.
WORKFLOW_PARTS = ("workflow", "config", "report", "scripts")
# This interpreter's directory first on PATH, as after activating its venv (jobs themselves run
# the interpreter that runs Snakemake whatever PATH says: test_workflow.py checks that).
SNAKEMAKE_ENV = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}

# n not a power of two, so a fraction computed in float32 would not be exact.
TINY_DATA = {"n_train": 60, "n_val": 60, "noise": 0.2, "data_seed": 0}
# A tiny study shaped like the default one: both optimizers, a momentum axis, 2 seeds, one lr
# large enough to diverge.
TINY_GRID = {
    "sgd": {"lr": [0.01, 0.3, 50.0], "momentum": [0.0, 0.9]},
    "adam": {"lr": [0.001, 0.01], "momentum": [0.9]},
}
TINY_SEEDS = [0, 1]
TINY_STEPS = 80


@pytest.fixture(scope="session", autouse=True)
def deterministic_torch():
    set_determinism(threads=1)


@pytest.fixture(scope="session")
def tiny_dataset():
    return make_dataset(**TINY_DATA)


def tiny_config(**overrides) -> RunConfig:
    settings = {**TINY_DATA, "steps": TINY_STEPS, "eval_every": 5, "hidden": 16, **overrides}
    return RunConfig(**settings)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, tiny_dataset) -> list[Path]:
    """Run files of the tiny grid, trained with the real training loop."""
    root = tmp_path_factory.mktemp("study")
    paths = []
    for optimizer, axes in TINY_GRID.items():
        for lr in axes["lr"]:
            for momentum in axes["momentum"]:
                for seed in TINY_SEEDS:
                    config = tiny_config(optimizer=optimizer, lr=lr, momentum=momentum, seed=seed)
                    path = root / default_out(config)
                    write_run(train(config, tiny_dataset), path)
                    paths.append(path)
    return paths


def tiny_study_config() -> dict:
    """The workflow-level config that matches the tiny study (as the aggregation sees it)."""
    return {
        "data": {"n_train": 60, "n_val": 60, "noise": 0.2, "seed": 0},
        "training": {"steps": TINY_STEPS, "batch_size": [None], "eval_every": 5, "noise_every": 0, "divergence_factor": 10,
                     "block": "line", "max_runs_per_job": 100, "threads": 1},
        "seeds": TINY_SEEDS,
        "optimizers": TINY_GRID,
        "analysis": {
            "target_val_loss": 0.4,
            "late_fraction": 0.1,
            "good_window_tolerance": 0.1,
            "budgets": [0.5, 1.0],
            "reference": {"sgd": {"lr": 0.3, "momentum": 0.0}, "adam": {"lr": 0.01, "momentum": 0.9}},
            "claimed_windows": {"sgd": [0.1, 0.3], "adam": [7e-4, 1e-2]},
        },
        "curvature": {"every": 0, "steps": TINY_STEPS, "early_steps": 0, "early_every": 1, "cells": {},
                      "minibatch": {"batch_size": 16, "cells": {}}},
        "problem": "moons",
        "conditioning": {"problems": [], "batch_size": [64], "optimizers": {}},
        "batch_sizes": {"batch_size": [], "optimizers": {}},
        "epsilon": {"eps": [], "momentum": 0.9, "heavy_ball_lr": [], "batch_size": [None]},
        "max_jobs": 2000,
    }


@pytest.fixture(scope="session")
def tiny_aggregate(tmp_path_factory, tiny_study) -> Path:
    """results/aggregate/ of the tiny study, made by the real aggregation and claims entry points."""
    return aggregate_and_judge(tmp_path_factory.mktemp("aggregate"), runs_dir(tiny_study), tiny_study_config())


def aggregate_and_judge(out: Path, runs: Path, config: dict) -> Path:
    """The aggregate tables of `runs` and the claims' verdicts beside them, as the workflow makes them."""
    from optimizer_dynamics import aggregate, claims

    aggregate.main(["--runs-dir", str(runs), "--config-json", json.dumps(config), "--out-dir", str(out)])
    claims.main(["--aggregate-dir", str(out)])
    return out


def in_setting(table: pd.DataFrame, regime="full", metric="final", comparison="usual lrs", budget=1.0) -> pd.DataFrame:
    """verdicts.parquet's rows of one setting, indexed by claim id (an axis a claim is not judged
    over is empty in its rows; one judged across regimes is in every regime's setting)."""
    keep = table["regime"].isin([regime, batch_regime.ALL]) & (table["budget"] == budget)
    keep &= table["metric"].isna() | (table["metric"] == metric)
    keep &= table["comparison"].isna() | (table["comparison"] == comparison)
    return table[keep].set_index("id")


DELETE = object()  # a value for with_changes: remove the key


def with_changes(config: dict, **changes) -> dict:
    """A deep copy of a workflow config with changes given as section__key=value."""
    config = copy.deepcopy(config)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = config
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return config


def runs_dir(paths) -> Path:
    """The results/runs directory holding the run files (study.run_file)."""
    return Path(study.runs_root(str(paths[0])))


def frames_by_run(paths) -> dict:
    """Each run file's steps, keyed by (optimizer, lr, momentum, seed)."""
    frames = {}
    for path in paths:
        frame = pd.read_parquet(path)
        first = frame.iloc[0]
        frames[(first["optimizer"], first["lr"], first["momentum"], int(first["seed"]))] = frame
    return frames


# --- running the workflow in a copy of the repository -------------------------------------


def copy_repo(dest: Path) -> Path:
    for part in WORKFLOW_PARTS:
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir, env=SNAKEMAKE_ENV, capture_output=True, text=True, timeout=timeout,
    )


def run_files(workdir: Path) -> list[Path]:
    """Run files that look complete (a killed writer leaves only hidden .name.tmpPID files)."""
    return sorted(p for p in (workdir / "results/runs").rglob("*.parquet") if not p.name.startswith("."))
