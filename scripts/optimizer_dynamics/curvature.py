"""Curvature: the exact Hessian of the full-batch training loss and its top eigenvalues.

Gradient descent on a quadratic with curvature lam is stable only while lr < 2 / lam; in
neural-network training the top Hessian eigenvalue (the sharpness) tends to rise to about
2 / lr and hover there (Cohen et al. 2021, "Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability"). Heavy ball in torch's form (v = b v + g, step lr v) has
the threshold 2 (1 + b) / lr. Adam is preconditioned EMA momentum; its stability quantity
is the top eigenvalue of P^-1 H with (Cohen et al. 2022, "Adaptive Gradient Methods at the
Edge of Stability", Section 2 / Appendix on Adam)

    P_t = (1 - beta1^t) * diag( sqrt(v_t / (1 - beta2^t)) + eps ),

t the number of steps taken including this one and v_t the second-moment state after this
step's gradient (the bias correction of the first moment folded into P), whose threshold is
(2 + 2 beta1) / ((1 - beta1) lr), i.e. 38 / lr for beta1 = 0.9. Each optimizer's threshold and
preconditioner live with its registry entry (optimizers/).

The model has 2 * hidden + 2 * hidden + 1 = 513 parameters, so the Hessian is formed
exactly, in closed form: torch.func.hessian takes seconds per call here, this a few
milliseconds. For logits z(theta) and the mean BCE loss,

    H = J^T diag(s) J / n  +  sum_i (sigmoid(z_i) - y_i) / n * d2 z_i,

with J = dz/dtheta and s = sigmoid(z) (1 - sigmoid(z)). ReLU is piecewise linear, so the
only non-zero second derivatives of z are d2 z / (d fc2.weight_j d fc1.{weight,bias}_j).
tests/test_curvature.py checks this against torch.func.hessian.

Per-block curvature (Zhang et al. 2024, "Why transformers need Adam: a Hessian perspective"):
the top eigenvalue of each parameter tensor's diagonal block of H (fc1.weight, fc1.bias,
fc2.weight, fc2.bias). Zhang et al. measure the heterogeneity of the blocks by the
Jensen-Shannon distance between their spectral densities; this study uses a simpler measure,
block_heterogeneity = log10(largest / smallest top eigenvalue) over the blocks of more than one
parameter (fc2.bias's 1 x 1 block is the mean of sigmoid'(z), whatever the data): how many
decades a single lr would have to span to suit every block. It needs a block's top eigenvalue
only, not its whole spectrum and a density estimate.
"""

from __future__ import annotations

import numpy as np
import torch

from optimizer_dynamics.model import layer_views, tensor_slices

TOP_K = 3  # eigenvalues logged from the top of the spectrum
# Lanczos restarts before the full spectrum is taken instead: a top cluster of eigenvalues equal
# to 1e-6 (a stretched input's step-0 Hessian) took ARPACK thousands of restarts, seconds per
# call, where the full spectrum of a 513 x 513 matrix takes ~25 ms
ARPACK_MAX_RESTARTS = 30
BLOCK_COLUMN = "hessian.block_top1.{}"  # a parameter tensor's diagonal block: its top eigenvalue
BATCH_SHARPNESS_COLUMN = "hessian.batch_sharpness"  # minibatch runs only: NaN at full batch


def loss_hessian(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int) -> torch.Tensor:
    """Exact Hessian (P, P) of the mean BCE-with-logits loss over (x, y) at theta (P,)."""
    return loss_gradient_and_hessian(theta, x, y, hidden)[1]


def loss_gradient_and_hessian(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                              hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient (P,) and the exact Hessian (P, P) of the mean BCE-with-logits loss over (x, y)."""
    views = layer_views(theta, hidden)
    w2 = views["fc2.weight"][0]
    pre = torch.addmm(views["fc1.bias"], x, views["fc1.weight"].T)  # (n, hidden)
    active = (pre > 0).to(theta.dtype)
    h = pre * active
    z = h @ w2 + views["fc2.bias"]
    n = x.shape[0]
    prob = torch.sigmoid(z)
    ones = torch.ones(n, 1, dtype=theta.dtype)

    dz_dbias1 = active * w2  # (n, hidden)
    jac = torch.cat([(dz_dbias1[:, :, None] * x[:, None, :]).reshape(n, -1), dz_dbias1, h, ones], dim=1)
    hess = jac.T @ ((prob * (1 - prob) / n)[:, None] * jac)

    # Second derivatives of z: d2 z_i / (d w2_j d W1_jk) = active_ij x_ik, d2 z_i / (d w2_j d b1_j) = active_ij.
    cross = active.T @ (((prob - y) / n)[:, None] * torch.cat([x, ones], dim=1))  # (hidden, 3)
    s = tensor_slices(hidden)
    j = torch.arange(hidden)
    rows = s["fc2.weight"].start + j
    for column, values in (
        (s["fc1.weight"].start + 2 * j, cross[:, 0]),
        (s["fc1.weight"].start + 2 * j + 1, cross[:, 1]),
        (s["fc1.bias"].start + j, cross[:, 2]),
    ):
        hess[rows, column] += values
        hess[column, rows] += values
    return jac.T @ ((prob - y) / n), hess


def batch_sharpness(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int, batch_size: int,
                    generator: torch.Generator) -> float:
    """E_B[g_B^T H_B g_B / |g_B|^2] (Andreyev and Beneventano 2024, "Edge of stochastic
    stability"): the curvature of each minibatch's loss along its own gradient, averaged over
    the batches of one random partition of the training set (the incomplete last batch
    dropped, as training does). Minibatch SGD is stable while it stays below 2 / lr."""
    order = torch.randperm(x.shape[0], generator=generator)
    batches = order[: x.shape[0] // batch_size * batch_size].view(-1, batch_size)
    values = []
    for index in batches:
        grad, hess = loss_gradient_and_hessian(theta, x[index], y[index], hidden)
        values.append(float(grad @ hess @ grad / (grad @ grad)))
    return float(np.mean(values))


def top_eigenvalues(matrix: torch.Tensor, k: int) -> list[float]:
    """The k largest eigenvalues of a symmetric matrix, largest first, by Lanczos iteration
    (scipy's eigsh, ARPACK) to machine precision: ~4x faster here than the full spectrum
    (tests/test_curvature.py checks it against torch.linalg.eigvalsh). The start vector is
    fixed, and so is the generator ARPACK draws a new start vector from when it restarts:
    without it, repeated calls on one matrix differed in the last bits (tests/test_curvature.py),
    and so did a run's file trained alone and in a block. The result is the same every time."""
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

    size = matrix.shape[0]
    try:
        values = eigsh(matrix.numpy(), k=k, which="LA", v0=np.ones(size), return_eigenvectors=False,
                       rng=np.random.default_rng(0), maxiter=ARPACK_MAX_RESTARTS)
    except (ArpackError, ArpackNoConvergence):
        # H v0 = 0 (every unit dead after a huge step: H = 0), or a top of near-equal eigenvalues
        # that Lanczos resolves slowly: the full spectrum, exactly
        values = torch.linalg.eigvalsh(matrix)[-k:].numpy()
    return sorted(values.tolist(), reverse=True)


def spectrum_summary(hess: torch.Tensor, preconditioner: torch.Tensor | None, hidden: int) -> dict[str, float]:
    """The TOP_K largest eigenvalues of H and the top eigenvalue of each parameter tensor's
    diagonal block; with a diagonal preconditioner P, also the top eigenvalue of P^-1 H
    (computed as P^-1/2 H P^-1/2, which is similar to it and symmetric)."""
    summary = {f"hessian.top{k + 1}": value for k, value in enumerate(top_eigenvalues(hess, TOP_K))}
    for name, block in tensor_slices(hidden).items():
        part = hess[block, block]
        summary[BLOCK_COLUMN.format(name)] = (float(part[0, 0]) if part.shape[0] == 1
                                              else top_eigenvalues(part.contiguous(), 1)[0])
    summary["hessian.precond_top1"] = summary[BATCH_SHARPNESS_COLUMN] = float("nan")
    if preconditioner is not None:
        scale = preconditioner.rsqrt()
        summary["hessian.precond_top1"] = top_eigenvalues(scale[:, None] * hess * scale[None, :], 1)[0]
    return summary


BLOCK_NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")  # model.tensor_shapes' order
BLOCK_COLUMNS = [BLOCK_COLUMN.format(name) for name in BLOCK_NAMES]
CURVATURE_COLUMNS = [f"hessian.top{k}" for k in range(1, TOP_K + 1)] + ["hessian.precond_top1", *BLOCK_COLUMNS,
                                                                      BATCH_SHARPNESS_COLUMN]
