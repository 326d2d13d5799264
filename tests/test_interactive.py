"""The interactive figures' data, against the aggregate tables they are drawn from (the browser
tests in test_report.py check that they draw and respond)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from optimizer_dynamics import interactive


def chart_data(chart) -> pd.DataFrame:
    """The inline CSV rows of a chart's spec."""
    return pd.read_csv(io.StringIO(chart.to_dict()["data"]["values"]), dtype={"momentum": str, "lr": str})


def test_lr_sensitivity_rows_are_the_cells_medians(tiny_aggregate):
    cells = pd.read_parquet(tiny_aggregate / "cells.parquet")
    shown = chart_data(interactive.lr_sensitivity_chart(cells))
    finite = cells[np.isfinite(cells["median_final_val_loss"])]
    final = shown[shown["metric"] == "final val loss"]
    assert len(final) == len(finite)  # a cell where half the seeds diverged (+inf) is left out
    expected = finite.sort_values(["budget", "optimizer", "momentum", "lr"])["median_final_val_loss"].to_numpy()
    got = final.sort_values(["budget", "optimizer", "momentum", "lr"])["loss"].to_numpy(float)
    np.testing.assert_allclose(got, expected, rtol=5e-4)  # 4 significant digits in the CSV
    assert set(shown["budget"]) == {round(100 * b) for b in cells["budget"].unique()}


def test_curve_explorer_keeps_log_spaced_steps_of_the_curves(tiny_aggregate):
    curves = pd.read_parquet(tiny_aggregate / "curves.parquet")
    curvature = pd.read_parquet(tiny_aggregate / "curvature.parquet")
    cell = curves[curves["metric"] == "val.loss"].iloc[0]
    start = {"optimizer": cell["optimizer"], "lr": cell["lr"], "momentum": cell["momentum"], "batch": cell["batch"]}
    shown = chart_data(interactive.curve_explorer_chart(curves, curvature, start))
    one = shown[(shown["optimizer"] == cell["optimizer"]) & (shown["lr"] == f"{cell['lr']:g}")
                & (shown["momentum"] == f"{cell['momentum']:g}") & (shown["quantity"] == "1 val loss")]
    steps = np.unique(curves["step"])
    assert list(one["step"]) == list(interactive.log_spaced_steps(steps))
    source = curves[(curves[["optimizer", "lr", "momentum", "batch"]] == pd.Series(start)).all(axis=1)
                    & (curves["metric"] == "val.loss")].set_index("step")["mean"]
    np.testing.assert_allclose(one["mean"].to_numpy(float), source.loc[one["step"]].to_numpy(), rtol=5e-4)


def test_log_spaced_steps_are_dense_early_and_keep_the_last():
    steps = np.arange(0, 1000, 10)
    kept = interactive.log_spaced_steps(steps, 20)
    assert kept[0] == 0 and kept[-1] == 990 and len(kept) <= 20
    assert np.all(np.diff(kept) > 0) and np.diff(kept)[0] < np.diff(kept)[-1]
    assert list(interactive.log_spaced_steps(np.arange(5), 20)) == list(range(5))
