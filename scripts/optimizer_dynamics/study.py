"""The study's grid as both the workflow and the aggregation read it: the cells, the run
files and the training blocks, from the workflow config. Torch-free and fast: Snakemake
plans with it, and the aggregation finds its run files with it (one source for the paths).

A run file: results/runs/optimizer~sgd/lr~0.1/momentum~0.9/seed~0.parquet (Snakemake's
Paramspace layout). A training block is the unit of one training job: by default every lr
and seed of one optimizer x momentum line (training.block: line), or one cell (cell).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from optimizer_dynamics.config import format_number

RUNS_DIR = "results/runs"
CELL_COLUMNS = ["optimizer", "lr", "momentum"]
# Paramspace's layout of a cell: optimizer~{optimizer}/lr~{lr}/momentum~{momentum}
CELL_PATTERN = "/".join(f"{name}~{{{name}}}" for name in CELL_COLUMNS)


def grid(config: dict):
    """Snakemake's Paramspace of the grid: one row per (optimizer, lr, momentum) cell, values as
    path strings, so paths are stable. (pandas and snakemake are imported here, not at the top:
    a training job names its default output paths with this module.)"""
    import pandas as pd
    from snakemake.utils import Paramspace

    rows = [
        {"optimizer": optimizer, "lr": format_number(lr), "momentum": format_number(momentum)}
        for optimizer, axes in config["optimizers"].items()
        for lr in axes["lr"]
        for momentum in axes["momentum"]
    ]
    return Paramspace(pd.DataFrame(rows, columns=CELL_COLUMNS, dtype=str))


def run_file(cell_pattern: str, seed, root: str = RUNS_DIR) -> str:
    return f"{root}/{cell_pattern}/seed~{seed}.parquet"


def cell_run_file(optimizer: str, lr: str, momentum: str, seed, root: str = RUNS_DIR) -> str:
    """The run file of one cell and seed; lr and momentum as format_number writes them."""
    return run_file(CELL_PATTERN.format(optimizer=optimizer, lr=lr, momentum=momentum), seed, root)


def runs_root(path: str) -> str:
    """The root a run file lies under: run_file(cell, seed, root) -> root."""
    return str(PurePath(path).parents[len(CELL_COLUMNS)])


def run_files(config: dict, root: str = RUNS_DIR) -> list[str]:
    """Every run file of the config, and no others (root may hold runs of an older config)."""
    return [run_file(cell, seed, root) for cell in grid(config).instance_patterns for seed in config["seeds"]]


@dataclass(frozen=True)
class Block:
    """The runs one training job trains together: the product of `lrs` and the seeds."""

    optimizer: str
    momentum: str
    lrs: tuple[str, ...]
    granularity: str  # "line" or "cell"
    part: int | None = None  # a line split by training.max_runs_per_job: its part, from 1

    @property
    def name(self) -> str:
        """A rule-name-safe id: train_sgd_momentum_0_9 (line), ..._part_2 (a split line),
        train_sgd_lr_0_1_momentum_0_9 (cell)."""
        lr = f"_lr_{self.lrs[0]}" if self.granularity == "cell" else ""
        part = f"_part_{self.part}" if self.part else ""
        return re.sub(r"[^A-Za-z0-9_]", "_", f"train_{self.optimizer}{lr}_momentum_{self.momentum}{part}")

    @property
    def log_stem(self) -> str:
        """optimizer~sgd/momentum~0.9 (line), .../part~2 (a split line), or
        optimizer~sgd/lr~0.1/momentum~0.9 (cell)."""
        lr = f"/lr~{self.lrs[0]}" if self.granularity == "cell" else ""
        part = f"/part~{self.part}" if self.part else ""
        return f"optimizer~{self.optimizer}{lr}/momentum~{self.momentum}{part}"

    def run_files(self, seeds, root: str = RUNS_DIR) -> list[str]:
        """lr-major, as the training command takes its --out paths."""
        return [
            cell_run_file(self.optimizer, lr, self.momentum, seed, root)
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
    for optimizer, axes in config["optimizers"].items():
        lrs = tuple(format_number(lr) for lr in axes["lr"])
        for momentum in axes["momentum"]:
            m = format_number(momentum)
            if granularity == "cell":
                result.extend(Block(optimizer, m, (lr,), granularity) for lr in lrs)
                continue
            parts = [lrs[start : start + lrs_per_part] for start in range(0, len(lrs), lrs_per_part)]
            result.extend(
                Block(optimizer, m, part, granularity, index + 1 if len(parts) > 1 else None)
                for index, part in enumerate(parts)
            )
    return result
