"""Cluster execution: profiles/slurm runs the tiny study's training jobs as real SLURM jobs.

A private single-node SLURM cluster (scripts/cluster/start_slurm.sh: munge, slurmctld and
slurmd on 127.0.0.1, installed with apt-get if missing) is started for these tests and stopped
afterwards; a cluster that is already up (`sudo scripts/cluster/start_slurm.sh`) is used and
left running. Without root and without a running cluster, or without a way to get SLURM, the
tests are skipped and pytest's summary says why.

Three runs of config/test.yaml go side by side, each in its own copy of the repository: a
local one, one through the profile as shipped (one SLURM job per training block, here an
optimizer x momentum line), and one with the lines split into smaller jobs
(training.max_runs_per_job). Each SLURM run must have submitted every training block as one
SLURM job, and must produce exactly the local run's numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_repo
from optimizer_dynamics import study
from optimizer_dynamics.study import blocks
from optimizer_dynamics.runfile import read_metadata

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PROFILE = REPO / "profiles/slurm"
CLUSTER_SCRIPTS = REPO / "scripts/cluster"
SLURM_DIR = Path(os.environ.get("OPTDYN_SLURM_DIR", "/run/optdyn-slurm"))
TEST_CONFIG = "config/test.yaml"
# Training and aggregation are what the cluster changes; figures and report run locally in
# every mode (localrules) and are covered by test_workflow.py.
TARGET = "aggregate"
# A hung run (e.g. a status command that never sees its jobs finish) fails instead of
# stalling CI: `timeout` ends it, -k kills it if it ignores SIGTERM.
RUN_LIMIT_SECONDS = 300
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.$", re.MULTILINE)
FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (train_\w+)\)$", re.MULTILINE)
# A block per optimizer x momentum line, and the same lines split into jobs of one lr each
# (training.max_runs_per_job = the tiny study's 2 seeds): the knob that sets the SLURM job size.
RUNS_PER_SPLIT_JOB = 2

MODES = {
    "local": ["--cores", "2"],
    "per_block": ["--profile", str(PROFILE), "--slurm-keep-successful-logs"],
    "split": ["--profile", str(PROFILE), "--slurm-keep-successful-logs"],  # + the copy's config edited
}  # fmt: skip


# --- the cluster ---------------------------------------------------------------------------


def profile_partition() -> str:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return profile["default-resources"]["slurm_partition"]


def cluster_env(partition: str) -> dict[str, str]:
    return {
        **os.environ,
        # Jobs call `python`: this interpreter's directory first, on the node as well (the
        # executor submits with --export=ALL).
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        "SLURM_CONF": str(SLURM_DIR / "slurm.conf"),
        "OPTDYN_SLURM_DIR": str(SLURM_DIR),
        "OPTDYN_SLURM_PARTITION": partition,
    }


def partitions(env: dict[str, str]) -> set[str]:
    """Partitions of the private cluster; empty when it is not running."""
    # Without slurmctld's PID file (stop_slurm.sh removes it) sinfo would only time out.
    if shutil.which("sinfo") is None or not (SLURM_DIR / "pid/slurmctld.pid").exists():
        return set()
    result = subprocess.run(
        ["sinfo", "--noheader", "--format", "%R"], env=env, capture_output=True, text=True, timeout=30
    )
    return set(result.stdout.split()) if result.returncode == 0 else set()


def run_cluster_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLUSTER_SCRIPTS / name)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def slurm_env():
    """Environment for SLURM commands and Snakemake runs against the private cluster."""
    partition = profile_partition()
    env = cluster_env(partition)
    running = partitions(env)
    if running:
        assert partition in running, (
            f"the running cluster in {SLURM_DIR} has partitions {sorted(running)}, not the "
            f"profile's {partition!r}: restart it with OPTDYN_SLURM_PARTITION={partition}"
        )
        yield env  # started by someone else: theirs to stop
        return
    if sys.platform != "linux":
        pytest.skip(f"SLURM cluster tests need Linux, not {sys.platform}")
    if os.geteuid() != 0:
        pytest.skip(
            "SLURM cluster tests need root to start munged, slurmctld and slurmd, or a running "
            "cluster: sudo scripts/cluster/start_slurm.sh"
        )
    started = run_cluster_script("start_slurm.sh", env)
    if started.returncode == 3:
        pytest.skip(f"no SLURM on this machine: {started.stderr.strip()}")
    assert started.returncode == 0, f"start_slurm.sh failed:\n{started.stdout}\n{started.stderr}"
    try:
        yield env
    finally:
        stopped = run_cluster_script("stop_slurm.sh", env)
        assert stopped.returncode == 0, f"stop_slurm.sh failed:\n{stopped.stdout}\n{stopped.stderr}"


# --- the runs ------------------------------------------------------------------------------


@dataclass
class Run:
    workdir: Path
    returncode: int
    output: str  # Snakemake's stdout and stderr

    def check(self):
        assert self.returncode == 0, f"snakemake in {self.workdir} failed:\n{self.output[-6000:]}"
        return self


@pytest.fixture(scope="module")
def runs(slurm_env, tmp_path_factory) -> dict[str, Run]:
    """The three runs side by side: SLURM runs spend most of their time waiting for the
    scheduler and its status checks, which the local run fills."""
    processes = {}
    for mode, args in MODES.items():
        workdir = copy_repo(tmp_path_factory.mktemp(mode))
        if mode == "split":
            (workdir / TEST_CONFIG).write_text(yaml.safe_dump(split_config()))
        command = [
            "timeout", "-k", "10", str(RUN_LIMIT_SECONDS),
            # The target first: --configfile takes every word after it.
            sys.executable, "-m", "snakemake", TARGET, *args, "--configfile", TEST_CONFIG,
        ]  # fmt: skip
        # Output to a file, not a pipe: three unread pipes could fill up and block the runs.
        with (workdir / "snakemake.out").open("w") as output:
            process = subprocess.Popen(
                command, cwd=workdir, env=slurm_env, stdout=output, stderr=subprocess.STDOUT
            )
        processes[mode] = (workdir, process)
    results = {}
    for mode, (workdir, process) in processes.items():
        returncode = process.wait(timeout=RUN_LIMIT_SECONDS + 30)
        results[mode] = Run(workdir, returncode, (workdir / "snakemake.out").read_text())
    return results


def study_config() -> dict:
    return yaml.safe_load((REPO / TEST_CONFIG).read_text())


def split_config() -> dict:
    config = study_config()
    config["training"]["max_runs_per_job"] = RUNS_PER_SPLIT_JOB
    return config


def training_blocks(mode: str) -> set[str]:
    """The rule names of the training jobs the mode plans (optimizer_dynamics.study)."""
    return {block.name for block in blocks(split_config() if mode == "split" else study_config())}


def slurm_job_states(env: dict[str, str], output: str) -> dict[str, str]:
    """State of every SLURM job of a run, found by the run's id (the executor's job name).
    squeue still lists finished jobs for MinJobAge (300 s) after they end."""
    (run_id,) = re.findall(r"^SLURM run ID: (\S+)$", output, re.MULTILINE)
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--name", run_id, "--format", "%i|%T"],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return dict(line.split("|") for line in result.stdout.split())


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["per_block", "split"])
def test_every_training_block_runs_as_one_slurm_job(runs, slurm_env, mode):
    run = runs[mode].check()
    expected = training_blocks(mode)
    # the tiny study's lines (2 regimes x 2 optimizers, 2 curvature lines), then its cells (2 lrs a grid line)
    assert len(expected) == (6 if mode == "per_block" else 10)

    submitted = SUBMITTED.findall(run.output)
    assert len(submitted) == len(expected), run.output[-6000:]
    # Nothing but the cheap localrules ran on the submitting machine: every training job that
    # finished was one SLURM ran.
    assert len(FINISHED.findall(run.output)) == len(submitted), run.output[-6000:]

    states = slurm_job_states(slurm_env, run.output)
    assert states == {job_id: "COMPLETED" for job_id, _ in submitted}

    trained = []
    for job_id, log in submitted:
        # SLURM itself names the log after the job id (--output .../%j.log).
        assert Path(log).name == f"{job_id}.log"
        finished = FINISHED.findall(Path(log).read_text())
        assert len(set(finished)) == 1, finished  # one block in each SLURM job
        trained.append(finished[0])
    assert sorted(trained) == sorted(expected)


def run_files(workdir: Path) -> list[Path]:
    return sorted(p.relative_to(workdir) for p in (workdir / "results/runs").rglob("*.parquet"))


@pytest.mark.parametrize("mode", ["per_block", "split"])
def test_slurm_runs_equal_local_runs(runs, mode):
    local, cluster = runs["local"].check(), runs[mode].check()
    files = run_files(local.workdir)
    assert len(files) == len(study.run_files(study_config()))
    assert run_files(cluster.workdir) == files
    for path in files:
        expected = pd.read_parquet(local.workdir / path)
        actual = pd.read_parquet(cluster.workdir / path)
        assert list(actual.columns) == list(expected.columns), path
        for column in expected.columns:
            pd.testing.assert_series_equal(
                actual[column], expected[column], check_exact=True, obj=f"{path}: {column}"
            )
        assert read_metadata(cluster.workdir / path) == read_metadata(local.workdir / path), path

    aggregates = sorted((local.workdir / "results/aggregate").glob("*.parquet"))
    assert aggregates
    for path in aggregates:
        expected = pd.read_parquet(path)
        actual = pd.read_parquet(cluster.workdir / path.relative_to(local.workdir))
        pd.testing.assert_frame_equal(actual, expected, check_exact=True, obj=path.name)
