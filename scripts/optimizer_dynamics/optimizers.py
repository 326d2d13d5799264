"""Optimizer registry: adding an optimizer is one entry, a name mapped to the torch.optim
class and its keyword arguments built from the run config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

    from optimizer_dynamics.config import RunConfig

OPTIMIZERS: dict[str, Callable[[RunConfig], tuple[str, dict]]] = {
    # momentum 0 is plain SGD; momentum > 0 is heavy ball: v = m*v + g; p -= lr*v.
    "sgd": lambda c: ("SGD", {"lr": c.lr, "momentum": c.momentum, "nesterov": c.nesterov}),
    # The study's single "momentum" axis is Adam's beta1.
    "adam": lambda c: ("Adam", {"lr": c.lr, "betas": (c.momentum, c.adam_beta2), "eps": c.adam_eps}),
}


def make_optimizer(params, config: RunConfig) -> torch.optim.Optimizer:
    # torch is imported here, not at the top: RunConfig validates names against this registry
    # and must stay importable without torch (the workflow plans jobs with it in ~0.1 s).
    import torch

    class_name, kwargs = OPTIMIZERS[config.optimizer](config)
    return getattr(torch.optim, class_name)(params, **kwargs)


def stability_threshold(optimizer: str, lr: float, momentum: float) -> float:
    """The curvature above which this optimizer diverges on a quadratic: 2 (1 + m) / lr for SGD
    with heavy ball m (torch's form, v = m v + g), and (2 + 2 beta1) / ((1 - beta1) lr) for Adam,
    whose stability quantity is the preconditioned sharpness (Cohen et al. 2021, 2022)."""
    if optimizer == "adam":
        return (2 + 2 * momentum) / ((1 - momentum) * lr)
    return 2 * (1 + momentum) / lr
