"""The batched engine: every registered optimizer against its reference implementation, a run
trained in a block equal to the same run trained alone, divergence inside a block, the
closed-form gradient against autograd, the batch order, and no torch._dynamo in a job."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from optimizer_dynamics.model import StackedMLP, forward_batched, n_params, with_ones
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.train import CHUNK, BatchOrder, train, train_block
from test_training import reference_batches, reference_net

REFERENCE_STEPS = 1000


def reference_trajectory(config, dataset, steps):
    """Parameters after each step of the registry entry's reference implementation on nn.Sequential
    with autograd, batches drawn as the engine documents: a fresh permutation per epoch."""
    net, generator = reference_net(config)
    optimizer = OPTIMIZERS[config.optimizer].reference(list(net.parameters()), config)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    trajectory = [torch.cat([p.detach().ravel() for p in net.parameters()])]
    batches = reference_batches(config, generator, x, y)
    for _ in range(steps):
        xb, yb = next(batches)
        loss = F.binary_cross_entropy_with_logits(net(xb).squeeze(-1), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trajectory.append(torch.cat([p.detach().ravel() for p in net.parameters()]))
    return torch.stack(trajectory).numpy()


def momenta(name):
    return [0.9] if OPTIMIZERS[name].requires_momentum else [0.0, 0.9]


REFERENCE_CASES = [(name, m, b) for name in OPTIMIZERS for m in momenta(name) for b in (None, 16)]
# A stable and a diverging lr of each optimizer whose step is not lr x gradient: every coordinate
# moves by about lr (Adam, the sign methods), or the whole step has length lr (normalized GD).
# Normalized GD's stable lr is small: at 0.05 its fixed-length steps bounce around the minimum
# within 1000 steps, a chaotic orbit that grows the last-bit difference between the closed-form
# and the autograd gradient past 1e-12 (to 2e-9 at full batch), as any chaotic orbit would.
STABLE_AND_DIVERGING_LRS = {"adam": (0.02, 5.0), "sign": (0.005, 5.0), "lion": (0.005, 5.0),
                            "normalized": (0.003, 100.0)}


@pytest.mark.parametrize(("name", "momentum", "batch_size"), REFERENCE_CASES)
def test_batched_trajectories_equal_the_reference_implementation(tiny_dataset, name, momentum, batch_size):
    # Two lrs x two seeds in one block; the runs at the large lr diverge within the first chunk
    # and leave the stack, while the others go on to the end.
    stable, huge = STABLE_AND_DIVERGING_LRS.get(name, (0.3, 50.0))
    configs = [tiny_config(optimizer=name, lr=lr, momentum=momentum, seed=seed, batch_size=batch_size,
                           steps=REFERENCE_STEPS)
               for lr in (stable, huge) for seed in (0, 1)]
    logs = train_block(configs, tiny_dataset, record_trajectory=True)
    assert not any(log.diverged for log in logs[:2])
    assert all(log.diverged and log.diverged_step < CHUNK for log in logs[2:])
    for config, log in zip(configs, logs):
        got = log.trajectory["params"]
        expected = reference_trajectory(config, tiny_dataset, len(got) - 1)
        assert got.shape == expected.shape
        scale = np.abs(expected).max(axis=1, keepdims=True)
        finite = np.isfinite(expected).all(axis=1)  # the diverging step itself may overflow
        np.testing.assert_array_less(np.abs(got - expected)[finite] / scale[finite], 1e-12)


# A value other than the default for each optimizer's own hyperparameters (Adam's eps 0.1 is far
# above its sqrt(v_hat): the step is no longer a sign-like one).
OTHER_VALUES = {"beta2": 0.95, "eps": 0.1}
WITH_HYPERPARAMETERS = [name for name, entry in OPTIMIZERS.items() if entry.hyperparameters]


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("name", WITH_HYPERPARAMETERS)
def test_an_optimizers_own_hyperparameters_reach_its_update_and_its_reference(tiny_dataset, name, batch_size):
    # One block: the defaults and each hyperparameter changed alone; every run follows the reference
    # built with its own values, differs from the defaults' run, and equals itself trained alone.
    # lr 0.005: Adam with beta2 = 0.95 at 0.02 bounces chaotically, and the last-bit difference
    # between the closed-form and the autograd gradient grows past 1e-12 by step 1000.
    stable = 0.005
    settings = ["", *(f"{h.name}={OTHER_VALUES[h.name]}" for h in OPTIMIZERS[name].hyperparameters)]
    configs = [tiny_config(optimizer=name, lr=stable, momentum=0.9, hyperparameters=setting, batch_size=batch_size,
                           steps=REFERENCE_STEPS) for setting in settings]
    logs = train_block(configs, tiny_dataset, record_trajectory=True)
    for config, log in zip(configs, logs):
        got = log.trajectory["params"]
        expected = reference_trajectory(config, tiny_dataset, len(got) - 1)
        np.testing.assert_array_less(np.abs(got - expected) / np.abs(expected).max(axis=1, keepdims=True), 1e-12)
        run_columns_equal(train(config, tiny_dataset), log)
    defaults = logs[0].trajectory["params"][-1]
    assert all(np.abs(log.trajectory["params"][-1] - defaults).max() > 1e-6 for log in logs[1:])


def run_columns_equal(a, b):
    assert a.columns.keys() == b.columns.keys()
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)  # NaN equals NaN here
    assert (a.diverged, a.diverged_step, a.diverged_cause) == (b.diverged, b.diverged_step, b.diverged_cause)


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_run_in_a_block_equals_the_run_trained_alone(tiny_dataset, name, batch_size):
    momentum = 0.9
    # two lrs take Hessians: at step 0 they share each seed's initial weights, and so its Hessian
    configs = [tiny_config(optimizer=name, lr=lr, momentum=momentum, seed=seed, batch_size=batch_size, steps=520,
                           hidden=128, curvature_every=100 if lr < 1 else 0, noise_every=50)
               for lr in (0.05, 0.2, 1e3) for seed in (0, 1, 2)]
    logs = train_block(configs, tiny_dataset)
    assert any(log.diverged for log in logs) and not all(log.diverged for log in logs)
    for config, log in zip(configs, logs):
        run_columns_equal(train(config, tiny_dataset), log)


def test_gradient_of_each_run_is_its_own(tiny_dataset):
    """The closed-form backward against autograd of the sum of the runs' mean losses, with
    each run on its own minibatch (a cache-sized pass boundary inside the block)."""
    hidden, runs, batch = 128, 23, 64
    generator = torch.Generator().manual_seed(0)
    thetas = 0.5 * torch.randn(runs, n_params(hidden), dtype=torch.float64, generator=generator)
    x, y = torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)
    index = torch.randint(0, len(x), (runs, batch), generator=generator)
    stack = StackedMLP(thetas.clone(), hidden, batch)
    assert len(stack.passes) > 1
    logits, losses = stack.loss_and_grad(with_ones(x)[index], y[index])
    leaf = thetas.clone().requires_grad_()
    expected_losses = torch.stack([
        F.binary_cross_entropy_with_logits(forward_batched(leaf[r : r + 1], x[index[r]], hidden)[0], y[index[r]])
        for r in range(runs)
    ])
    expected_losses.sum().backward()
    torch.testing.assert_close(losses, expected_losses.detach(), rtol=1e-13, atol=0)
    torch.testing.assert_close(stack.grad, leaf.grad, rtol=1e-12, atol=1e-15)


def test_batch_order_is_a_fresh_permutation_each_epoch():
    order = BatchOrder(10, 3, torch.Generator().manual_seed(4))
    batches = torch.cat([order.take(2), order.take(5)])  # crosses epochs (3 batches each, 1 point dropped)
    expected = torch.Generator().manual_seed(4)
    epochs = [torch.randperm(10, generator=expected)[:9].view(3, 3) for _ in range(3)]
    torch.testing.assert_close(batches, torch.cat(epochs)[:7], rtol=0, atol=0)


def test_training_job_does_not_import_torch_dynamo(tmp_path):
    code = (
        "import sys; from optimizer_dynamics import train; "
        f"train.main(['--n-train', '40', '--n-val', '40', '--steps', '3', '--hidden', '8', '--quiet', "
        f"'--optimizer', 'adam', '--lr', '0.01', '0.1', '--momentum', '0.9', '--curvature-every', '1', "
        f"'--out', *[r'{tmp_path}/r%d.parquet' % i for i in range(2)]]); "
        "print('torch._dynamo' in sys.modules, 'torch.optim' in sys.modules and 'torch._inductor' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    assert len(list(tmp_path.glob("r*.parquet"))) == 2
