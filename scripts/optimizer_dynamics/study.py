"""The study's grid as both the workflow and the aggregation read it: the cells, the run
files and the training blocks, from the workflow config. Torch-free and fast: Snakemake
plans with it, and the aggregation finds its run files with it (one source for the paths).

A run file: results/runs/optimizer~sgd/lr~0.1/momentum~0.9/seed~0.parquet (Snakemake's
Paramspace layout). A training block is the unit of one training job: by default every lr
and seed of one optimizer x momentum line (training.block: line), or one cell (cell).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from dataclasses import dataclass

import pandas as pd
from snakemake.utils import Paramspace

from optimizer_dynamics.config import format_number

RUNS_DIR = "results/runs"
CELL_COLUMNS = ["optimizer", "lr", "momentum"]


def grid(config: dict) -> Paramspace:
    """One row per (optimizer, lr, momentum) cell, values as path strings, so paths are stable."""
    rows = [
        {"optimizer": optimizer, "lr": format_number(lr), "momentum": format_number(momentum)}
        for optimizer, axes in config["optimizers"].items()
        for lr in axes["lr"]
        for momentum in axes["momentum"]
    ]
    return Paramspace(pd.DataFrame(rows, columns=CELL_COLUMNS, dtype=str))


def run_file(cell_pattern: str, seed, root: str = RUNS_DIR) -> str:
    return f"{root}/{cell_pattern}/seed~{seed}.parquet"


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

    @property
    def name(self) -> str:
        """A rule-name-safe id: train_sgd_momentum_0_9 (line), train_sgd_lr_0_1_momentum_0_9 (cell)."""
        lr = f"_lr_{self.lrs[0]}" if self.granularity == "cell" else ""
        return re.sub(r"[^A-Za-z0-9_]", "_", f"train_{self.optimizer}{lr}_momentum_{self.momentum}")

    @property
    def log_stem(self) -> str:
        """optimizer~sgd/momentum~0.9 (line) or optimizer~sgd/lr~0.1/momentum~0.9 (cell)."""
        lr = f"/lr~{self.lrs[0]}" if self.granularity == "cell" else ""
        return f"optimizer~{self.optimizer}{lr}/momentum~{self.momentum}"

    def run_files(self, seeds, root: str = RUNS_DIR) -> list[str]:
        """lr-major, as the training command takes its --out paths."""
        return [
            run_file(f"optimizer~{self.optimizer}/lr~{lr}/momentum~{self.momentum}", seed, root)
            for lr in self.lrs
            for seed in seeds
        ]


def blocks(config: dict) -> list[Block]:
    granularity = config["training"]["block"]
    result = []
    for optimizer, axes in config["optimizers"].items():
        lrs = tuple(format_number(lr) for lr in axes["lr"])
        for momentum in axes["momentum"]:
            m = format_number(momentum)
            if granularity == "line":
                result.append(Block(optimizer, m, lrs, granularity))
            else:
                result.extend(Block(optimizer, m, (lr,), granularity) for lr in lrs)
    return result
