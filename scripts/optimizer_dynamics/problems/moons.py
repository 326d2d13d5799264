"""make_moons as it comes, standardized: the seed's problem, on which the inputs are already
well conditioned."""

from optimizer_dynamics.problems.base import Problem

PROBLEM = Problem(
    name="moons",
    label="moons",
    description="make_moons, both inputs standardized",
    transform=lambda x: x,
    order=0,
)
