"""Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms"): theta -= lr
sign(beta1 m + (1 - beta1) g), then m = beta2 m + (1 - beta2) g. The momentum axis is beta1;
beta2 is the paper's default, 0.99 (BETA2)."""

from optimizer_dynamics.optimizers.base import Optimizer, library_optimizer
from optimizer_dynamics.optimizers.sign import average_state

BETA2 = 0.99  # the paper's default: the average the update does not see decays slower


def lion(thetas, grads, state, hyper, t):
    # lion-pytorch's update_fn, written for stacked runs
    exp_avg = state["exp_avg"]
    thetas.sub_(hyper.lr * (exp_avg * hyper.momentum + (1 - hyper.momentum) * grads).sign())
    exp_avg.mul_(BETA2).add_((1 - BETA2) * grads)


OPTIMIZER = Optimizer(
    name="lion",
    label="Lion",
    momentum_label="β₁ (the average the update's sign is taken of; β₂ = 0.99)",
    momentum_symbol="β₁",
    color="#E69F00",  # Okabe-Ito orange
    description="the sign of an interpolation of the gradient and a slower average (β₂ = 0.99)",
    init_state=average_state,
    update=lion,
    reference=lambda params, c: library_optimizer("lion_pytorch", "Lion")(params, lr=c.lr, betas=(c.momentum, BETA2)),
    stability_threshold=None,  # a step of fixed size
    order=5,
)
