"""Config validation, the training grid and target paths, shared by every rule file."""

import json
import math
import os
import shlex
import sys
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
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

from optimizer_dynamics import provenance, study  # noqa: E402 (needs the path above)
from optimizer_dynamics.config import format_number  # noqa: E402
from optimizer_dynamics.optimizers import OPTIMIZERS  # noqa: E402

# --- config checks ------------------------------------------------------------------------


def validate_config(config):
    """Fill in the schema's defaults and check every key; a bad config stops the workflow
    before any job starts, with a message naming the key, its value and what is allowed.
    """
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as error:
        cause = error.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise WorkflowError(describe_schema_error(cause)) from None
    check_optimizer_names(config)
    check_grid_numbers(config)
    check_unique(config["seeds"], "seeds", str)
    check_batch_size(config)
    check_analysis_cells(config)
    if config["curvature"][
        "every"
    ]:  # every: 0 turns curvature off, whatever cells it names
        check_curvature_cells(config)
    check_job_count(config)


def describe_schema_error(error):
    key = config_key(error.absolute_path)
    message = f"invalid config: {key}: {error.message}"
    if error.validator == "additionalProperties":
        message += f"; allowed keys here: {', '.join(error.schema['properties'])}"
    else:
        message += f"; allowed: {allowed(error.schema)}"
    if (
        error.validator == "type"
        and isinstance(error.instance, str)
        and is_number(error.instance)
    ):
        message += f"; {number_as_text_hint(error.instance)}"
    description = error.schema.get("description")
    if (
        error.absolute_path
        and description
        and error.validator != "additionalProperties"
    ):
        message += f" ({key}: {description})"
    return message


def allowed(schema):
    """What a schema node allows, in words: "a number in [0, 1)", "an integer >= 1 or null"."""
    if "enum" in schema:
        return f"one of {', '.join(map(str, schema['enum']))}"
    types = schema.get("type", [])
    words = [
        TYPE_WORDS[kind](schema)
        for kind in (types if isinstance(types, list) else [types])
    ]
    return " or ".join(words) or "see the description"


LIMITS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
}


def bounds(schema):
    """ " in [0, 1)", " > 0", "": a number's limits."""
    low = next((k for k in ("minimum", "exclusiveMinimum") if k in schema), None)
    high = next((k for k in ("maximum", "exclusiveMaximum") if k in schema), None)
    if low and high:
        opening = "[" if low == "minimum" else "("
        closing = "]" if high == "maximum" else ")"
        return f" in {opening}{schema[low]}, {schema[high]}{closing}"
    return "".join(f" {LIMITS[k]} {schema[k]}" for k in (low, high) if k)


def list_words(schema):
    least, most = schema.get("minItems", 0), schema.get("maxItems")
    if least == most:
        kind = f"a list of {least}"
    else:
        kind = "a non-empty list" if least else "a list"
    return f"{kind}, each {allowed(schema.get('items', {}))}"


def mapping_words(schema):
    return f"a mapping with keys {', '.join(schema.get('properties', {}))}"


TYPE_WORDS = {
    "number": lambda schema: f"a number{bounds(schema)}",
    "integer": lambda schema: f"an integer{bounds(schema)}",
    "boolean": lambda schema: "true or false",
    "null": lambda schema: "null",
    "array": list_words,
    "object": mapping_words,
}


def number_as_text_hint(text):
    # YAML 1.1 reads a number with an exponent as a number only with a dot in the mantissa
    # and a sign in the exponent (1.0e-3, 1.0e+5; 1e-3 and 1.0e5 are text).
    if "e" in text.lower():
        mantissa, exponent = text.lower().split("e")
        mantissa += "" if "." in mantissa else ".0"
        exponent = exponent if exponent[:1] in "+-" else f"+{exponent}"
        if f"{mantissa}e{exponent}" != text.lower():
            return f"YAML reads {text} as text: write {mantissa}e{exponent}"
    return f"a number in quotes is text: write {text} without quotes"


def is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def config_key(path):
    """training.steps, optimizers.sgd.lr[2]: the key as a reader finds it in the YAML."""
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key.lstrip(".") or "(top level)"


def short_list(values, limit=12):
    """A list for an error message, shortened in the middle when long."""
    if len(values) <= limit:
        return str(values)
    head, tail = values[: limit // 2], values[-(limit // 2) :]
    return f"[{str(head)[1:-1]}, ... ({len(values) - limit} more), {str(tail)[1:-1]}]"


def check_optimizer_names(config):
    for optimizer, axes in config["optimizers"].items():
        if optimizer not in OPTIMIZERS:
            raise WorkflowError(
                f"invalid config: optimizers.{optimizer}: {optimizer} is not a registered "
                f"optimizer; allowed: {', '.join(OPTIMIZERS)}"
            )
        if OPTIMIZERS[optimizer].requires_momentum and 0 in axes["momentum"]:
            raise WorkflowError(
                f"invalid config: optimizers.{optimizer}.momentum: 0 is not allowed for "
                f"{optimizer}; allowed: numbers in (0, 1)"
            )


def check_grid_numbers(config):
    # Paths and labels show numbers through format_number (6 significant digits): a value
    # that does not survive it would be trained under another value's name.
    for optimizer, axes in config["optimizers"].items():
        for axis, values in axes.items():
            key = f"optimizers.{optimizer}.{axis}"
            for value in values:
                if float(format_number(value)) != value:
                    raise WorkflowError(
                        f"invalid config: {key}: {value!r} has more than 6 significant digits "
                        f"(paths would name it {format_number(value)}); allowed: numbers that "
                        f"print exactly with 6 significant digits, e.g. {format_number(value)}"
                    )
            check_unique(values, key, format_number)


def check_unique(values, key, label):
    seen = set()
    for value in values:
        if label(value) in seen:
            raise WorkflowError(
                f"invalid config: {key}: {label(value)} is listed more than once in "
                f"{short_list([label(v) for v in values])}; allowed: each value once"
            )
        seen.add(label(value))


def check_batch_size(config):
    batch_size, n_train = config["training"]["batch_size"], config["data"]["n_train"]
    if batch_size is not None and batch_size > n_train:
        raise WorkflowError(
            f"invalid config: training.batch_size: {batch_size} is larger than data.n_train "
            f"= {n_train}; allowed: null (full batch) or an integer in [1, {n_train}]"
        )


def check_analysis_cells(config):
    # Entries for optimizers outside the grid are ignored: they describe nothing to measure.
    analysis = config["analysis"]
    for optimizer, cell in analysis["reference"].items():
        axes = config["optimizers"].get(optimizer)
        if axes is None:
            continue
        for axis in ("lr", "momentum"):
            grid = [format_number(v) for v in axes[axis]]
            if format_number(cell[axis]) not in grid:
                raise WorkflowError(
                    f"invalid config: analysis.reference.{optimizer}.{axis}: "
                    f"{format_number(cell[axis])} is not in optimizers.{optimizer}.{axis}; "
                    f"allowed: one of {short_list(grid)}"
                )
    for optimizer, (low, high) in analysis["claimed_windows"].items():
        if not low < high:
            raise WorkflowError(
                f"invalid config: analysis.claimed_windows.{optimizer}: [{low}, {high}] is "
                f"not an interval; allowed: [low, high] with low < high"
            )


def check_curvature_cells(config):
    for optimizer, axes in config["curvature"]["cells"].items():
        grid_axes = config["optimizers"].get(optimizer)
        if grid_axes is None:
            raise WorkflowError(
                f"invalid config: curvature.cells.{optimizer}: {optimizer} is not in "
                f"optimizers; allowed: cells of {', '.join(config['optimizers'])}"
            )
        for axis, values in axes.items():
            key = f"curvature.cells.{optimizer}.{axis}"
            grid = [format_number(v) for v in grid_axes[axis]]
            for value in values:
                if format_number(value) not in grid:
                    raise WorkflowError(
                        f"invalid config: {key}: {format_number(value)} is not in "
                        f"optimizers.{optimizer}.{axis}; allowed: one of {short_list(grid)}"
                    )


def check_job_count(config):
    blocks = study.blocks(config)
    if len(blocks) > config["max_jobs"]:
        raise WorkflowError(
            f"invalid config: optimizers: the grid makes {len(blocks)} training jobs "
            f"(training.block: {config['training']['block']}), but max_jobs is "
            f"{config['max_jobs']}; allowed: at most max_jobs jobs (shrink the grid, use "
            f"training.block: line with a larger training.max_runs_per_job, or raise max_jobs)"
        )


validate_config(config)


# --- the grid -----------------------------------------------------------------------------

BLOCKS = study.blocks(config)
SEEDS = [str(seed) for seed in config["seeds"]]

DATASET = "results/data/moons.npz"
AGGREGATE_DIR = "results/aggregate"
AGGREGATES = [
    f"{AGGREGATE_DIR}/{name}"
    for name in (
        "runs.parquet",
        "cells.parquet",
        "curves.parquet",
        "verdicts.parquet",
        "curvature.parquet",
        "study.json",
    )
]
FIGURES_DIR = "results/figures"
FIGURE_STEMS = [
    "loss_curves",
    "norms",
    "effective_step",
    "lr_sensitivity",
    "momentum",
    "saturation",
    "adaptivity",
    "sharpness",
    "stability",
]
FIGURES = [
    f"{FIGURES_DIR}/{stem}.{ext}" for stem in FIGURE_STEMS for ext in ("png", "svg")
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
    return [
        os.path.relpath(path)
        for path in provenance.module_closure(*(REPO / source for source in sources))
    ]


def module(name):
    return f"scripts/optimizer_dynamics/{name}.py"


CODE = {
    "dataset": code_inputs(module("data")),
    "train": code_inputs(module("train")),
    "aggregate": code_inputs(module("aggregate")),
    "figures": code_inputs(module("figures")),
    # The rendering, and what the report's source runs in its cells.
    "report": code_inputs(module("report"), REPORT_SOURCE),
}


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
    return cli_flags(data_settings())


def train_args(block):
    """The training command's flags for one block (sorted, so the recorded params do not
    change with the order of keys in a config file)."""
    # Torch threads come from the rule's `threads`, so a --set-threads override reaches torch.
    training = {
        k: v
        for k, v in config["training"].items()
        if k not in ("threads", "block", "max_runs_per_job")
    }
    settings = {
        "optimizer": block.optimizer,
        "momentum": block.momentum,
        **training,
        **data_settings(),
    }
    flags = [*cli_flags(settings), "--lr", *block.lrs, "--seed", *SEEDS]
    curvature_lrs = curvature_lrs_of(block)
    if curvature_lrs:
        every = config["curvature"]["every"]
        flags += ["--curvature-every", str(every), "--curvature-lr", *curvature_lrs]
    return flags


def curvature_lrs_of(block):
    """The block's lrs whose runs log exact Hessians (curvature.cells), if curvature is on."""
    selected = config["curvature"]["cells"].get(block.optimizer)
    if not config["curvature"]["every"] or selected is None:
        return []
    if block.momentum not in {format_number(m) for m in selected["momentum"]}:
        return []
    chosen = {format_number(lr) for lr in selected["lr"]}
    return [lr for lr in block.lrs if lr in chosen]


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
# at batch 64, ~50 ms per exact Hessian, ~0.6 GB resident (mostly torch) for a block of 65
# runs x 1000 steps. Budgets are ~5x that, so a busy node does not kill jobs.
SECONDS_PER_RUN_STEP = 0.003
SECONDS_PER_HESSIAN = 0.25
MB_PER_RUN_THOUSAND_STEPS = 8


def train_runtime_minutes(block):
    steps, runs = config["training"]["steps"], len(block.lrs) * len(SEEDS)
    every = config["curvature"]["every"]
    hessians = (
        len(curvature_lrs_of(block)) * len(SEEDS) * math.ceil(steps / every)
        if every
        else 0
    )
    seconds = runs * steps * SECONDS_PER_RUN_STEP + hessians * SECONDS_PER_HESSIAN
    return 5 + math.ceil(seconds / 60)


def train_mem_mb(block):
    runs, steps = len(block.lrs) * len(SEEDS), config["training"]["steps"]
    return 1024 + math.ceil(runs * steps / 1000 * MB_PER_RUN_THOUSAND_STEPS)
