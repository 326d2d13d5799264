"""Train a block of MLP runs on make_moons at once and log, every step, how the optimizer
moves each run's weights.

The runs of a block (e.g. every lr and seed of one optimizer x momentum line) are stacked on
a leading run axis: parameters (R, P), per-run hyperparameters as (R, 1) tensors, one
generator per run for its init and its batch order, so every run starts and samples exactly
as it would alone. One batched forward and closed-form backward serves all runs (model.py),
one batched update moves them (optimizers/), and the diagnostics are computed in bulk over
(runs, steps, parameters) every CHUNK steps (metrics.py). A run that diverges stops there:
its record ends at the diverging step and it leaves the stack while the others go on.

Run by hand:
    python -m optimizer_dynamics.train --optimizer adam --lr 1e-3 --momentum 0.9
    python -m optimizer_dynamics.train --lr 0.1 0.2 --seed 0 1 --out a0.parquet a1.parquet b0.parquet b1.parquet
(one output path per (lr, seed) pair, lr-major). Each run's file is the same whether it was
trained alone or in a block (tests/test_engine.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from optimizer_dynamics.config import ConfigError, RunConfig, format_number
from optimizer_dynamics.curvature import (
    BATCH_SHARPNESS_COLUMN,
    CURVATURE_COLUMNS,
    batch_sharpness,
    loss_hessian,
    spectrum_summary,
)
from optimizer_dynamics.data import DATA_KEYS, Dataset, load_dataset
from optimizer_dynamics.metrics import evaluate, step_diagnostics
from optimizer_dynamics.model import StackedMLP, init_params, n_params, tensor_slices, with_ones
from optimizer_dynamics.noise import NOISE_COLUMNS, noise_instruments
from optimizer_dynamics.optimizers import OPTIMIZERS, Hyper
from optimizer_dynamics.study import cell_run_file

CHUNK = 250  # steps recorded before diagnostics are computed in bulk and divergence is checked
# Settings every run of a block shares: one update rule, one batch shape, one clock.
BLOCK_SHARED = ("optimizer", "steps", "batch_size", "eval_every", "noise_every", "divergence_factor", "hidden",
                *DATA_KEYS)


@dataclass
class RunLog:
    config: RunConfig
    columns: dict[str, np.ndarray]  # one array per metric, one entry per step
    diverged: bool
    diverged_step: int | None
    diverged_cause: str | None
    trajectory: dict[str, np.ndarray] | None = None  # params (T+1, P), grads (T, P) if recorded


def set_determinism(threads: int = 1) -> None:
    """One fixed thread count. (torch.use_deterministic_algorithms is not called: in torch 2.13
    it imports torch._inductor and torch._dynamo, ~1.2 s a job, and it only changes CUDA
    kernels; every CPU operation of the engine is deterministic, which the tests check.)"""
    torch.set_num_threads(threads)


def train(config: RunConfig, dataset: Dataset, **kwargs) -> RunLog:
    """Train one run: a block of one."""
    return train_block([config], dataset, **kwargs)[0]


def train_block(configs: list[RunConfig], dataset: Dataset, *, record_trajectory: bool = False,
                progress=None) -> list[RunLog]:
    """Train `configs` together, one stacked program; each run stops early and cleanly if its
    loss diverges. progress(steps_done, runs_training, median_batch_loss) is called per chunk."""
    first = _check_block(configs)
    optimizer = OPTIMIZERS[first.optimizer]
    hidden, steps, slices = first.hidden, first.steps, tensor_slices(first.hidden)
    x_train, y_train = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    x_val, y_val = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)

    generators = [torch.Generator().manual_seed(c.seed) for c in configs]
    orders = None if first.full_batch else [BatchOrder(first.n_train, first.batch_size, g) for g in generators]
    batch = first.n_train if orders is None else first.batch_size
    x1_train = with_ones(x_train)
    stack = StackedMLP(torch.stack([init_params(hidden, g) for g in generators]), hidden, batch)  # (R, P)
    hyper = Hyper.of(configs)
    state = optimizer.init_state(stack.thetas)
    live = list(range(len(configs)))  # the block's runs still training, in stack order
    logs = [_Recorder(c, record_trajectory) for c in configs]

    chunk = min(CHUNK, steps)
    initial_loss = prev_update = None
    chunk_start = 0
    while True:
        n = min(chunk, steps - chunk_start)
        runs = len(live)
        # Run-major buffers: row t of run r is one contiguous parameter vector.
        params = torch.empty(runs, n + 1, n_params(hidden), dtype=torch.float64)
        grads = torch.empty(runs, n, params.shape[2], dtype=torch.float64)
        logits = torch.empty(runs, n, batch, dtype=torch.float64)
        losses = torch.empty(runs, n, dtype=torch.float64)
        curvature = torch.full((runs, n, len(CURVATURE_COLUMNS)), float("nan"), dtype=torch.float64)
        if orders is None:
            targets = y_train.expand(runs, n, batch)
        else:  # this chunk's batches of every run, drawn from each run's own generator
            index = torch.stack([orders[run].take(n) for run in live])  # (R, n, B)
            targets = y_train[index]
        # The rows of this chunk where some run takes a Hessian, and which runs (stack positions)
        hessian_rows = {}
        for i, run in enumerate(live):
            for row in range(n) if configs[run].curvature_every else ():
                if configs[run].is_hessian_step(chunk_start + row):
                    hessian_rows.setdefault(row, []).append(i)
        thetas = stack.thetas
        params[:, 0].copy_(thetas)

        for row in range(n):
            step = chunk_start + row
            xb, yb = (x1_train, y_train) if orders is None else (x1_train[index[:, row]], targets[:, row])
            logits[:, row], losses[:, row] = stack.loss_and_grad(xb, yb)
            grads[:, row].copy_(stack.grad)
            # H at theta_t, where this step's gradient was taken; Adam's preconditioner after the step.
            # Runs at the same point share its Hessian, computed once: at step 0 every lr of a seed
            # is at that seed's initial weights.
            points = {}
            for i in hessian_rows.get(row, ()):
                points.setdefault(thetas[i].numpy().tobytes(), []).append(i)
            hessians = [(same, loss_hessian(thetas[same[0]], x_train, y_train, hidden)) for same in points.values()]
            optimizer.update(thetas, stack.grad, state, hyper, step + 1)
            precond = optimizer.preconditioner(state, hyper, step + 1) if hessians and optimizer.adaptive else None
            for same, hess in hessians:
                summaries = {}  # by the run's preconditioner (one for a method without any)
                for i in same:
                    key = None if precond is None else precond[i].numpy().tobytes()
                    if key not in summaries:
                        summary = spectrum_summary(hess, None if precond is None else precond[i], hidden)
                        if orders is not None:  # at theta_t: the batches of a partition drawn for this step
                            summary[BATCH_SHARPNESS_COLUMN] = batch_sharpness(
                                params[i, row], x_train, y_train, hidden, batch, torch.Generator().manual_seed(step))
                        summaries[key] = torch.tensor([summary[c] for c in CURVATURE_COLUMNS], dtype=torch.float64)
                    curvature[i, row] = summaries[key]
            params[:, row + 1].copy_(thetas)

        # End of a chunk: diagnostics in bulk over (runs, steps), then each run's divergence check.
        step_index = torch.arange(chunk_start, chunk_start + n)
        is_eval = ((step_index + 1) % first.eval_every == 0) | (step_index == steps - 1)
        cols = step_diagnostics(params, grads, logits, targets, losses, prev_update, slices, is_eval)
        cols["step"] = step_index.expand(runs, n)
        for c, name in enumerate(CURVATURE_COLUMNS):
            cols[name] = curvature[:, :, c]
        cols.update(_noise_columns(params, step_index, first, (x_train, y_train), batch))
        _add_eval_columns(cols, first, params[:, 1:], is_eval, (x_train, y_train), (x_val, y_val))
        if initial_loss is None:
            initial_loss = losses[:, 0]
        bad = ~torch.isfinite(losses) | (losses > first.divergence_factor * initial_loss[:, None])  # (R, n)
        columns = {name: values.numpy() for name, values in cols.items()}  # numpy slices per run are cheap
        keep = []
        for i, run in enumerate(live):
            stop = int(bad[i].nonzero()[0]) if bad[i].any() else None
            logs[run].add({name: values[i] for name, values in columns.items()}, params[i], grads[i], stop)
            if stop is None:
                keep.append(i)
            else:
                logs[run].diverge(chunk_start + stop, losses[i, stop].item(), initial_loss[i].item())
        chunk_start += n
        if progress is not None:
            progress(chunk_start, len(keep), statistics.median(losses[keep, -1].tolist()) if keep else math.nan)
        if chunk_start == steps or not keep:
            break
        if len(keep) < runs:  # the diverged runs leave the stack
            keep_index = torch.tensor(keep, dtype=torch.long)
            stack, hyper = StackedMLP(thetas[keep_index], hidden, batch), hyper.select(keep_index)
            state = {name: buffer[keep_index] for name, buffer in state.items()}
            initial_loss, params = initial_loss[keep_index], params[keep_index]
            live = [live[i] for i in keep]
        prev_update = params[:, n] - params[:, n - 1]
    return [log.finish() for log in logs]


def _check_block(configs: list[RunConfig]) -> RunConfig:
    if not configs:
        raise ValueError("a block needs at least one run")
    for name in BLOCK_SHARED:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ConfigError(f"{name} differs within one block ({sorted(map(str, values))}); "
                              f"allowed: one value of {', '.join(BLOCK_SHARED)} per block")
    return configs[0]


class _Recorder:
    """One run's columns, chunk by chunk, until it finishes or diverges."""

    def __init__(self, config: RunConfig, record_trajectory: bool):
        self.config, self.pieces = config, []
        self.trajectory = {"params": [], "grads": []} if record_trajectory else None
        self.diverged_step = self.diverged_cause = None

    def add(self, columns, params, grads, stop) -> None:
        """This chunk's rows of the run, up to the diverging step (the chunk's arrays are
        fresh each chunk, so views of them stay valid)."""
        length = len(columns["step"]) if stop is None else stop + 1
        self.pieces.append({name: values[:length] for name, values in columns.items()})
        if self.trajectory is not None:
            self.trajectory["params"].append(params[: length + 1] if not self.trajectory["params"] else params[1 : length + 1])
            self.trajectory["grads"].append(grads[:length])

    def diverge(self, step: int, loss: float, initial_loss: float) -> None:
        self.diverged_step = step
        self.diverged_cause = (
            "non-finite loss" if not math.isfinite(loss)
            else f"loss {loss:.4g} > {format_number(self.config.divergence_factor)} x initial loss {initial_loss:.4g}"
        )

    def finish(self) -> RunLog:
        columns = {name: np.concatenate([p[name] for p in self.pieces]) for name in self.pieces[0]}
        trajectory = None
        if self.trajectory is not None:
            trajectory = {k: torch.cat(v).numpy() for k, v in self.trajectory.items()}
        return RunLog(self.config, columns, self.diverged_step is not None, self.diverged_step,
                      self.diverged_cause, trajectory)


class BatchOrder:
    """A run's minibatch indices: a fresh permutation of the training set each epoch, drawn
    from the run's own generator; the incomplete last batch of an epoch is dropped."""

    def __init__(self, n_train: int, batch_size: int, generator: torch.Generator):
        self.n_train, self.batch_size, self.generator = n_train, batch_size, generator
        self.per_epoch = n_train // batch_size
        self.pending = torch.empty(0, batch_size, dtype=torch.long)

    def take(self, count: int) -> torch.Tensor:
        """The next `count` batches, (count, batch_size)."""
        parts, have = [self.pending], len(self.pending)
        while have < count:
            order = torch.randperm(self.n_train, generator=self.generator)
            parts.append(order[: self.per_epoch * self.batch_size].view(self.per_epoch, self.batch_size))
            have += self.per_epoch
        batches = torch.cat(parts)
        self.pending = batches[count:]
        return batches[:count]


def _noise_columns(params, step_index, config: RunConfig, train_set, batch: int) -> dict[str, torch.Tensor]:
    """NOISE_COLUMNS (R, n) of a chunk: the exact instruments at its noise steps, NaN elsewhere.
    params: (R, n + 1, P), theta_t of each row and theta_t+1 of the last."""
    runs, n = params.shape[0], params.shape[1] - 1
    cols = {name: torch.full((runs, n), float("nan"), dtype=torch.float64) for name in NOISE_COLUMNS}
    rows = (step_index % config.noise_every == 0).nonzero().squeeze(1) if config.noise_every else step_index[:0]
    if len(rows):
        p = params.shape[2]
        values = noise_instruments(params[:, rows].reshape(-1, p), params[:, rows + 1].reshape(-1, p),
                                   *train_set, config.hidden, batch)
        for name, value in values.items():
            cols[name][:, rows] = value.view(runs, len(rows))
    return cols


def _add_eval_columns(cols, config: RunConfig, thetas_after, is_eval, train_set, val_set) -> None:
    """Loss and accuracy on the full train and validation sets at the eval steps, every run, and
    the loss on each half of the validation set (val_select, val_report: one half picks a run's
    best step, the other reports its loss). thetas_after: (R, n, P), theta_t+1 of each row;
    is_eval: (n,)."""
    runs, n, p = thetas_after.shape
    for prefix, (x, y) in (("train", train_set), ("val", val_set)):
        names = [f"{prefix}.loss", f"{prefix}.acc"] + (["val_select.loss", "val_report.loss"] if prefix == "val" else [])
        values = {name: torch.full((runs, n), float("nan"), dtype=torch.float64) for name in names}
        compute = is_eval.clone()
        if prefix == "train" and config.full_batch:
            # The train-set loss at theta_t+1 is the next step's batch loss, already computed;
            # only the stretch's last row needs a forward pass of its own.
            reuse = is_eval.nonzero().squeeze(1)
            reuse = reuse[reuse < n - 1]
            values["train.loss"][:, reuse] = cols["batch.loss"][:, reuse + 1]
            values["train.acc"][:, reuse] = cols["batch.acc"][:, reuse + 1]
            compute[reuse] = False
        if compute.any():
            k = int(compute.sum())
            measured = evaluate(thetas_after[:, compute].reshape(runs * k, p), x, y, config.hidden,
                                halves=prefix == "val")
            for name, value in zip(names, measured):
                values[name][:, compute] = value.view(runs, k)
        cols.update(values)


# --- command line -----------------------------------------------------------------------


def default_out(config: RunConfig) -> str:
    run_set = "curvature" if config.curvature_every else "grid"
    return cell_run_file(run_set, config.problem, config.batch, config.optimizer, config.hyperparameters,
                         format_number(config.lr), format_number(config.momentum), config.seed)


def _parse_field(annotation: str):
    if annotation == "int | None":
        return lambda text: None if text.lower() in ("null", "none", "full") else int(text)
    return {"int": int, "float": float, "str": str}[annotation]


# Fields given as lists on the command line: the block is their product (lr-major).
LIST_FIELDS = ("lr", "seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    for field in dataclasses.fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name in LIST_FIELDS:
            parser.add_argument(flag, type=_parse_field(field.type), nargs="+", default=[field.default],
                                help=f"one or more values (default {field.default})")
        else:
            parser.add_argument(flag, type=_parse_field(field.type), default=field.default, help=f"default {field.default}")
    parser.add_argument("--out", nargs="+", help="one Parquet path per (lr, seed), lr-major (default: results/runs/...)")
    parser.add_argument("--data", help="dataset .npz from optimizer_dynamics.data (default: build in memory)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps runs deterministic and cheap)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    return parser


def block_configs(args) -> list[RunConfig]:
    shared = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if f.name not in LIST_FIELDS}
    return [RunConfig(**shared, lr=lr, seed=seed) for lr in args.lr for seed in args.seed]


def main(argv: list[str] | None = None) -> None:
    from optimizer_dynamics.runfile import write_run

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configs = block_configs(args)
    except ConfigError as error:
        parser.error(str(error))
    outs = args.out or [default_out(c) for c in configs]
    if len(outs) != len(configs):
        parser.error(f"--out has {len(outs)} paths for {len(args.lr)} lrs x {len(args.seed)} seeds = "
                     f"{len(configs)} runs: give one path per run, lr-major")
    set_determinism(args.threads)
    data_settings = {key: getattr(args, key) for key in DATA_KEYS}
    if args.data:
        dataset = load_dataset(args.data, expected=data_settings)
    else:
        from optimizer_dynamics.data import make_dataset

        dataset = make_dataset(**data_settings)
    started = time.perf_counter()

    def report_progress(steps_done, training, median_loss):
        print(f"step {steps_done}/{args.steps}: {training} of {len(configs)} runs training, "
              f"median batch loss {median_loss:.4g}, {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)

    logs = train_block(configs, dataset, progress=None if args.quiet else report_progress)
    for log, out in zip(logs, outs):
        write_run(log, out)
        if not args.quiet:
            c = log.config
            status = f"diverged at step {log.diverged_step} ({log.diverged_cause})" if log.diverged else "finished"
            print(f"lr {format_number(c.lr)} seed {c.seed}: {status} -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
