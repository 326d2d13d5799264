"""Benchmark of the whole study: the default config from an empty results/ to the report.

Runs `snakemake --cores N` once in a temporary copy of the repository and prints its wall
time, the breakdown read from the rules' `benchmark:` files (training jobs, aggregation,
figures, report), and a no-op rerun's time. Budgets on a 2-core machine: <= 5 minutes in all,
<= 3 s for the no-op rerun.

Run: python benchmarks/bench_study.py [--cores 2] [--configfile config/config.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("workflow", "config", "scripts", "report")


def snakemake(workdir: Path, cores: int, configfile: str) -> float:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", configfile]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def job_seconds(tsv: Path) -> float:
    """Wall seconds of one job, from Snakemake's benchmark file (header line, then values)."""
    return float(tsv.read_text().splitlines()[1].split("\t")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for part in WORKFLOW_PARTS:
            shutil.copytree(REPO / part, workdir / part)
        total = snakemake(workdir, args.cores, args.configfile)
        benchmarks = workdir / "results/benchmarks"
        train = [job_seconds(p) for p in sorted((benchmarks / "train").rglob("*.tsv"))]
        print(f"study {args.configfile}, snakemake --cores {args.cores}, from an empty results/ to the report")
        print(f"   total wall time          {total:7.1f} s   (budget 300 s)")
        print(f"   training jobs            {len(train)} jobs, {sum(train):.0f} s of job time "
              f"(median {statistics.median(train):.1f} s, longest {max(train):.1f} s) on {args.cores} cores")
        for rule in ("aggregate", "figures", "report"):
            print(f"   {rule:<24} {job_seconds(benchmarks / f'{rule}.tsv'):7.1f} s")
        print(f"   no-op rerun              {snakemake(workdir, args.cores, args.configfile):7.1f} s   (budget 3 s)")


if __name__ == "__main__":
    main()
