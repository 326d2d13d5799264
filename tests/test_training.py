"""The training core: every diagnostic against an independent computation, optimizer
invariants, divergence, determinism and the run file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from optimizer_dynamics.curvature import BLOCK_NAMES, CURVATURE_COLUMNS
from optimizer_dynamics.metrics import COLUMN_DOCS
from optimizer_dynamics.noise import NOISE_COLUMNS
from optimizer_dynamics.model import forward_batched, init_params, layer_views, n_params, tensor_slices
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.runfile import read_metadata, write_run
from optimizer_dynamics.train import train

SCOPES = ["global", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def reference_batches(config, generator, x, y):
    """Each step's batch, drawn the textbook way: the whole set, or a fresh permutation per
    epoch with the incomplete last batch dropped."""
    order, position = None, 0
    while True:
        if config.full_batch:
            yield x, y
            continue
        if order is None or position + config.batch_size > config.n_train:
            order, position = torch.randperm(config.n_train, generator=generator), 0
        index = order[position : position + config.batch_size]
        position += config.batch_size
        yield x[index], y[index]


def reference_net(config):
    """nn.Sequential with the run's initial weights, and the run's generator after the init."""
    generator = torch.Generator().manual_seed(config.seed)
    init = layer_views(init_params(config.hidden, generator), config.hidden)
    net = torch.nn.Sequential(torch.nn.Linear(2, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 1)).double()
    net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2"): v for k, v in init.items()})
    return net, generator


def reference_run(config, dataset):
    """The same training written the textbook way: nn.Sequential with autograd, the registry
    entry's reference implementation, numpy over parameter snapshots for every diagnostic. Shares no
    code with metrics.py or the batched model."""
    net, generator = reference_net(config)
    params = list(net.parameters())
    opt = OPTIMIZERS[config.optimizer].reference(params, config)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    xv, yv = dataset.x_val, dataset.y_val
    batches = reference_batches(config, generator, x, y)
    rows, prev_update = [], None

    def snapshot():
        return [p.detach().numpy().ravel().copy() for p in params]

    def numpy_eval(xs, ys):
        w1, b1, w2, b2 = snapshot()
        h = np.maximum(xs @ w1.reshape(config.hidden, 2).T + b1, 0)
        z = h @ w2 + b2[0]
        loss = np.mean(np.maximum(z, 0) - z * ys + np.log1p(np.exp(-np.abs(z))))
        return loss, np.mean((z > 0) == (ys > 0.5))

    for step in range(config.steps):
        xb, yb = next(batches)
        before = snapshot()
        logits = net(xb).squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logits, yb)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad.numpy().ravel().copy() for p in params]
        opt.step()
        after = snapshot()
        z = logits.detach().numpy()
        row = {"step": step, "batch.loss": loss.item(), "batch.acc": np.mean((z > 0) == (yb.numpy() > 0.5))}
        prob = 1 / (1 + np.exp(-z))
        row["logit.mean_abs"], row["logit.max_abs"] = np.mean(np.abs(z)), np.max(np.abs(z))
        row["logit.saturated_frac"] = np.mean((prob < 0.01) | (prob > 0.99))
        parts = {"grad": grads, "param": before, "update": [a - b for a, b in zip(after, before)]}
        for kind, tensors in parts.items():
            row[f"{kind}.global"] = np.linalg.norm(np.concatenate(tensors))
            for name, t in zip(SCOPES[1:], tensors):
                row[f"{kind}.{name}"] = np.linalg.norm(t)
        for scope in SCOPES:
            row[f"eff_step.{scope}"] = row[f"update.{scope}"] / row[f"grad.{scope}"]
            with np.errstate(divide="ignore"):
                row[f"update_to_param.{scope}"] = row[f"update.{scope}"] / row[f"param.{scope}"]
        update, grad = np.concatenate(parts["update"]), np.concatenate(grads)
        row["update.rms"] = np.sqrt(np.mean(update**2))
        row["update.cosine"] = (
            np.nan if prev_update is None
            else update @ prev_update / (np.linalg.norm(update) * np.linalg.norm(prev_update))
        )
        prev_update = update
        nonzero = grad != 0
        ratio = np.abs(update[nonzero]) / np.abs(grad[nonzero])
        is_eval = (step + 1) % config.eval_every == 0 or step == config.steps - 1
        quantiles = (np.quantile(ratio, 0.5), np.quantile(ratio, 0.9)) if is_eval else (np.nan, np.nan)
        row["coord_eff_lr.median"], row["coord_eff_lr.p90"] = quantiles
        for prefix, (xs, ys) in (("train", (dataset.x_train, dataset.y_train)), ("val", (xv, yv))):
            row[f"{prefix}.loss"], row[f"{prefix}.acc"] = numpy_eval(xs, ys) if is_eval else (np.nan, np.nan)
        half = len(xv) // 2
        for name, part in (("val_select", slice(None, half)), ("val_report", slice(half, None))):
            row[f"{name}.loss"] = numpy_eval(xv[part], yv[part])[0] if is_eval else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": "sgd", "lr": 0.3},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        {"optimizer": "nesterov", "lr": 0.1, "momentum": 0.9},
        {"optimizer": "adam", "lr": 0.01, "momentum": 0.9},
        {"optimizer": "adam", "lr": 0.01, "momentum": 0.9, "batch_size": 16},
    ],
    ids=["sgd", "heavy-ball", "nesterov", "adam", "adam-minibatch"],
)
def test_every_diagnostic_matches_an_independent_computation(tiny_dataset, overrides):
    config = tiny_config(steps=2 * 250 + 7, **overrides)  # crosses chunk boundaries
    log = train(config, tiny_dataset)
    expected = reference_run(config, tiny_dataset)
    documented = {c for c in COLUMN_DOCS if "<" not in c}
    documented |= {c.replace("<scope>", s) for c in COLUMN_DOCS if "<scope>" in c for s in SCOPES}
    documented |= {c.replace("<tensor>", t) for c in COLUMN_DOCS if "<tensor>" in c for t in BLOCK_NAMES}
    assert set(log.columns) == documented
    # tested in test_curvature.py and test_noise.py
    assert set(log.columns) - set(expected.columns) == set(CURVATURE_COLUMNS) | set(NOISE_COLUMNS)
    # curvature_every = noise_every = 0
    assert all(np.isnan(log.columns[name]).all() for name in [*CURVATURE_COLUMNS, *NOISE_COLUMNS])
    for column in expected.columns:
        np.testing.assert_allclose(log.columns[column], expected[column], rtol=1e-9, atol=1e-12, err_msg=column)


def test_plain_sgd_update_over_grad_equals_lr_at_every_step(tiny_dataset):
    config = tiny_config(optimizer="sgd", lr=0.3, momentum=0.0)
    log = train(config, tiny_dataset)
    for scope in SCOPES:
        ratio = log.columns[f"eff_step.{scope}"]
        np.testing.assert_allclose(ratio, config.lr, rtol=1e-6, err_msg=scope)
    measured = log.columns["coord_eff_lr.median"]
    assert np.isfinite(measured).sum() == config.steps // config.eval_every  # eval steps only
    assert np.all(measured[np.isfinite(measured)] == pytest.approx(config.lr, rel=1e-6))


def test_heavy_ball_update_is_rebuilt_from_logged_grads(tiny_dataset):
    config = tiny_config(optimizer="sgd", lr=0.05, momentum=0.9)
    log = train(config, tiny_dataset, record_trajectory=True)
    params, grads = log.trajectory["params"], log.trajectory["grads"]
    velocity = np.zeros_like(grads[0])
    for step, grad in enumerate(grads):
        velocity = grad if step == 0 else config.momentum * velocity + grad  # torch: v_1 = g_1
        np.testing.assert_allclose(params[step + 1] - params[step], -config.lr * velocity, rtol=1e-8, atol=1e-14)


def test_adam_first_step_moves_every_coordinate_by_lr(tiny_dataset):
    config = tiny_config(optimizer="adam", lr=1e-3, momentum=0.9, steps=1)
    log = train(config, tiny_dataset, record_trajectory=True)
    grad = log.trajectory["grads"][0]
    moved = np.abs(log.trajectory["params"][1] - log.trajectory["params"][0])
    nonzero = grad != 0
    assert nonzero.sum() > 0.5 * grad.size
    # Step 1: m_hat = g, v_hat = g^2, so |update| = lr * |g| / (|g| + eps) = lr up to eps.
    np.testing.assert_allclose(moved[nonzero], config.lr * np.abs(grad[nonzero]) / (np.abs(grad[nonzero]) + config.hyperparameter_values["eps"]), rtol=1e-9)
    assert np.all(np.abs(moved[nonzero] - config.lr) <= config.lr * config.hyperparameter_values["eps"] / np.abs(grad[nonzero]) + 1e-15)
    assert np.all(moved[~nonzero] == 0)


def test_same_config_gives_identical_values(tiny_dataset):
    config = tiny_config(optimizer="adam", lr=0.01, momentum=0.9, batch_size=16)
    first, second = train(config, tiny_dataset), train(config, tiny_dataset)
    for column, values in first.columns.items():
        np.testing.assert_array_equal(values, second.columns[column], err_msg=column)
    other_seed = train(tiny_config(optimizer="adam", lr=0.01, momentum=0.9, batch_size=16, seed=1), tiny_dataset)
    assert not np.array_equal(first.columns["batch.loss"], other_seed.columns["batch.loss"])


def test_divergence_ends_the_run_cleanly(tiny_dataset):
    config = tiny_config(optimizer="sgd", lr=1e4)
    log = train(config, tiny_dataset)
    assert log.diverged and log.diverged_step is not None
    assert log.columns["step"][-1] == log.diverged_step < config.steps - 1
    last = log.columns["batch.loss"][-1]
    assert not math.isfinite(last) or last > config.divergence_factor * log.columns["batch.loss"][0]
    assert ("non-finite" in log.diverged_cause) == (not math.isfinite(last))


def test_divergence_factor_threshold(tiny_dataset):
    # A loss that never exceeds the factor of the initial loss is not divergence.
    log = train(tiny_config(optimizer="sgd", lr=0.1), tiny_dataset)
    assert not log.diverged and log.diverged_step is None and len(log.columns["step"]) == log.config.steps


def test_he_init_and_forward_batched(tiny_dataset):
    big = layer_views(init_params(4096, torch.Generator().manual_seed(0)), 4096)
    assert big["fc1.weight"].std().item() == pytest.approx(math.sqrt(2 / 2), rel=0.03)
    assert big["fc2.weight"].std().item() == pytest.approx(math.sqrt(2 / 4096), rel=0.03)
    assert big["fc1.bias"].abs().max().item() == 0 and big["fc2.bias"].item() == 0
    # The same draws as torch.nn.init.kaiming_normal_ on nn.Linear's weights, from one generator.
    generator = torch.Generator().manual_seed(3)
    expected = [torch.nn.init.kaiming_normal_(torch.empty(shape, dtype=torch.float64), mode="fan_in",
                                              nonlinearity="relu", generator=generator) for shape in ((16, 2), (1, 16))]
    theta = init_params(16, torch.Generator().manual_seed(3))
    views = layer_views(theta, 16)
    torch.testing.assert_close(views["fc1.weight"], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(views["fc2.weight"], expected[1], rtol=0, atol=0)
    net, _ = reference_net(tiny_config(hidden=16, seed=3))
    x = torch.from_numpy(tiny_dataset.x_val)
    thetas = torch.stack([theta, 2 * theta])
    with torch.no_grad():
        before = net(x)[:, 0]
        for p in net.parameters():
            p.mul_(2)
        expected_logits = torch.stack([before, net(x)[:, 0]])
    torch.testing.assert_close(forward_batched(thetas, x, 16), expected_logits, rtol=1e-12, atol=1e-12)
    assert list(tensor_slices(16)) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert n_params(16) == theta.numel() == sum(p.numel() for p in net.parameters())


def test_run_file_schema_is_one_for_all_configs(tmp_path, tiny_dataset):
    configs = [
        tiny_config(optimizer="sgd", lr=0.1),
        tiny_config(optimizer="adam", lr=0.01, momentum=0.9, batch_size=16),
        tiny_config(optimizer="sgd", lr=1e4),  # diverges
    ]
    for i, config in enumerate(configs):
        write_run(train(config, tiny_dataset), tmp_path / f"sub~{i}" / "run.parquet")
    study = pd.read_parquet(tmp_path)  # the whole directory in one call
    assert sorted(study.groupby(["optimizer", "lr"]).size().tolist()) == sorted(
        len(train(c, tiny_dataset).columns["step"]) for c in configs
    )
    assert study["batch_size"].isna().sum() + (study["batch_size"] == 16).sum() == len(study)
    meta = read_metadata(tmp_path / "sub~1" / "run.parquet")
    assert meta["config"] == configs[1].to_dict()
    assert meta["versions"]["torch"] == torch.__version__
    assert study.loc[study["lr"] == 1e4, "diverged"].all() and not study.loc[study["lr"] == 0.1, "diverged"].any()


def test_write_is_atomic(tmp_path, tiny_dataset, monkeypatch):
    log = train(tiny_config(steps=5), tiny_dataset)
    target = tmp_path / "run.parquet"

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_run(log, target)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file is left


@pytest.mark.parametrize("overrides", [
    {"optimizer": "sgd", "lr": 0.3, "momentum": 0.9, "batch_size": 16},
    {"optimizer": "adam", "lr": 0.01, "momentum": 0.9},
    {"optimizer": "nesterov", "lr": 0.1, "momentum": 0.9, "batch_size": 16},
], ids=["heavy-ball-minibatch", "adam-full-batch", "nesterov-minibatch"])
def test_a_shorter_run_is_the_prefix_of_a_longer_one(tiny_dataset, overrides):
    """At a constant lr, the first N steps of a 2N-step run are the N-step run, value for value:
    what lets the aggregation judge the claims at budgets cut from the same runs. (Steps 30 and
    73 cut the engine's chunks elsewhere than the longer run does.)"""
    long = train(tiny_config(steps=146, **overrides), tiny_dataset).columns
    for steps in (30, 73):
        short = train(tiny_config(steps=steps, **overrides), tiny_dataset).columns
        for name, values in short.items():
            # The last step differs only in being an eval step of the shorter run.
            evaluated_last = name.startswith(("train.", "val.", "val_select.", "val_report.", "coord_eff_lr."))
            length = steps - 1 if evaluated_last else steps
            np.testing.assert_array_equal(values[:length], long[name][:length], err_msg=name)
