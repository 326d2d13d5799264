"""Curvature: the closed-form Hessian, its eigenvalues, the stability thresholds, and
Adam's preconditioned sharpness, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import hessian

from conftest import tiny_config
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.curvature import (
    BLOCK_COLUMN,
    CURVATURE_COLUMNS,
    TOP_K,
    batch_sharpness,
    loss_hessian,
    spectrum_summary,
    top_eigenvalues,
)
from optimizer_dynamics.model import forward_batched, n_params, tensor_slices
from optimizer_dynamics.optimizers import OPTIMIZERS, Hyper, stability_threshold
from optimizer_dynamics.train import train

HIDDEN = 16


def autograd_loss(x, y):
    return lambda theta: F.binary_cross_entropy_with_logits(forward_batched(theta[None], x, HIDDEN)[0], y)


@pytest.fixture
def point(tiny_dataset):
    theta = torch.randn(n_params(HIDDEN), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return theta, torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)


def test_closed_form_hessian_equals_autograd(point):
    theta, x, y = point
    expected = hessian(autograd_loss(x, y))(theta)
    torch.testing.assert_close(loss_hessian(theta, x, y, HIDDEN), expected, rtol=1e-10, atol=1e-12)


def test_batch_sharpness_is_each_batch_losss_curvature_along_its_gradient_averaged(point):
    theta, x, y = point
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    expected = []
    for index in order[: len(x) // 16 * 16].view(-1, 16):  # the partition batch_sharpness draws with seed 3
        loss = autograd_loss(x[index], y[index])
        grad = torch.func.grad(loss)(theta)
        _, curvature_along = torch.func.jvp(torch.func.grad(loss), (theta,), (grad,))  # H_B g_B
        expected.append(float(grad @ curvature_along / (grad @ grad)))
    found = batch_sharpness(theta, x, y, HIDDEN, 16, torch.Generator().manual_seed(3))
    assert found == pytest.approx(np.mean(expected), rel=1e-10)
    # the full batch's own curvature along its gradient, a Rayleigh quotient, stays below the sharpness
    assert batch_sharpness(theta, x, y, HIDDEN, len(x), torch.Generator()) <= top_eigenvalues(
        loss_hessian(theta, x, y, HIDDEN), 1)[0] + 1e-12


def test_a_minibatch_run_logs_its_batch_sharpness_at_its_hessian_steps_only(tiny_dataset):
    minibatch = train(tiny_config(optimizer="sgd", lr=0.3, batch_size=16, curvature_every=7), tiny_dataset).columns
    full = train(tiny_config(optimizer="sgd", lr=0.3, curvature_every=7), tiny_dataset).columns
    np.testing.assert_array_equal(np.isnan(minibatch["hessian.batch_sharpness"]), np.isnan(minibatch["hessian.top1"]))
    assert np.isfinite(minibatch["hessian.batch_sharpness"]).any() and np.isnan(full["hessian.batch_sharpness"]).all()


def test_top_eigenvalue_equals_power_iteration_on_hessian_vector_products(point):
    theta, x, y = point
    loss = autograd_loss(x, y)

    def hvp(v):
        return torch.autograd.functional.hvp(loss, theta, v)[1]

    # Power iteration finds the eigenvalue of largest magnitude; shift so that it is the top one.
    shift = abs(np.linalg.eigvalsh(loss_hessian(theta, x, y, HIDDEN).numpy())[0])
    v = torch.ones_like(theta) / theta.numel() ** 0.5
    for _ in range(3000):
        w = hvp(v) + shift * v
        v = w / w.norm()
    rayleigh = (v @ hvp(v)).item()
    top = spectrum_summary(loss_hessian(theta, x, y, HIDDEN), None, HIDDEN)["hessian.top1"]
    assert rayleigh == pytest.approx(top, rel=1e-6)


def test_lanczos_top_eigenvalues_equal_the_full_spectrum(tiny_dataset):
    """The fast path (eigsh) against torch.linalg.eigvalsh, on Hessians of the study's size
    (hidden 128, 513 parameters) at init and along a run, plain and preconditioned."""
    x, y = torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)
    generator = torch.Generator().manual_seed(3)
    for _ in range(4):
        theta = torch.randn(n_params(128), generator=generator, dtype=torch.float64)
        hess = loss_hessian(theta, x, y, 128)
        full = torch.linalg.eigvalsh(hess).flip(0)[:3].tolist()
        assert top_eigenvalues(hess, 3) == pytest.approx(full, rel=1e-10)
        scale = torch.rand(n_params(128), generator=generator, dtype=torch.float64) + 0.01
        scaled = scale[:, None] * hess * scale[None, :]
        assert top_eigenvalues(scaled, 1)[0] == pytest.approx(torch.linalg.eigvalsh(scaled)[-1].item(), rel=1e-10)
        # each parameter tensor's diagonal block, against its full spectrum
        summary = spectrum_summary(hess, None, 128)
        for name, block in tensor_slices(128).items():
            expected = torch.linalg.eigvalsh(hess[block, block])[-1].item()
            assert summary[BLOCK_COLUMN.format(name)] == pytest.approx(expected, rel=1e-10), name
    assert top_eigenvalues(hess, 3) == top_eigenvalues(hess, 3)  # a fixed start vector: reproducible


# Every registry entry compared with the plain sharpness (adaptive ones: the Adam test below).
QUADRATIC_CASES = [
    (name, momentum)
    for name, entry in OPTIMIZERS.items()
    if not entry.adaptive and entry.stability_threshold is not None
    for momentum in (0.0, 0.5, 0.9)
    if momentum > 0 or not entry.requires_momentum
]


@pytest.mark.parametrize(("name", "momentum"), QUADRATIC_CASES)
def test_update_on_a_quadratic_diverges_exactly_beyond_the_threshold(name, momentum):
    """Each registry entry's threshold, against its own batched update on f(x) = lam x^2 / 2:
    one block of two runs, at 0.97 and 1.03 x the lr where lam meets the threshold."""
    entry = OPTIMIZERS[name]
    lam = 4.0
    critical = entry.stability_threshold(1.0, momentum) / lam  # every threshold is c(m) / lr
    lrs = [0.97 * critical, 1.03 * critical]
    hyper = Hyper.of([RunConfig(optimizer=name, lr=lr, momentum=momentum) for lr in lrs])
    x = torch.ones(2, 1, dtype=torch.float64)
    state = entry.init_state(x)
    for t in range(1, 2001):
        entry.update(x, lam * x, state, hyper, t)
    assert abs(x[0].item()) < 1e-3 and abs(x[1].item()) > 1e3
    assert stability_threshold(name, critical, momentum) == pytest.approx(lam)


@pytest.mark.parametrize("name", [name for name, entry in OPTIMIZERS.items() if entry.stability_threshold is None])
def test_a_fixed_size_step_has_no_threshold_and_stays_bounded_on_any_quadratic(name):
    """Sign and normalized steps move by lr whatever the curvature: on f(x) = lam x^2 / 2 they end
    within a step of the minimum at every lam, so no curvature threshold exists."""
    lrs = [0.01, 0.1]
    hyper = Hyper.of([RunConfig(optimizer=name, lr=lr, momentum=0.0) for lr in lrs])
    for lam in (1e-2, 1.0, 1e4):
        x = torch.ones(2, 1, dtype=torch.float64)
        state = OPTIMIZERS[name].init_state(x)
        for t in range(1, 2001):
            OPTIMIZERS[name].update(x, lam * x, state, hyper, t)
        assert (x.abs().squeeze(1) <= torch.tensor(lrs, dtype=torch.float64) + 1e-12).all()
    assert math.isnan(stability_threshold(name, 0.1, 0.0))


def test_top_eigenvalues_are_the_same_on_every_call(tiny_dataset):
    # a Hessian on which ARPACK restarts from a drawn vector: with the generator left to chance,
    # ten calls gave nine different last bits
    config = tiny_config(optimizer="sign", lr=0.05, momentum=0.9, batch_size=16, steps=502, hidden=128)
    log = train(config, tiny_dataset, record_trajectory=True)
    x, y = torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)
    hess = loss_hessian(torch.from_numpy(log.trajectory["params"][501]), x, y, 128)
    calls = {tuple(top_eigenvalues(hess, TOP_K)) for _ in range(10)}
    assert len(calls) == 1


def test_adam_preconditioned_sharpness_from_its_logged_state(tiny_dataset):
    config = tiny_config(optimizer="adam", lr=0.01, momentum=0.9, steps=4, curvature_every=1)
    log = train(config, tiny_dataset, record_trajectory=True)
    x, y = torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)
    beta1, beta2, eps = config.momentum, config.hyperparameter_values["beta2"], config.hyperparameter_values["eps"]
    v = np.zeros(log.trajectory["grads"].shape[1])
    for t, grad in enumerate(log.trajectory["grads"], start=1):
        v = beta2 * v + (1 - beta2) * grad**2
        p = (1 - beta1**t) * (np.sqrt(v / (1 - beta2**t)) + eps)
        h = hessian(autograd_loss(x, y))(torch.from_numpy(log.trajectory["params"][t - 1])).numpy()
        expected = np.max(np.linalg.eigvals(h / p[:, None]).real)  # P^-1 H, not symmetrized
        assert log.columns["hessian.precond_top1"][t - 1] == pytest.approx(expected, rel=1e-7)
        assert log.columns["hessian.top1"][t - 1] == pytest.approx(np.linalg.eigvalsh(h)[-1], rel=1e-9)


@pytest.mark.parametrize(("early_steps", "early_every", "consecutive"), [(0, 1, 2), (10, 4, 2), (10, 4, 1)])
def test_curvature_follows_its_schedule_and_changes_nothing_else(tiny_dataset, early_steps, early_every, consecutive):
    plain = train(tiny_config(optimizer="sgd", lr=0.3), tiny_dataset)
    measured = train(tiny_config(optimizer="sgd", lr=0.3, curvature_every=7, curvature_early_steps=early_steps,
                                 curvature_early_every=early_every, curvature_consecutive=consecutive), tiny_dataset)
    logged = ~np.isnan(measured.columns["hessian.top1"])
    # pairs of consecutive steps by default, so a period-2 oscillation is seen at both phases
    starts = [*range(0, early_steps, early_every), *range(early_steps + (-early_steps) % 7, plain.config.steps, 7)]
    expected = sorted({s + k for s in starts for k in range(consecutive) if s + k < plain.config.steps})
    np.testing.assert_array_equal(np.flatnonzero(logged), expected)
    assert np.all(np.isnan(measured.columns["hessian.precond_top1"]))  # SGD has no preconditioner
    assert all(np.all(np.isnan(plain.columns[name])) for name in CURVATURE_COLUMNS)
    for name, values in plain.columns.items():
        if name not in CURVATURE_COLUMNS:
            np.testing.assert_array_equal(values, measured.columns[name], err_msg=name)


def test_a_hessian_that_annihilates_the_start_vector_falls_back_to_the_full_spectrum():
    # after a huge step every unit can be dead: H = 0, and ARPACK refuses its start vector
    assert top_eigenvalues(torch.zeros(30, 30, dtype=torch.float64), 3) == [0.0, 0.0, 0.0]
    blocks = torch.zeros(4, 4, dtype=torch.float64)
    blocks[:2, :2] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # (1, 1) is in its null space
    blocks[2:, 2:] = torch.tensor([[2.0, -2.0], [-2.0, 2.0]])
    assert top_eigenvalues(blocks, 2) == pytest.approx([4.0, 2.0])


def test_a_top_cluster_that_lanczos_resolves_slowly_gets_the_full_spectrum(monkeypatch):
    # a stretched input's step-0 Hessian: its top eigenvalues equal to ~1e-6, and as many mirrored below
    from scipy.sparse.linalg import ArpackNoConvergence

    from optimizer_dynamics.data import make_dataset

    data = make_dataset(64, 16, 0.2, 0, problem="moons_kappa10")
    theta = torch.randn(n_params(HIDDEN), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hess = loss_hessian(theta, torch.from_numpy(data.x_train), torch.from_numpy(data.y_train), HIDDEN)
    expected = sorted(torch.linalg.eigvalsh(hess)[-TOP_K:].tolist(), reverse=True)
    assert top_eigenvalues(hess, TOP_K) == pytest.approx(expected, rel=1e-10)
    # ARPACK giving up is what sends it to the full spectrum
    import scipy.sparse.linalg

    def gives_up(*args, **kwargs):
        raise ArpackNoConvergence("no convergence", [], [])

    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", gives_up)
    assert top_eigenvalues(hess, TOP_K) == pytest.approx(expected, rel=1e-12)
