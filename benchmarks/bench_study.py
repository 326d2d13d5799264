"""Benchmark of the whole study: the default config from an empty results/ to the report.

Runs the workflow in a temporary copy of the repository with `snakemake --cores N`, stage by
stage (`--until` each rule), and prints the wall time of each stage, the total, and a no-op
rerun's time. Budgets on a 2-core machine: <= 5 minutes in all, <= 3 s for the no-op rerun.

Run: python benchmarks/bench_study.py [--cores 2] [--configfile config/config.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = [("data set + training jobs", "train"), ("aggregation", "aggregate"), ("figures", "figures"), ("report", None)]


def snakemake(workdir: Path, cores: int, configfile: str, *extra: str) -> float:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    # "--quiet all": the quiet level (no output at all), not a target; the target is rule all.
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", configfile, "--quiet", "all", *extra]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for part in ("workflow", "config", "scripts", "report"):
            shutil.copytree(REPO / part, workdir / part)
        print(f"study {args.configfile}, snakemake --cores {args.cores}, from an empty results/")
        total = 0.0
        for label, rule in STAGES:
            seconds = snakemake(workdir, args.cores, args.configfile, *(["--until", rule] if rule else []))
            total += seconds
            print(f"   {label:<26}{seconds:8.1f} s")
        print(f"   {'total':<26}{total:8.1f} s   (budget 300 s; each stage includes Snakemake's start-up)")
        train_log = sorted((workdir / "results/benchmarks/train").rglob("*.tsv"))
        if train_log:
            job_seconds = [float(p.read_text().splitlines()[1].split("\t")[0]) for p in train_log]
            print(f"   training jobs: {len(job_seconds)}, {sum(job_seconds):.0f} s of job time, "
                  f"median {sorted(job_seconds)[len(job_seconds) // 2]:.1f} s per job")
        noop = snakemake(workdir, args.cores, args.configfile)
        print(f"   no-op rerun               {noop:8.1f} s   (budget 3 s)")


if __name__ == "__main__":
    main()
