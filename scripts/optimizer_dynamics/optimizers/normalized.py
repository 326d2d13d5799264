"""Normalized gradient descent: theta -= lr v / |v|, v an exponential average of the gradients
(beta 0: v = g). Adam's normalization of the step as a whole, without per-coordinate scaling:
every step has length lr."""

from optimizer_dynamics.optimizers.base import Optimizer
from optimizer_dynamics.optimizers.sign import average_state


def normalized(thetas, grads, state, hyper, t):
    exp_avg = state["exp_avg"]
    exp_avg.lerp_(grads, 1 - hyper.momentum)
    norm = exp_avg.square().sum(dim=1, keepdim=True).sqrt()  # per run: |v| over all its parameters
    thetas.sub_(hyper.lr * exp_avg / norm)


def reference(params, config):
    """The same rule written per parameter tensor with torch.optim's machinery, |v| over all of
    them (summed in the flat order of the engine's parameter vector: a chaotic full-batch
    trajectory amplifies a difference in the last bit)."""
    import torch

    class NormalizedGD(torch.optim.Optimizer):
        def __init__(self, params, lr, momentum):
            super().__init__(params, {"lr": lr, "momentum": momentum})

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                averages = []
                for p in group["params"]:
                    state = self.state[p]
                    state.setdefault("exp_avg", torch.zeros_like(p)).lerp_(p.grad, 1 - group["momentum"])
                    averages.append(state["exp_avg"])
                norm = torch.cat([v.ravel() for v in averages]).square().sum().sqrt()
                for p, v in zip(group["params"], averages):
                    p.sub_(group["lr"] * v / norm)

    return NormalizedGD(params, config.lr, config.momentum)


OPTIMIZER = Optimizer(
    name="normalized",
    label="Normalized GD",
    momentum_label="β (0 = the gradient's direction, > 0 that of its average)",
    momentum_symbol="β",
    color="#CC79A7",  # Okabe-Ito reddish purple
    description="every step has length lr along the gradient (or its average): normalized, not per coordinate",
    init_state=average_state,
    update=normalized,
    reference=reference,
    stability_threshold=None,  # a step of fixed length
    order=4,
)
