"""Sign descent: momentum 0 is signSGD, theta -= lr sign(g); momentum beta > 0 is Signum,
theta -= lr sign(m), m an exponential average of the gradients (Bernstein et al. 2018). Every
coordinate moves by exactly lr: Adam's normalization per coordinate, without its second-moment
estimate (Kunstner et al. 2023: sign descent with momentum behaves like Adam)."""

from optimizer_dynamics.optimizers.base import Optimizer, library_optimizer


def average_state(thetas):
    import torch

    return {"exp_avg": torch.zeros_like(thetas)}


def signum(thetas, grads, state, hyper, t):
    # pytorch-optimizer's SignSGD: buf.lerp_(g, 1 - beta) (at beta 0 the buffer is g itself),
    # theta -= lr sign(buf)
    exp_avg = state["exp_avg"]
    exp_avg.lerp_(grads, 1 - hyper.momentum)
    thetas.sub_(hyper.lr * exp_avg.sign())


OPTIMIZER = Optimizer(
    name="sign",
    label="Sign descent",
    momentum_label="β (0 = signSGD, > 0 Signum: the sign of an average of the gradients)",
    momentum_symbol="β",
    color="#009E73",  # Okabe-Ito bluish green
    description="each coordinate steps by lr along the sign of the gradient (signSGD) or of its average (Signum)",
    init_state=average_state,
    update=signum,
    reference=lambda params, c: library_optimizer("pytorch_optimizer", "SignSGD")(
        params, lr=c.lr, momentum=c.momentum, weight_decay=0.0, foreach=False),
    stability_threshold=None,  # a step of fixed size: no curvature makes it diverge on a quadratic
    order=3,
)
