"""What every problem of the registry is: a Problem entry (its name, labels, and the transform
it applies to make_moons' standardized inputs). The data set itself is built once per problem
by optimizer_dynamics.data and saved; training jobs load it with numpy alone.

No numpy work at import: the workflow plans jobs with the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# transform(x) -> x': the same map for the training and the validation inputs, (n, 2) -> (n, 2)
Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Problem:
    name: str  # the config's key and the runs' `problem` column
    label: str  # display name in figures and tables
    description: str  # a phrase for the report
    transform: Transform  # applied after standardization with the training statistics
    # For the conditioning claims: how much one input is stretched (1: not at all) and by what
    # angle the inputs are then rotated; a problem that is neither says 1 and 0.
    kappa: float = 1.0
    rotation_degrees: float = 0.0
    order: int = 100  # its place in tables, legends and figure panels
