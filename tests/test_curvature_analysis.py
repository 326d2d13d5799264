"""Curvature analysis: sharpness against the stability thresholds, from aggregation to report.

A small study trained for real with curvature on some cells checks the aggregation against the
run files themselves; hand-built run tables whose verdict follows from their construction check
the verdict logic (claims 7a-7d)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import (TINY_STEPS, REPO, aggregate_and_judge, in_setting, frames_by_run, runs_dir, tiny_config,
                      tiny_study_config)
from optimizer_dynamics import aggregate, claims, stats, tables
from optimizer_dynamics.claims import stability
from optimizer_dynamics.claims.base import VERDICTS
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.optimizers import OPTIMIZERS, stability_threshold
from optimizer_dynamics.runfile import write_run
from optimizer_dynamics.train import default_out, train

# Grid lr 10 diverges in some seeds and 30 in all; curvature runs on three SGD lrs (one that
# diverges, two that start above their threshold) and one Adam lr, a dense early schedule.
GRID = {"sgd": {"lr": [0.3, 3.0, 10.0, 30.0], "momentum": [0.0]}, "adam": {"lr": [0.01, 0.1], "momentum": [0.9]}}
CURVATURE = {
    "every": 10, "steps": TINY_STEPS, "early_steps": 6, "early_every": 4,
    "cells": {"sgd": {"lr": [0.3, 3.0, 10.0], "momentum": [0.0]}, "adam": {"lr": [0.01], "momentum": [0.9]}},
    "minibatch": {"batch_size": 16, "cells": {}},
}
SEEDS = [0, 1, 2]
CURVATURE_IDS = ["7a", "7b", "7c", "7d"]
# pairs of consecutive steps: every 4 steps before step 6, then every 10
HESSIAN_STEPS = sorted({s + d for s in [0, 4, *range(10, TINY_STEPS, 10)] for d in (0, 1)})


def study_config(curvature=CURVATURE) -> dict:
    return {**tiny_study_config(), "optimizers": GRID, "seeds": SEEDS, "curvature": curvature}


def schedule(every: int) -> dict:
    return {"curvature_every": every, "curvature_early_steps": CURVATURE["early_steps"] if every else 0,
            "curvature_early_every": CURVATURE["early_every"] if every else 1}


@pytest.fixture(scope="module")
def curvature_study(tmp_path_factory, tiny_dataset) -> list:
    """The grid's run files, then the curvature runs', as study.run_files lists them."""
    root = tmp_path_factory.mktemp("curvature_study")
    paths = []
    for cells, every in ((GRID, 0), (CURVATURE["cells"], CURVATURE["every"])):
        for optimizer, axes in cells.items():
            for lr in axes["lr"]:
                for momentum in axes["momentum"]:
                    for seed in SEEDS:
                        config = tiny_config(optimizer=optimizer, lr=lr, momentum=momentum, seed=seed,
                                             **schedule(every))
                        path = root / default_out(config)
                        write_run(train(config, tiny_dataset), path)
                        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def curvature_aggregate(tmp_path_factory, curvature_study):
    return aggregate_and_judge(tmp_path_factory.mktemp("curvature_aggregate"), runs_dir(curvature_study),
                               study_config())


@pytest.fixture(scope="module")
def files(curvature_study) -> dict:
    """The curvature runs' files by (optimizer, lr, momentum, seed)."""
    return frames_by_run([p for p in curvature_study if "/curvature/" in str(p)])


@pytest.fixture(scope="module")
def grid_files(curvature_study) -> dict:
    return frames_by_run([p for p in curvature_study if "/grid/" in str(p)])


# --- aggregation ---------------------------------------------------------------------------------


def direct_curvature(frame: pd.DataFrame) -> pd.DataFrame:
    """The measured steps of one run file with their threshold and ratio, computed here."""
    first = frame.iloc[0]
    measured = frame[frame["hessian.top1"].notna()]
    threshold = stability_threshold(first["optimizer"], first["lr"], first["momentum"])
    compared = measured["hessian.precond_top1" if first["optimizer"] == "adam" else "hessian.top1"]
    return pd.DataFrame({"step": measured["step"].to_numpy(), "sharpness": measured["hessian.top1"].to_numpy(),
                         "compared": compared.to_numpy(), "ratio": (compared / threshold).to_numpy(),
                         "threshold": threshold})


def pairs_of(direct: pd.DataFrame) -> pd.DataFrame:
    """The measured steps averaged over each pair of consecutive steps, here by a loop."""
    rows, current = [], []
    for row in direct.to_dict("records"):
        if current and row["step"] != current[-1]["step"] + 1:
            rows.append(pd.DataFrame(current).mean())
            current = []
        current.append(row)
    rows.append(pd.DataFrame(current).mean())
    return pd.DataFrame(rows)


def test_a_period_2_orbit_sampled_at_both_phases_gives_its_mean():
    # GD at the edge of stability: the sharpness alternates 0.7 and 1.3 times the threshold between
    # consecutive steps; sampled on even steps alone it would read 0.7
    steps = [0, 1, *[s + d for s in range(100, 1000, 100) for d in (0, 1)]]
    ratio = [1.5, 1.5] + [0.7 if step % 2 == 0 else 1.3 for step in steps[2:]]
    curvature = pd.DataFrame({"run": 0, "step": steps, "ratio": ratio, "sharpness": ratio, "precond_sharpness": np.nan,
                              "stability_sharpness": ratio, "lr": 0.1, "threshold": 1.0,
                              "batch_ratio": 2 * np.asarray(ratio)})  # as a minibatch run's batch sharpness
    batch_loss = pd.DataFrame({"run": 0, "step": range(1000), "batch.loss": 1.0})
    summary = aggregate.summarize_curvature(curvature, {"late_fraction": 0.2}, batch_loss).loc[0]
    assert summary["late_sharpness_ratio"] == pytest.approx(1.0, rel=1e-12)
    assert summary["late_batch_sharpness_ratio"] == pytest.approx(2.0, rel=1e-12)
    assert summary["late_ratio_trend"] == pytest.approx(0.0, abs=1e-12)
    even_only = aggregate.summarize_curvature(curvature[curvature["step"] % 2 == 0], {"late_fraction": 0.2},
                                              batch_loss).loc[0]
    assert even_only["late_sharpness_ratio"] == pytest.approx(0.7)  # the artefact the pairs remove


def test_study_has_what_the_tests_need(files, grid_files):
    assert any(frame["diverged"].iloc[0] for frame in files.values()), "a curvature run should diverge"
    assert any(frame["diverged"].iloc[0] for key, frame in grid_files.items() if key[1] == 30.0)


def test_curvature_table_holds_every_measured_step_of_the_files(curvature_aggregate, files):
    table = pd.read_parquet(curvature_aggregate / "curvature.parquet")
    assert list(table.columns) == aggregate.CURVATURE_TABLE_COLUMNS
    by_run = dict(list(table.groupby(["optimizer", "lr", "momentum", "seed"])))
    expected_runs = set(files)
    assert set(by_run) == expected_runs
    for key in expected_runs:
        rows, direct = by_run[key].sort_values("step"), direct_curvature(files[key])
        assert len(direct) == len(rows) > 0
        if not files[key]["diverged"].iloc[0]:
            assert list(direct["step"]) == HESSIAN_STEPS
        np.testing.assert_array_equal(rows["step"], direct["step"])
        np.testing.assert_array_equal(rows["sharpness"], direct["sharpness"])
        np.testing.assert_array_equal(rows["stability_sharpness"], direct["compared"])
        np.testing.assert_allclose(rows["threshold"], direct["threshold"], rtol=1e-12)
        np.testing.assert_allclose(rows["ratio"], direct["ratio"], rtol=1e-12)
        assert rows["precond_sharpness"].notna().all() == (key[0] == "adam")


def test_run_summaries_come_from_the_files(curvature_aggregate, files):
    runs = pd.read_parquet(curvature_aggregate / "runs.parquet", filters=[("budget", "==", 1.0)])
    late_fraction = study_config()["analysis"]["late_fraction"]
    checked_late = 0
    for row in runs.itertuples():
        key = (row.optimizer, row.lr, row.momentum, row.seed)
        assert row.stability_threshold == pytest.approx(stability_threshold(*key[:3]), rel=1e-12)
        if row.set == "grid":
            assert all(math.isnan(getattr(row, column)) for column in aggregate.CURVATURE_RUN_COLUMNS)
            continue
        direct = direct_curvature(files[key])
        assert row.initial_sharpness == direct["sharpness"].iloc[0]
        assert row.initial_stability_sharpness == direct["compared"].iloc[0]
        # the lr at which the threshold c / lr equals the step-0 sharpness: c / sharpness
        constant = stability_threshold(row.optimizer, 1.0, row.momentum)
        assert row.predicted_critical_lr == pytest.approx(constant / direct["compared"].iloc[0], rel=1e-12)
        assert row.max_sharpness_ratio == pytest.approx(direct["ratio"].max(), rel=1e-12)
        stable = direct.loc[direct["ratio"] <= 1, "step"]
        assert (row.first_stable_step == stable.iloc[0]) if len(stable) else math.isnan(row.first_stable_step)
        if row.diverged:
            assert math.isnan(row.late_sharpness_ratio) and math.isnan(row.sharpness_late_change)
            continue
        pairs = pairs_of(direct)
        n_late = max(1, math.ceil(late_fraction * len(pairs)))
        middle = (len(pairs) - 1) // 2
        mid = pairs.iloc[middle - n_late + 1 : middle + 1]
        assert row.late_sharpness_ratio == pytest.approx(pairs["ratio"].iloc[-n_late:].mean(), rel=1e-12)
        assert row.sharpness_late_change == pytest.approx(
            pairs["sharpness"].iloc[-n_late:].mean() / mid["sharpness"].mean() - 1, rel=1e-12)
        assert row.stability_sharpness_late_change == pytest.approx(
            pairs["compared"].iloc[-n_late:].mean() / mid["compared"].mean() - 1, rel=1e-12)
        if len(stable):  # the loss from step 0 to the first stable step, here from the file
            losses = files[key]["batch.loss"].iloc[: int(stable.iloc[0]) + 1]
            assert row.loss_rise_before_stable == pytest.approx(losses.max() / losses.iloc[0] - 1, rel=1e-12)
        quarter = max(2, math.ceil(len(pairs) / 4))
        last = pairs["ratio"].iloc[-quarter:]
        half = quarter // 2
        assert row.late_ratio_trend == pytest.approx(last.iloc[-half:].mean() / last.iloc[:-half].mean() - 1, rel=1e-12)
        checked_late += 1
    assert checked_late > 0


def test_run_with_another_curvature_setting_than_the_config_is_stale(curvature_study):
    root = str(runs_dir(curvature_study))
    for key, value, says in (("every", 11, "curvature_every = 10 but the config asks 11"),
                             ("early_every", 3, "curvature_early_every = 4 but the config asks 3"),
                             ("steps", TINY_STEPS + 1, f"steps = {TINY_STEPS} but the config asks {TINY_STEPS + 1}")):
        with pytest.raises(aggregate.AggregationError, match=rf"/curvature/.*{says}.* stale"):
            aggregate.aggregate(study_config({**CURVATURE, key: value}), root)


def test_study_without_curvature_writes_an_empty_table_and_inconclusive_rows(tiny_aggregate):
    table = pd.read_parquet(tiny_aggregate / "curvature.parquet")
    assert list(table.columns) == aggregate.CURVATURE_TABLE_COLUMNS and table.empty
    runs = pd.read_parquet(tiny_aggregate / "runs.parquet")
    assert runs[aggregate.CURVATURE_RUN_COLUMNS].isna().all().all()
    rows = pd.read_parquet(tiny_aggregate / "verdicts.parquet").set_index("id").loc[CURVATURE_IDS]
    assert len(rows) == len(CURVATURE_IDS) * len(tiny_study_config()["analysis"]["budgets"])
    assert (rows["verdict"] == "inconclusive").all()
    assert rows["detail"].str.contains("measured curvature").all()


def test_curvature_study_verdict_rows(curvature_aggregate):
    table = in_setting(pd.read_parquet(curvature_aggregate / "verdicts.parquet"))
    assert table.loc[CURVATURE_IDS, "verdict"].isin(VERDICTS).all()
    assert not table.loc[CURVATURE_IDS, "detail"].str.startswith("cannot be tested").any()
    runs = pd.read_parquet(curvature_aggregate / "runs.parquet", filters=[("budget", "==", 1.0)])
    finished = runs.dropna(subset=["sharpness_late_change"])
    median = finished["sharpness_late_change"].median()
    assert table.loc["7d", "measured"] == f"late / mid-run sharpness - 1: median {median:+.1%} over {len(finished)} runs"
    assert table.loc["7d", "n_tested"] == len(finished)


# --- verdict logic on hand-built runs ----------------------------------------------------------


def run(optimizer="sgd", lr=1.0, momentum=0.0, seed=0, *, diverged=False, curvature=True, late_ratio=0.5,
        change=0.0, initial=10.0, trend=0.0, first_stable_step=0, rise=0.5, trained=True) -> dict:
    """One runs.parquet row; curvature summaries consistent with a step-0 (preconditioned) sharpness
    `initial`, a late ratio, a mid-to-late change and a last-quarter trend of the ratio."""
    threshold = stability_threshold(optimizer, lr, momentum)
    row = {"set": "curvature" if curvature else "grid", "problem": "moons", "batch": "full", "budget": 1.0, "budget_steps": 1000,
           "curvature_early_steps": 50,
           "optimizer": optimizer, "hyperparameters": RunConfig(optimizer=optimizer).hyperparameters, "lr": lr,
           "momentum": momentum, "seed": seed, "steps": 1000, "diverged": diverged,
           "final_val_loss": np.nan if diverged else 0.3, "final_val_acc": np.nan if diverged else 0.9, "selected_val_loss": np.nan if diverged else 0.3, "overfit_gap": np.nan if diverged else 0.0,
           "final_train_loss_ratio": np.nan if diverged else (0.2 if trained else 1.5),
           "steps_to_target": None if diverged else 10, "stability_threshold": threshold,
           "sgd_eff_step_max_rel_dev": 0.0,
           **{column: np.nan if diverged else 0.5 for column in aggregate.LATE_COLUMNS},
           "coord_eff_lr_spread_late": np.nan if diverged else 1.0}
    row.update(dict.fromkeys(aggregate.CURVATURE_RUN_COLUMNS, np.nan))
    if curvature:
        row.update(initial_sharpness=initial, initial_precond_sharpness=initial if optimizer == "adam" else np.nan,
                   initial_stability_sharpness=initial,
                   predicted_critical_lr=lr * threshold / initial, max_sharpness_ratio=initial / threshold,
                   first_stable_step=first_stable_step,
                   loss_rise_before_stable=rise if np.isfinite(first_stable_step) else np.nan)
        if not diverged:
            row.update(late_sharpness_ratio=late_ratio, sharpness_late_change=change,
                       stability_sharpness_late_change=change, late_ratio_trend=trend)
    return row


def evaluate(rows) -> pd.DataFrame:
    runs = pd.DataFrame(rows).astype({"steps_to_target": "Int64"})
    analysis = tiny_study_config()["analysis"]
    cells = aggregate.summarize_cells(runs[runs["set"] == "grid"], analysis).assign(budget=1.0)
    return in_setting(claims.evaluate(runs, cells, analysis))


def cell(optimizer, lr, momentum, ratios, **kwargs) -> list[dict]:
    return [run(optimizer, lr, momentum, seed, late_ratio=r, **kwargs) for seed, r in enumerate(ratios)]


AT_EDGE, BELOW, ABOVE, STRADDLING = [0.95, 1.0, 1.05], [0.1, 0.12, 0.14], [2.0, 2.1, 2.2], [0.5, 0.9, 1.3]
EDGE_CASES = [
    ([AT_EDGE, AT_EDGE], "supported"),
    ([AT_EDGE, BELOW], "mixed"),
    ([BELOW, ABOVE], "refuted"),
    ([BELOW, STRADDLING], "inconclusive"),  # no cell at the edge, but one could be
]


@pytest.mark.parametrize("optimizer, claim, momentum", [("sgd", "7a", 0.9), ("adam", "7b", 0.9)])
@pytest.mark.parametrize("ratios, expected", EDGE_CASES)
def test_edge_of_stability_verdict_follows_the_late_ratio_intervals(optimizer, claim, momentum, ratios, expected):
    rows = [row for lr, r in zip([0.01, 0.1], ratios) for row in cell(optimizer, lr, momentum, r)]
    row = evaluate(rows).loc[claim]
    assert row["verdict"] == expected
    at_edge = sum(r is AT_EDGE for r in ratios)
    assert row["key"].startswith(f"at the edge in {at_edge} of 2 cells")
    assert (row["n_held"], row["n_tested"]) == (at_edge, 2)
    # below the band: with step-0 sharpness 10, "no progressive sharpening" where the late sharpness fell below it
    for lr, r in zip([0.01, 0.1], ratios):
        if r is BELOW:
            late = np.mean(r) * stability_threshold(optimizer, lr, momentum)
            place = "no progressive sharpening" if late < 10 else "below"
            assert f"{place} in 1: lr {lr:g}" in row["key"]


def test_cells_settled_below_with_a_falling_sharpness_are_no_progressive_sharpening():
    # SGD at lr 0.1, m 0: threshold 20; step-0 sharpness 10, late 0.12 x 20 = 2.4: it fell, never rose
    rows = cell("sgd", 0.1, 0.0, BELOW) + cell("sgd", 0.05, 0.0, BELOW)
    row = evaluate(rows).loc["7a"]
    assert row["verdict"] == "refuted"
    assert "no progressive sharpening in 2: lr 0.05 m 0, lr 0.1 m 0" in row["key"]


@pytest.mark.parametrize("optimizer, claim", [("sgd", "7a"), ("adam", "7b")])
def test_a_threshold_still_approached_at_the_end_is_not_reached_not_refuted(optimizer, claim):
    # Both cells settled below (above) the band: refuted. One still rising toward it: not reached.
    settled = cell(optimizer, 0.01, 0.9, BELOW) + cell(optimizer, 0.1, 0.9, ABOVE)
    assert evaluate(settled).loc[claim, "verdict"] == "refuted"
    rising = cell(optimizer, 0.01, 0.9, BELOW, trend=2 * stability.TREND_TOLERANCE) + cell(optimizer, 0.1, 0.9, ABOVE)
    row = evaluate(rising).loc[claim]
    assert row["verdict"] == "not reached"
    assert "not reached in 1: lr 0.01" in row["key"]
    assert "still rising +20%" in row["measured"]
    # Moving away from the band is no excuse: a falling cell below it stays below.
    falling = cell(optimizer, 0.01, 0.9, BELOW, trend=-0.5) + cell(optimizer, 0.1, 0.9, ABOVE)
    assert evaluate(falling).loc[claim, "verdict"] == "refuted"


def test_a_cell_whose_seeds_all_diverged_is_named_and_not_tested():
    rows = cell("sgd", 0.1, 0.0, AT_EDGE) + cell("sgd", 5.0, 0.0, AT_EDGE, diverged=True)
    row = evaluate(rows).loc["7a"]
    assert row["verdict"] == "supported" and "diverged in 1: lr 5 m 0" in row["key"]
    assert (row["n_held"], row["n_tested"]) == (1, 1)


def catapult_rows(first_stable: list, grid: dict[float, tuple[bool, bool]], rise: float = 0.5) -> list[dict]:
    """SGD curvature runs at lr 0.5 (threshold 4, step-0 sharpness 10: they start above it), seed i
    first stable at first_stable[i] (NaN: never) with a loss rise `rise` before it; plus full-batch
    grid runs: lr -> (diverged, trained)."""
    rows = [run("sgd", 0.5, 0.0, seed, initial=10.0, first_stable_step=step, rise=rise)
            for seed, step in enumerate(first_stable)]
    rows += [run("sgd", lr, 0.0, seed, curvature=False, diverged=gone, trained=trained)
             for lr, (gone, trained) in grid.items() for seed in range(len(first_stable))]
    return rows


# lambda_0 = 10: the step-0 critical lr is 0.2, so lr 0.6 is 3x it, 2 is 10x
TRAINS, DIVERGES, STALLS = (False, True), (True, False), (False, False)


@pytest.mark.parametrize("first_stable, grid, rise, expected, catapults", [
    ([2, 4, 2], {0.6: TRAINS, 2.0: DIVERGES}, 0.5, "supported", 3),
    ([2, np.nan, 2], {0.6: TRAINS, 2.0: DIVERGES}, 0.5, "mixed", 2),  # one stayed above its threshold
    ([2, 80, 2], {0.6: TRAINS, 2.0: DIVERGES}, 0.5, "mixed", 2),  # stable only after the dense early steps
    ([2, 4, 2], {0.6: TRAINS, 2.0: DIVERGES}, 0.0, "mixed", 0),  # no loss rise: not a catapult
    ([2, 4, 2], {0.6: TRAINS, 2.0: STALLS}, 0.5, "supported", 3),  # lr 2 survives but does not train
    ([2, 4, 2], {2.0: TRAINS, 6.0: DIVERGES}, 0.5, "mixed", 3),  # trains at 10x: no small multiple
])
def test_catapult_verdict_judges_both_halves(first_stable, grid, rise, expected, catapults):
    row = evaluate(catapult_rows(first_stable, grid, rise)).loc["7c"]
    assert row["verdict"] == expected
    assert row["source"] == "Lewkowycz et al., 2020"
    assert row["key"].startswith(f"catapult in {catapults} of 3 trained runs above the threshold")
    largest = max(lr for lr, (gone, trained) in grid.items() if trained and not gone)
    assert f"m 0: trains up to lr {largest:g} ({largest / 0.2:.3g}x), fails from lr" in row["key"]


def test_the_largest_lr_that_trains_is_not_reached_when_no_lr_fails():
    row = evaluate(catapult_rows([2, 4, 2], {0.6: TRAINS, 2.0: TRAINS})).loc["7c"]
    assert "fails at no larger lr (not reached)" in row["key"]
    assert row["verdict"] == "mixed"  # the catapults hold, the bracket is not reached


def test_catapult_is_inconclusive_without_a_run_above_the_threshold():
    rows = [run("sgd", 0.1, 0.0, seed, initial=10.0, first_stable_step=0) for seed in range(3)]  # threshold 20
    row = evaluate(rows).loc["7c"]
    assert row["verdict"] == "inconclusive" and "no SGD curvature run starts above its threshold" in row["detail"]


@pytest.mark.parametrize("changes, expected", [
    ([-0.5, -0.2, -0.11], "supported"),
    ([-0.5, 0.0, 0.3], "mixed"),
    ([-0.09, 0.0, 0.3], "refuted"),  # -9% is within the tolerance: flat, not a fall
])
def test_late_fall_verdict_counts_runs_beyond_the_tolerance(changes, expected):
    rows = [run("sgd", 0.1, 0.0, seed, change=c) for seed, c in enumerate(changes)]
    row = evaluate(rows + [run("sgd", 0.1, 0.9, 0, diverged=True)]).loc["7d"]  # diverged: not counted
    assert row["verdict"] == expected
    fell = sum(c < -stability.TREND_TOLERANCE for c in changes)
    assert row["key"].startswith(f"falls in {fell} of {len(changes)} finished curvature runs")


def test_runs_without_curvature_columns_give_inconclusive_rows():
    rows = [{key: value for key, value in run(seed=s, curvature=False).items()
             if key not in aggregate.CURVATURE_RUN_COLUMNS} for s in range(3)]
    table = evaluate(rows).loc[CURVATURE_IDS]
    assert (table["verdict"] == "inconclusive").all()
    assert table["detail"].str.startswith("cannot be tested").all()


def test_curvature_cells_summarize_each_setting_over_its_seeds(curvature_aggregate):
    """Each curvature setting's row against its runs, summarized here with stats.mean_interval."""
    runs = pd.read_parquet(curvature_aggregate / "runs.parquet")
    runs = runs[runs["set"] == "curvature"]
    summary = pd.read_parquet(curvature_aggregate / "curvature_cells.parquet")
    assert len(summary) == runs.groupby(["optimizer", "lr", "momentum", "budget"]).ngroups > 0
    for row in summary.itertuples():
        seeds = tables.select(runs, optimizer=row.optimizer, lr=row.lr, momentum=row.momentum, budget=row.budget)
        mean, lo, hi, n = stats.mean_interval(seeds["late_sharpness_ratio"])
        compared = seeds["initial_precond_sharpness" if row.optimizer == "adam" else "initial_sharpness"]
        assert (row.n_runs, row.n_diverged) == (len(seeds), seeds["diverged"].sum())
        assert row.late_sharpness_ratio_n == n
        assert (row.late_sharpness_ratio_mean, row.late_sharpness_ratio_lo, row.late_sharpness_ratio_hi) == \
            pytest.approx((mean, lo, hi), rel=1e-12, nan_ok=True)
        assert row.initial_stability_sharpness == pytest.approx(compared.mean(), rel=1e-12)
        assert row.stability_threshold == seeds["stability_threshold"].iloc[0]



def test_every_curvature_cell_of_the_config_finds_its_one_row(curvature_aggregate):
    """lr and momentum from the config, back through study.json, equal the table's floats."""
    agg = tables.load_aggregate(curvature_aggregate)
    for name, axes in agg.config["curvature"]["cells"].items():
        for lr in axes["lr"]:
            for momentum in axes["momentum"]:
                row = tables.one(agg.curvature_cells, optimizer=name, lr=lr, momentum=momentum)
                assert row["n_runs"] == len(agg.config["seeds"])


# --- figures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curvature_agg(curvature_aggregate):
    return tables.load_aggregate(curvature_aggregate)


def test_curvature_figures_are_written(curvature_aggregate, tmp_path):
    from optimizer_dynamics import figures
    from optimizer_dynamics.figures import render

    render.main(["--aggregate-dir", str(curvature_aggregate), "--out-dir", str(tmp_path),
                  "--only", "sharpness", "stability"])
    for stem in ("sharpness", "stability"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{stem}.svg").read_text().rstrip().endswith("</svg>")
    assert {"sharpness", "stability"} <= set(figures.FIGURES)


def test_sharpness_figure_draws_the_seed_mean_and_the_thresholds(curvature_agg, curvature_aggregate):
    from optimizer_dynamics import figures

    table = pd.read_parquet(curvature_aggregate / "curvature.parquet")
    fig = figures.FIGURES["sharpness"].draw(curvature_agg)
    checked = 0
    for ax in fig.axes:
        title = ax.get_title()
        if not ax.get_visible() or "no threshold" in title:
            continue
        optimizer = "adam" if title.startswith("Adam") else "sgd"
        column = "precond_sharpness" if "P⁻¹H" in title else "sharpness"
        rows = table[table["optimizer"] == optimizer]
        thresholds = sorted(line.get_ydata()[0] for line in ax.lines if line.get_gid() == "threshold")
        assert thresholds == pytest.approx(sorted(rows.groupby("lr")["threshold"].first()))
        for line in ax.lines:
            if not line.get_label().startswith("lr "):
                continue
            lr = float(line.get_label().removeprefix("lr "))
            expected = rows[np.isclose(rows["lr"], lr)].groupby("step")[column].mean()
            np.testing.assert_array_equal(line.get_xdata(), expected.index)
            np.testing.assert_allclose(line.get_ydata(), expected.to_numpy(), rtol=1e-12)
            checked += 1
    assert checked == table[["optimizer", "lr"]].drop_duplicates().shape[0]


def test_stability_figure_draws_each_seeds_late_ratio_and_the_catapult(curvature_agg, curvature_aggregate):
    from optimizer_dynamics import figures

    runs = pd.read_parquet(curvature_aggregate / "runs.parquet", filters=[("budget", "==", 1.0)])
    table = pd.read_parquet(curvature_aggregate / "curvature.parquet")
    fig = figures.FIGURES["stability"].draw(curvature_agg)
    left, right = fig.axes[:2]
    dots = np.concatenate([line.get_ydata() for line in left.lines if line.get_gid() == "seed"])
    assert sorted(dots) == pytest.approx(sorted(runs.loc[runs["set"] == "curvature", "late_sharpness_ratio"].dropna()))
    early = table[(table["optimizer"] == "sgd") & (table["step"] <= CURVATURE["early_steps"])]
    lines = [line for line in right.lines if line.get_gid() == "catapult"]
    assert len(lines) == early[["lr", "momentum"]].drop_duplicates().shape[0]
    for line in lines:
        lr = float(line.get_label().split(",")[0].removeprefix("lr "))
        rows = early[np.isclose(early["lr"], lr)]
        expected = (rows["sharpness"] / rows["threshold"]).groupby(rows["step"]).mean()
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy(), rtol=1e-12)


def test_curvature_figures_say_when_the_study_has_no_curvature(tiny_aggregate):
    from optimizer_dynamics import figures

    agg = tables.load_aggregate(tiny_aggregate)
    for build in (figures.FIGURES["sharpness"].draw, figures.FIGURES["stability"].draw):
        panels = [ax for ax in build(agg).axes if ax.get_visible()]
        assert panels, build.__name__
        for ax in panels:
            assert any("curvature runs in this study" in text.get_text() for text in ax.texts), build.__name__


# --- report --------------------------------------------------------------------------------------


def test_report_has_the_curvature_section_with_numbers_from_the_runs(curvature_aggregate, tmp_path):
    from bs4 import BeautifulSoup

    from optimizer_dynamics import report
    from optimizer_dynamics.figures import render

    render.main(["--aggregate-dir", str(curvature_aggregate), "--out-dir", str(tmp_path / "figures")])
    html = tmp_path / "findings.html"
    report.main(["--source", str(REPO / "report" / "findings.py"), "--aggregate-dir", str(curvature_aggregate),
                 "--figures-dir", str(tmp_path / "figures"), "--out-html", str(html)])
    page = BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser")
    title = "Curvature and the edge of stability"
    heading = next(h for h in page.find_all("h2") if h.get_text(strip=True) == title)
    section = []
    for node in heading.find_all_next():
        if node.name == "h2":
            break
        section.append(node)
    text = " ".join(" ".join(node.get_text(" ", strip=True).split())
                    for node in section if node.name in ("p", "li"))
    assert "Cohen et al. (2021" in text and "Cohen et al. (2022" in text
    assert "P = (1 − β₁ᵗ) diag(√(v / (1 − β₂ᵗ)) + ε)" in text
    verdict_table = in_setting(pd.read_parquet(curvature_aggregate / "verdicts.parquet"))
    for claim in CURVATURE_IDS:  # each claim linked to its row in the verdict table, where it is worded
        assert any(node.name == "a" and node.get("href") == f"#claim-{claim}" for node in section), claim
        row = " ".join(page.find(id=f"claim-{claim}").find_parent("tr").get_text(" ", strip=True).split())
        assert all(" ".join(verdict_table.loc[claim, column].split()) in row for column in ("claim", "lead"))
    assert f"a pair every {CURVATURE['early_every']} steps up to step {CURVATURE['early_steps']}, then every " \
        f"{CURVATURE['every']} steps" in text
    images = [node for node in section if node.name == "figure"]
    assert len(images) == 2 and all(node.find("img")["src"].startswith("data:image/png") for node in images)
    # The table presents curvature_cells.parquet, row for row and number for number.
    rows = [[td.get_text(" ", strip=True) for td in node.find_all("td")]
            for node in section if node.name == "tr" and node.find("td")]
    summary = pd.read_parquet(curvature_aggregate / "curvature_cells.parquet", filters=[("budget", "==", 1.0)])
    assert len(rows) == len(summary) > 0
    for cells, row in zip(rows, summary.itertuples()):
        assert cells[0].startswith(OPTIMIZERS[row.optimizer].label) and f"lr {row.lr:g}" in cells[0]
        assert float(cells[3]) == pytest.approx(row.initial_stability_sharpness, rel=5e-3)  # 3 digits shown
        assert float(cells[4].split()[0]) == pytest.approx(row.late_sharpness_ratio_mean, rel=5e-3)
        assert cells[6] == f"{row.n_diverged} of {row.n_runs}"


def minibatch_cell(lr, batch_ratios, full_ratios) -> list[dict]:
    """A minibatch curvature cell at batch 64: per seed, its late batch and full-batch ratios."""
    return [{**run("sgd", lr, 0.0, seed, late_ratio=full), "set": "minibatch_curvature", "batch": "64",
             "late_batch_sharpness_ratio": batch}
            for seed, (batch, full) in enumerate(zip(batch_ratios, full_ratios))]


@pytest.mark.parametrize(("batch", "full", "expected"), [
    (AT_EDGE, BELOW, "supported"),  # the edge of stochastic stability
    (AT_EDGE, AT_EDGE, "mixed"),  # the full-batch sharpness reached the edge too
    (BELOW, BELOW, "mixed"),  # the batch sharpness stayed below it
    (ABOVE, ABOVE, "refuted"),
])
def test_the_edge_of_stochastic_stability_is_judged_on_the_minibatch_curvature_runs(batch, full, expected):
    rows = [*minibatch_cell(0.1, batch, full), *minibatch_cell(0.5, batch, full),
            *cell("sgd", 0.1, 0.0, ABOVE)]  # a full-batch curvature cell, which 7e does not read
    row = evaluate(rows).loc["7e"]
    assert row["verdict"] == expected and row["n_tested"] == 2
    assert row["key"].startswith(f"at batch 64, the late batch sharpness is {np.median(batch):.2f} x")
    assert evaluate(cell("sgd", 0.1, 0.0, AT_EDGE)).loc["7e", "verdict"] == "inconclusive"  # no minibatch runs
