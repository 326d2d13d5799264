"""The training job as Snakemake runs it: a process with its run config as arguments."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from optimizer_dynamics.data import make_dataset, save_dataset

TINY = ["--n-train", "64", "--n-val", "64", "--steps", "40", "--eval-every", "5", "--hidden", "16", "--quiet"]


def run_job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "optimizer_dynamics.train", *TINY, *args], capture_output=True, text=True, timeout=300
    )


def dataset_file(tmp_path):
    path = tmp_path / "moons.npz"
    save_dataset(make_dataset(64, 64, 0.2, 0), path)
    return str(path)


def test_runs_trained_in_one_block_job_equal_each_trained_alone(tmp_path):
    data = dataset_file(tmp_path)
    # lr-major: (0.01, 0), (0.01, 1), (0.01, 2), (0.03, 0), ...
    together = [tmp_path / f"together_{lr}_{s}.parquet" for lr in ("0.01", "0.03") for s in (0, 1, 2)]
    assert run_job("--data", data, "--optimizer", "adam", "--lr", "0.01", "0.03", "--momentum", "0.9",
                   "--seed", "0", "1", "2", "--out", *map(str, together)).returncode == 0
    alone = tmp_path / "alone.parquet"
    assert run_job("--data", data, "--optimizer", "adam", "--lr", "0.03", "--momentum", "0.9",
                   "--seed", "1", "--out", str(alone)).returncode == 0
    a, b = pd.read_parquet(together[4]), pd.read_parquet(alone)
    assert (a["lr"] == 0.03).all() and (a["seed"] == 1).all()
    assert list(a.columns) == list(b.columns)
    for column in a.columns:  # column by column, NaN equal to NaN
        assert a[column].equals(b[column]), column
    assert not pd.read_parquet(together[0])["batch.loss"].equals(a["batch.loss"])


def test_diverging_run_exits_zero_with_a_readable_file(tmp_path):
    out = tmp_path / "run.parquet"
    result = run_job("--data", dataset_file(tmp_path), "--lr", "1e4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(out)
    assert frame["diverged"].all() and frame["step"].iloc[-1] == frame["diverged_step"].iloc[0]
    assert np.isfinite(frame["batch.loss"].iloc[0])


def test_bad_argument_names_the_field(tmp_path):
    result = run_job("--momentum", "1.5", "--out", str(tmp_path / "x.parquet"))
    assert result.returncode == 2
    assert "momentum = 1.5 is not allowed: must be a number in [0, 1)" in result.stderr
    assert not (tmp_path / "x.parquet").exists()
    mismatch = run_job("--seed", "0", "1", "--out", str(tmp_path / "x.parquet"))
    assert mismatch.returncode == 2 and "give one path per run" in mismatch.stderr


def test_progress_is_reported_without_quiet(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "optimizer_dynamics.train", *TINY[:-1], "--data", dataset_file(tmp_path),
         "--out", str(tmp_path / "r.parquet")],
        capture_output=True, text=True, timeout=300,
    )
    assert "step 40/40" in result.stderr and "finished" in result.stderr
