"""The claims, judged from the aggregate tables: one module per claim family (its claims'
predictions, constants, judges and texts, and the report section and figures that show them),
the registry FAMILIES, and the stage that writes verdicts.parquet.

    python -m optimizer_dynamics.claims --aggregate-dir results/aggregate

reads the aggregate tables (tables.load_aggregate) and writes verdicts.parquet beside them: one
row per claim and setting (base.settings_of) with the prediction, the measured effect and its
interval, the units that held, the verdict, the claim's headline and its lead (the headline's key
number and where it was measured, without the verdict counts); and key_findings.json, the
study's key findings in a few sentences (key_findings.py); and windows.parquet, every good
window the verdicts read (experiment2.window_table). A claim is added as one
file with a FAMILY (or one Claim in a family) and an entry in FAMILIES.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.claims import (
    conditioning,
    experiment1,
    experiment2,
    experiment3,
    gradient_noise,
    ladder,
    stability,
)
from optimizer_dynamics.claims.key_findings import key_findings
from optimizer_dynamics.claims.base import (
    SETTING_AXES,
    Claim,
    Family,
    Missing,
    Outcome,
    Study,
    headline,
    lead,
    setting_label,
    settings_of,
)
from optimizer_dynamics import batch_regime
from optimizer_dynamics.study import BESIDE_THE_GRID, CURVATURE_SETS, RUN_SETS, SIDE_SETS
from optimizer_dynamics.tables import KEY_FINDINGS_FILE, VERDICTS_FILE, WINDOWS_FILE, AggregateError, load_aggregate

FAMILIES: list[Family] = [experiment1.FAMILY, experiment2.FAMILY, experiment3.FAMILY, ladder.FAMILY,
                          conditioning.FAMILY, stability.FAMILY, gradient_noise.FAMILY]
CLAIMS: list[Claim] = [claim for family in FAMILIES for claim in family.claims]
COLUMNS = ["id", "family", "claim", "source", "prediction", "headline", "lead", *SETTING_AXES, "budget_steps", "setting",
           "test", "effect", "effect_lo", "effect_hi", "n_held", "n_tested", "verdict", "key", "measured", "detail"]


def family_of(claim_id: str) -> Family:
    return next(family for family in FAMILIES if any(claim.id == claim_id for claim in family.claims))


def claim_texts(analysis: dict) -> dict[str, str]:
    """What a claim's text may name from the config: the seed's claimed windows."""
    texts = {}
    for optimizer in ("sgd", "adam"):
        window = (analysis.get("claimed_windows") or {}).get(optimizer)
        texts[f"{optimizer}_window"] = f"~{window[0]:g}-{window[1]:g}" if window else "(no claimed window in the config)"
    return texts


def evaluate(runs: pd.DataFrame, cells: pd.DataFrame, analysis: dict, claims: list[Claim] | None = None,
             side_cells: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per claim and setting. runs and cells as the aggregation writes them: every
    budget, runs of every set; side_cells: each side set's cells, <set>.parquet (study.SIDE_SETS;
    a set absent: no such runs)."""
    by_set = {run_set: runs[runs["set"] == run_set] for run_set in RUN_SETS}
    side_cells = {run_set: (side_cells or {}).get(run_set, cells.iloc[:0]) for run_set in SIDE_SETS}
    grid = by_set["grid"]
    # no runs: inconclusive rows
    regimes = {run_set: sorted(by_set[run_set]["batch"].unique(), key=batch_regime.full_first) or ["full"]
               for run_set in ("grid", "conditioning", "epsilon")}
    budgets = sorted(runs["budget"].unique()) or [1.0]
    texts = claim_texts(analysis)
    rows = []
    for claim in CLAIMS if claims is None else claims:
        settings = settings_of(claim, regimes.get(claim.run_set, regimes["grid"]), budgets)
        outcomes, claim_rows = [], []
        for setting in settings:
            regime, budget, metric = setting["regime"], setting["budget"], setting["metric"] or "final"
            in_regime = grid if regime == batch_regime.ALL else grid[grid["batch"] == regime]
            in_grid = in_regime[in_regime["budget"] == budget]
            curvature = by_set[claim.run_set if claim.run_set in CURVATURE_SETS else "curvature"]
            at_budget = curvature[curvature["budget"] == budget]
            if claim.run_set in SIDE_SETS:
                source = by_set[claim.run_set]
                set_cells = side_cells[claim.run_set]
                if claim.run_set in BESIDE_THE_GRID:  # read beside the grid's runs
                    source, set_cells = pd.concat([grid, source]), pd.concat([cells, set_cells])
                if regime != batch_regime.ALL:
                    source, set_cells = source[source["batch"] == regime], set_cells[set_cells["batch"] == regime]
                source, set_cells = source[source["budget"] == budget], set_cells[set_cells["budget"] == budget]
                study = Study(source, set_cells, analysis, metric, comparison="tuned lrs")
            else:
                study = Study(in_grid, cells[(cells["batch"] == regime) & (cells["budget"] == budget)], analysis,
                              metric, at_budget, setting["comparison"] or "usual lrs",
                              all_cells=cells[cells["budget"] == budget], all_runs=grid[grid["budget"] == budget])
                source = at_budget if claim.run_set in CURVATURE_SETS else in_grid
            steps = int(source["budget_steps"].max()) if len(source) else None
            try:
                outcome = claim.judge(study)
            except Missing as missing:
                outcome = Outcome("inconclusive", f"cannot be tested: {missing}", "", f"cannot be tested: {missing}.")
            outcomes.append(outcome)
            claim_rows.append({
                "id": claim.id, "family": family_of(claim.id).name, "claim": claim.claim.format(**texts),
                "source": claim.source, "prediction": claim.prediction, **setting, "budget_steps": steps,
                "setting": setting_label(setting, steps), "test": claim.test, "effect": outcome.effect,
                "effect_lo": outcome.effect_lo, "effect_hi": outcome.effect_hi, "n_held": outcome.n_held,
                "n_tested": outcome.n_tested, "verdict": outcome.verdict, "key": outcome.key,
                "measured": outcome.measured, "detail": outcome.detail,
            })
        summary, key_number = headline(outcomes, settings), lead(outcomes, settings)
        rows += [{**row, "headline": summary, "lead": key_number} for row in claim_rows]
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({"budget_steps": "Int64", "n_held": "Int64", "n_tested": "Int64", "effect": float,
                         "effect_lo": float, "effect_hi": float})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--aggregate-dir", default="results/aggregate",
                        help="the aggregate tables; verdicts.parquet is written here (default results/aggregate)")
    args = parser.parse_args(argv)
    try:
        tables = load_aggregate(args.aggregate_dir, with_verdicts=False)
    except AggregateError as error:
        sys.exit(f"claims: {error}")
    verdicts = evaluate(pd.concat([tables.runs_by_budget, tables.side_runs_by_budget]),
                        tables.cells_by_budget, tables.analysis, side_cells=tables.side_cells_by_budget)
    with atomic_path(Path(args.aggregate_dir) / VERDICTS_FILE) as tmp:
        verdicts.to_parquet(tmp, index=False)
    with atomic_path(Path(args.aggregate_dir) / KEY_FINDINGS_FILE) as tmp:
        Path(tmp).write_text(json.dumps(key_findings(verdicts, FAMILIES), ensure_ascii=False, indent=1) + "\n",
                             encoding="utf-8")
    with atomic_path(Path(args.aggregate_dir) / WINDOWS_FILE) as tmp:
        experiment2.window_table(tables.cells_by_budget, tables.analysis).to_parquet(tmp, index=False)
    counts = verdicts["verdict"].value_counts()
    print(f"judged {verdicts['id'].nunique()} claims in {len(verdicts)} settings: "
          + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))


if __name__ == "__main__":
    main()
