"""Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms"): theta -= lr
sign(beta1 m + (1 - beta1) g), then m = beta2 m + (1 - beta2) g. The momentum axis is beta1;
beta2 is its own hyperparameter, by default the paper's 0.99."""

from optimizer_dynamics.optimizers.base import Hyperparameter, Optimizer, library_optimizer
from optimizer_dynamics.optimizers.sign import average_state


def lion(thetas, grads, state, hyper, t):
    # lion-pytorch's update_fn, written for stacked runs
    exp_avg = state["exp_avg"]
    thetas.sub_(hyper.lr * (exp_avg * hyper.momentum + (1 - hyper.momentum) * grads).sign())
    exp_avg.mul_(hyper.beta2).add_((1 - hyper.beta2) * grads)


OPTIMIZER = Optimizer(
    name="lion",
    label="Lion",
    momentum_label="β₁ (the average the update's sign is taken of)",
    momentum_symbol="β₁",
    color="#E69F00",  # Okabe-Ito orange
    description="the sign of an interpolation of the gradient and a slower average (β₂)",
    init_state=average_state,
    update=lion,
    hyperparameters=(
        Hyperparameter("beta2", default=0.99, minimum=0, maximum=1, exclusive_maximum=True, symbol="β₂",
                       description="the decay of the average the update does not see (the paper's default)"),
    ),
    reference=lambda params, c: library_optimizer("lion_pytorch", "Lion")(
        params, lr=c.lr, betas=(c.momentum, c.hyperparameter_values["beta2"])),
    stability_threshold=None,  # a step of fixed size
    order=5,
)
