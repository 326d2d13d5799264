"""Config validation, the training grid and target paths, shared by every rule file."""

import json
import math
import os
import shlex
import sys
import textwrap
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError

# report() under another name: in a rule file, `report` at the start of a line is the keyword.
from snakemake.io import report as reported
from snakemake.utils import validate

REPO = Path(workflow.basedir).parent
SCRIPTS = REPO / "scripts"
# Jobs run `<python> -m optimizer_dynamics.<module>`: putting scripts/ on PYTHONPATH lets the
# workflow run from a plain checkout with the dependencies installed, without `pip install -e .`.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")])
    )
)
sys.path.insert(0, str(SCRIPTS))

# (These imports need the path above.)
from optimizer_dynamics import (
    batch_regime,
    checks,
    figures,
    provenance,
    study,
    tables,
)  # noqa: E402

# --- config checks ------------------------------------------------------------------------


def validate_config(config):
    """Fill in the schema's defaults and check every key (optimizer_dynamics.checks)."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as error:
        cause = error.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise WorkflowError(checks.describe_schema_error(cause)) from None
    try:
        checks.check_config(config)
    except checks.ConfigError as error:
        raise WorkflowError(str(error)) from None


validate_config(config)


# --- the grid -----------------------------------------------------------------------------

BLOCKS = study.blocks(config)
SEEDS = [str(seed) for seed in config["seeds"]]

DATASET = "results/data/{problem}.npz"  # one data set per problem
AGGREGATE_DIR = "results/aggregate"
AGGREGATES = [f"{AGGREGATE_DIR}/{name}" for name in tables.AGGREGATE_FILES]
VERDICTS = f"{AGGREGATE_DIR}/{tables.VERDICTS_FILE}"
KEY_FINDINGS = f"{AGGREGATE_DIR}/{tables.KEY_FINDINGS_FILE}"
WINDOWS = f"{AGGREGATE_DIR}/{tables.WINDOWS_FILE}"
FIGURES_DIR = "results/figures"
FIGURE_FILES = figures.figure_files(config)  # (file stem, figure, regime)
FIGURES = [
    f"{FIGURES_DIR}/{stem}.{ext}"
    for stem, _, _ in FIGURE_FILES
    for ext in ("png", "svg")
]
REPORT_SOURCE = "report/findings.py"
REPORT_STYLE = "report/style.css"
REPORT_HTML = "results/report/findings.html"
REPORT_PDF = "results/report/findings.pdf"


# Jobs run the Python that runs Snakemake (its environment's packages), not whatever `python`
# comes first on PATH: every shell command starts by naming it $PYTHON (after Snakemake's own
# default prefix, strict bash).
shell.prefix(f"set -euo pipefail; PYTHON={shlex.quote(sys.executable)}; ")


def code_inputs(*sources):
    """The package modules a job executes (provenance.module_closure), as inputs relative to
    the working directory: editing one makes the job's outputs, and what follows, stale.
    """
    return [os.path.relpath(path) for path in provenance.module_closure(*sources)]


CODE = {
    "dataset": code_inputs(provenance.module_file("data")),
    "train": code_inputs(provenance.module_file("train")),
    "aggregate": code_inputs(provenance.module_file("aggregate")),
    "claims": code_inputs(provenance.module_file("claims")),
    "figures": code_inputs(provenance.module_file("figures")),
    # The rendering, and what the report's source runs in its cells.
    "report": code_inputs(provenance.module_file("report"), REPO / REPORT_SOURCE),
}


# The aggregate tables Snakemake's report lists (as downloads), with their captions.
REPORTED_TABLES = (
    "cells.parquet",
    "runs.parquet",
    "curvature.parquet",
)


def aggregate_report_items():
    return [
        (
            reported(
                path,
                caption=f"../report/{Path(path).stem}.rst",
                category="Tables",
                labels={"table": Path(path).name},
            )
            if Path(path).name in REPORTED_TABLES
            else path
        )
        for path in AGGREGATES
    ]


def figure_report_items():
    """The figures for Snakemake's report (snakemake --report): each PNG with its figure's
    caption, grouped by regime; the SVGs are outputs only."""
    items = []
    for stem, figure, regime in FIGURE_FILES:
        group = batch_regime.label(regime) if regime else "the whole study"
        items.append(
            reported(
                f"{FIGURES_DIR}/{stem}.png",
                caption=f"../report/figures/{figure}.rst",
                category="Figures",
                subcategory=group,
                labels={"figure": figure.replace("_", " "), "runs": group},
            )
        )
    return items + [f"{FIGURES_DIR}/{stem}.svg" for stem, _, _ in FIGURE_FILES]


def run_files():
    """Every run file of the current config, and no others (results/runs may hold runs of
    an older config, which must not reach the aggregation)."""
    return study.run_files(config)


# --- command-line arguments ---------------------------------------------------------------


def cli_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return str(value)


def cli_flags(settings):
    """--flag value pairs for the optimizer_dynamics command lines (underscores -> dashes),
    sorted, so the recorded params do not change with the order of keys in a config file.
    """
    return [
        part
        for key, value in sorted(settings.items())
        for part in (f"--{key.replace('_', '-')}", cli_value(value))
    ]


def data_settings():
    data = config["data"]
    return {
        "n_train": data["n_train"],
        "n_val": data["n_val"],
        "noise": data["noise"],
        "data_seed": data["seed"],
    }


def dataset_args(wildcards):
    return cli_flags({**data_settings(), "problem": wildcards.problem})


def train_args(block):
    """The training command's flags for one block (sorted, so the recorded params do not
    change with the order of keys in a config file)."""
    # Torch threads come from the rule's `threads`, so a --set-threads override reaches torch.
    shared = {
        k: v
        for k, v in config["training"].items()
        if k
        not in (
            "threads",
            "block",
            "max_runs_per_job",
            "batch_size",
            "steps",
            "noise_every",
        )
    }
    settings = {
        "problem": block.problem,
        "optimizer": block.optimizer,
        "hyperparameters": block.hyperparameters,
        "momentum": block.momentum,
        "batch_size": batch_regime.batch_size(block.batch),
        **study.training_settings(config, block.run_set),
        **shared,
        **data_settings(),
    }
    return [*cli_flags(settings), "--lr", *block.lrs, "--seed", *SEEDS]


def aggregate_args(wildcards):
    # A function of the wildcards only: Snakemake records such params and reruns the job when
    # they change (params computed from input or output files are not recorded).
    return ["--config-json", json.dumps(config, sort_keys=True)]


def runs_dir(wildcards, input):
    return study.runs_root(input.runs[0])


def output_dir(wildcards, output):
    return parent_dir(output)


def figures_args(wildcards, input, output):
    return [
        "--aggregate-dir",
        parent_dir(input.aggregates),
        "--out-dir",
        parent_dir(output),
    ]


def report_args(wildcards, input, output):
    return [
        "--source",
        input.source,
        "--aggregate-dir",
        parent_dir(input.aggregates),
        "--figures-dir",
        parent_dir(input.figures),
        "--out-html",
        output.html,
        "--out-pdf",
        output.pdf,
    ]


def parent_dir(files):
    """The one directory holding `files` (the modules take directories, rules name files)."""
    (parent,) = {os.path.dirname(path) for path in files}
    return parent


# --- resources ----------------------------------------------------------------------------

# Measured with the batched engine: ~0.6 ms per run-step full batch (n = 500) and ~0.15 ms
# at batch 64, ~15 ms per exact Hessian and its top eigenvalues, ~0.6 GB resident (mostly torch) for a block of 65
# runs x 1000 steps, ~2 ms per noise step of a run (benchmarks/bench_training.py). Budgets are
# ~5x that, so a busy node does not kill jobs.
SECONDS_PER_RUN_STEP = 0.003
SECONDS_PER_HESSIAN = 0.08
SECONDS_PER_NOISE_STEP = 0.01
MB_PER_RUN_THOUSAND_STEPS = 8


def train_runtime_minutes(block):
    settings = study.training_settings(config, block.run_set)
    steps, runs = settings["steps"], len(block.lrs) * len(SEEDS)
    hessians = runs * hessians_per_run(settings)
    noise_every = settings["noise_every"]
    noise_steps = runs * (math.ceil(steps / noise_every) if noise_every else 0)
    seconds = (
        runs * steps * SECONDS_PER_RUN_STEP
        + hessians * SECONDS_PER_HESSIAN
        + noise_steps * SECONDS_PER_NOISE_STEP
    )
    return 5 + math.ceil(seconds / 60)


def hessians_per_run(settings):
    if not settings["curvature_every"]:
        return 0
    # Hessians come in runs of consecutive steps, pairs by default (RunConfig.is_hessian_step).
    early = math.ceil(
        settings["curvature_early_steps"] / settings["curvature_early_every"]
    )
    return settings["curvature_consecutive"] * (
        early + math.ceil(settings["steps"] / settings["curvature_every"])
    )


def train_mem_mb(block):
    runs = len(block.lrs) * len(SEEDS)
    steps = study.training_settings(config, block.run_set)["steps"]
    return 1024 + math.ceil(runs * steps / 1000 * MB_PER_RUN_THOUSAND_STEPS)


def print_summary():
    """The end of a run that reached the report: where it is, and the key findings."""
    if not Path(REPORT_HTML).is_file() or not Path(KEY_FINDINGS).is_file():
        return
    print(f"\nReport: {Path(REPORT_HTML).resolve()} (the PDF beside it)\nKey findings:")
    findings = json.loads(Path(KEY_FINDINGS).read_text(encoding="utf-8"))
    for number, finding in enumerate(findings, start=1):
        text = f"{number}. {finding['text']}"
        # breaks at spaces only: "0.002-0.005" and paths stay whole
        wrap = dict(break_on_hyphens=False, break_long_words=False)
        print(textwrap.fill(text, width=100, subsequent_indent="   ", **wrap))
