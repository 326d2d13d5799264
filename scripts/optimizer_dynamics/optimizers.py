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
