"""What every optimizer of the registry is: an Optimizer entry (its batched update over R runs
stacked on a leading axis, per-run hyperparameters as (R, 1) tensors; the independent
implementation that is its reference in the tests; its stability threshold on a quadratic,
where one exists; its labels) and the per-run hyperparameters (Hyper) a block hands its update.

No torch at the top: the workflow plans jobs with the registry (names, thresholds, labels) and
must stay fast and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

    from optimizer_dynamics.config import RunConfig

State = dict  # name -> (R, P) tensor, the optimizer's per-run buffers


@dataclass(frozen=True)
class Hyper:
    """Per-run hyperparameters of a block, each (R, 1) float64."""

    lr: torch.Tensor
    momentum: torch.Tensor  # the study's momentum axis: heavy-ball / Nesterov coefficient, or Adam's beta1
    beta2: torch.Tensor
    eps: torch.Tensor

    @classmethod
    def of(cls, configs: list[RunConfig]) -> Hyper:
        import torch

        def column(values):
            return torch.tensor(values, dtype=torch.float64)[:, None]

        return cls(
            lr=column([c.lr for c in configs]),
            momentum=column([c.momentum for c in configs]),
            beta2=column([c.adam_beta2 for c in configs]),
            eps=column([c.adam_eps for c in configs]),
        )

    def select(self, keep: torch.Tensor) -> Hyper:
        """The hyperparameters of the runs `keep` (indices into the block's runs)."""
        return Hyper(self.lr[keep], self.momentum[keep], self.beta2[keep], self.eps[keep])


@dataclass(frozen=True)
class Optimizer:
    name: str  # the config's key and the runs' `optimizer` column
    label: str  # display name
    momentum_label: str  # what the momentum axis means for it, in the report's text
    momentum_symbol: str  # the axis in figure labels and table headers: "m", "β₁"
    color: str  # its colour in every figure
    description: str  # a phrase for the report: "<label> (<description>)"
    # state = init_state(thetas); update(thetas, grads, state, hyper, t) moves thetas in place,
    # t = number of steps taken including this one (1 at the first step).
    init_state: Callable[[torch.Tensor], State]
    update: Callable[[torch.Tensor, torch.Tensor, State, Hyper, int], None]
    # reference(params, config) -> an independent implementation (torch.optim, a well-kept
    # library, or a per-tensor loop from the paper) the batched update must reproduce.
    reference: Callable[[list, RunConfig], torch.optim.Optimizer]
    # The curvature above which the update diverges on a quadratic, as a function of (lr, momentum);
    # None where no such threshold exists (a sign or normalized step has a fixed size).
    stability_threshold: Callable[[float, float], float] | None
    # For adaptive methods: P (R, P) after a step, so that the stability quantity is the top
    # eigenvalue of P^-1 H (Cohen et al. 2022); None: the plain sharpness is compared.
    preconditioner: Callable[[State, Hyper, int], torch.Tensor] | None = None
    requires_momentum: bool = False  # the momentum axis must be > 0 (torch refuses Nesterov at 0)
    order: int = 100  # its place in tables, legends and figure panels (the registry's order)

    @property
    def adaptive(self) -> bool:
        """Its threshold is met by the preconditioned sharpness, not the plain one."""
        return self.preconditioner is not None

    @property
    def stability_quantity(self) -> str:
        return "preconditioned sharpness" if self.adaptive else "sharpness"


def library_optimizer(module: str, class_name: str):
    """<module>.<class_name>, imported only when a reference is built (tests, benchmarks)."""
    import importlib

    return getattr(importlib.import_module(module), class_name)
