"""Adam (torch's single-tensor path); its momentum axis is beta1.

With eps far above sqrt(v_hat), Adam's step is lr m_hat / eps, and m_hat = (1 - beta1) v / (1 -
beta1^t) for heavy ball's velocity v (v_t = beta1 v_(t-1) + g_t): heavy ball at lr (1 - beta1) /
eps once the bias correction 1 / (1 - beta1^t) has faded (Choi et al. 2019, "On empirical
comparisons of optimizers"). heavy_ball_lr and lr_of_heavy_ball convert between the two."""

from optimizer_dynamics.optimizers.base import Hyperparameter, Optimizer, library_optimizer


def heavy_ball_lr(lr: float, beta1: float, eps: float) -> float:
    """The heavy-ball lr whose step Adam's is at a large eps: lr (1 - beta1) / eps."""
    return lr * (1 - beta1) / eps


def lr_of_heavy_ball(heavy_ball: float, beta1: float, eps: float) -> float:
    """Adam's lr whose step at a large eps is heavy ball's at this lr: heavy_ball eps / (1 - beta1)."""
    return heavy_ball * eps / (1 - beta1)


def adam_state(thetas):
    import torch

    runs = thetas.shape[0]
    ones = torch.ones(runs, 1, dtype=thetas.dtype)
    # beta1^t and beta2^t as running products: exact multiplications give every run the same
    # values alone or in a block (a vectorized pow does not), within an ulp per step of torch's.
    return {"exp_avg": torch.zeros_like(thetas), "exp_avg_sq": torch.zeros_like(thetas),
            "beta1_power": ones, "beta2_power": ones.clone()}


def adam(thetas, grads, state, hyper, t):
    # torch.optim.Adam's single-tensor path (the CPU default), written for stacked runs.
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    state["beta1_power"].mul_(hyper.momentum)
    state["beta2_power"].mul_(hyper.beta2)
    exp_avg.lerp_(grads, 1 - hyper.momentum)
    exp_avg_sq.mul_(hyper.beta2).add_((1 - hyper.beta2) * grads * grads)
    step_size = hyper.lr / (1 - state["beta1_power"])
    denom = (exp_avg_sq.sqrt() / (1 - state["beta2_power"]).sqrt()).add_(hyper.eps)
    thetas.sub_(step_size * exp_avg / denom)


def adam_preconditioner(state, hyper, t):
    """Cohen et al. 2022's P_t = (1 - beta1^t) diag(sqrt(v_t / (1 - beta2^t)) + eps), the
    bias correction of the first moment folded in, after step t."""
    return (1 - state["beta1_power"]) * ((state["exp_avg_sq"] / (1 - state["beta2_power"])).sqrt() + hyper.eps)


OPTIMIZER = Optimizer(
    name="adam",
    label="Adam",
    momentum_label="β₁ (0 = RMSProp-like, no momentum)",
    momentum_symbol="β₁",
    color="#0072B2",  # Okabe-Ito blue
    description="the momentum axis is β₁",
    init_state=adam_state,
    update=adam,
    hyperparameters=(
        Hyperparameter("beta2", default=0.999, minimum=0, maximum=1, exclusive_maximum=True, symbol="β₂",
                       description="the second-moment decay (torch's default)"),
        Hyperparameter("eps", default=1e-8, minimum=0, exclusive_minimum=True, symbol="ε",
                       description="added to the root of the second moment (torch's default)"),
    ),
    reference=lambda params, c: library_optimizer("torch.optim", "Adam")(
        params, lr=c.lr, betas=(c.momentum, c.hyperparameter_values["beta2"]), eps=c.hyperparameter_values["eps"]
    ),
    # Preconditioned sharpness threshold (2 + 2 beta1) / ((1 - beta1) lr): 38 / lr at 0.9
    # (Cohen et al. 2022).
    stability_threshold=lambda lr, m: (2 + 2 * m) / ((1 - m) * lr),
    preconditioner=adam_preconditioner,
    order=2,
)
