"""The problem registry: one module per problem (or family of problems) in this folder, each
defining PROBLEM or PROBLEMS (problems.base.Problem entries: a name, labels and the transform
of make_moons' standardized inputs). Every module here is registered, in the order of the
entries' `order`: adding a problem is adding one file. The data set, the config checks, the
run paths and columns, the aggregation and the claims read entries from PROBLEMS.
"""

from __future__ import annotations

import importlib
import pkgutil

from optimizer_dynamics.problems.base import Problem

__all__ = ["PROBLEMS", "Problem"]


def _discover() -> dict[str, Problem]:
    entries = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            loaded = importlib.import_module(f"{__name__}.{module.name}")
            entries.extend(getattr(loaded, "PROBLEMS", ()))
            if hasattr(loaded, "PROBLEM"):
                entries.append(loaded.PROBLEM)
    return {entry.name: entry for entry in sorted(entries, key=lambda entry: (entry.order, entry.name))}


PROBLEMS: dict[str, Problem] = _discover()
