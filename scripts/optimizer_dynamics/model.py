"""MLP 2 -> hidden -> 1 (ReLU, He init, zero biases) over one flat parameter vector.

All weights live in one vector `theta`; the layers are views of it. The optimizer then
updates one tensor per step (fewer, larger tensor operations: the cost of a step this
small is dispatch overhead), and recording a step's parameters or gradient is one copy.
The update rules of SGD and Adam are elementwise, so this changes no arithmetic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def tensor_shapes(hidden: int) -> dict[str, tuple[int, ...]]:
    """The model's parameter tensors, in the order they are laid out in theta."""
    return {
        "fc1.weight": (hidden, 2),
        "fc1.bias": (hidden,),
        "fc2.weight": (1, hidden),
        "fc2.bias": (1,),
    }


def tensor_slices(hidden: int) -> dict[str, slice]:
    slices, start = {}, 0
    for name, shape in tensor_shapes(hidden).items():
        size = math.prod(shape)
        slices[name] = slice(start, start + size)
        start += size
    return slices


def n_params(hidden: int) -> int:
    return sum(math.prod(shape) for shape in tensor_shapes(hidden).values())


def layer_views(theta: torch.Tensor, hidden: int) -> dict[str, torch.Tensor]:
    """The parameter tensors as views of theta (P,), or of a batch of vectors (k, P)."""
    lead = theta.shape[:-1]
    return {
        name: theta[..., s].reshape(*lead, *shape)
        for (name, s), shape in zip(tensor_slices(hidden).items(), tensor_shapes(hidden).values())
    }


def forward(theta: torch.Tensor, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """Logits (n,) for inputs x (n, 2) and one parameter vector theta (P,)."""
    v = layer_views(theta, hidden)
    h = torch.relu(F.linear(x, v["fc1.weight"], v["fc1.bias"]))
    return F.linear(h, v["fc2.weight"], v["fc2.bias"]).squeeze(-1)


def forward_batched(thetas: torch.Tensor, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """Logits (k, n) for k parameter vectors thetas (k, P) at once: used to evaluate many
    recorded snapshots in one pass."""
    views = layer_views(thetas, hidden)
    h = torch.relu(x @ views["fc1.weight"].transpose(-1, -2) + views["fc1.bias"].unsqueeze(-2))
    return (h @ views["fc2.weight"].transpose(-1, -2) + views["fc2.bias"].unsqueeze(-2)).squeeze(-1)


def init_theta(hidden: int, generator: torch.Generator) -> torch.Tensor:
    """He init (Kaiming normal, fan_in, ReLU gain: std = sqrt(2 / fan_in)), zero biases."""
    theta = torch.zeros(n_params(hidden), dtype=torch.float64)
    slices, shapes = tensor_slices(hidden), tensor_shapes(hidden)
    for name in ("fc1.weight", "fc2.weight"):
        view = theta[slices[name]].view(shapes[name])
        nn.init.kaiming_normal_(view, mode="fan_in", nonlinearity="relu", generator=generator)
    return theta


class MLP(nn.Module):
    def __init__(self, hidden: int, generator: torch.Generator):
        super().__init__()
        self.hidden = hidden
        self.theta = nn.Parameter(init_theta(hidden, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward(self.theta, x, self.hidden)
