"""The seed's claims, each tested against the aggregated runs (first version: claim 2 only)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["id", "claim", "metric", "measured", "verdict", "detail"]
EXACT_TOLERANCE = 1e-6


def evaluate(runs: pd.DataFrame, cells: pd.DataFrame, analysis: dict) -> pd.DataFrame:
    plain = runs[(runs["optimizer"] == "sgd") & (runs["momentum"] == 0) & ~runs["diverged"]]
    if plain.empty:
        row = ["2", "For plain SGD, update/grad = lr (a constant)", "max |eff_step.global/lr - 1|", "",
               "inconclusive", "no finished plain-SGD run"]
    else:
        dev = plain["sgd_eff_step_max_rel_dev"].max()
        row = ["2", "For plain SGD, update/grad = lr (a constant)",
               "max over finished plain-SGD runs and steps of |eff_step.global/lr - 1|", f"{dev:.3g}",
               "supported" if dev < EXACT_TOLERANCE else "refuted", f"threshold {EXACT_TOLERANCE:g}"]
    return pd.DataFrame([row], columns=COLUMNS)
