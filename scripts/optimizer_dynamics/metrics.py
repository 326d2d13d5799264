"""Per-step diagnostics, computed in bulk from a recorded stretch of the trajectory.

The training loop only copies each step's parameters, gradient, logits and loss into
preallocated buffers (a few tensor copies per step); everything below runs once per chunk
of steps as a handful of large tensor operations. Column names are stable: the report,
the aggregation and the tests address metrics by them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from optimizer_dynamics.model import PASS_DOUBLES, forward_batched, lanewise
from optimizer_dynamics.noise import COLUMN_DOCS as NOISE_DOCS

# sigmoid(logit) outside [0.01, 0.99] counts as saturated: |logit| > log(0.99 / 0.01).
SATURATION_BOUNDS = (0.01, 0.99)
SATURATION_LOGIT = math.log(SATURATION_BOUNDS[1] / (1 - SATURATION_BOUNDS[1]))

COLUMN_DOCS = {
    "step": "step index t = 0..steps-1; row t describes the update from theta_t to theta_t+1",
    "batch.loss": "BCE-with-logits on the step's batch at theta_t (the loss that was differentiated)",
    "batch.acc": "accuracy on the step's batch at theta_t",
    "train.loss": "BCE on the full train set at theta_t+1 (eval steps only, else NaN)",
    "train.acc": "accuracy on the full train set at theta_t+1 (eval steps only)",
    "val.loss": "BCE on the validation set at theta_t+1 (eval steps only)",
    "val.acc": "accuracy on the validation set at theta_t+1 (eval steps only)",
    "val_select.loss": "BCE on the validation set's first half at theta_t+1 (eval steps only): the half "
    "that selects a run's best step",
    "val_report.loss": "BCE on the validation set's second half at theta_t+1 (eval steps only): the half "
    "the selected step's loss is reported on, so the selection is not judged on the data that made it",
    "grad.<scope>": "L2 norm of the batch-loss gradient at theta_t",
    "param.<scope>": "L2 norm of theta_t (before the update)",
    "update.<scope>": "L2 norm of theta_t+1 - theta_t",
    "eff_step.<scope>": "update / grad: the effective step (equals lr for plain SGD)",
    "update_to_param.<scope>": "update / param: relative size of the step",
    "update.rms": "root mean square over the coordinates of theta_t+1 - theta_t (Adam's is about "
    "lr sqrt((1 - beta1) / (1 + beta1)) where the gradient noise dominates)",
    "update.cosine": "cosine between this step's and the previous step's global update vectors",
    "coord_eff_lr.median": "median over coordinates with grad_i != 0 of |update_i| / |grad_i| "
    "(eval steps only, else NaN)",
    "coord_eff_lr.p90": "90th percentile of the same per-coordinate effective learning rate (eval steps only)",
    "logit.mean_abs": "mean |logit| on the step's batch at theta_t",
    "logit.max_abs": "max |logit| on the step's batch at theta_t",
    "logit.saturated_frac": "fraction of the batch with sigmoid(logit) outside [0.01, 0.99]",
    "hessian.top1": "sharpness: top eigenvalue of the full-batch train-loss Hessian at theta_t "
    "(on the Hessian schedule of a curvature run, RunConfig.is_hessian_step; else NaN)",
    "hessian.top2": "second eigenvalue of the same Hessian",
    "hessian.top3": "third eigenvalue of the same Hessian",
    "hessian.block_top1.<tensor>": "top eigenvalue of the Hessian's diagonal block of one parameter tensor "
    "(curvature.py; on the Hessian schedule)",
    "hessian.precond_top1": "Adam only: top eigenvalue of P^-1 H, P Adam's preconditioner after the step "
    "(Cohen et al. 2022)",
    "hessian.batch_sharpness": "minibatch runs only: E_B[g_B^T H_B g_B / |g_B|^2] at theta_t over the batches of "
    "a random partition of the training set (curvature.batch_sharpness; Andreyev and Beneventano 2024; on the "
    "Hessian schedule)",
    **NOISE_DOCS,
}


def step_diagnostics(
    params: torch.Tensor,
    grads: torch.Tensor,
    logits: torch.Tensor,
    targets: torch.Tensor,
    losses: torch.Tensor,
    prev_update: torch.Tensor | None,
    slices: dict[str, slice],
    is_eval: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Diagnostics of T consecutive steps of R runs, each column (R, T).

    params: (R, T+1, P) theta_t for each step and theta after the last one; grads: (R, T, P);
    logits, targets: (R, T, B) the step's batch; losses: (R, T); prev_update: (R, P) the
    update of the step before this stretch (None at the start of training), for the update
    cosine; is_eval: (T,) the eval steps, where the per-coordinate quantiles are computed (a
    sort of P values per row is the costliest diagnostic: at every step it would add about a
    third to a minibatch step). Every operation works run by run (reductions over the last
    axis only), so a run's values do not depend on the other runs of its block.
    """
    before = params[:, :-1]
    updates = params[:, 1:] - before
    abs_logits = logits.abs()
    cols: dict[str, torch.Tensor] = {"batch.loss": losses.clone()}
    cols["batch.acc"] = ((logits > 0) == (targets > 0.5)).double().mean(dim=-1)
    cols["logit.mean_abs"] = abs_logits.mean(dim=-1)
    cols["logit.max_abs"] = abs_logits.amax(dim=-1)
    # sigmoid(z) < 0.01 or > 0.99  <=>  |z| > logit(0.99), by the symmetry of the sigmoid
    cols["logit.saturated_frac"] = (abs_logits > SATURATION_LOGIT).double().mean(dim=-1)
    for kind, matrix in (("grad", grads), ("param", before), ("update", updates)):
        cols[f"{kind}.global"] = torch.linalg.vector_norm(matrix, dim=-1)
        for name, s in slices.items():
            cols[f"{kind}.{name}"] = torch.linalg.vector_norm(matrix[..., s], dim=-1)
    cols["update.rms"] = cols["update.global"] / math.sqrt(updates.shape[-1])
    for scope in ["global", *slices]:
        cols[f"eff_step.{scope}"] = cols[f"update.{scope}"] / cols[f"grad.{scope}"]
        cols[f"update_to_param.{scope}"] = cols[f"update.{scope}"] / cols[f"param.{scope}"]

    first = torch.full_like(updates[:, :1], float("nan")) if prev_update is None else prev_update[:, None]
    # (Each update against the one before: the first against the previous stretch's last.)
    previous_norm = torch.cat([torch.linalg.vector_norm(first, dim=-1), cols["update.global"][:, :-1]], dim=1)
    dot = torch.cat([torch.linalg.vecdot(updates[:, :1], first), torch.linalg.vecdot(updates[:, 1:], updates[:, :-1])], dim=1)
    cols["update.cosine"] = dot / (cols["update.global"] * previous_norm).clamp_min(1e-300)

    cols["coord_eff_lr.median"], cols["coord_eff_lr.p90"] = (
        torch.full_like(losses, float("nan")) for _ in range(2)
    )
    rows = is_eval.nonzero()[:, 0]
    if len(rows):
        g = grads[:, rows]
        coord_ratio = (updates[:, rows].abs() / g.abs()).masked_fill(g == 0, float("nan"))
        quantiles = torch.from_numpy(nan_quantiles(coord_ratio.reshape(-1, coord_ratio.shape[-1]).numpy(), (0.5, 0.9)))
        quantiles = quantiles.view(2, *coord_ratio.shape[:2])
        cols["coord_eff_lr.median"][:, rows], cols["coord_eff_lr.p90"][:, rows] = quantiles[0], quantiles[1]

    return cols


def nan_quantiles(values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles (linear interpolation, as numpy's and torch's default) of each row of
    `values` (rows, n) over its non-NaN entries: (len(qs), rows), NaN for an all-NaN row.

    Rows with the same count of values share one np.partition (a selection, O(n)) at their
    order statistics: about 3x faster here than a sort per row (torch.nanquantile), which
    was the costliest diagnostic.
    """
    counts = np.count_nonzero(~np.isnan(values), axis=-1)
    filled = np.where(np.isnan(values), np.inf, values)  # NaN rank last
    out = np.full((len(qs), len(values)), np.nan)
    for count in np.unique(counts[counts > 0]):
        rows = counts == count
        position = (count - 1) * np.asarray(qs)
        below, above = np.floor(position).astype(int), np.ceil(position).astype(int)
        ranked = np.partition(filled[rows], sorted({*below, *above}), axis=-1)
        low, high = ranked[:, below], ranked[:, above]
        out[:, rows] = (low + (high - low) * (position - below)).T
    return out


def evaluate(thetas: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int,
             halves: bool = False) -> tuple[torch.Tensor, ...]:
    """Loss and accuracy of each parameter vector in thetas (k, P) on the set (x, y); with
    halves, also the loss on the set's first and on its second half (the points are shuffled)."""
    losses, accs, firsts, seconds = [], [], [], []
    half = x.shape[0] // 2
    for batch in thetas.split(max(1, PASS_DOUBLES // (x.shape[0] * hidden))):  # cache-sized passes
        logits = forward_batched(batch, x, hidden)  # (k, n)
        target = y.expand_as(logits)
        bce = lanewise(lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction="none"), logits, target)
        losses.append(bce.mean(dim=1))
        accs.append(((logits > 0) == (target > 0.5)).double().mean(dim=1))
        firsts.append(bce[:, :half].mean(dim=1))
        seconds.append(bce[:, half:].mean(dim=1))
    if halves:
        return torch.cat(losses), torch.cat(accs), torch.cat(firsts), torch.cat(seconds)
    return torch.cat(losses), torch.cat(accs)
