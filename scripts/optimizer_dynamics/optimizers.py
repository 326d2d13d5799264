"""The optimizer registry: the one place an optimizer is defined.

Each entry holds the batched update (R runs stacked on a leading axis, per-run
hyperparameters as (R, 1) tensors), the torch.optim class that is its oracle (tests check
the batched trajectory against it), its stability threshold on a quadratic, and its display
labels. Training, aggregation, verdicts, figures, the config checks and the report read
entries from here; adding an optimizer is adding an entry.

This module imports no torch at the top: the workflow plans jobs with it (the names, the
thresholds, the labels) and must stay fast and torch-free.
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
    # torch_oracle(params, config) -> the torch.optim optimizer this entry reproduces.
    torch_oracle: Callable[[list, RunConfig], torch.optim.Optimizer]
    # The curvature above which the update diverges on a quadratic, as a function of (lr, momentum).
    stability_threshold: Callable[[float, float], float]
    # For adaptive methods: P (R, P) after a step, so that the stability quantity is the top
    # eigenvalue of P^-1 H (Cohen et al. 2022); None: the plain sharpness is compared.
    preconditioner: Callable[[State, Hyper, int], torch.Tensor] | None = None
    requires_momentum: bool = False  # the momentum axis must be > 0 (torch refuses Nesterov at 0)

    @property
    def adaptive(self) -> bool:
        """Its threshold is met by the preconditioned sharpness, not the plain one."""
        return self.preconditioner is not None

    @property
    def stability_quantity(self) -> str:
        return "preconditioned sharpness" if self.adaptive else "sharpness"


# --- SGD and heavy ball --------------------------------------------------------------------


def _velocity_state(thetas):
    import torch

    return {"velocity": torch.zeros_like(thetas)}


def _heavy_ball(thetas, grads, state, hyper, t):
    # torch.optim.SGD: v_1 = g_1, v_t = m v_(t-1) + g_t, theta -= lr v. Starting from v = 0 the
    # first step gives exactly g, and m = 0 gives plain SGD exactly.
    velocity = state["velocity"]
    velocity.mul_(hyper.momentum).add_(grads)
    thetas.sub_(hyper.lr * velocity)


def _nesterov(thetas, grads, state, hyper, t):
    # torch.optim.SGD(nesterov=True): v as in heavy ball, theta -= lr (g + m v).
    velocity = state["velocity"]
    velocity.mul_(hyper.momentum).add_(grads)
    thetas.sub_(hyper.lr * (grads + hyper.momentum * velocity))


# --- Adam -----------------------------------------------------------------------------------


def _adam_state(thetas):
    import torch

    runs = thetas.shape[0]
    ones = torch.ones(runs, 1, dtype=thetas.dtype)
    # beta1^t and beta2^t as running products: exact multiplications give every run the same
    # values alone or in a block (a vectorized pow does not), within an ulp per step of torch's.
    return {"exp_avg": torch.zeros_like(thetas), "exp_avg_sq": torch.zeros_like(thetas),
            "beta1_power": ones, "beta2_power": ones.clone()}


def _adam(thetas, grads, state, hyper, t):
    # torch.optim.Adam's single-tensor path (the CPU default), written for stacked runs.
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    state["beta1_power"].mul_(hyper.momentum)
    state["beta2_power"].mul_(hyper.beta2)
    exp_avg.lerp_(grads, 1 - hyper.momentum)
    exp_avg_sq.mul_(hyper.beta2).add_((1 - hyper.beta2) * grads * grads)
    step_size = hyper.lr / (1 - state["beta1_power"])
    denom = (exp_avg_sq.sqrt() / (1 - state["beta2_power"]).sqrt()).add_(hyper.eps)
    thetas.sub_(step_size * exp_avg / denom)


def _adam_preconditioner(state, hyper, t):
    """Cohen et al. 2022's P_t = (1 - beta1^t) diag(sqrt(v_t / (1 - beta2^t)) + eps), the
    bias correction of the first moment folded in, after step t."""
    return (1 - state["beta1_power"]) * ((state["exp_avg_sq"] / (1 - state["beta2_power"])).sqrt() + hyper.eps)


def _torch_optim(class_name: str):
    """torch.optim.<class_name>, imported only when an oracle is built (tests, benchmarks)."""
    import torch

    return getattr(torch.optim, class_name)


OPTIMIZERS: dict[str, Optimizer] = {
    entry.name: entry
    for entry in (
        Optimizer(
            name="sgd",
            label="SGD",
            momentum_label="momentum m (0 = plain SGD, > 0 heavy ball)",
            momentum_symbol="m",
            color="#D55E00",  # Okabe-Ito vermillion (figures keep the other Okabe-Ito colours for momenta)
            description="stochastic gradient descent; momentum 0 is plain SGD, momentum > 0 heavy ball",
            init_state=_velocity_state,
            update=_heavy_ball,
            torch_oracle=lambda params, c: _torch_optim("SGD")(params, lr=c.lr, momentum=c.momentum),
            # Heavy ball on a quadratic is stable while lr * lam < 2 (1 + m) (Cohen et al. 2021).
            stability_threshold=lambda lr, m: 2 * (1 + m) / lr,
        ),
        Optimizer(
            name="nesterov",
            label="Nesterov",
            momentum_label="Nesterov momentum m",
            momentum_symbol="m",
            color="#882255",  # Tol's wine: no Okabe-Ito colour is left
            description="SGD with Nesterov momentum (torch's form); momentum > 0",
            init_state=_velocity_state,
            update=_nesterov,
            torch_oracle=lambda params, c: _torch_optim("SGD")(params, lr=c.lr, momentum=c.momentum, nesterov=True),
            # Stable while lr * lam < (2 + 2m) / (1 + 2m) (Cohen et al. 2021, Appendix).
            stability_threshold=lambda lr, m: (2 + 2 * m) / ((1 + 2 * m) * lr),
            requires_momentum=True,
        ),
        Optimizer(
            name="adam",
            label="Adam",
            momentum_label="β₁ (0 = RMSProp-like, no momentum)",
            momentum_symbol="β₁",
            color="#0072B2",  # Okabe-Ito blue
            description="the momentum axis is β₁",
            init_state=_adam_state,
            update=_adam,
            torch_oracle=lambda params, c: _torch_optim("Adam")(
                params, lr=c.lr, betas=(c.momentum, c.adam_beta2), eps=c.adam_eps
            ),
            # Preconditioned sharpness threshold (2 + 2 beta1) / ((1 - beta1) lr): 38 / lr at 0.9
            # (Cohen et al. 2022).
            stability_threshold=lambda lr, m: (2 + 2 * m) / ((1 - m) * lr),
            preconditioner=_adam_preconditioner,
        ),
    )
}


def stability_threshold(optimizer: str, lr: float, momentum: float) -> float:
    value = OPTIMIZERS[optimizer].stability_threshold(lr, momentum)
    return value if math.isfinite(value) else math.inf
