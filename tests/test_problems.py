"""The problem registry: each problem's data is make_moons' transformed as it says; runs on every
problem are the same alone or in a block; and the claim behind the rotated problem: SGD is
rotation-equivariant (rotating the inputs and the initial first-layer weights together rotates
its whole trajectory), Adam is not."""

import math

import numpy as np
import pytest
import torch

from conftest import TINY_DATA, tiny_config
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset
from optimizer_dynamics.model import StackedMLP, init_params, layer_views, with_ones
from optimizer_dynamics.optimizers import OPTIMIZERS, Hyper
from optimizer_dynamics.problems import PROBLEMS
from optimizer_dynamics.train import train, train_block
from test_engine import run_columns_equal

HIDDEN = 16


def dataset(problem: str):
    return make_dataset(**TINY_DATA, problem=problem)


def rotation(degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def test_the_stretched_and_rotated_problems_are_moons_transformed_as_their_entries_say():
    moons = dataset("moons")
    assert np.allclose(moons.x_train.mean(axis=0), 0) and np.allclose(moons.x_train.std(axis=0), 1)
    for name, entry in PROBLEMS.items():
        data = dataset(name)
        assert data.settings["problem"] == name
        np.testing.assert_array_equal(data.y_train, moons.y_train)
        expected = (moons.x_val * [entry.kappa, 1.0]) @ rotation(entry.rotation_degrees).T
        np.testing.assert_allclose(data.x_val, expected, rtol=1e-13, atol=1e-13)
    stretched = dataset("moons_kappa100").x_train
    assert stretched[:, 0].std() == pytest.approx(100) and stretched[:, 1].std() == pytest.approx(1)


def trajectory(optimizer: str, x: np.ndarray, theta: torch.Tensor, y: np.ndarray, lr: float, steps: int):
    """Full-batch training of one run from theta: its parameters after every step (steps, P)."""
    stack = StackedMLP(theta[None].clone(), HIDDEN, len(x))
    hyper = Hyper.of([RunConfig(optimizer=optimizer, lr=lr, momentum=0.9)])
    entry = OPTIMIZERS[optimizer]
    state = entry.init_state(stack.thetas)
    x1, targets = with_ones(torch.from_numpy(x)), torch.from_numpy(y)
    path = []
    for step in range(steps):
        stack.loss_and_grad(x1, targets)
        entry.update(stack.thetas, stack.grad, state, hyper, step + 1)
        path.append(stack.thetas[0].clone())
    return torch.stack(path)


def rotated_difference(optimizer: str, lr: float, steps: int = 300) -> float:
    """Train on the stretched inputs from theta and on the rotated inputs from theta with its fc1
    weights rotated alike; the largest difference, relative to the parameters' scale, between the
    second trajectory and the first one rotated."""
    stretched, rotated = dataset("moons_kappa10"), dataset("moons_kappa10_rot45_test")
    turn = torch.from_numpy(rotation(45))
    theta = init_params(HIDDEN, torch.Generator().manual_seed(0))
    turned = theta.clone()
    layer_views(turned, HIDDEN)["fc1.weight"].copy_(layer_views(theta, HIDDEN)["fc1.weight"] @ turn.T)
    path = trajectory(optimizer, stretched.x_train, theta, stretched.y_train, lr, steps)
    turned_path = trajectory(optimizer, rotated.x_train, turned, rotated.y_train, lr, steps)
    expected = path.clone()
    weights = layer_views(expected, HIDDEN)["fc1.weight"]
    weights.copy_(weights @ turn.T)
    return float((turned_path - expected).abs().max() / expected.abs().max())


@pytest.fixture(autouse=True)
def rotated_kappa10(monkeypatch):
    """A 45-degree rotation of the kappa-10 problem, registered for these tests only (the data
    module reads the registry)."""
    from optimizer_dynamics.problems.conditioned import conditioned

    entry = conditioned(10, 45)
    monkeypatch.setitem(PROBLEMS, "moons_kappa10_rot45_test", entry)


def test_sgd_is_rotation_equivariant_exactly():
    assert rotated_difference("sgd", lr=0.01) < 1e-12


def test_adam_is_not_rotation_equivariant():
    assert rotated_difference("adam", lr=0.01) > 1e-3


@pytest.mark.parametrize("problem", [name for name in PROBLEMS if name != "moons"])
def test_a_run_on_every_problem_is_the_same_alone_and_in_a_block(problem):
    data = dataset(problem)
    configs = [tiny_config(optimizer=name, lr=lr, momentum=0.9, seed=seed, batch_size=16, problem=problem,
                           noise_every=20)
               for name in ("sgd", "adam") for lr in (1e-3, 1e3) for seed in (0, 1)]
    for name in ("sgd", "adam"):
        block = [config for config in configs if config.optimizer == name]
        logs = train_block(block, data)
        assert any(log.diverged for log in logs) and not all(log.diverged for log in logs)
        for config, log in zip(block, logs):
            run_columns_equal(train(config, data), log)
