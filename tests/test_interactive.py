"""The interactive figures' data, against the aggregate tables they are drawn from (the browser
tests in test_report.py check that they draw and respond)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from optimizer_dynamics import batch_regime, interactive, tables


def chart_data(chart) -> pd.DataFrame:
    """The inline CSV rows of a chart's spec."""
    return pd.read_csv(io.StringIO(chart.to_dict()["data"]["values"]), dtype={"momentum": str, "lr": str})


def test_lr_sensitivity_rows_are_the_cells_medians_and_the_verdicts_windows(tiny_aggregate):
    cells = pd.read_parquet(tiny_aggregate / "cells.parquet")
    windows = pd.read_parquet(tiny_aggregate / tables.WINDOWS_FILE)
    claimed = {"sgd": [0.1, 0.3]}
    regime = sorted(cells["batch"].unique())[-1]
    chart = interactive.lr_sensitivity_chart(cells, windows, claimed, regime)
    shown = chart_data(chart)
    curves = shown[shown["kind"] == "curve"]
    finite = cells[np.isfinite(cells["median_final_val_loss"])]
    final = curves[(curves["metric"] == "final val loss") & curves["loss"].notna()]
    assert len(final) == len(finite)  # a cell where half the seeds diverged (+inf) is a gap in its line
    expected = finite.sort_values(["budget", "optimizer", "momentum", "lr"])["median_final_val_loss"].to_numpy()
    got = final.sort_values(["budget", "optimizer", "momentum", "lr"])["loss"].to_numpy(float)
    np.testing.assert_allclose(got, expected, rtol=5e-4)  # 4 significant digits in the CSV
    assert set(curves["budget"]) == {round(100 * b) for b in cells["budget"].unique()}
    # the divergence crosses read the cells' counts, every cell's
    assert curves["n_diverged"].sum() == 2 * cells["n_diverged"].sum()  # a row per metric
    # the shaded windows are the verdicts' windows; the claimed one is outlined once per optimizer
    drawn = shown[shown["kind"] == "window"]
    assert len(drawn) == windows["missing"].isna().sum()
    found = windows.dropna(subset=["lo"])
    alone = np.where(found["lo"] == found["hi"], interactive.ALONE_WIDTH, 1.0)  # one lr: drawn a little wide
    np.testing.assert_allclose(np.sort(drawn["lo"].to_numpy(float)), np.sort(found["lo"].to_numpy() / alone),
                               rtol=5e-4)
    assert shown.loc[shown["kind"] == "claimed", ["lo", "hi"]].to_numpy().tolist() == [[0.1, 0.3]]
    # it opens on the regime the report describes, the final val loss and the whole run
    opening = {p["name"]: p["value"] for p in chart.to_dict()["params"] if "bind" in p and "value" in p}
    assert opening == {"regime": batch_regime.label(regime), "metric": "final val loss", "budget": 100}


def test_curve_explorer_keeps_the_curves_at_log_spaced_and_evenly_spaced_steps(tiny_aggregate):
    curves = pd.read_parquet(tiny_aggregate / "curves.parquet")
    curvature = pd.read_parquet(tiny_aggregate / "curvature.parquet")
    cell = curves[curves["metric"] == "val.loss"].iloc[0]
    start = {"optimizer": cell["optimizer"], "lr": cell["lr"], "momentum": cell["momentum"], "batch": cell["batch"]}
    cells = pd.read_parquet(tiny_aggregate / "cells.parquet")
    spec = interactive.curve_explorer_chart(curves, curvature, [start], cells)
    heat_view, curves_view = spec["vconcat"]
    selectors = [p for p in spec["params"] if p["name"].startswith("cell")]
    assert len(selectors) == interactive.EXPLORER_SLOTS
    names = dict(zip(selectors[0]["bind"]["options"], selectors[0]["bind"]["labels"]))
    shown_first = names[selectors[0]["value"]]  # the start cell, as the menu names it
    assert shown_first == interactive.cell_text(cell["optimizer"], cell["lr"], cell["momentum"], cell["batch"])
    # every menu lists the cells that exist, and only those: the grid's and the curvature runs'
    grid_cells = curves[["optimizer", "lr", "momentum", "batch"]].drop_duplicates()
    curvature_cells = curvature[["optimizer", "lr", "momentum", "batch"]].drop_duplicates()
    assert len(names) == len(grid_cells) + len(curvature_cells)
    shown = pd.read_csv(io.StringIO(curves_view["data"]["values"]))
    one = shown[(shown["cell"] == selectors[0]["value"]) & (shown["panel"] == interactive.QUANTITIES.index("val loss"))]
    steps = np.unique(curves["step"])
    assert list(one["step"]) == list(interactive.explorer_steps(steps))
    source = curves[(curves[["optimizer", "lr", "momentum", "batch"]] == pd.Series(start)).all(axis=1)
                    & (curves["metric"] == "val.loss")].set_index("step")["mean"]
    np.testing.assert_allclose(one["mean"].to_numpy(float), source.loc[one["step"]].to_numpy(), rtol=5e-4)
    # the map: every grid cell of the whole runs once, its median final val loss, coded as the menus code it
    heat = pd.read_csv(io.StringIO(heat_view["data"]["values"]), dtype={"lr": str, "momentum": str})
    whole = cells[cells["budget"] == 1.0]
    assert len(heat) == len(whole)
    coded = heat[heat["cell"] >= 0]  # a cell without curves (every seed diverged) has none
    assert len(coded) == len(grid_cells)
    for row in coded.sample(min(5, len(coded)), random_state=0).itertuples():
        named = names[row.cell]
        assert named.endswith(f"lr {row.lr}, {row.regime}") and f" {row.momentum}, " in named


def test_log_spaced_steps_are_dense_early_and_keep_the_last():
    steps = np.arange(0, 1000, 10)
    kept = interactive.log_spaced_steps(steps, 20)
    assert kept[0] == 0 and kept[-1] == 990 and len(kept) <= 20
    assert np.all(np.diff(kept) > 0) and np.diff(kept)[0] < np.diff(kept)[-1]
    assert list(interactive.log_spaced_steps(np.arange(5), 20)) == list(range(5))


def test_explorer_steps_keep_a_stretch_of_late_training():
    steps = np.arange(0, 1000, 10)
    kept = interactive.explorer_steps(steps)
    assert set(interactive.log_spaced_steps(steps)) <= set(kept)  # dense early, as before
    assert (kept >= 990 - 990 / 8).sum() >= 2  # the last eighth of the run is more than its last step
