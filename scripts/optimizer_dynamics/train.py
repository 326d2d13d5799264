"""Train one MLP on make_moons and log, every step, how the optimizer moves its weights.

Run by hand:
    python -m optimizer_dynamics.train --optimizer adam --lr 1e-3 --momentum 0.9
Several seeds of one configuration train one after another in one process (one file per
seed, each identical to training that seed alone): the Python start-up is paid once.
    python -m optimizer_dynamics.train --lr 0.1 --seed 0 1 2 --out a.parquet b.parquet c.parquet
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from optimizer_dynamics.config import RunConfig, format_number
from optimizer_dynamics.curvature import CURVATURE_COLUMNS, adam_preconditioner, loss_hessian, spectrum_summary
from optimizer_dynamics.data import Dataset, load_dataset
from optimizer_dynamics.metrics import evaluate, step_diagnostics
from optimizer_dynamics.model import MLP, n_params, tensor_slices
from optimizer_dynamics.optimizers import make_optimizer

CHUNK = 250  # steps recorded before diagnostics are computed in bulk and divergence is checked


@dataclass
class RunLog:
    config: RunConfig
    columns: dict[str, np.ndarray]  # one array per metric, one entry per step
    diverged: bool
    diverged_step: int | None
    diverged_cause: str | None
    trajectory: dict[str, np.ndarray] | None = None  # params (T+1, P), grads (T, P) if recorded


def set_determinism(threads: int = 1) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def train(config: RunConfig, dataset: Dataset, *, record_trajectory: bool = False, progress=None) -> RunLog:
    """Train with `config`; stop early and cleanly if the loss diverges."""
    generator = torch.Generator().manual_seed(config.seed)
    model = MLP(config.hidden, generator)
    optimizer = make_optimizer(model.parameters(), config)
    slices = tensor_slices(config.hidden)
    x_train, y_train = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    x_val, y_val = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    batches = _batches(config, generator)
    batch_size = config.batch_size or config.n_train

    chunk = min(CHUNK, config.steps)
    params = torch.empty(chunk + 1, n_params(config.hidden), dtype=torch.float64)
    grads = torch.empty(chunk, params.shape[1], dtype=torch.float64)
    logits_buf = torch.empty(chunk, batch_size, dtype=torch.float64)
    targets_buf = torch.empty(chunk, batch_size, dtype=torch.float64)
    losses = torch.empty(chunk, dtype=torch.float64)
    curvature = torch.full((chunk, len(CURVATURE_COLUMNS)), float("nan"), dtype=torch.float64)
    model.flat_params(out=params[0])

    pieces: list[dict[str, torch.Tensor]] = []
    trajectory: dict[str, list] = {"params": [params[:1].clone()], "grads": []}
    prev_update, initial_loss, chunk_start = None, None, 0
    diverged_step = diverged_cause = None

    for step in range(config.steps):
        row = step - chunk_start
        xb, yb = (x_train, y_train) if batches is None else _take(batches, x_train, y_train)
        logits = model(xb)
        loss = F.binary_cross_entropy_with_logits(logits, yb)
        optimizer.zero_grad()
        loss.backward()
        measure_curvature = config.curvature_every and step % config.curvature_every == 0
        if measure_curvature:  # H at theta_t, the point where this step's gradient was taken
            hess = loss_hessian(params[row], x_train, y_train, config.hidden)
        optimizer.step()
        if measure_curvature:  # Adam's preconditioner includes this step's gradient
            preconditioner = adam_preconditioner(optimizer) if config.optimizer == "adam" else None
            summary = spectrum_summary(hess, preconditioner)
            curvature[row] = torch.tensor([summary[name] for name in CURVATURE_COLUMNS], dtype=torch.float64)
        model.flat_grads(out=grads[row])
        model.flat_params(out=params[row + 1])
        logits_buf[row].copy_(logits.detach())
        losses[row].copy_(loss.detach())
        if batches is not None:
            targets_buf[row].copy_(yb)

        if row + 1 < chunk and step + 1 < config.steps:
            continue
        # End of a chunk: diagnostics in bulk, then the divergence check.
        n = row + 1
        if initial_loss is None:
            initial_loss = losses[0].item()
        bad = ~torch.isfinite(losses[:n]) | (losses[:n] > config.divergence_factor * initial_loss)
        if bad.any():
            n = int(bad.nonzero()[0]) + 1
            diverged_step = chunk_start + n - 1
            value = losses[n - 1].item()
            diverged_cause = (
                "non-finite loss"
                if not math.isfinite(value)
                else f"loss {value:.4g} > {format_number(config.divergence_factor)} x initial loss {initial_loss:.4g}"
            )
        targets = y_train.expand(n, -1) if batches is None else targets_buf[:n]
        cols = step_diagnostics(params[: n + 1], grads[:n], logits_buf[:n], targets, losses[:n], prev_update, slices)
        cols["step"] = torch.arange(chunk_start, chunk_start + n)
        for i, name in enumerate(CURVATURE_COLUMNS):
            cols[name] = curvature[:n, i].clone()
        curvature.fill_(float("nan"))
        _add_eval_columns(cols, config, params[1 : n + 1], (x_train, y_train), (x_val, y_val))
        pieces.append(cols)
        if record_trajectory:
            trajectory["params"].append(params[1 : n + 1].clone())
            trajectory["grads"].append(grads[:n].clone())
        if progress is not None:
            progress(config, chunk_start + n, losses[n - 1].item())
        if diverged_step is not None:
            break
        prev_update = params[n] - params[n - 1]
        params[0].copy_(params[n])
        chunk_start += n

    columns = {name: torch.cat([p[name] for p in pieces]).numpy() for name in pieces[0]}
    return RunLog(
        config=config,
        columns=columns,
        diverged=diverged_step is not None,
        diverged_step=diverged_step,
        diverged_cause=diverged_cause,
        trajectory={k: torch.cat(v).numpy() for k, v in trajectory.items()} if record_trajectory else None,
    )


def _add_eval_columns(cols, config: RunConfig, thetas_after, train_set, val_set) -> None:
    """Loss and accuracy on the full train and validation sets at the eval steps."""
    steps = cols["step"]
    is_eval = ((steps + 1) % config.eval_every == 0) | (steps == config.steps - 1)
    for prefix, (x, y) in (("train", train_set), ("val", val_set)):
        loss = torch.full(steps.shape, float("nan"), dtype=torch.float64)
        acc = loss.clone()
        compute = is_eval.clone()
        if prefix == "train" and config.full_batch:
            # The train-set loss at theta_t+1 is the next step's batch loss, already computed;
            # only the stretch's last row needs a forward pass of its own.
            reuse = is_eval.nonzero().squeeze(1)
            reuse = reuse[reuse < len(steps) - 1]
            loss[reuse], acc[reuse] = cols["batch.loss"][reuse + 1], cols["batch.acc"][reuse + 1]
            compute[reuse] = False
        if compute.any():
            loss[compute], acc[compute] = evaluate(thetas_after[compute], x, y, config.hidden)
        cols[f"{prefix}.loss"], cols[f"{prefix}.acc"] = loss, acc


def _batches(config: RunConfig, generator: torch.Generator):
    """Minibatch indices: a fresh permutation each epoch, the incomplete last batch dropped."""
    if config.full_batch:
        return None

    def epochs():
        while True:
            order = torch.randperm(config.n_train, generator=generator)
            for start in range(0, config.n_train - config.batch_size + 1, config.batch_size):
                yield order[start : start + config.batch_size]

    return epochs()


def _take(batches, x, y):
    index = next(batches)
    return x[index], y[index]


# --- command line -----------------------------------------------------------------------


def default_out(config: RunConfig) -> str:
    return (
        f"results/runs/optimizer~{config.optimizer}/lr~{format_number(config.lr)}/"
        f"momentum~{format_number(config.momentum)}/seed~{config.seed}.parquet"
    )


def _parse_field(annotation: str):
    if annotation == "bool":
        return _parse_bool
    if annotation == "int | None":
        return lambda text: None if text.lower() in ("null", "none", "full") else int(text)
    return {"int": int, "float": float, "str": str}[annotation]


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    for field in dataclasses.fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "seed":
            parser.add_argument(flag, type=int, nargs="+", default=[field.default], help="one or more seeds")
        else:
            parser.add_argument(flag, type=_parse_field(field.type), default=field.default, help=f"default {field.default}")
    parser.add_argument("--out", nargs="+", help="one Parquet path per seed (default: results/runs/...)")
    parser.add_argument("--data", help="dataset .npz from optimizer_dynamics.data (default: build in memory)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps runs deterministic and cheap)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    return parser


def main(argv: list[str] | None = None) -> None:
    from optimizer_dynamics.config import ConfigError
    from optimizer_dynamics.runfile import write_run

    parser = build_parser()
    args = parser.parse_args(argv)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if f.name != "seed"}
    try:
        configs = [RunConfig(**settings, seed=seed) for seed in args.seed]
    except ConfigError as error:
        parser.error(str(error))
    outs = args.out or [default_out(c) for c in configs]
    if len(outs) != len(configs):
        parser.error(f"--out has {len(outs)} paths for {len(configs)} seeds: give one path per seed")
    set_determinism(args.threads)
    data_settings = {k: settings[k] for k in ("n_train", "n_val", "noise", "data_seed")}
    if args.data:
        dataset = load_dataset(args.data, expected=data_settings)
    else:
        from optimizer_dynamics.data import make_dataset

        dataset = make_dataset(**data_settings)
    progress = None if args.quiet else _print_progress
    for config, out in zip(configs, outs):
        started = time.perf_counter()
        log = train(config, dataset, progress=progress)
        write_run(log, out)
        if not args.quiet:
            status = f"diverged at step {log.diverged_step} ({log.diverged_cause})" if log.diverged else "finished"
            print(f"seed {config.seed}: {status} in {time.perf_counter() - started:.2f} s -> {out}", file=sys.stderr)


def _print_progress(config: RunConfig, steps_done: int, loss: float) -> None:
    print(f"seed {config.seed}: step {steps_done}/{config.steps} batch loss {loss:.4g}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
