"""Peer check against Cockpit (Schneider, Dangel and Hennig, 2021): the same MLP, data, batches,
seed and optimizer as one project run, trained once under Cockpit's instruments and once by this
project's engine, and their values printed side by side with each instrument's overhead.

Cockpit (cockpit-for-pytorch 1.0.2 on BackPACK 1.7.1) lives in its own venv:

    make cockpit        # creates .venv-cockpit, then runs this script

Where both are exact (gradient norm, update size, distance from the initial weights) the two
must agree to rounding. Cockpit's Alpha and NormTest are minibatch estimates of what the
project computes exactly over the training set (noise.py): the table shows how far a minibatch
estimate lies from the population value. GradHist1d has no counterpart here; its mean and RMS of
the per-sample gradient elements are put beside the training set's. Overheads are the median of
interleaved rounds, against a bare torch.optim step, in this one run.

Run: python benchmarks/cockpit_peer.py [--steps 200] [--rounds 3] [--lr 0.1] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from backpack import extend
from cockpit import Cockpit, quantities
from cockpit.utils.schedules import linear
from scipy import stats

from optimizer_dynamics import noise
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset
from optimizer_dynamics.model import init_params, layer_views
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.train import BatchOrder, set_determinism, train

QUANTITIES = {
    "GradNorm": quantities.GradNorm,
    "UpdateSize": quantities.UpdateSize,
    "Distance": quantities.Distance,
    "Alpha": quantities.Alpha,
    "NormTest": quantities.NormTest,
    "GradHist1d": quantities.GradHist1d,
}


def network(config: RunConfig, generator: torch.Generator) -> torch.nn.Sequential:
    """nn.Sequential with the run's initial weights, drawn from its generator as the engine does."""
    init = layer_views(init_params(config.hidden, generator), config.hidden)
    net = torch.nn.Sequential(torch.nn.Linear(2, config.hidden), torch.nn.ReLU(),
                              torch.nn.Linear(config.hidden, 1)).double()
    net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2"): v for k, v in init.items()})
    return net


def cockpit_run(config: RunConfig, dataset, names: list[str]) -> tuple[dict, float]:
    """Train under Cockpit with `names` tracked every step: (its output, seconds)."""
    generator = torch.Generator().manual_seed(config.seed)
    net = extend(network(config, generator))
    loss_fn = extend(torch.nn.BCEWithLogitsLoss())
    individual_loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    optimizer = OPTIMIZERS[config.optimizer].reference(list(net.parameters()), config)
    order = BatchOrder(config.n_train, config.batch_size, generator).take(config.steps)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    cockpit = Cockpit(net.parameters(), quantities=[QUANTITIES[n](track_schedule=linear(1)) for n in names])
    start = time.perf_counter()
    for step in range(config.steps):
        xb, yb = x[order[step]], y[order[step]]
        optimizer.zero_grad()
        logits = net(xb).squeeze(-1)
        loss = loss_fn(logits, yb)
        if names:
            info = {"batch_size": len(xb), "individual_losses": individual_loss_fn(logits, yb), "loss": loss,
                    "optimizer": optimizer}
            with cockpit(step, info=info):
                loss.backward(create_graph=cockpit.create_graph(step))
        else:
            loss.backward()
        optimizer.step()
    return (cockpit.get_output() if names else {}), time.perf_counter() - start


def series(output: dict, name: str) -> dict[int, float]:
    """Step -> one number of a Cockpit quantity: layerwise lists are joined as a global L2 norm."""
    found = {}
    for step, values in output.items():
        if name not in values:
            continue
        value = values[name]
        found[step] = float(np.sqrt(np.sum(np.square(value)))) if isinstance(value, list) else float(value)
    return found


def project_run(config: RunConfig, dataset) -> dict[str, dict[int, float]]:
    """The engine's run with the exact instruments every step, as step -> value per quantity."""
    log = train(config, dataset, record_trajectory=True)
    params = torch.from_numpy(log.trajectory["params"])
    steps = range(len(params) - 1)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    moments = noise.gradient_moments(params[:-1], params[:-1], x, y, config.hidden)  # the direction is unused here
    return {
        "GradNorm": dict(zip(steps, log.columns["grad.global"])),
        "UpdateSize": dict(zip(steps, log.columns["update.global"])),
        "Distance": dict(zip(steps, (params[:-1] - params[0]).norm(dim=1).tolist())),  # at theta_t, as Cockpit
        "Alpha": dict(zip(steps, log.columns["noise.alpha"])),
        "NormTest": dict(zip(steps, log.columns["noise.norm_test"])),
        "mean": dict(zip(steps, moments["mean"].mean(dim=1).tolist())),
        "rms": dict(zip(steps, moments["second"].mean(dim=1).sqrt().tolist())),
    }


def histogram_moments(output: dict) -> dict[str, dict[int, float]]:
    """Mean and RMS of the per-sample gradient elements from GradHist1d's bins (bin centres)."""
    found = {"mean": {}, "rms": {}}
    for step, values in output.items():
        if "GradHist1d" not in values:
            continue
        hist, edges = np.asarray(values["GradHist1d"]["hist"]), np.asarray(values["GradHist1d"]["edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        found["mean"][step] = float((hist * centres).sum() / hist.sum())
        found["rms"][step] = float(np.sqrt((hist * centres**2).sum() / hist.sum()))
    return found


def compare(cockpit: dict[int, float], project: dict[int, float]) -> tuple[str, str, str, str]:
    """Median of each, the largest relative difference and the rank correlation over shared steps."""
    shared = sorted(set(cockpit) & set(project))
    a = np.array([cockpit[s] for s in shared])
    b = np.array([project[s] for s in shared])
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    relative = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
    rho = stats.spearmanr(a, b).statistic if len(a) > 2 else float("nan")
    return f"{np.median(a):.4g}", f"{np.median(b):.4g}", f"{relative:.2g}", f"{rho:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_determinism(1)
    config = RunConfig(optimizer="sgd", lr=args.lr, momentum=0.0, seed=args.seed, steps=args.steps,
                       batch_size=args.batch_size, eval_every=args.steps, noise_every=1)
    dataset = make_dataset(config.n_train, config.n_val, config.noise, config.data_seed, config.problem)

    output, _ = cockpit_run(config, dataset, list(QUANTITIES))
    project = project_run(config, dataset)
    print(f"Cockpit vs this project: SGD lr {args.lr:g}, batch {args.batch_size}, seed {args.seed}, "
          f"{args.steps} steps, float64; the same init, batches and torch.optim update")
    print(f"  {'quantity':<22}{'Cockpit median':>16}{'project median':>16}{'max rel. diff':>15}{'Spearman':>10}  kind")
    kinds = {"GradNorm": "both exact: must agree", "UpdateSize": "both exact: must agree",
             "Distance": "both exact: must agree", "Alpha": "minibatch estimate vs exact",
             "NormTest": "minibatch estimate vs exact"}
    for name, kind in kinds.items():
        row = compare(series(output, name), project[name])
        print(f"  {name:<22}{row[0]:>16}{row[1]:>16}{row[2]:>15}{row[3]:>10}  {kind}")
    for moment, values in histogram_moments(output).items():
        row = compare(values, project[moment])
        print(f"  {'GradHist1d ' + moment:<22}{row[0]:>16}{row[1]:>16}{row[2]:>15}{row[3]:>10}  "
              "minibatch histogram vs training set")

    # Overheads: each Cockpit quantity alone, every step, against a bare torch.optim step; the
    # project's exact instruments every step against its engine without them (same run, R = 1).
    timing = {"bare": [], **{name: [] for name in QUANTITIES}, "all six": [], "project bare": [],
              "project noise": []}
    quiet = RunConfig(**{**config.to_dict(), "noise_every": 0})
    for _ in range(args.rounds):
        timing["bare"].append(cockpit_run(config, dataset, [])[1])
        for name in QUANTITIES:
            timing[name].append(cockpit_run(config, dataset, [name])[1])
        timing["all six"].append(cockpit_run(config, dataset, list(QUANTITIES))[1])
        for key, run_config in (("project bare", quiet), ("project noise", config)):
            start = time.perf_counter()
            train(run_config, dataset)
            timing[key].append(time.perf_counter() - start)
    bare = statistics.median(timing["bare"]) / args.steps
    print(f"\nOverhead per step, every step, median of {args.rounds} rounds (bare torch.optim step "
          f"{bare * 1e3:.3f} ms)")
    for name in [*QUANTITIES, "all six"]:
        per_step = statistics.median(timing[name]) / args.steps
        print(f"  Cockpit {name:<14}{per_step * 1e3:>9.3f} ms  {per_step / bare:>6.2f}x")
    engine = statistics.median(timing["project bare"]) / args.steps
    exact = statistics.median(timing["project noise"]) / args.steps
    print(f"  project engine, its diagnostics, no noise {engine * 1e3:>7.3f} ms  {engine / bare:>6.2f}x")
    print(f"  project + exact noise every step          {exact * 1e3:>7.3f} ms  {exact / bare:>6.2f}x "
          f"({exact / engine:.2f}x its engine)")


if __name__ == "__main__":
    main()
