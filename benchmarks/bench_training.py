"""Benchmark of the training core: prints ratios measured in this one run.

1. Per step: the instrumented training loop (every diagnostic, eval every `eval_every`
   steps) against a bare torch.optim loop on the same model, data and optimizer, in the
   same process, interleaved round by round so machine noise hits both alike.
   Budget: <= 1.2x.
2. Overhead per diagnostic group and interval, in the style of Cockpit's overhead figure:
   the per-step diagnostics alone (always on), plus full-set evaluation, plus the exact
   Hessian, each every 1, 10 and 100 steps, as a multiple of the bare loop.
3. A training job's fixed cost: `python -m optimizer_dynamics.train --steps 1` (process
   start, imports, data load, one step, Parquet write) against `python -c "import torch"`,
   interleaved. Budget: <= 1.3x.

Run: python benchmarks/bench_training.py [--rounds 7] [--steps 1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset, save_dataset
from optimizer_dynamics.model import MLP
from optimizer_dynamics.optimizers import make_optimizer
from optimizer_dynamics.train import set_determinism, train


def bare_loop(config: RunConfig, x: torch.Tensor, y: torch.Tensor) -> None:
    """What a training loop costs with no diagnostics at all: the baseline."""
    model = MLP(config.hidden, torch.Generator().manual_seed(config.seed))
    optimizer = make_optimizer(model.parameters(), config)
    for _ in range(config.steps):
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def per_step(rounds: int, steps: int) -> None:
    dataset = make_dataset(500, 500, 0.2, 0)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    print(f"1. per step: {steps} full-batch steps, n_train 500, float64, 1 thread, median of {rounds} rounds")
    print(f"   {'optimizer':<14}{'instrumented':>14}{'bare':>10}{'ratio':>8}  (budget 1.2)")
    for optimizer, lr, momentum in (("sgd", 0.1, 0.0), ("sgd", 0.1, 0.9), ("adam", 1e-3, 0.9)):
        config = RunConfig(optimizer=optimizer, lr=lr, momentum=momentum, steps=steps)
        times = {"instrumented": [], "bare": []}
        for _ in range(rounds):  # interleaved: each round times all three back to back
            times["instrumented"].append(timed(train, config, dataset))
            times["bare"].append(timed(bare_loop, config, x, y))
        us = {k: statistics.median(v) / steps * 1e6 for k, v in times.items()}
        ratio = statistics.median(i / b for i, b in zip(times["instrumented"], times["bare"]))
        label = f"{optimizer} m={momentum:g}"
        print(f"   {label:<14}{us['instrumented']:>11.0f} us{us['bare']:>7.0f} us{ratio:>8.2f}")


def overhead_table(rounds: int, steps: int) -> None:
    dataset = make_dataset(500, 500, 0.2, 0)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    base = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "steps": steps}
    variants = {"per-step diagnostics": {1: {"eval_every": steps}}}
    variants["+ evaluation (train and val sets)"] = {k: {"eval_every": k} for k in (1, 10, 100)}
    variants["+ exact Hessian (curvature)"] = {k: {"eval_every": steps, "curvature_every": k} for k in (1, 10, 100)}
    print(f"2. overhead per diagnostic group, Adam, {steps} steps, x bare loop (median of {rounds} interleaved rounds)")
    print(f"   {'group':<36}{'every 1':>9}{'every 10':>10}{'every 100':>11}")
    for group, by_interval in variants.items():
        cells = []
        for interval in (1, 10, 100):
            if interval not in by_interval:
                cells.append("-")
                continue
            config = RunConfig(**base, **by_interval[interval])
            ratios = [timed(train, config, dataset) / timed(bare_loop, config, x, y) for _ in range(rounds)]
            cells.append(f"{statistics.median(ratios):.2f}x")
        print(f"   {group:<36}{cells[0]:>9}{cells[1]:>10}{cells[2]:>11}")


def fixed_cost(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "moons.npz"
        save_dataset(make_dataset(500, 500, 0.2, 0), data)
        job = [sys.executable, "-m", "optimizer_dynamics.train", "--data", str(data), "--steps", "1",
               "--quiet", "--out", str(Path(tmp) / "run.parquet")]
        baselines = {
            "import torch": [sys.executable, "-c", "import torch"],
            # what torch.optim's first call adds: it imports torch._dynamo (and pandas with it)
            "import torch, torch._dynamo": [sys.executable, "-c", "import torch, torch._dynamo"],
        }
        times = {"job": [], **{name: [] for name in baselines}}
        for _ in range(rounds):
            times["job"].append(timed(subprocess.run, job, check=True))
            for name, command in baselines.items():
                times[name].append(timed(subprocess.run, command, check=True))
    seconds = {name: statistics.median(values) for name, values in times.items()}
    print(f"3. fixed cost of a training job, median of {rounds} interleaved rounds")
    print(f"   job (start, imports, data, 1 step, write): {seconds['job']:.2f} s")
    for name in baselines:
        print(f"   vs {name:<28}{seconds[name]:.2f} s: ratio {seconds['job'] / seconds[name]:.2f}"
              + ("  (budget 1.3)" if name == "import torch" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    set_determinism(threads=1)
    per_step(args.rounds, args.steps)
    overhead_table(max(3, args.rounds // 2), min(args.steps, 300))
    fixed_cost(args.rounds)


if __name__ == "__main__":
    main()
