"""The optimizer registry: one module per optimizer in this folder, each defining OPTIMIZER (an
optimizers.base.Optimizer: its batched update, its reference implementation for the tests, its
stability threshold where one exists, its labels). Every module here is registered, in the
order of the entries' `order`: adding an optimizer is adding one file. Training, aggregation,
claims, figures, the config checks and the report read entries from OPTIMIZERS.

No torch at the top of any of these modules: the workflow plans jobs with the registry.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

from optimizer_dynamics.optimizers.base import Hyper, Optimizer, State, library_optimizer

__all__ = ["OPTIMIZERS", "Hyper", "Optimizer", "State", "library_optimizer", "stability_threshold"]


def _discover() -> dict[str, Optimizer]:
    entries = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            entries.append(importlib.import_module(f"{__name__}.{module.name}").OPTIMIZER)
    return {entry.name: entry for entry in sorted(entries, key=lambda entry: (entry.order, entry.name))}


OPTIMIZERS: dict[str, Optimizer] = _discover()


def stability_threshold(optimizer: str, lr: float, momentum: float) -> float:
    """The entry's threshold at (lr, momentum); NaN where the optimizer has none."""
    threshold = OPTIMIZERS[optimizer].stability_threshold
    if threshold is None:
        return math.nan
    value = threshold(lr, momentum)
    return value if math.isfinite(value) else math.inf
