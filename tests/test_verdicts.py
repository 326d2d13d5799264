"""Verdicts: on the tiny study, and on hand-built runs whose verdict follows from construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import in_setting, tiny_study_config
from optimizer_dynamics import aggregate, verdicts
from optimizer_dynamics.verdicts import CLAIMS, VERDICTS, Study

ANALYSIS = tiny_study_config()["analysis"]
SEEDS = [0, 1, 2]
GRID_RUN = {"set": "grid", "batch": "full", "budget": 1.0, "budget_steps": 100}


def run(optimizer="sgd", lr=0.1, momentum=0.0, seed=0, *, loss=0.3, steps=100, diverged=False, **late):
    """One runs.parquet row with the columns verdicts read; late quantities default to plain SGD's."""
    row = {
        **GRID_RUN,
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "seed": seed,
        "diverged": diverged,
        "final_val_loss": loss,
        "final_val_acc": 0.9,
        "best_val_loss": loss,
        "steps_to_target": steps,
        "eff_step_late": lr,
        "update_cosine_late": 0.9,
        "coord_eff_lr_median_late": lr,
        "coord_eff_lr_p90_late": lr,
        "saturated_frac_late": 0.0,
        "sgd_eff_step_max_rel_dev": 0.0 if optimizer == "sgd" else np.nan,
    }
    row.update(late)
    if diverged:
        for column in aggregate.END_COLUMNS:
            row[column] = np.nan
        row["steps_to_target"] = None
    row["coord_eff_lr_spread_late"] = row["coord_eff_lr_p90_late"] / row["coord_eff_lr_median_late"]  # as aggregated
    return row


def study(rows, analysis=ANALYSIS) -> Study:
    runs = pd.DataFrame(rows).astype({"steps_to_target": "Int64"})
    return Study(runs, cells_of(runs, analysis), analysis)


def cells_of(runs, analysis=ANALYSIS) -> pd.DataFrame:
    return aggregate.summarize_cells(runs, analysis).assign(budget=1.0)


def evaluate(rows, analysis=ANALYSIS, **setting) -> pd.DataFrame:
    """Every claim's row in one setting: by default full batch, final val loss, the same-lr control,
    the whole run (the hand-built runs have one regime and one budget)."""
    s = study(rows, analysis)
    return in_setting(verdicts.evaluate(s.runs, s.cells, analysis), **setting)


# An SGD lr sweep whose good window is [0.1, 1] by construction (within 10% of the best 0.2);
# 0.001 is as good but separated from it by a bad lr, so not part of the window.
SWEEP = {0.001: 0.205, 0.01: 1.0, 0.03: 0.5, 0.1: 0.21, 0.3: 0.2, 1.0: 0.215, 3.0: None}


def sweep_rows(optimizer="sgd", momentum=0.0, losses=SWEEP):
    return [
        run(optimizer, lr, momentum, seed, loss=loss or 0.0, diverged=loss is None)
        for lr, loss in losses.items()
        for seed in SEEDS
    ]


def test_window_is_the_contiguous_good_range_around_the_best_lr():
    window = study(sweep_rows()).window("sgd", 0.0)
    assert (window.lo, window.hi, window.best) == (0.1, 1.0, 0.3)
    assert window.width == pytest.approx(1.0)


@pytest.mark.parametrize(
    "claimed, expected, names",
    [
        ((0.1, 0.3), "supported", None),
        ((0.08, 1.2), "supported", None),  # no grid lr inside the claim is bad
        ((0.005, 0.04), "refuted", "below it: 0.01 with 5x the best median final val loss, 0.03 with 2.5x"),
        ((0.03, 0.3), "partly supported", "below it: 0.03 with 2.5x"),
        ((0.3, 3.0), "partly supported", "above it: 3 diverged"),
    ],
)
def test_claimed_window_inside_overlapping_or_outside_the_measured_one(claimed, expected, names):
    verdict, text = verdicts.location(study(sweep_rows()).window("sgd", 0.0), claimed)
    assert verdict == expected
    if names:
        assert names in text


def test_window_reaching_the_edge_of_the_grid_says_so():
    losses = {lr: loss for lr, loss in SWEEP.items() if lr >= 0.1}
    window = study(sweep_rows(losses=losses)).window("sgd", 0.0)
    assert (window.lo, window.hi) == (0.1, 1.0)
    assert "may extend below the lr grid" in window.describe()


def test_claimed_window_between_grid_lrs_is_inconclusive():
    with pytest.raises(verdicts.Missing):
        verdicts.location(study(sweep_rows()).window("sgd", 0.0), (0.11, 0.29))


def test_window_claims_compare_widths():
    analysis = {
        **ANALYSIS,
        "claimed_windows": {"sgd": [0.1, 0.3], "adam": [1e-3, 3e-3]},
        "reference": {"sgd": {"lr": 0.1, "momentum": 0.0}, "adam": {"lr": 1e-3, "momentum": 0.9}},
    }
    narrow_adam = {1e-5: 0.205, 1e-4: 1.0, 3e-4: 0.5, 1e-3: 0.21, 3e-3: 0.2, 1e-2: 0.5, 3e-2: None}
    table = evaluate(sweep_rows() + sweep_rows("adam", 0.9, narrow_adam), analysis)
    # SGD: claimed window inside the measured one, but SGD's window is wider than Adam's
    assert table.loc["3a", "verdict"] == "partly supported"
    # Adam: claimed window inside, but [1e-3, 3e-3] is not robust over more than a decade
    assert table.loc["4", "verdict"] == "partly supported"
    wide_adam = {**narrow_adam, 3e-4: 0.2, 1e-2: 0.2, 3e-2: 0.21}  # window [3e-4, 3e-2]: 2 decades
    table = evaluate(sweep_rows() + sweep_rows("adam", 0.9, wide_adam), analysis)
    assert table.loc["3a", "verdict"] == "supported"
    assert table.loc["4", "verdict"] == "supported"


def test_small_lr_slows_sgd():
    rows = sweep_rows()
    for row in rows:  # fast inside the window, slower the smaller the lr below it
        row["steps_to_target"] = 50 if row["lr"] >= 0.1 else int(10 / row["lr"])
    assert evaluate(rows).loc["3b", "verdict"] == "supported"
    for row in rows:
        if row["lr"] == 0.03:
            row["steps_to_target"] = 20
    assert evaluate(rows).loc["3b", "verdict"] == "partly supported"


def pair_rows(adam_steps, sgd_steps, adam_loss=0.2, sgd_loss=0.3):
    """Reference cells (SGD 0.3, Adam 0.01) and one other lr each, so that best lrs are defined."""
    rows = []
    for seed, (a, s) in enumerate(zip(adam_steps, sgd_steps)):
        rows += [
            run("adam", 0.01, 0.9, seed, loss=adam_loss, steps=a),
            run("sgd", 0.3, 0.0, seed, loss=sgd_loss, steps=s),
            run("adam", 0.001, 0.9, seed, loss=1.0, steps=a),
            run("sgd", 0.01, 0.0, seed, loss=1.0, steps=s),
        ]
    return rows


def test_adam_faster_only_if_faster_in_every_paired_seed():
    table = evaluate(pair_rows([10, 20, 30], [40, 50, 60]))
    assert table.loc["1a", "verdict"] == "supported"
    assert table.loc["1b", "verdict"] == "supported"
    table = evaluate(pair_rows([10, 60, 30], [40, 50, 60], adam_loss=0.3, sgd_loss=0.2))
    assert table.loc["1a", "verdict"] == "refuted"
    assert table.loc["1b", "verdict"] == "refuted"


def test_never_reaching_the_target_counts_as_slowest():
    table = evaluate(pair_rows([10, 20, 30], [None, None, 15]))
    assert table.loc["1a", "verdict"] == "refuted"  # seed 2: SGD is faster
    table = evaluate(pair_rows([10, 20, 30], [None, None, None]))
    assert table.loc["1a", "verdict"] == "supported"
    assert "not reached" in table.loc["1a", "measured"]


def test_plain_sgd_step_equals_lr_within_tolerance():
    rows = sweep_rows()
    assert evaluate(rows).loc["2", "verdict"] == "supported"
    rows[0]["sgd_eff_step_max_rel_dev"] = 10 * verdicts.EXACT_TOLERANCE
    assert evaluate(rows).loc["2", "verdict"] == "refuted"
    rows[0]["diverged"] = True  # diverged runs are not part of the test
    assert evaluate(rows).loc["2", "verdict"] == "supported"


def momentum_rows(momenta, step=lambda lr, m: lr / (1 - m), cosine=lambda m: 0.5 + m / 2):
    return [
        run("sgd", lr, m, seed, eff_step_late=step(lr, m) * (1 + 1e-3 * seed), update_cosine_late=cosine(m))
        for lr in (0.01, 0.1, 0.3)
        for m in momenta
        for seed in SEEDS
    ]


def test_momentum_that_follows_the_prediction_enlarges_and_smooths():
    table = evaluate(momentum_rows([0.0, 0.5, 0.9]))
    assert table.loc["5a", "verdict"] == "supported"
    assert "m=0.9: 10 (median over 3 lrs" in table.loc["5a", "measured"]
    assert "prediction 10" in table.loc["5a", "measured"]
    assert table.loc["5b", "verdict"] == "supported"


def matched_rows(step=lambda lr, m: lr / (1 - m)):
    """Plain SGD on a 1-2-5 grid, heavy ball m = 0.5 and 0.9 on the lrs whose lr / (1 - m) is in it."""
    plain = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    rows = [run("sgd", lr, 0.0, seed, eff_step_late=lr) for lr in plain for seed in SEEDS]
    return rows + [run("sgd", lr, m, seed, eff_step_late=step(lr, m)) for m, lrs in ((0.5, [0.01, 0.05, 0.1]),
                   (0.9, [0.002, 0.005, 0.01])) for lr in lrs for seed in SEEDS]


def test_the_matched_control_compares_heavy_ball_with_plain_sgd_at_lr_over_1_minus_m():
    # Heavy ball's late step is lr / (1 - m): larger than plain SGD's at the same lr, equal to it
    # at lr / (1 - m), and equal is no effect, so refuted there.
    same, matched = (evaluate(matched_rows(), control=c).loc["5a"] for c in ("same lr", "equal effective lr"))
    assert same["verdict"] == "supported"
    assert matched["verdict"] == "refuted"
    assert "plain SGD at lr / (1 - m): larger step at 0 of 6" in matched["detail"]
    assert "equal within 0.05 at 6 (no effect at most pairs)" in matched["detail"]
    assert "m=0.9: 1 (median over 3 lrs" in matched["measured"] and "prediction 1)" in matched["measured"]
    # a step that beats even the matched control
    boosted = evaluate(matched_rows(step=lambda lr, m: 2 * lr / (1 - m)), control="equal effective lr").loc["5a"]
    assert boosted["verdict"] == "supported"


def test_momentum_that_shrinks_the_step_at_one_momentum_is_partly_supported():
    table = evaluate(
        momentum_rows(
            [0.0, 0.5, 0.9],
            step=lambda lr, m: lr * (0.5 if m == 0.5 else 1 / (1 - m)),
            cosine=lambda m: 0.9 - m / 2,
        )
    )
    assert table.loc["5a", "verdict"] == "partly supported"
    assert table.loc["5b", "verdict"] == "refuted"


def test_momentum_must_enlarge_the_step_at_every_common_lr():
    table = evaluate(
        momentum_rows([0.0, 0.9], step=lambda lr, m: lr * (0.5 if m and lr == 0.01 else 1 / (1 - m)))
    )
    assert table.loc["5a", "verdict"] == "partly supported"
    assert "larger step at 2 of 3" in table.loc["5a", "detail"]
    assert "opposite for m=0.9 at lr 0.01" in table.loc["5a", "detail"]


def test_cosines_equal_within_the_tie_tolerance_do_not_count():
    tiny = verdicts.COSINE_TIE / 10
    table = evaluate(momentum_rows([0.0, 0.9], cosine=lambda m: 1 - tiny * m))
    assert table.loc["5b", "verdict"] == "refuted"  # all equal: momentum did not raise the cosine

    def smoothed_at(lrs):
        rows = momentum_rows([0.0, 0.9], cosine=lambda m: 1 - tiny * m)
        for row in rows:
            if row["lr"] in lrs:  # here plain SGD oscillates and momentum smooths it
                row["update_cosine_late"] = -0.5 if row["momentum"] == 0 else 0.5
        return evaluate(rows).loc["5b"]

    # An effect at one lr of three, no effect at the others: no effect is the finding.
    one = smoothed_at({0.3})
    assert one["verdict"] == "refuted" and "no effect at most pairs" in one["detail"]
    # At two of three, with the third a tie: the decided pairs decide.
    two = smoothed_at({0.1, 0.3})
    assert two["verdict"] == "supported" and "equal within" in two["detail"]


def test_adam_step_larger_and_adaptive_follow_the_thresholds():
    def rows(factor, spread):
        return [run("sgd", 0.3, 0.0, s) for s in SEEDS] + [
            run(
                "adam",
                0.01,
                0.9,
                s,
                eff_step_late=0.3 * factor * (1 + 0.01 * s),
                coord_eff_lr_median_late=1.0,
                coord_eff_lr_p90_late=spread * (1 + 0.01 * s),
            )
            for s in SEEDS
        ]

    table = evaluate(rows(factor=50, spread=5))
    assert table.loc["6a", "verdict"] == "supported" and table.loc["6b", "verdict"] == "supported"
    table = evaluate(rows(factor=3, spread=1.3))
    assert (
        table.loc["6a", "verdict"] == "partly supported" and table.loc["6b", "verdict"] == "partly supported"
    )
    table = evaluate(rows(factor=0.5, spread=1.0 - 0.1))
    assert table.loc["6a", "verdict"] == "refuted" and table.loc["6b", "verdict"] == "refuted"


def test_an_interval_straddling_the_threshold_is_inconclusive():
    rows = [run("sgd", 0.3, 0.0, s) for s in SEEDS] + [
        run("adam", 0.01, 0.9, s, coord_eff_lr_median_late=1.0, coord_eff_lr_p90_late=spread)
        for s, spread in zip(SEEDS, [0.5, 1.0, 1.5])
    ]
    assert evaluate(rows).loc["6b", "verdict"] == "inconclusive"


@pytest.mark.parametrize("rows", [[], [run("adam", 0.01, 0.9, s) for s in SEEDS], sweep_rows()])
def test_missing_data_gives_inconclusive_rows_not_errors(rows):
    runs = pd.DataFrame(rows or [run()]).iloc[: len(rows)].astype({"steps_to_target": "Int64"})
    table = in_setting(verdicts.evaluate(runs, cells_of(runs), ANALYSIS)).reset_index()
    assert list(table["id"]) == [claim.id for claim in CLAIMS]
    assert table["verdict"].isin(VERDICTS).all()
    inconclusive = table[table["verdict"] == "inconclusive"]
    assert len(inconclusive) > 0 and inconclusive["detail"].str.startswith("cannot be tested").all()


def test_tiny_study_verdicts_one_row_per_claim_and_setting(tiny_aggregate):
    table = pd.read_parquet(tiny_aggregate / "verdicts.parquet")
    runs = pd.read_parquet(tiny_aggregate / "runs.parquet", filters=[("budget", "==", 1.0)])
    assert list(table.columns) == verdicts.COLUMNS
    budgets = tiny_study_config()["analysis"]["budgets"]
    per_claim = {claim.id: len(budgets) * (2 if {"metric", "control"} & set(claim.axes) else 1) for claim in CLAIMS}
    assert table.groupby("id", sort=False).size().to_dict() == per_claim
    assert list(table["id"].drop_duplicates()) == [claim.id for claim in CLAIMS]
    assert table["verdict"].isin(VERDICTS).all()
    assert (table["claim"].str.len() > 0).all() and (table["test"].str.len() > 0).all()
    assert (table.groupby("id")["headline"].nunique() == 1).all()
    grid_claims = table[~table["id"].str.startswith("7")]  # the tiny study has no curvature runs
    assert set(grid_claims["budget_steps"]) == {int(b * tiny_study_config()["training"]["steps"]) for b in budgets}
    assert table.loc[table["id"].str.startswith("7"), "budget_steps"].isna().all()
    plain = runs[(runs["optimizer"] == "sgd") & (runs["momentum"] == 0) & ~runs["diverged"]]
    claim2 = in_setting(table).loc["2"]
    assert claim2["measured"].startswith(f"{plain['sgd_eff_step_max_rel_dev'].max():.3g}")


SETTINGS = [{"regime": r, "budget": b} for r in ("full", "64") for b in (0.5, 1.0)]


@pytest.mark.parametrize("verdicts_, expected", [
    (["supported"] * 4, "holds in every setting (4)"),
    (["refuted"] * 4, "fails in every setting (4)"),
    (["inconclusive"] * 4, "inconclusive in every setting (4)"),
    (["refuted", "refuted", "supported", "supported"], "holds in 2 of 4: batch 64; fails in 2 of 4: full batch"),
    (["refuted", "supported", "refuted", "supported"], "holds in 2 of 4: 100%; fails in 2 of 4: 50%"),
    (["refuted", "partly supported", "refuted", "supported"],
     "holds in 1 of 4: batch 64, 100%; partly holds in 1 of 4: full batch, 100%; fails in 2 of 4: 50%"),
    (["inconclusive", "refuted", "inconclusive", "refuted"],
     "holds in 0 of 4 settings; fails in 2 of 4: 100%; inconclusive in 2 of 4: 50%"),
])
def test_headline_says_where_a_claim_holds(verdicts_, expected):
    assert verdicts.headline(verdicts_, SETTINGS) == expected


def test_every_claim_names_its_source():
    from optimizer_dynamics.verdicts import CLAIMS

    sources = {claim.id: claim.source for claim in CLAIMS}
    assert all(sources.values())
    seed_claims = [cid for cid in sources if cid[0] not in "78"]
    assert all(sources[cid].startswith("the seed, Experiment ") for cid in seed_claims)
    assert sources["7a"] == "Cohen et al., 2021" and sources["7b"] == "Cohen et al., 2022"
    assert sources["8a"] == sources["8b"] == "McCandlish et al., 2018"
    assert sources["8c"].startswith("Schneider, Dangel and Hennig, 2021") and sources["8d"].startswith("this project")
