"""What every optimizer of the registry is: an Optimizer entry (its batched update over R runs
stacked on a leading axis, per-run hyperparameters as (R, 1) tensors; the independent
implementation that is its reference in the tests; its stability threshold on a quadratic,
where one exists; its labels) and the per-run hyperparameters (Hyper) a block hands its update.

No torch at the top: the workflow plans jobs with the registry (names, thresholds, labels) and
must stay fast and torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

    from optimizer_dynamics.config import RunConfig

State = dict  # name -> (R, P) tensor, the optimizer's per-run buffers


@dataclass(frozen=True)
class Hyperparameter:
    """One of an optimizer's own hyperparameters, beside the study's lr and momentum axes: its
    config key (optimizers.<optimizer>.<name>, a list of one value), its default and its allowed
    range, which the config checks and RunConfig enforce."""

    name: str
    default: float
    minimum: float  # allowed: minimum <= value (< with exclusive_minimum) ...
    maximum: float = math.inf  # ... and value <= maximum (< with exclusive_maximum)
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    symbol: str = ""  # in labels: "ε", "β₂"
    description: str = ""

    def allows(self, value: float) -> bool:
        above = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        below = value < self.maximum if self.exclusive_maximum else value <= self.maximum
        return math.isfinite(value) and above and below

    @property
    def allowed(self) -> str:
        """What allows() accepts, in words: "a number in [0, 1)", "a number > 0"."""
        low = f"{'(' if self.exclusive_minimum else '['}{self.minimum:g}"
        if math.isinf(self.maximum):
            return f"a number {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        return f"a number in {low}, {self.maximum:g}{')' if self.exclusive_maximum else ']'}"


@dataclass(frozen=True)
class Hyper:
    """Per-run hyperparameters of a block, each (R, 1) float64: lr, momentum and the
    optimizer's own (hyper.eps, hyper.beta2, ...: its Hyperparameter names)."""

    lr: torch.Tensor
    momentum: torch.Tensor  # the study's momentum axis: heavy-ball / Nesterov coefficient, or Adam's beta1
    own: dict[str, torch.Tensor]

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self.__dict__["own"][name]
        except KeyError:
            raise AttributeError(f"the optimizer declares no hyperparameter {name!r}") from None

    @classmethod
    def of(cls, configs: list[RunConfig]) -> Hyper:
        import torch

        def column(values):
            return torch.tensor(values, dtype=torch.float64)[:, None]

        own = [config.hyperparameter_values for config in configs]
        return cls(lr=column([c.lr for c in configs]), momentum=column([c.momentum for c in configs]),
                   own={name: column([values[name] for values in own]) for name in own[0]})

    def select(self, keep: torch.Tensor) -> Hyper:
        """The hyperparameters of the runs `keep` (indices into the block's runs)."""
        return Hyper(self.lr[keep], self.momentum[keep], {name: value[keep] for name, value in self.own.items()})


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
    # Its own hyperparameters beyond lr and momentum, each set in the config or left at its default.
    hyperparameters: tuple[Hyperparameter, ...] = ()
    requires_momentum: bool = False  # the momentum axis must be > 0 (torch refuses Nesterov at 0)
    order: int = 100  # its place in tables, legends and figure panels (the registry's order)

    def hyperparameter_label(self, text: str) -> str:
        """A run's hyperparameters field as labels show it: "beta2=0.999,eps=1e-08" -> "β₂ = 0.999,
        ε = 1e-08"; "" for an optimizer that declares none."""
        symbols = {h.name: h.symbol or h.name for h in self.hyperparameters}
        pairs = [item.partition("=") for item in text.split(",") if "=" in item]
        return ", ".join(f"{symbols[name]} = {value}" for name, _, value in pairs)

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
