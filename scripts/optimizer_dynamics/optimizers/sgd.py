"""SGD: momentum 0 is plain SGD, momentum > 0 heavy ball (torch's form)."""

from optimizer_dynamics.optimizers.base import Optimizer, library_optimizer


def velocity_state(thetas):
    import torch

    return {"velocity": torch.zeros_like(thetas)}


def heavy_ball(thetas, grads, state, hyper, t):
    # torch.optim.SGD: v_1 = g_1, v_t = m v_(t-1) + g_t, theta -= lr v. Starting from v = 0 the
    # first step gives exactly g, and m = 0 gives plain SGD exactly.
    velocity = state["velocity"]
    velocity.mul_(hyper.momentum).add_(grads)
    thetas.sub_(hyper.lr * velocity)


OPTIMIZER = Optimizer(
    name="sgd",
    label="SGD",
    momentum_label="momentum m (0 = plain SGD, > 0 heavy ball)",
    momentum_symbol="m",
    color="#D55E00",  # Okabe-Ito vermillion (figures keep the other Okabe-Ito colours for momenta)
    description="stochastic gradient descent; momentum 0 is plain SGD, momentum > 0 heavy ball",
    init_state=velocity_state,
    update=heavy_ball,
    reference=lambda params, c: library_optimizer("torch.optim", "SGD")(params, lr=c.lr, momentum=c.momentum),
    # Heavy ball on a quadratic is stable while lr * lam < 2 (1 + m) (Cohen et al. 2021).
    stability_threshold=lambda lr, m: 2 * (1 + m) / lr,
    order=0,
)
