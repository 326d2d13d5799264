"""MLP 2 -> hidden -> 1 (ReLU, He init, zero biases) as a function of one flat parameter
vector theta, for a stack of R runs at once: thetas (R, P).

One forward and one closed-form backward serve every run of a block: each run's loss is
the mean over its own batch, and the gradient of run r depends on run r's parameters and
batch only (batched matrix products, no mixing across the run axis). The closed form is
checked against autograd in tests/test_model.py; it avoids autograd's graph bookkeeping,
which dominates a step of a 513-parameter model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def tensor_shapes(hidden: int) -> dict[str, tuple[int, ...]]:
    """The model's parameter tensors, in the order they are laid out in theta."""
    return {
        "fc1.weight": (hidden, 2),
        "fc1.bias": (hidden,),
        "fc2.weight": (1, hidden),
        "fc2.bias": (1,),
    }


def tensor_slices(hidden: int) -> dict[str, slice]:
    slices, start = {}, 0
    for name, shape in tensor_shapes(hidden).items():
        size = math.prod(shape)
        slices[name] = slice(start, start + size)
        start += size
    return slices


def n_params(hidden: int) -> int:
    return sum(math.prod(shape) for shape in tensor_shapes(hidden).values())


def layer_views(theta: torch.Tensor, hidden: int) -> dict[str, torch.Tensor]:
    """The parameter tensors as views of theta (P,), or of a batch of vectors (k, P)."""
    lead = theta.shape[:-1]
    return {
        name: theta[..., s].reshape(*lead, *shape)
        for (name, s), shape in zip(tensor_slices(hidden).items(), tensor_shapes(hidden).values())
    }


def init_params(hidden: int, generator: torch.Generator) -> torch.Tensor:
    """He init (Kaiming normal, fan_in, ReLU gain: std = sqrt(2 / fan_in)), zero biases, float64.

    Draws exactly what torch.nn.init.kaiming_normal_ draws for nn.Linear(2, hidden) and then
    nn.Linear(hidden, 1) from `generator`, so the generator's state afterwards (the batch
    order is drawn from it next) is the same as after building the torch.nn model.
    """
    theta = torch.zeros(n_params(hidden), dtype=torch.float64)
    views = layer_views(theta, hidden)
    for name in ("fc1.weight", "fc2.weight"):
        fan_in = views[name].shape[1]
        views[name].normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
    return theta


# Vectorized transcendental kernels (exp, log1p, sigmoid) round differently from their scalar
# tail loops, and which elements of a run fall in the tail depends on how many runs share the
# tensor. Rows padded to a multiple of LANES doubles (two AVX-512 vectors) are computed in the
# vector loop only, so a run's values do not depend on its block.
LANES = 16


def lanewise(fn, *tensors: torch.Tensor):
    """fn applied to 2-D tensors whose rows are zero-padded to a multiple of LANES; the
    results (one tensor or a tuple) cut back to the original row length."""
    n = tensors[0].shape[-1]
    pad = -n % LANES
    results = fn(*(F.pad(t, (0, pad)) for t in tensors))
    if isinstance(results, tuple):
        return tuple(r[..., :n] for r in results)
    return results[..., :n]


# The (runs, batch, hidden) intermediates of one pass are kept near this many doubles (1 MiB):
# beyond the cache every elementwise pass runs at memory speed (measured: at batch 64, 16 runs
# a pass cost 57 us a run-step, 60 runs 80 us; at batch 500 no stacking helps).
PASS_DOUBLES = 2**17


class StackedMLP:
    """The parameters of R runs, thetas (R, P), which the optimizer updates in place, their
    gradients `grad` (R, P), and one forward and closed-form backward for all of them.

    The runs go through in passes of cache-sized stacks (PASS_DOUBLES); the views of each
    pass's parameters and gradients are made once. A run's values do not depend on which
    runs share its pass or its block.
    """

    def __init__(self, thetas: torch.Tensor, hidden: int, batch: int):
        self.thetas, self.hidden = thetas, hidden
        self.grad = torch.empty_like(thetas)
        runs = thetas.shape[0]
        passes = math.ceil(runs / max(1, PASS_DOUBLES // (batch * hidden)))
        size = math.ceil(runs / passes)  # balanced: 20 runs as 10 + 10, not 16 + 4
        self.passes = [slice(start, start + size) for start in range(0, runs, size)]
        self.views = [(layer_views(thetas[s], hidden), layer_views(self.grad[s], hidden)) for s in self.passes]

    def loss_and_grad(self, x1: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (R, B) and mean BCE-with-logits losses (R,); each run's gradient of its own
        loss goes to self.grad. x1: the inputs with a column of ones, [x, 1], (B, 3) shared
        by every run (full batch) or (R, B, 3) a batch per run; y: (B,) or (R, B)."""
        if len(self.passes) == 1:
            return _loss_and_grad_pass(*self.views[0], x1, y)
        parts = [
            _loss_and_grad_pass(*views, x1 if x1.dim() == 2 else x1[s], y if y.dim() == 1 else y[s])
            for s, views in zip(self.passes, self.views)
        ]
        return torch.cat([logits for logits, _ in parts]), torch.cat([loss for _, loss in parts])


def with_ones(x: torch.Tensor) -> torch.Tensor:
    """[x, 1]: inputs (..., 2) with a column of ones, so one product gives fc1's weight and bias terms."""
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)


def _loss_and_grad_pass(v, g, x1, y):
    runs = v["fc1.weight"].shape[0]
    x1s = x1.expand(runs, *x1.shape) if x1.dim() == 2 else x1
    pre, h, logits = forward_layers(v, x1s)
    target = y.expand_as(logits)
    losses, prob = lanewise(lambda z, t: (F.binary_cross_entropy_with_logits(z, t, reduction="none"), torch.sigmoid(z)),
                            logits, target)

    dz = (prob - target) / logits.shape[1]  # d loss_r / d logit, (R, B)
    # ReLU's backward, as autograd runs it (a boolean mask times a float tensor costs 8x more here)
    w2 = v["fc2.weight"]  # (R, 1, H)
    dpre = torch.ops.aten.threshold_backward(dz[:, :, None] * w2, pre, 0)  # (R, B, H)
    # fc1's weight and bias gradients in one batched product with [x, 1]: the bias gradient
    # written as a sum over the batch axis would be ordered differently for R = 1 and R > 1.
    g1 = torch.bmm(dpre.transpose(1, 2), x1s)  # (R, H, 3)
    g["fc1.weight"].copy_(g1[..., :2])
    g["fc1.bias"].copy_(g1[..., 2])
    g["fc2.weight"].copy_(torch.bmm(dz[:, None, :], h))  # (1, B) x (B, H) per run
    g["fc2.bias"].copy_(dz.sum(dim=1, keepdim=True))
    return logits, losses.mean(dim=1)


def forward_batched(thetas: torch.Tensor, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """Logits (k, n) of k parameter vectors thetas (k, P) on one set x (n, 2): evaluates many
    recorded snapshots in one batched pass."""
    x1 = with_ones(x)
    return forward_layers(layer_views(thetas, hidden), x1.expand(thetas.shape[0], *x1.shape))[-1]


def forward_layers(v, x1s):
    """Pre-activations, hidden activations (R, B, H) and logits (R, B) for inputs [x, 1] (R, B, 3)."""
    w1b = torch.cat([v["fc1.weight"], v["fc1.bias"][..., None]], dim=-1)  # (R, H, 3)
    pre = torch.bmm(x1s, w1b.transpose(1, 2))
    h = torch.relu(pre)
    # (1, H) x (H, B) per run. Written as (B, H) x (H, 1), bmm picks its kernel by R and a run's
    # logits would change with the size of its block.
    logits = torch.bmm(v["fc2.weight"], h.transpose(1, 2))[:, 0] + v["fc2.bias"]  # (R, B)
    return pre, h, logits
