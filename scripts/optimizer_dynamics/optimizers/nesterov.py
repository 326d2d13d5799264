"""SGD with Nesterov momentum (torch's form)."""

from optimizer_dynamics.optimizers.base import Optimizer, library_optimizer
from optimizer_dynamics.optimizers.sgd import velocity_state


def nesterov(thetas, grads, state, hyper, t):
    # torch.optim.SGD(nesterov=True): v as in heavy ball, theta -= lr (g + m v).
    velocity = state["velocity"]
    velocity.mul_(hyper.momentum).add_(grads)
    thetas.sub_(hyper.lr * (grads + hyper.momentum * velocity))


OPTIMIZER = Optimizer(
    name="nesterov",
    label="Nesterov",
    momentum_label="Nesterov momentum m",
    momentum_symbol="m",
    color="#882255",  # Tol's wine: no Okabe-Ito colour is left
    description="SGD with Nesterov momentum (torch's form); momentum > 0",
    init_state=velocity_state,
    update=nesterov,
    reference=lambda params, c: library_optimizer("torch.optim", "SGD")(params, lr=c.lr, momentum=c.momentum,
                                                                       nesterov=True),
    # Stable while lr * lam < (2 + 2m) / (1 + 2m) (Cohen et al. 2021, Appendix).
    stability_threshold=lambda lr, m: (2 + 2 * m) / ((1 + 2 * m) * lr),
    requires_momentum=True,
    order=1,
)
