"""Gradient noise, measured exactly: per-sample gradients over the whole training set.

Cockpit (Schneider, Dangel and Hennig, 2021) estimates these instruments from each minibatch;
the model here has 513 parameters and 500 training points, so every per-sample gradient g_i
(the gradient of point i's loss) is computed in closed form at a logged step and the
instruments are the population values over the training set (N points, G = mean_i g_i the
full-batch gradient, Sigma = mean_i (g_i - G)(g_i - G)^T):

  noise.trace_cov   tr(Sigma)
  noise.b_simple    B_simple = tr(Sigma) / |G|^2, the simple gradient noise scale of McCandlish
                    et al. (2018, An Empirical Model of Large-Batch Training): the batch size
                    around which a minibatch gradient is as much noise as signal.
  noise.gsnr_mean   mean over coordinates of G_j^2 / Sigma_jj, the gradient signal-to-noise
                    ratio of Liu et al. (2020) that Cockpit's MeanGSNR tracks; coordinates
                    whose per-sample gradients are all equal (Sigma_jj = 0, e.g. a dead ReLU
                    unit's) are left out.
  noise.norm_test   sqrt(tr(Sigma) / (B |G|^2)) = sqrt(B_simple / B) for the run's batch size B
                    (N at full batch): the norm test of Byrd et al. (2012), in Cockpit's form
                    (the largest theta with E|g_B - G|^2 <= theta^2 |G|^2, sampling with
                    replacement); above 1 the batch is too small for the test.
  noise.alpha       Cockpit's alpha: the step from theta_t to theta_t+1 placed on the 1-D
                    quadratic fitted to the full-batch loss and directional derivative at both
                    ends (Cockpit's weighted fit, with the per-sample variances over the
                    training set as its weights): 0 lands at the quadratic's minimum, -1 stays
                    at the start, 1 lands level on the far side; a concave fit gives -1, as in
                    Cockpit.

They are logged at the steps with step % noise_every == 0 (RunConfig.noise_every; 0 = never),
NaN elsewhere, in bulk at the end of each chunk of steps like the other diagnostics.
"""

from __future__ import annotations

import torch

from optimizer_dynamics.model import forward_layers, layer_views, with_ones

NOISE_COLUMNS = ["noise.trace_cov", "noise.b_simple", "noise.gsnr_mean", "noise.norm_test", "noise.alpha"]
COLUMN_DOCS = {
    "noise.trace_cov": "tr(Sigma), Sigma the covariance of the per-sample gradients over the train set at "
    "theta_t (noise steps only, RunConfig.noise_every; else NaN)",
    "noise.b_simple": "simple noise scale tr(Sigma) / |G|^2, G the full-batch gradient (McCandlish et al. 2018)",
    "noise.gsnr_mean": "mean over coordinates with Sigma_jj > 0 of G_j^2 / Sigma_jj (Liu et al. 2020)",
    "noise.norm_test": "sqrt(tr(Sigma) / (batch_size |G|^2)): Byrd et al.'s norm test as Cockpit computes it",
    "noise.alpha": "Cockpit's alpha of the step theta_t -> theta_t+1 on the full-batch loss "
    "(0: to the minimum of the 1-D quadratic, 1: level on its far side)",
}
# Cockpit's stand-in for a zero variance in the fit (it would make a weight infinite).
ZERO_VARIANCE = 1e-10


def gradient_moments(thetas: torch.Tensor, direction: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     hidden: int) -> dict[str, torch.Tensor]:
    """For k parameter vectors thetas (k, P) over the N points (x, y), without materializing
    the (k, N, P) per-sample gradients: each point's loss (k, N), the full-batch gradient G and
    the per-coordinate second moment mean_i g_ij^2 (k, P), and each point's gradient projected
    on a unit direction (k, P), g_i . u (k, N).

    The two-layer MLP's per-sample gradient factorizes: with r_i = sigmoid(z_i) - y_i and
    a_i = fc2.weight * 1[pre_i > 0], g_i is r_i h_i (fc2.weight), r_i (fc2.bias), r_i a_i x_i^T
    (fc1.weight) and r_i a_i (fc1.bias), so every moment is a product over points of
    (N, hidden) factors (tests/test_noise.py checks them against an autograd loop)."""
    k, n = thetas.shape[0], x.shape[0]
    v, u = layer_views(thetas, hidden), layer_views(direction, hidden)
    x1 = with_ones(x).expand(k, n, 3)
    pre, h, logits = forward_layers(v, x1)
    target = y.expand_as(logits)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    r = torch.sigmoid(logits) - target  # (k, N): d loss_i / d logit_i
    # (k, N, H): d loss_i / d pre_i, through ReLU's backward as model.py takes it (cheaper than a mask)
    ra = torch.ops.aten.threshold_backward(r[:, :, None] * v["fc2.weight"], pre, 0)
    r2 = r.square()
    mean, second = torch.empty_like(thetas), torch.empty_like(thetas)
    m, s = layer_views(mean, hidden), layer_views(second, hidden)
    fc1 = torch.bmm(ra.transpose(1, 2), x1) / n  # (k, H, 3): [weight | bias]
    fc1_second = torch.bmm(ra.square().transpose(1, 2), x1.square()) / n
    m["fc1.weight"].copy_(fc1[..., :2]), m["fc1.bias"].copy_(fc1[..., 2])
    s["fc1.weight"].copy_(fc1_second[..., :2]), s["fc1.bias"].copy_(fc1_second[..., 2])
    m["fc2.weight"].copy_(torch.bmm(r[:, None, :], h) / n), m["fc2.bias"].copy_(r.mean(1, keepdim=True))
    s["fc2.weight"].copy_(torch.bmm(r2[:, None, :], h.square()) / n), s["fc2.bias"].copy_(r2.mean(1, keepdim=True))
    # g_i . u in (N, 3) and (N, 1) products: sum_j ra_ij (U1 [x_i, 1])_j = [x_i, 1] . (ra U1)_i
    u1 = torch.cat([u["fc1.weight"], u["fc1.bias"][..., None]], dim=-1)  # (k, H, 3)
    along_fc1 = (torch.bmm(ra, u1) * x1).sum(-1)
    along_fc2 = torch.bmm(h, u["fc2.weight"].transpose(1, 2))[..., 0] + u["fc2.bias"]
    projected = along_fc1 + r * along_fc2
    return {"losses": losses, "mean": mean, "second": second, "projected": projected}


def gradient_noise(mean: torch.Tensor, second: torch.Tensor) -> dict[str, torch.Tensor]:
    """tr(Sigma), B_simple and the mean GSNR (each (k,)) from G and mean_i g_ij^2 (k, P)."""
    variance = (second - mean.square()).clamp_min(0)  # Sigma's diagonal; rounding can dip below 0
    trace = variance.sum(dim=1)
    noisy = variance > 0
    gsnr = torch.where(noisy, mean.square() / torch.where(noisy, variance, 1.0), 0.0)
    return {"noise.trace_cov": trace, "noise.b_simple": trace / mean.square().sum(dim=1),
            "noise.gsnr_mean": gsnr.sum(dim=1) / noisy.sum(dim=1)}


def fit_alpha(distance, f, df, var_f, var_df) -> torch.Tensor:
    """Cockpit's alpha from two observations of a 1-D function, at 0 and at `distance` (k,):
    values f (k, 2), derivatives df (k, 2) and their variances. The quadratic
    q(s) = mu0 + mu1 s + mu2 s^2 is fitted by weighted least squares (weights 1 / variance);
    alpha = 2 distance / (-mu1 / mu2) - 1, and -1 where the fit is concave."""
    zero, one = torch.zeros_like(distance), torch.ones_like(distance)
    # rows: f(0), f(t), f'(0), f'(t) as linear functions of (mu0, mu1, mu2)
    design = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([one, distance, distance**2], -1),
                          torch.stack([zero, one, zero], -1), torch.stack([zero, one, 2 * distance], -1)], dim=1)
    observed = torch.cat([f, df], dim=1)  # (k, 4)
    weight = 1 / torch.cat([var_f, var_df], dim=1).clamp_min(ZERO_VARIANCE)
    normal = design.transpose(1, 2) @ (weight[..., None] * design)
    # A step that did not move, or a diverging run's overflowing values, has no fit: NaN.
    fitted = torch.isfinite(normal).flatten(1).all(1) & torch.isfinite(observed).all(1) & (distance > 0)
    normal = torch.where(fitted[:, None, None], normal, torch.eye(3, dtype=normal.dtype))
    rhs = design.transpose(1, 2) @ (weight * observed).nan_to_num()[..., None]
    mu, info = torch.linalg.solve_ex(normal, rhs)
    mu, fitted = mu[..., 0], fitted & (info == 0)
    alpha = torch.where(mu[:, 2] < 0, -1.0, 2 * distance * mu[:, 2] / -mu[:, 1] - 1)
    return torch.where(fitted, alpha, float("nan"))


def noise_instruments(before: torch.Tensor, after: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      hidden: int, batch_size: int) -> dict[str, torch.Tensor]:
    """NOISE_COLUMNS (each (k,)) of k steps from theta_t = before (k, P) to theta_t+1 = after.

    The moments are taken one step at a time: the kernels that batched products pick depend on
    the batch's size, and a run's values must not depend on how many runs share its block
    (tests/test_engine.py); what follows is row by row, for all k at once."""
    step = after - before
    distance = step.norm(dim=1)
    parts = {"mean": [], "second": [], "f": [], "df": [], "var_f": [], "var_df": []}
    for start, end, direction in zip(before, after, step / distance[:, None]):
        moments = gradient_moments(torch.stack([start, end]), direction.expand(2, -1), x, y, hidden)
        losses, projected = moments["losses"], moments["projected"]
        for name, value in (("mean", moments["mean"][0]), ("second", moments["second"][0]),
                            ("f", losses.mean(1)), ("df", projected.mean(1)),
                            ("var_f", losses.var(1)), ("var_df", projected.var(1))):
            parts[name].append(value)
    stacked = {name: torch.stack(values) for name, values in parts.items()}
    values = gradient_noise(stacked["mean"], stacked["second"])
    values["noise.norm_test"] = (values["noise.b_simple"] / batch_size).sqrt()
    values["noise.alpha"] = fit_alpha(distance, stacked["f"], stacked["df"], stacked["var_f"], stacked["var_df"])
    return {name: values[name] for name in NOISE_COLUMNS}
