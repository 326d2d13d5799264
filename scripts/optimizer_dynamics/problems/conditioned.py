"""make_moons made badly conditioned: after standardization the first input is multiplied by
kappa, which multiplies that input's curvature by about kappa^2; then, optionally, both inputs
are rotated, which keeps the Hessian's spectrum and removes the alignment of its stiff
direction with a coordinate axis (what a per-coordinate preconditioner like Adam's relies on).
"""

import math

import numpy as np

from optimizer_dynamics.problems.base import Problem


def stretch_and_rotate(kappa: float, degrees: float):
    scale = np.diag([kappa, 1.0])
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotation @ scale
    return lambda x: x @ matrix.T


def conditioned(kappa: float, degrees: float = 0.0, order: int = 10) -> Problem:
    rotated = f", rotated {degrees:g}°" if degrees else ""
    return Problem(
        name=f"moons_kappa{kappa:g}" + (f"_rot{degrees:g}" if degrees else ""),
        label=f"moons κ {kappa:g}{rotated}",
        description=f"make_moons with its first input stretched by κ = {kappa:g}{rotated}",
        transform=stretch_and_rotate(kappa, degrees),
        kappa=kappa,
        rotation_degrees=degrees,
        order=order,
    )


PROBLEMS = (conditioned(10, order=10), conditioned(100, order=11), conditioned(100, 45, order=12))
