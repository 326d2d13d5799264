"""Aggregation of the tiny study: every number checked against the run files themselves."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_STEPS, frames_by_run, runs_dir, tiny_config, tiny_study_config
from optimizer_dynamics import aggregate, stats, study, tables
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset
from optimizer_dynamics.runfile import write_run
from optimizer_dynamics.train import train, train_block


@pytest.fixture(scope="module")
def files(tiny_study):
    return frames_by_run(tiny_study)


def read(tiny_aggregate, name):
    """An aggregate table; runs and cells at the whole-run budget (one row per run, per cell)."""
    whole = [("budget", "==", 1.0)] if name in ("runs.parquet", "cells.parquet") else None
    return pd.read_parquet(tiny_aggregate / name, filters=whole)


def test_a_budget_is_the_summary_of_the_shorter_run(tiny_aggregate, tiny_dataset):
    """At budget 0.5 the summaries are those of runs trained for half the steps (train.py's runs
    at a constant lr are prefixes of longer ones; test_training checks that per step)."""
    runs = pd.read_parquet(tiny_aggregate / "runs.parquet", filters=[("budget", "==", 0.5)])
    assert set(runs["budget_steps"]) == {TINY_STEPS // 2}
    config = tiny_study_config()
    short = [train(tiny_config(optimizer=row.optimizer, lr=row.lr, momentum=row.momentum, seed=row.seed,
                               steps=TINY_STEPS // 2), tiny_dataset) for row in runs.itertuples()]
    steps = pd.concat([pd.DataFrame(log.columns).assign(run=index) for index, log in enumerate(short)],
                      ignore_index=True)
    run_table = pd.DataFrame([{**log.config.to_dict(), "batch": log.config.batch, "diverged": log.diverged,
                               "diverged_step": log.diverged_step, "diverged_cause": log.diverged_cause}
                              for log in short]).astype({"diverged_step": "Int64", "batch_size": "Int64"})
    expected = aggregate.summarize_runs(steps, run_table.rename_axis("run"), config["analysis"],
                                        aggregate.curvature_rows(steps, run_table))
    columns = ["diverged", "steps_completed", "final_val_loss", "selected_val_loss", "final_train_loss",
               "eff_step_late", "update_cosine_late", "coord_eff_lr_median_late"]
    pd.testing.assert_frame_equal(runs[columns].reset_index(drop=True), expected[columns].reset_index(drop=True))
    assert (runs["steps_to_target"].fillna(-1).to_numpy() == expected["steps_to_target"].fillna(-1).to_numpy()).all()


def test_one_run_row_per_file_with_final_val_loss_from_the_file(tiny_aggregate, files):
    runs = read(tiny_aggregate, "runs.parquet")
    assert len(runs) == len(files)
    for row in runs.itertuples():
        frame = files[(row.optimizer, row.lr, row.momentum, row.seed)]
        assert row.steps_completed == len(frame)
        if row.diverged:
            assert np.isnan(row.final_val_loss) and np.isnan(row.selected_val_loss)
        else:
            assert row.final_val_loss == frame["val.loss"].dropna().iloc[-1]
            # the step is chosen on the first half of the validation set, its loss read on the second
            evaluated = frame.dropna(subset=["val_select.loss"]).reset_index(drop=True)
            chosen = int(np.argmin(evaluated["val_select.loss"].to_numpy()))
            assert row.selected_step == evaluated["step"][chosen]
            assert row.selected_val_loss == evaluated["val_report.loss"][chosen]
            assert row.overfit_gap == pytest.approx(evaluated["val_report.loss"].iloc[-1] / row.selected_val_loss - 1)
            assert row.final_train_loss_ratio == pytest.approx(frame["train.loss"].dropna().iloc[-1] /
                                                               frame["batch.loss"].iloc[0])


def test_diverged_runs_are_kept_and_counted(tiny_aggregate, files):
    runs = read(tiny_aggregate, "runs.parquet")
    cells = read(tiny_aggregate, "cells.parquet")
    diverged_files = [key for key, frame in files.items() if frame["diverged"].iloc[0]]
    assert diverged_files, "the tiny study is meant to contain a diverging lr"
    assert runs["diverged"].sum() == len(diverged_files)
    assert cells["n_diverged"].sum() == len(diverged_files)
    assert runs.loc[runs["diverged"], aggregate.END_COLUMNS].isna().all().all()
    assert runs.loc[runs["diverged"], "steps_to_target"].isna().all()
    all_diverged = cells[cells["n_diverged"] == cells["n_runs"]]
    assert np.isinf(all_diverged["median_final_val_loss"]).all()
    assert not all_diverged["in_good_window"].any()


def test_cells_count_seeds_and_mark_the_best_lr_good(tiny_aggregate, files):
    cells = read(tiny_aggregate, "cells.parquet")
    expected = pd.Series([key[:3] for key in files]).value_counts()
    counted = cells.set_index(["optimizer", "lr", "momentum"])["n_runs"]
    assert counted.sort_index().to_dict() == {k: v for k, v in sorted(expected.items())}
    best = cells.loc[cells.groupby(["optimizer", "momentum"])["median_final_val_loss"].idxmin()]
    assert best["in_good_window"].all()
    for row in cells.itertuples():  # the median final val accuracy over the seeds that finished
        finished = [frame for key, frame in files.items()
                    if key[:3] == (row.optimizer, row.lr, row.momentum) and not frame["diverged"].iloc[0]]
        accuracy = pd.Series([frame["val.acc"].dropna().iloc[-1] for frame in finished], dtype=float)
        assert row.median_final_val_acc == pytest.approx(accuracy.median(), nan_ok=True)


def test_curve_mean_is_the_mean_over_seeds_of_the_files(tiny_aggregate, files):
    curves = read(tiny_aggregate, "curves.parquet")
    key = next(iter(files))
    seeds = [frame for k, frame in files.items() if k[:3] == key[:3]]
    step = int(seeds[0]["step"].iloc[len(seeds[0]) // 2 // 5 * 5 - 1])  # an eval step (eval_every 5)
    for metric in ("val.loss", "grad.global", "update.cosine"):
        direct = np.mean([frame.loc[frame["step"] == step, metric].iloc[0] for frame in seeds])
        row = curves[
            (curves["optimizer"] == key[0])
            & (curves["lr"] == key[1])
            & (curves["momentum"] == key[2])
            & (curves["step"] == step)
            & (curves["metric"] == metric)
        ]
        assert len(row) == 1
        assert row["mean"].iloc[0] == pytest.approx(direct, rel=1e-12)
        assert row["lo"].iloc[0] <= row["mean"].iloc[0] <= row["hi"].iloc[0]
        assert row["n"].iloc[0] == len(seeds)


def test_curves_summarize_over_seeds_with_a_t_interval(tiny_study):
    """Three seeds (one built from another, scaled), so that mean, median and range differ."""
    steps, run_table, _ = aggregate.read_runs([p for p in tiny_study if "optimizer~adam" in str(p)][:2])
    extra = steps[steps["run"] == 0].assign(run=2)
    extra["val.loss"] *= 3
    run_table = pd.concat([run_table, run_table.iloc[[0]].assign(seed=99)], ignore_index=True).rename_axis("run")
    curves = aggregate.summarize_curves(pd.concat([steps, extra], ignore_index=True), run_table)
    row = curves[(curves["metric"] == "val.loss") & (curves["step"] == 9)].iloc[0]
    values = pd.concat([steps, extra]).query("step == 9")["val.loss"]
    half = stats.t_quantile(2) * values.std(ddof=1) / np.sqrt(3)
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert (row["lo"], row["hi"]) == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-12)


def test_t_quantile_matches_the_t_distribution():
    """Integrating torch's Student-t density over +-q gives the confidence level."""
    import torch

    for df in (1, 2, 4, 9, 30):
        q = float(stats.t_quantile(df))
        grid = torch.linspace(-q, q, 200_001, dtype=torch.float64)
        density = (
            torch.distributions.StudentT(torch.tensor(float(df), dtype=torch.float64)).log_prob(grid).exp()
        )
        assert float(torch.trapezoid(density, grid)) == pytest.approx(stats.CONFIDENCE, abs=1e-9)


def test_study_json_counts_runs(tiny_aggregate, files):
    study = json.loads((tiny_aggregate / "study.json").read_text())
    assert study["n_runs"] == len(files)
    assert study["config"] == tiny_study_config()
    assert set(study["n_diverged_per_optimizer"]) == {key[0] for key in files}


@pytest.mark.parametrize("content", ["garbage", "truncated", "other parquet", "missing"])
def test_a_bad_run_file_stops_aggregation_and_names_it(tmp_path, tiny_study, content):
    runs = shutil.copytree(runs_dir(tiny_study), tmp_path / "runs")
    bad = runs / tiny_study[1].relative_to(runs_dir(tiny_study))
    good = bad.read_bytes()
    if content == "other parquet":
        pd.DataFrame({"step": [0, 1]}).to_parquet(bad)
    elif content == "missing":
        bad.unlink()
    else:
        bad.write_bytes(good[: len(good) // 2] if content == "truncated" else b"not parquet at all")
    out = tmp_path / "out"
    argv = [
        "--runs-dir",
        str(runs),
        "--config-json",
        json.dumps(tiny_study_config()),
        "--out-dir",
        str(out),
    ]
    with pytest.raises(SystemExit) as failure:
        aggregate.main(argv)
    assert str(bad) in str(failure.value.code) and "snakemake" in str(failure.value.code)
    assert not out.exists()


def test_a_run_trained_with_other_settings_than_the_config_is_named(tmp_path, tiny_study):
    config = tiny_study_config()
    config["training"]["steps"] += 1
    argv = ["--runs-dir", str(runs_dir(tiny_study)), "--config-json", json.dumps(config), "--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as failure:
        aggregate.main(argv)
    assert str(tiny_study[0]) in str(failure.value.code) and "training.steps" in str(failure.value.code)


def test_outputs_are_complete_and_no_temporary_file_is_left(tiny_aggregate):
    names = sorted(path.name for path in tiny_aggregate.iterdir())
    # the aggregation's and the claims'
    assert names == sorted([*tables.AGGREGATE_FILES, *tables.CLAIMS_FILES])

    assert "curvature_cells.parquet" in names


def test_the_coordinate_spread_is_p90_over_median_of_each_run(tiny_aggregate):
    runs = pd.read_parquet(tiny_aggregate / "runs.parquet")
    finished = runs[~runs["diverged"]]
    expected = finished["coord_eff_lr_p90_late"] / finished["coord_eff_lr_median_late"]
    assert np.allclose(finished["coord_eff_lr_spread_late"], expected, rtol=1e-12, equal_nan=True)
    assert runs.loc[runs["diverged"], "coord_eff_lr_spread_late"].isna().all()


@pytest.mark.slow
def test_a_20000_run_study_aggregates(tmp_path):
    """Far past the ~1,900 runs an aggregation command listing every file could take: 20,050
    small synthetic runs (2 steps of a 4-unit net on 8 points), trained by the real engine
    per block and aggregated from the runs directory."""
    data = {"n_train": 8, "n_val": 8, "noise": 0.2, "seed": 0}
    config = tiny_study_config()
    config["data"] = data
    config["training"] = {**config["training"], "steps": 2, "eval_every": 1}
    config["optimizers"] = {
        "sgd": {"lr": [0.3, *(k / 1000 for k in range(1, 100))], "momentum": [0.0, 0.5, 0.9, 0.99]},
        "adam": {"lr": [0.01], "momentum": [0.9]},
    }
    config["seeds"] = list(range(50))
    dataset = make_dataset(data["n_train"], data["n_val"], data["noise"], data["seed"])
    root = tmp_path / "runs"
    for block in study.blocks(config):
        configs = [
            RunConfig(optimizer=block.optimizer, lr=float(lr), momentum=float(block.momentum), seed=seed,
                      steps=2, eval_every=1, hidden=4, n_train=8, n_val=8, data_seed=0)
            for lr in block.lrs
            for seed in config["seeds"]
        ]
        for log, path in zip(train_block(configs, dataset), block.run_files(config["seeds"], str(root))):
            write_run(log, path)
    out = tmp_path / "aggregate"
    aggregate.main(["--runs-dir", str(root), "--config-json", json.dumps(config), "--out-dir", str(out)])
    runs = pd.read_parquet(out / "runs.parquet", filters=[("budget", "==", 1.0)])
    assert len(runs) == len(study.run_files(config)) == 20_050
    assert pd.read_parquet(out / "cells.parquet")["n_runs"].eq(50).all()


def test_late_update_rms_is_the_mean_over_the_late_window_of_each_run_file(tiny_aggregate, files):
    runs = read(tiny_aggregate, "runs.parquet")
    late_fraction = tiny_study_config()["analysis"]["late_fraction"]
    for row in runs[~runs["diverged"]].itertuples():
        frame = files[(row.optimizer, row.lr, row.momentum, row.seed)]
        late = frame.tail(max(1, math.ceil(late_fraction * len(frame))))
        assert row.update_rms_late == pytest.approx(late["update.rms"].mean(), rel=1e-12)
