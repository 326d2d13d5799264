"""Figure saturation. Fraction of saturated logits and mean |logit| against step at the reference
settings (mean over seeds, shaded: 95 % interval)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from optimizer_dynamics.figures.base import FigureEntry
from optimizer_dynamics.figures.drawing import reference_curves_figure
from optimizer_dynamics.tables import Aggregate


def draw(agg: Aggregate) -> Figure:
    return reference_curves_figure(
        agg,
        [("logit.saturated_frac", "saturated logits",
          "fraction of the step's batch with\nsigmoid(logit) outside [0.01, 0.99]", (0.0, 1.0)),
         ("logit.mean_abs", "logit size", "mean |logit| on the step's batch", (0.0, np.inf))],
        log_y=[False, False], figsize=(11, 4.0))


FIGURE = FigureEntry(
    name="saturation",
    order=5,
    per_regime=True,
    caption=(
        "Logit saturation. "
        "Fraction of saturated logits and mean |logit| against step at the reference settings (mean over "
        "seeds, shaded: 95 % interval)."
    ),
    draw=draw,
)
