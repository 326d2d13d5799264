"""The study's runs as both the workflow and the aggregation read them: the cells, the run
files and the training blocks, from the workflow config. Torch-free and fast: Snakemake
plans with it, and the aggregation finds its run files with it (one source for the paths).

The sets of runs, all under results/runs, in Snakemake's Paramspace layout:
  grid: every optimizer x hyperparameters x lr x momentum cell in every batch regime (training.batch_size) on
      the study's problem, training.steps steps:
          results/runs/grid/problem~moons/batch~64/optimizer~sgd/hyperparameters~none/lr~0.1/momentum~0.9/seed~0.parquet
  curvature: the cells of curvature.cells, full batch, curvature.steps steps, logging exact
      Hessians:
          results/runs/curvature/problem~moons/batch~full/optimizer~sgd/hyperparameters~none/lr~0.5/momentum~0/seed~0.parquet
  conditioning: the cells of conditioning.optimizers on each of conditioning.problems, in
      each of its regimes, training.steps steps, with the Hessian of step 0 (the step-0
      sharpness):
          results/runs/conditioning/problem~moons_kappa100/batch~64/optimizer~adam/hyperparameters~beta2=0.999,eps=1e-08/lr~0.001/momentum~0.9/seed~0.parquet
  minibatch_curvature: the cells of curvature.minibatch.cells at its batch size, training.steps
      steps, on the curvature runs' Hessian schedule, logging the batch sharpness too:
          results/runs/minibatch_curvature/problem~moons/batch~64/optimizer~sgd/hyperparameters~none/lr~0.1/momentum~0/seed~0.parquet
  batch_sizes: the cells of batch_sizes.optimizers on the study's problem at the batch sizes
      of batch_sizes.batch_size, training.steps steps: beside the grid's regimes, more batch
      sizes for the lines whose gap claim 9e follows across batch sizes:
          results/runs/batch_sizes/problem~moons/batch~16/optimizer~sgd/hyperparameters~none/lr~0.1/momentum~0/seed~0.parquet
  epsilon: Adam at each eps of epsilon.eps with beta1 epsilon.momentum, at the lrs that make it
      heavy ball at epsilon.heavy_ball_lr for a large eps (lr = heavy-ball lr x eps / (1 - beta1)),
      in each regime of epsilon.batch_size, training.steps steps; their heavy-ball partners are
      the grid's SGD runs at that momentum:
          results/runs/epsilon/problem~moons/batch~64/optimizer~adam/hyperparameters~beta2=0.999,eps=1/lr~1/momentum~0.9/seed~0.parquet
A regime is named "full" (batch_size null) or by its batch size ("64"), in the path and in
the run file's `batch` column. A training block is the unit of one training job: by default
every lr and seed of one set x problem x regime x optimizer x hyperparameters x momentum line (training.block:
line), or one cell (cell).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import PurePath

from optimizer_dynamics import batch_regime
from optimizer_dynamics.config import format_number, hyperparameter_text
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.optimizers.adam import lr_of_heavy_ball

RUNS_DIR = "results/runs"
RUN_SETS = ("grid", "curvature", "conditioning", "batch_sizes", "minibatch_curvature", "epsilon")
# the sets whose runs log Hessians on the curvature schedule (the curvature claims read them)
CURVATURE_SETS = ("curvature", "minibatch_curvature")
# the sets of tuned comparisons apart from the grid: each has its cells table, <set>.parquet
SIDE_SETS = ("conditioning", "batch_sizes", "epsilon")
# the side sets whose claims read them beside the grid's runs (the same lines at more batch sizes;
# the heavy-ball partners of large-eps Adam)
BESIDE_THE_GRID = ("batch_sizes", "epsilon")
CELL_COLUMNS = ["problem", "batch", "optimizer", "hyperparameters", "lr", "momentum"]
# Paramspace's layout of a cell: problem~{problem}/batch~{batch}/optimizer~{optimizer}/
# hyperparameters~{hyperparameters}/lr~{lr}/momentum~{momentum}
CELL_PATTERN = "/".join(f"{name}~{{{name}}}" for name in CELL_COLUMNS)


def regimes(config: dict) -> list[str]:
    """The grid's batch regimes, in config order: "full" and batch sizes as text."""
    return [batch_regime.name(size) for size in config["training"]["batch_size"]]


def cell_axes(config: dict, run_set: str) -> list[tuple[str, str, str, dict]]:
    """(problem, regime, optimizer, {lr, momentum}) of each line of the set, in config order."""
    if run_set == "grid":
        return [(config["problem"], regime, optimizer, axes) for regime in regimes(config)
                for optimizer, axes in config["optimizers"].items()]
    if run_set == "conditioning":
        conditioning = config["conditioning"]
        return [(problem, batch_regime.name(size), optimizer, axes) for problem in conditioning["problems"]
                for size in conditioning["batch_size"] for optimizer, axes in conditioning["optimizers"].items()]
    if run_set == "epsilon":
        epsilon, beta1 = config["epsilon"], config["epsilon"]["momentum"]
        return [(config["problem"], batch_regime.name(size), "adam",
                 {"lr": [float(format_number(lr_of_heavy_ball(lr, beta1, eps))) for lr in epsilon["heavy_ball_lr"]],
                  "momentum": [beta1], "eps": [eps]})
                for size in epsilon["batch_size"] for eps in epsilon["eps"]]
    if run_set == "batch_sizes":
        batch_sizes = config["batch_sizes"]
        return [(config["problem"], batch_regime.name(size), optimizer, axes) for size in batch_sizes["batch_size"]
                for optimizer, axes in batch_sizes["optimizers"].items()]
    curvature = config["curvature"]
    if not curvature["every"]:
        return []
    if run_set == "minibatch_curvature":
        minibatch = curvature["minibatch"]
        return [(config["problem"], batch_regime.name(minibatch["batch_size"]), optimizer, axes)
                for optimizer, axes in minibatch["cells"].items()]
    return [(config["problem"], "full", optimizer, axes) for optimizer, axes in curvature["cells"].items()]


def hyperparameter_settings(optimizer: str, axes: dict) -> list[str]:
    """The optimizer's own hyperparameters of a line's cells, each setting as RunConfig's
    hyperparameters field writes it: the product of the values its axes list (optimizers.adam.eps:
    [1.0e-3]; the config checks allow one value each), defaults for the ones they do not."""
    defaults = {h.name: h.default for h in OPTIMIZERS[optimizer].hyperparameters}
    names = [name for name in defaults if name in axes]
    return [hyperparameter_text(optimizer, {**defaults, **dict(zip(names, values))})
            for values in itertools.product(*(axes[name] for name in names))]


def grid(config: dict, run_set: str = "grid"):
    """Snakemake's Paramspace of a set: one row per (problem, batch, optimizer, hyperparameters,
    lr, momentum) cell, values as path strings, so paths are stable. (pandas and snakemake are imported here, not
    at the top: a training job names its default output paths with this module.)"""
    import pandas as pd
    from snakemake.utils import Paramspace

    rows = [
        {"problem": problem, "batch": regime, "optimizer": optimizer, "hyperparameters": hyperparameters,
         "lr": format_number(lr), "momentum": format_number(momentum)}
        for problem, regime, optimizer, axes in cell_axes(config, run_set)
        for hyperparameters in hyperparameter_settings(optimizer, axes)
        for lr in axes["lr"]
        for momentum in axes["momentum"]
    ]
    return Paramspace(pd.DataFrame(rows, columns=CELL_COLUMNS, dtype=str))


def run_file(run_set: str, cell_pattern: str, seed, root: str = RUNS_DIR) -> str:
    return f"{root}/{run_set}/{cell_pattern}/seed~{seed}.parquet"


def cell_run_file(run_set: str, problem: str, batch: str, optimizer: str, hyperparameters: str, lr: str,
                  momentum: str, seed, root: str = RUNS_DIR) -> str:
    """The run file of one cell and seed; lr and momentum as format_number writes them."""
    cell = CELL_PATTERN.format(problem=problem, batch=batch, optimizer=optimizer, hyperparameters=hyperparameters,
                               lr=lr, momentum=momentum)
    return run_file(run_set, cell, seed, root)


def runs_root(path: str) -> str:
    """The root a run file lies under: run_file(set, cell, seed, root) -> root."""
    return str(PurePath(path).parents[len(CELL_COLUMNS) + 1])


def run_files(config: dict, root: str = RUNS_DIR) -> list[str]:
    """Every run file of the config, and no others (root may hold runs of an older config)."""
    return expected_runs(config, root)["path"].tolist()


def expected_runs(config: dict, root: str = RUNS_DIR):
    """One row per run file of the config (path, set, the cell, seed) with the settings its
    run must have been trained with: steps, batch_size, the Hessian schedule, noise_every."""
    import pandas as pd

    rows = []
    for run_set in RUN_SETS:
        settings = training_settings(config, run_set)
        for cell in grid(config, run_set).dataframe.itertuples(index=False):
            for seed in config["seeds"]:
                rows.append({
                    "path": cell_run_file(run_set, cell.problem, cell.batch, cell.optimizer, cell.hyperparameters,
                                          cell.lr, cell.momentum, seed, root),
                    "set": run_set, "problem": cell.problem, "batch": cell.batch, "optimizer": cell.optimizer,
                    "hyperparameters": cell.hyperparameters,
                    "lr": float(cell.lr), "momentum": float(cell.momentum), "seed": seed,
                    "batch_size": batch_regime.batch_size(cell.batch), **settings,
                })
    return pd.DataFrame(rows)


def training_settings(config: dict, run_set: str) -> dict:
    """The settings a set's runs differ by: steps, the Hessian schedule and the gradient-noise
    instruments, which the side sets leave off (their claims read losses and the step-0 Hessian)."""
    curvature, training = config["curvature"], config["training"]
    steps = training["steps"]
    noise = {"noise_every": 0 if run_set in SIDE_SETS else training["noise_every"]}
    off = {"curvature_every": 0, "curvature_early_steps": 0, "curvature_early_every": 1, "curvature_consecutive": 2}
    if run_set in ("grid", "batch_sizes", "epsilon"):
        return {"steps": steps, **off, **noise}
    if run_set == "conditioning":  # one Hessian, at step 0: a period of `steps` steps, one step a period
        return {"steps": steps, **off, "curvature_every": steps, "curvature_consecutive": 1, **noise}
    return {"steps": curvature["steps"] if run_set == "curvature" else steps, "curvature_every": curvature["every"],
            "curvature_early_steps": curvature["early_steps"], "curvature_early_every": curvature["early_every"],
            "curvature_consecutive": 2, **noise}


@dataclass(frozen=True)
class Block:
    """The runs one training job trains together: the product of `lrs` and the seeds."""

    run_set: str  # one of RUN_SETS
    problem: str
    batch: str  # the regime: "full" or a batch size
    optimizer: str
    hyperparameters: str  # as RunConfig writes them
    momentum: str
    lrs: tuple[str, ...]
    granularity: str  # "line" or "cell"
    part: int | None = None  # a line split by training.max_runs_per_job: its part, from 1

    @property
    def name(self) -> str:
        """A rule-name-safe id: train_grid_moons_64_sgd_none_momentum_0_9 (line), ..._part_2 (a
        split line), train_curvature_moons_full_sgd_none_lr_0_1_momentum_0_9 (cell)."""
        lr = f"_lr_{self.lrs[0]}" if self.granularity == "cell" else ""
        part = f"_part_{self.part}" if self.part else ""
        name = (f"train_{self.run_set}_{self.problem}_{self.batch}_{self.optimizer}_{self.hyperparameters}{lr}"
                f"_momentum_{self.momentum}{part}")
        return re.sub(r"[^A-Za-z0-9_]", "_", name)

    @property
    def log_stem(self) -> str:
        """grid/problem~moons/batch~64/optimizer~sgd/hyperparameters~none/momentum~0.9 (line),
        .../part~2 (a split line), or .../hyperparameters~none/lr~0.1/momentum~0.9 (cell)."""
        lr = f"/lr~{self.lrs[0]}" if self.granularity == "cell" else ""
        part = f"/part~{self.part}" if self.part else ""
        return (f"{self.run_set}/problem~{self.problem}/batch~{self.batch}/optimizer~{self.optimizer}"
                f"/hyperparameters~{self.hyperparameters}{lr}/momentum~{self.momentum}{part}")

    def describe(self, seeds) -> str:
        """What its job does, in a line: "training grid runs on moons, batch 64: SGD m = 0.9,
        15 lrs x 5 seeds" (the hyperparameters where the optimizer has any; the part of a split line)."""
        optimizer = OPTIMIZERS[self.optimizer]
        own = f", {optimizer.hyperparameter_label(self.hyperparameters)}" if optimizer.hyperparameters else ""
        part = f", part {self.part}" if self.part else ""
        return (f"training {self.run_set} runs on {self.problem}, {batch_regime.label(self.batch)}: "
                f"{optimizer.label} {optimizer.momentum_symbol} = {self.momentum}{own}, "
                f"{len(self.lrs)} lr{'s' if len(self.lrs) > 1 else ''} x {len(seeds)} seeds{part}")

    def run_files(self, seeds, root: str = RUNS_DIR) -> list[str]:
        """lr-major, as the training command takes its --out paths."""
        return [
            cell_run_file(self.run_set, self.problem, self.batch, self.optimizer, self.hyperparameters, lr,
                          self.momentum, seed, root)
            for lr in self.lrs
            for seed in seeds
        ]


def blocks(config: dict) -> list[Block]:
    """The training jobs. A line longer than training.max_runs_per_job is split into parts of
    consecutive lrs (at least one lr a part): past ~20 stacked runs a block trains no faster
    per run, and Snakemake's planning time grows with the outputs per rule times the files."""
    granularity = config["training"]["block"]
    lrs_per_part = max(1, config["training"]["max_runs_per_job"] // len(config["seeds"]))
    result = []
    for run_set in RUN_SETS:
        for problem, regime, optimizer, axes in cell_axes(config, run_set):
            lrs = tuple(format_number(lr) for lr in axes["lr"])
            for hyperparameters, momentum in itertools.product(hyperparameter_settings(optimizer, axes),
                                                               axes["momentum"]):
                line = (run_set, problem, regime, optimizer, hyperparameters, format_number(momentum))
                if granularity == "cell":
                    result.extend(Block(*line, (lr,), granularity) for lr in lrs)
                    continue
                parts = [lrs[start : start + lrs_per_part] for start in range(0, len(lrs), lrs_per_part)]
                result.extend(
                    Block(*line, part, granularity, index + 1 if len(parts) > 1 else None)
                    for index, part in enumerate(parts)
                )
    return result
