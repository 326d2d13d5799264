"""Benchmark of the training engine: prints ratios measured in this one run, interleaved
round by round so machine noise hits both sides alike.

1. Per run-step, a block of R stacked runs (R = 1, 5, 20, 60) against one run of a plain
   torch.optim loop (nn.Sequential, autograd, torch.optim: the single-run loop the engine
   replaces), at minibatch 64 and full batch (n_train 500), no diagnostics on either side.
   Budget: >= 4x at minibatch for R >= 20; full batch no slower (>= 1x).
2. The instrumented batched step (every per-step diagnostic) against the bare batched step
   (forward, backward, update), R = 20. Budget: <= 1.1x. Then the overhead of the optional
   groups, Cockpit-style: + evaluation on the full train and validation sets, + the exact
   Hessian, + the exact gradient-noise instruments, each every 1, 10 and 100 steps.
2b. The noise instruments at the config's default interval (training.noise_every) against the
   same run without them, every other diagnostic on. Budget: <= 1.2x.
3. A training job's fixed cost: `python -m optimizer_dynamics.train --steps 1` (process
   start, imports, data load, one step, Parquet write) against `python -c "import torch"`.
   Budget: <= 1.3x.

Run: python benchmarks/bench_training.py [--rounds 5] [--steps 300]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset, save_dataset
from optimizer_dynamics.model import StackedMLP, init_params, layer_views, with_ones
from optimizer_dynamics.optimizers import OPTIMIZERS, Hyper
from optimizer_dynamics.train import BatchOrder, set_determinism, train_block

REPO = Path(__file__).resolve().parents[1]
DATASET = make_dataset(500, 500, 0.2, 0)
X, Y = torch.from_numpy(DATASET.x_train), torch.from_numpy(DATASET.y_train)


def torch_optim_loop(config: RunConfig) -> None:
    """One run, the textbook way: the baseline the engine replaces."""
    init = layer_views(init_params(config.hidden, torch.Generator().manual_seed(config.seed)), config.hidden)
    net = torch.nn.Sequential(torch.nn.Linear(2, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 1))
    net = net.double()
    net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2"): v for k, v in init.items()})
    optimizer = OPTIMIZERS[config.optimizer].reference(list(net.parameters()), config)
    generator = torch.Generator().manual_seed(config.seed)
    order = None if config.full_batch else BatchOrder(config.n_train, config.batch_size, generator).take(config.steps)
    for step in range(config.steps):
        xb, yb = (X, Y) if order is None else (X[order[step]], Y[order[step]])
        loss = F.binary_cross_entropy_with_logits(net(xb).squeeze(-1), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def bare_block(configs: list[RunConfig]) -> None:
    """The engine's stacked step with nothing recorded: forward, backward, update."""
    first = configs[0]
    entry = OPTIMIZERS[first.optimizer]
    generators = [torch.Generator().manual_seed(c.seed) for c in configs]
    batch = first.n_train if first.full_batch else first.batch_size
    stack = StackedMLP(torch.stack([init_params(first.hidden, g) for g in generators]), first.hidden, batch)
    hyper, state = Hyper.of(configs), entry.init_state(stack.thetas)
    x1 = with_ones(X)
    index = None
    if not first.full_batch:
        index = torch.stack([BatchOrder(first.n_train, batch, g).take(first.steps) for g in generators])
    for step in range(first.steps):
        xb, yb = (x1, Y) if index is None else (x1[index[:, step]], Y[index[:, step]])
        stack.loss_and_grad(xb, yb)
        entry.update(stack.thetas, stack.grad, state, hyper, step + 1)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def block_of(runs: int, **settings) -> list[RunConfig]:
    base = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.9, **settings}
    return [RunConfig(**base, seed=seed) for seed in range(runs)]


def per_run_step(rounds: int, steps: int) -> None:
    print(f"1. per run-step, Adam, {steps} steps, float64, 1 thread, median of {rounds} interleaved rounds")
    print(f"   {'regime':<12}{'R':>4}{'torch.optim x1':>16}{'batched bare':>14}{'speed-up':>10}  budget")
    for batch_size, budget in ((64, "4x at R >= 20"), (None, "1x")):
        single = block_of(1, steps=steps, batch_size=batch_size)[0]
        for runs in (1, 5, 20, 60):
            block = block_of(runs, steps=steps, batch_size=batch_size)
            baseline, batched = [], []
            for _ in range(rounds):
                baseline.append(timed(torch_optim_loop, single) / steps)
                batched.append(timed(bare_block, block) / (steps * runs))
            ratio = statistics.median(b / s for b, s in zip(baseline, batched))
            regime = "batch 64" if batch_size else "full batch"
            print(f"   {regime:<12}{runs:>4}{statistics.median(baseline) * 1e6:>13.0f} us"
                  f"{statistics.median(batched) * 1e6:>11.0f} us{ratio:>9.2f}x  {budget}")


def overhead(rounds: int, steps: int) -> None:
    runs = 20
    print(f"2. instrumented vs bare batched step, Adam, R = {runs}, {steps} steps (median of {rounds} rounds)")
    print(f"   {'regime':<12}{'group':<40}{'every 1':>9}{'every 10':>10}{'every 100':>11}")
    for batch_size in (64, None):
        regime = "batch 64" if batch_size else "full batch"
        variants = {
            "per-step diagnostics (budget 1.1x)": {1: {"eval_every": steps}},
            "+ evaluation (train and val sets)": {k: {"eval_every": k} for k in (1, 10, 100)},
            "+ exact Hessian, every run": {k: {"eval_every": steps, "curvature_every": k} for k in (10, 100)},
            "+ exact gradient noise (noise.py)": {k: {"eval_every": steps, "noise_every": k} for k in (1, 10, 100)},
        }
        bare = block_of(runs, steps=steps, batch_size=batch_size)
        for group, by_interval in variants.items():
            cells = []
            for interval in (1, 10, 100):
                if interval not in by_interval:
                    cells.append("-")
                    continue
                block = block_of(runs, steps=steps, batch_size=batch_size, **by_interval[interval])
                ratios = [timed(train_block, block, DATASET) / timed(bare_block, bare) for _ in range(rounds)]
                cells.append(f"{statistics.median(ratios):.2f}x")
            print(f"   {regime:<12}{group:<40}{cells[0]:>9}{cells[1]:>10}{cells[2]:>11}")


def noise_budget(rounds: int, steps: int) -> None:
    """The noise instruments at the default training.noise_every against a run with every other
    diagnostic of the default config (eval_every) and no noise steps."""
    training = yaml.safe_load((REPO / "config/config.yaml").read_text())["training"]
    every, eval_every = training["noise_every"], training["eval_every"]
    print(f"2b. exact gradient noise every {every} steps (config default) vs the same run without it, "
          f"eval every {eval_every}, R = 20, {steps} steps (median of {rounds} interleaved rounds; budget 1.2x)")
    for batch_size in (64, None):
        without = block_of(20, steps=steps, batch_size=batch_size, eval_every=eval_every)
        with_noise = block_of(20, steps=steps, batch_size=batch_size, eval_every=eval_every, noise_every=every)
        ratios = [timed(train_block, with_noise, DATASET) / timed(train_block, without, DATASET)
                  for _ in range(rounds)]
        regime = "batch 64" if batch_size else "full batch"
        print(f"   {regime:<12}{statistics.median(ratios):.2f}x")


def fixed_cost(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "moons.npz"
        save_dataset(DATASET, data)
        job = [sys.executable, "-m", "optimizer_dynamics.train", "--data", str(data), "--steps", "1",
               "--quiet", "--out", str(Path(tmp) / "run.parquet")]
        baseline = [sys.executable, "-c", "import torch"]
        times = {"job": [], "import torch": []}
        for _ in range(rounds):
            times["job"].append(timed(functools.partial(subprocess.run, job, check=True)))
            times["import torch"].append(timed(functools.partial(subprocess.run, baseline, check=True)))
    seconds = {name: statistics.median(values) for name, values in times.items()}
    ratio = statistics.median(j / b for j, b in zip(times["job"], times["import torch"]))
    print(f"3. fixed cost of a training job, median of {rounds} interleaved rounds")
    print(f"   job (start, imports, data, 1 step, write) {seconds['job']:.2f} s vs "
          f"python -c 'import torch' {seconds['import torch']:.2f} s: {ratio:.2f}x  (budget 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    set_determinism(threads=1)
    per_run_step(args.rounds, args.steps)
    overhead(max(3, args.rounds // 2), args.steps)
    noise_budget(max(3, args.rounds // 2), args.steps)
    fixed_cost(2 * args.rounds)


if __name__ == "__main__":
    main()
