"""MLP 2 -> hidden -> 1 (ReLU, He init, zero biases), and the same network as a function
of one flat parameter vector theta (the layout the diagnostics record every step).

The flat form evaluates many recorded parameter snapshots in one batched pass.
"""

from __future__ import annotations

import math

import torch
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


def forward_batched(thetas: torch.Tensor, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """Logits (k, n) for k parameter vectors thetas (k, P) at once: evaluates many recorded
    snapshots with one matrix product for all their hidden layers."""
    k, n = thetas.shape[0], x.shape[0]
    v = layer_views(thetas, hidden)
    w1 = v["fc1.weight"].reshape(k * hidden, 2)
    h = torch.relu(torch.addmm(v["fc1.bias"].reshape(k * hidden), x, w1.T)).view(n, k, hidden)
    return torch.einsum("nkh,kh->kn", h, v["fc2.weight"].reshape(k, hidden)) + v["fc2.bias"]


class MLP(nn.Module):
    """fc1 -> ReLU -> fc2, float64: the tensors of the update are then exact enough that
    update / grad for plain SGD equals lr to ~1e-12, and the model is too small for the
    precision to cost anything."""

    def __init__(self, hidden: int, generator: torch.Generator):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden, dtype=torch.float64)
        self.fc2 = nn.Linear(hidden, 1, dtype=torch.float64)
        with torch.no_grad():  # He init (Kaiming normal, fan_in, ReLU gain: std = sqrt(2 / fan_in)), zero biases
            for layer in (self.fc1, self.fc2):
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)
        # Cached once: parameters() walks the module tree, and the flat views of the weights
        # stay valid because optimizers update them in place.
        self._tensors = tuple(self.parameters())
        self._flat_views = tuple(p.detach().view(-1) for p in self._tensors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x))).squeeze(-1)

    def flat_params(self, out: torch.Tensor) -> None:
        """Write all parameters, in tensor_shapes order, into the vector `out` (one op)."""
        torch.cat(self._flat_views, out=out)

    def flat_grads(self, out: torch.Tensor) -> None:
        torch.cat([p.grad.view(-1) for p in self._tensors], out=out)
