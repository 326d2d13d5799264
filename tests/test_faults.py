"""Nothing lost, nothing confusing: the tiny study killed at every stage, a corrupt run file,
a grid where most runs diverge, a training job killed between seeds.

Every test works in a temporary copy of the repository and runs the README's command,
`snakemake --cores 2 --configfile config/test.yaml`, with this interpreter's directory first on
PATH. Results are compared with those of one uninterrupted run (the `reference` fixture),
column by column: they must be equal, not close.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import REPO, SNAKEMAKE_ENV, copy_repo, run_files, snakemake
from optimizer_dynamics import study
from optimizer_dynamics.config import format_number
from optimizer_dynamics.data import make_dataset, save_dataset
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.runfile import read_metadata

README_COMMAND = ("--cores", "2", "--configfile", "config/test.yaml")
TEST_CONFIG = yaml.safe_load((REPO / "config/test.yaml").read_text())
N_RUNS = len(study.run_files(TEST_CONFIG))  # every regime's grid and the curvature runs
AGGREGATE_TABLES = ("runs", "cells", "curves", "verdicts")
TIMEOUT = 600  # seconds for any one Snakemake run; the tiny study takes ~40 s on 2 busy cores


# --- killing a whole process tree -------------------------------------------------------


def start(workdir: Path, log: Path, *args: str) -> subprocess.Popen:
    """Snakemake in a process group of its own: one killpg reaches it and every job it started
    (Snakemake gives its jobs no group of their own)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", *args],
            cwd=workdir,
            env=SNAKEMAKE_ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(pgrp) == group and state != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_tree(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while group_members(process.pid):
        assert time.monotonic() < deadline, f"processes of group {process.pid} survived SIGKILL"
        time.sleep(0.05)


def wait_for(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll until ready() (True) or the process ends (False); no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if process.poll() is not None:
            return ready()
        if time.monotonic() > deadline:
            kill_tree(process)
            raise AssertionError(f"nothing happened within {timeout} s")
        time.sleep(0.01)


def attempt(workdir: Path, log: Path, kill_when: Callable[[], bool] | None) -> tuple[bool, int, str]:
    """One run of the README's command: (killed, exit code, output)."""
    process = start(workdir, log, *README_COMMAND)
    if kill_when is not None and wait_for(process, kill_when):
        kill_tree(process)
        return True, process.returncode, log.read_text()
    process.wait(timeout=TIMEOUT)
    return False, process.returncode, log.read_text()


def readme_command(workdir: Path, log: Path, kill_when: Callable[[], bool] | None = None) -> str:
    """The README's command, and its documented recovery: when it stops with a LockException
    (Snakemake leaves its lock after SIGKILL), `snakemake --unlock`, then the same command.
    With kill_when, the whole process tree is killed with SIGKILL as soon as it holds.
    Returns the output of the last attempt."""
    killed, returncode, output = attempt(workdir, log, kill_when)
    if not killed and returncode != 0 and "LockException" in output:
        unlock = snakemake(workdir, "--unlock")
        assert unlock.returncode == 0, unlock.stderr
        killed, returncode, output = attempt(workdir, log, kill_when)
    if kill_when is not None:
        assert killed, f"the run ended (exit code {returncode}) before the kill point:\n{output[-5000:]}"
    else:
        assert returncode == 0, output[-5000:]
    return output


# --- what a finished or killed study holds ----------------------------------------------


# How each kind of output is read back; text formats must end with their closing mark.
READERS = {
    ".parquet": pq.read_table,
    ".json": lambda path: json.loads(path.read_text()),
    ".npz": lambda path: dict(np.load(path)),
    ".png": matplotlib.image.imread,
}
CLOSING_MARKS = {".svg": b"</svg>", ".html": b"</html>", ".pdf": b"%%EOF"}


def assert_nothing_half_written(results: Path) -> None:
    """Every file with an output's name is whole; temporaries are hidden .name.tmpPID files.
    (Logs and benchmarks are streams, not outputs.)"""
    for path in results.rglob("*"):
        if path.is_dir() or path.parts[len(results.parts)] in ("logs", "benchmarks"):
            continue
        if path.name.startswith("."):
            assert re.fullmatch(r"\..+\.tmp\d+", path.name), path
        elif path.suffix in CLOSING_MARKS:
            assert path.read_bytes().rstrip().endswith(CLOSING_MARKS[path.suffix]), f"{path} is cut off"
        else:
            read = READERS[path.suffix]
            try:
                read(path)
            except Exception as error:  # noqa: BLE001 (any failure to read is the finding)
                raise AssertionError(f"{path} looks complete but cannot be read: {error!r}") from error


def assert_same_frame(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(actual.columns) == list(expected.columns), what
    for column in expected.columns:  # NaN equals NaN; dtypes must match
        assert actual[column].equals(expected[column]), f"{what}: column {column} differs"


def assert_same_results(workdir: Path, reference: Path) -> None:
    """Run files, aggregate tables (verdicts included), study.json, figures and report page equal
    the reference's."""
    expected = [path.relative_to(reference) for path in run_files(reference)]
    assert [path.relative_to(workdir) for path in run_files(workdir)] == expected
    for relative in expected:
        assert_same_frame(
            pd.read_parquet(workdir / relative), pd.read_parquet(reference / relative), str(relative)
        )
        assert read_metadata(workdir / relative) == read_metadata(reference / relative), relative
    for name in AGGREGATE_TABLES:
        relative = f"results/aggregate/{name}.parquet"
        assert_same_frame(
            pd.read_parquet(workdir / relative), pd.read_parquet(reference / relative), relative
        )
    study = "results/aggregate/study.json"
    assert json.loads((workdir / study).read_text()) == json.loads((reference / study).read_text())
    # Figures and the HTML page too, byte for byte. (Not the PDF: typst stamps it with the time.)
    pages = [reference / "results/report/findings.html", *sorted((reference / "results/figures").iterdir())]
    for page in pages:
        relative = page.relative_to(reference)
        assert (workdir / relative).read_bytes() == page.read_bytes(), relative


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny study, run once without interruption."""
    workdir = copy_repo(tmp_path_factory.mktemp("reference"))
    output = readme_command(workdir, workdir / "snakemake.log")
    assert (workdir / "results/report/findings.html").exists(), output[-3000:]
    assert len(run_files(workdir)) == N_RUNS
    return workdir


# --- 1. killed at every stage, resumed by the README command ------------------------------


def log_exists(name: str) -> Callable[[Path], bool]:
    # The job's shell creates its log as it starts: the stage is running.
    return lambda workdir: (workdir / f"results/logs/{name}.log").exists()


# In order: each resumed run is killed at a later stage than the one before, so every stage's
# recovery is exercised, and the last resume must finish the study.
KILL_POINTS = [
    (
        "the data set is written, training starts",
        lambda workdir: (workdir / "results/data/moons.npz").exists(),
    ),
    ("mid-training: some run files written, not all", lambda workdir: 0 < len(run_files(workdir)) < N_RUNS),
    ("during the aggregation", log_exists("aggregate")),
    ("during the figures", log_exists("figures")),
    ("during the report", log_exists("report")),
]


@pytest.mark.slow
def test_killed_at_every_stage_the_readme_command_resumes_to_the_same_results(tmp_path, reference):
    workdir = copy_repo(tmp_path)
    for what, reached in KILL_POINTS:
        assert not reached(workdir), f"the previous kill came too late: already {what}"
        readme_command(workdir, tmp_path / "killed.log", kill_when=lambda: reached(workdir))
        assert_nothing_half_written(workdir / "results")

    output = readme_command(workdir, tmp_path / "resumed.log")
    assert "LockException" not in output

    assert_same_results(workdir, reference)
    again = snakemake(workdir, "-n", *README_COMMAND)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


# --- 2. one training job killed between seeds ---------------------------------------------

SLOW_JOB = ["--n-train", "64", "--n-val", "64", "--hidden", "16", "--steps", "3000", "--eval-every", "50"]
SEEDS = (0, 1, 2)


def killed_training_job(
    workdir: Path, data: Path, kill_when: Callable[[list[Path], str], bool]
) -> list[Path]:
    """`$PYTHON -m optimizer_dynamics.train ... --seed 0 1 2 --out ...` (a block, as the workflow
    runs it), killed with SIGKILL once kill_when(outs, progress) holds; returns the --out paths."""
    outs = [workdir / "runs" / f"seed~{seed}.parquet" for seed in SEEDS]
    log = workdir / "train.log"
    workdir.mkdir()
    command = [
        sys.executable,
        "-m",
        "optimizer_dynamics.train",
        *SLOW_JOB,
        "--data",
        str(data),
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--momentum",
        "0.9",
        "--seed",
        *map(str, SEEDS),
        "--out",
        *map(str, outs),
    ]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stderr=stderr, start_new_session=True)
    reached = wait_for(process, lambda: kill_when(outs, log.read_text()), timeout=TIMEOUT)
    assert reached, f"the job ended before the kill point:\n{log.read_text()}"
    kill_tree(process)
    return outs


def test_a_killed_training_job_leaves_only_finished_runs(tmp_path):
    data = tmp_path / "moons.npz"
    save_dataset(make_dataset(64, 64, 0.2, 0), data)

    # Killed while the block trains (it reports every 250 steps): no run file at all.
    outs = killed_training_job(tmp_path / "first", data, lambda outs, progress: "step 250/" in progress)
    assert not outs[0].exists()
    assert not [path for path in outs[0].parent.glob("*") if not path.name.startswith(".")]

    # Killed as soon as the first run's file is there, while the others are being written:
    # each file that exists is whole, and nothing else is left.
    outs = killed_training_job(tmp_path / "second", data, lambda outs, progress: outs[0].exists())
    written = [out for out in outs if out.exists()]
    for seed, out in enumerate(written):
        finished = pd.read_parquet(out)
        assert len(finished) == 3000 and (finished["seed"] == seed).all()
    assert_nothing_half_written(outs[0].parent)
    # Read as a directory (as the README shows), it holds the finished runs only.
    assert len(pd.read_parquet(outs[0].parent)) == 3000 * len(written)


# --- 3. a corrupt run file ----------------------------------------------------------------

CORRUPTIONS = {
    "truncated": lambda good: good[: len(good) // 2],
    "garbage": lambda good: b"not a parquet file\n" * 100,
}


def finished_copy(reference: Path, workdir: Path) -> Path:
    """A copy of the finished reference study, .snakemake/ and every mtime included."""
    shutil.copytree(reference, workdir)
    plan = snakemake(workdir, "-n", *README_COMMAND)
    assert "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout + plan.stderr
    return workdir


def corrupt_and_rerun(workdir: Path, victim: Path, content: bytes) -> str:
    """Overwrite a run file, now: newer than the data set (its training job is not rerun) and
    than the aggregates (the aggregation is). Returns the failed run's output."""
    victim.write_bytes(content)
    result = snakemake(workdir, *README_COMMAND)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    return output


@pytest.mark.slow
def test_a_corrupt_run_file_stops_the_aggregation_naming_it(tmp_path, reference):
    workdir = finished_copy(reference, tmp_path / "study")
    victim = run_files(workdir)[-1]
    good = victim.read_bytes()
    finished = {
        path: path.read_bytes()
        for path in [*(workdir / "results/aggregate").iterdir(), *(workdir / "results/report").iterdir()]
    }

    for corruption, corrupt in CORRUPTIONS.items():
        output = corrupt_and_rerun(workdir, victim, corrupt(good))
        # (each job's message: no training job reran, the aggregation did)
        assert not re.search(r"Job \d+: training ", output) and re.search(r"Job \d+: aggregating ", output), corruption
        # Snakemake names the failed rule and its log; the log names the file and the fix.
        assert "Error in rule aggregate" in output and "results/logs/aggregate.log" in output, output[-3000:]
        message = (workdir / "results/logs/aggregate.log").read_text()
        assert str(victim.relative_to(workdir)) in message, message
        assert "delete it and rerun snakemake" in message, message
        # Nothing is built on partial data: each aggregate is gone (Snakemake removes a failed
        # job's outputs) or unchanged, and the previous report stays as it was.
        for path, content in finished.items():
            assert not path.exists() or path.read_bytes() == content, (corruption, path)
        assert all(path.exists() for path in finished if path.parent.name == "report"), corruption


@pytest.mark.slow
def test_deleting_the_corrupt_run_file_and_rerunning_completes_the_study(tmp_path, reference):
    workdir = finished_copy(reference, tmp_path / "study")
    victim = run_files(workdir)[-1]
    corrupt_and_rerun(workdir, victim, CORRUPTIONS["truncated"](victim.read_bytes()))

    victim.unlink()  # what the message says to do
    result = snakemake(workdir, *README_COMMAND)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_results(workdir, reference)


# --- 4. most runs diverge ----------------------------------------------------------------


def diverging(curvature_cells: dict) -> dict:
    """SGD with heavy-ball momentum 0.9 at lr 5, 20 and 100 and Adam at lr 10, beside one sane
    lr each: most runs diverge."""
    return {
        **TEST_CONFIG,
        "optimizers": {
            "sgd": {"lr": [0.1, 5.0, 20.0, 100.0], "momentum": [0.9]},
            "adam": {"lr": [1.0e-3, 10.0], "momentum": [0.9]},
        },
        "analysis": {
            **TEST_CONFIG["analysis"],
            "reference": {"sgd": {"lr": 0.1, "momentum": 0.9}, "adam": {"lr": 1.0e-3, "momentum": 0.9}},
        },
        "training": {**TEST_CONFIG["training"], "batch_size": [None]},  # one regime: the report's tables show it
        "curvature": {**TEST_CONFIG["curvature"], "cells": curvature_cells},
    }


def run_study(workdir: Path, config: dict) -> Path:
    copy_repo(workdir)
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "2", "--configfile", "study.yaml")
    report_log = workdir / "results/logs/report.log"
    assert result.returncode == 0, result.stderr[-3000:] + (
        report_log.read_text() if report_log.exists() else ""
    )
    return workdir


def divergence_tables(page: BeautifulSoup) -> dict[str, dict[tuple[str, str], str]]:
    """The report's per-optimizer divergence tables: {optimizer: {(lr, momentum column): "k of n"}}."""
    tables = {}
    for table in page.find_all("table"):
        caption = table.find("caption")
        if caption is None or "diverged runs at each learning rate" not in caption.get_text():
            continue
        optimizer = caption.get_text().split(":")[0].strip()
        header = [th.get_text(strip=True) for th in table.find("thead").find_all("th")]
        tables[optimizer] = {
            (cells[0], column): text
            for row in table.find("tbody").find_all("tr")
            for cells in [[td.get_text(strip=True) for td in row.find_all("td")]]
            for column, text in zip(header[1:], cells[1:])
        }
    return tables


@pytest.mark.slow
def test_a_grid_where_most_runs_diverge_is_aggregated_and_reported(tmp_path):
    # Curvature on a diverging SGD cell and on a sane Adam cell.
    cells = {"sgd": {"lr": [100.0], "momentum": [0.9]}, "adam": {"lr": [1.0e-3], "momentum": [0.9]}}
    workdir = run_study(tmp_path, diverging(cells))

    runs = pd.read_parquet(workdir / "results/aggregate/runs.parquet", filters=[("budget", "==", 1.0)])
    on_disk = pd.concat([pd.read_parquet(path).iloc[[-1]] for path in run_files(workdir)])
    assert len(runs) == len(on_disk) == 12 + 4  # the grid's runs and the curvature runs
    key = ["problem", "curvature_every", "optimizer", "lr", "momentum", "seed"]
    assert (
        runs.set_index(key)["diverged"].sort_index().equals(on_disk.set_index(key)["diverged"].sort_index())
    )
    runs = runs[runs["set"] == "grid"]  # what the report's divergence tables count
    assert runs["diverged"].sum() > len(runs) / 2, "the grid was meant to make most runs diverge"
    assert runs.groupby("optimizer")["diverged"].any().all(), "both optimizers should have diverged runs"

    page = BeautifulSoup((workdir / "results/report/findings.html").read_text(), "html.parser")
    text = " ".join(page.get_text(" ").replace("\u2019", "'").split())  # pandoc's typographic apostrophe
    per_optimizer = runs.groupby("optimizer")["diverged"].agg(["sum", "size"])
    assert (
        f"{runs['diverged'].sum()} of the grid's {len(runs)} runs diverged ("
        + ", ".join(f"{row['sum']} of {row['size']} {OPTIMIZERS[name].label}" for name, row in per_optimizer.iterrows())
        + ")"
    ) in text
    expected = {  # the tables are captioned with the optimizers' labels
        OPTIMIZERS[optimizer].label: {
            (
                format_number(lr),
                f"{OPTIMIZERS[optimizer].momentum_symbol} {format_number(momentum)}",
            ): f"{cell.sum()} of {len(cell)}"
            for (lr, momentum), cell in group.groupby(["lr", "momentum"])["diverged"]
        }
        for optimizer, group in runs.groupby("optimizer")
    }
    assert divergence_tables(page) == expected
    assert (workdir / "results/figures/lr_sensitivity_full.png").stat().st_size > 0


@pytest.mark.slow
def test_a_study_whose_curvature_runs_all_diverge_is_reported(tmp_path):
    cells = {"sgd": {"lr": [100.0], "momentum": [0.9]}, "adam": {"lr": [10.0], "momentum": [0.9]}}
    workdir = run_study(tmp_path, diverging(cells))
    runs = pd.read_parquet(workdir / "results/aggregate/runs.parquet", filters=[("budget", "==", 1.0)])
    assert runs[runs["set"] == "curvature"]["diverged"].all()
