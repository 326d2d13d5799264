"""Benchmark of the whole study: the default config from an empty results/ to the report.

Runs `snakemake --cores N` once in a temporary copy of the repository and prints its wall
time, the breakdown read from the rules' `benchmark:` files (training jobs, aggregation,
figures, report), and a no-op rerun's time. Budgets on a 2-core machine: <= 5 minutes in all,
<= 3 s for the no-op rerun.

With --baseline REV, the same study is also run by the code of git revision REV (e.g. the
last commit before the batched engine, 2571fe5), in its own copy, right before, and the ratio
of the wall times is printed: both measured on this machine in this one run.

Run: python benchmarks/bench_study.py [--cores 2] [--configfile config/config.yaml] [--baseline REV]
         [--keep-results DIR]
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


def run_study(workdir: Path, cores: int, configfile: str, label: str) -> float:
    total = snakemake(workdir, cores, configfile)
    benchmarks = workdir / "results/benchmarks"
    train = [job_seconds(p) for p in sorted((benchmarks / "train").rglob("*.tsv"))]
    print(f"{label}: study {configfile}, snakemake --cores {cores}, from an empty results/ to the report")
    print(f"   total wall time          {total:7.1f} s   (budget 300 s)")
    print(f"   training jobs            {len(train)} jobs, {sum(train):.0f} s of job time "
          f"(median {statistics.median(train):.1f} s, longest {max(train):.1f} s) on {cores} cores")
    for rule in ("aggregate", "figures", "report"):
        print(f"   {rule:<24} {job_seconds(benchmarks / f'{rule}.tsv'):7.1f} s")
    print(f"   no-op rerun              {snakemake(workdir, cores, configfile):7.1f} s   (budget 3 s)")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--baseline", help="a git revision whose code runs the same study first, for the ratio")
    parser.add_argument("--keep-results", type=Path,
                        help="copy this checkout's results/ here afterwards (the verdicts of the measured study)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = None
        if args.baseline:
            old = Path(tmp) / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, *WORKFLOW_PARTS],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            baseline = run_study(old, args.cores, args.configfile, f"baseline {args.baseline}")
        workdir = Path(tmp) / "current"
        for part in WORKFLOW_PARTS:
            shutil.copytree(REPO / part, workdir / part, ignore=shutil.ignore_patterns("__pycache__"))
        total = run_study(workdir, args.cores, args.configfile, "this checkout")
        if baseline:
            print(f"this checkout / baseline {args.baseline}: {total / baseline:.2f}x of the wall time")
        if args.keep_results:
            shutil.copytree(workdir / "results", args.keep_results, dirs_exist_ok=True)


if __name__ == "__main__":
    main()
