"""Optimizer registry: adding an optimizer is one entry mapping a name to a constructor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from optimizer_dynamics.config import RunConfig


def _sgd(params, c: RunConfig) -> torch.optim.Optimizer:
    # momentum 0 is plain SGD; momentum > 0 is heavy ball: v = m*v + g; p -= lr*v.
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov)


def _adam(params, c: RunConfig) -> torch.optim.Optimizer:
    # The study's single "momentum" axis is Adam's beta1.
    return torch.optim.Adam(params, lr=c.lr, betas=(c.momentum, c.adam_beta2), eps=c.adam_eps)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def make_optimizer(params, config: RunConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](params, config)
