"""The workflow config's checks beyond its JSON schema, and the words of every refusal.

A bad config stops the workflow before any job starts, with a message naming the key, the
bad value and what is allowed. Snakemake validates the schema (and fills in its defaults);
describe_schema_error words its errors; check_config does every check the schema cannot
express (registry names, grid numbers, batch regimes, budgets, cells named elsewhere in the
config, the job count).
Plain Python, torch-free: the workflow calls it, and unit tests call it without Snakemake.
"""

from __future__ import annotations

import math

from optimizer_dynamics import study
from optimizer_dynamics.config import ConfigError, format_number
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.problems import PROBLEMS


def check_config(config: dict) -> None:
    """Every check beyond the schema, on a config whose defaults are filled in."""
    check_optimizer_names(config)
    check_unique(config["seeds"], "seeds", str)
    check_batch_sizes(config, "training.batch_size", config["training"]["batch_size"])
    check_problems(config)
    check_batch_size_runs(config)
    check_epsilon_runs(config)
    check_minibatch_curvature(config)
    check_budgets(config)
    check_analysis_cells(config)
    if config["curvature"]["every"]:  # every: 0 turns curvature off, whatever cells it names
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
    "string": lambda schema: "text" + (f" matching {schema['pattern']}" if "pattern" in schema else ""),
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
        check_optimizer(optimizer, axes, f"optimizers.{optimizer}")


def check_optimizer(optimizer, axes, key):
    """A registered optimizer, momentum values and hyperparameters it has and allows, numbers
    that paths name exactly."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"invalid config: {key}: {optimizer} is not a registered "
            f"optimizer; allowed: {', '.join(OPTIMIZERS)}"
        )
    entry = OPTIMIZERS[optimizer]
    if entry.requires_momentum and 0 in axes["momentum"]:
        raise ConfigError(
            f"invalid config: {key}.momentum: 0 is not allowed for "
            f"{optimizer}; allowed: numbers in (0, 1)"
        )
    declared = {h.name: h for h in entry.hyperparameters}
    for name in set(axes) - {"lr", "momentum"}:
        if name not in declared:
            raise ConfigError(
                f"invalid config: {key}.{name}: {optimizer} has no hyperparameter {name}; allowed: lr, "
                f"momentum{''.join(', ' + other for other in declared)}"
            )
        if len(axes[name]) > 1:
            # the figures, tables and claims tell an optimizer's lines apart by momentum alone
            raise ConfigError(
                f"invalid config: {key}.{name}: {axes[name]} lists {len(axes[name])} values; allowed: one value "
                f"(the figures and claims compare an optimizer's lines by momentum only; Adam's eps as an axis is "
                f"the epsilon runs, claim 9f)"
            )
        for value in axes[name]:
            if not declared[name].allows(value):
                raise ConfigError(
                    f"invalid config: {key}.{name}: {value!r} is not allowed; allowed: {declared[name].allowed} "
                    f"({optimizer}'s {name}, by default {format_number(declared[name].default)})"
                )
    check_axis_numbers(axes, key)


def check_axis_numbers(axes, key):
    # Paths and labels show numbers through format_number (6 significant digits): a value
    # that does not survive it would be trained under another value's name.
    for axis, values in axes.items():
        for value in values:
            if float(format_number(value)) != value:
                raise ConfigError(
                    f"invalid config: {key}.{axis}: {value!r} has more than 6 significant digits "
                    f"(paths would name it {format_number(value)}); allowed: numbers that "
                    f"print exactly with 6 significant digits, e.g. {format_number(value)}"
                )
        check_unique(values, f"{key}.{axis}", format_number)


def check_unique(values, key, label):
    seen = set()
    for value in values:
        if label(value) in seen:
            raise ConfigError(
                f"invalid config: {key}: {label(value)} is listed more than once in "
                f"{short_list([label(v) for v in values])}; allowed: each value once"
            )
        seen.add(label(value))


def check_batch_sizes(config, key, sizes):
    n_train = config["data"]["n_train"]
    allowed = f"allowed: null (full batch) or an integer in [1, {n_train - 1}]"
    for size in sizes:
        if size is not None and size >= n_train:
            problem = "is larger than" if size > n_train else "is all of"
            raise ConfigError(
                f"invalid config: {key}: {size} {problem} data.n_train = "
                f"{n_train}; {allowed} (a batch of every training point is full batch: null)"
            )
    check_unique(sizes, key, lambda size: "null" if size is None else str(size))


def check_problems(config):
    """Registered problems, each once; the conditioning runs' regimes and optimizers."""
    conditioning = config["conditioning"]
    named = [("problem", config["problem"])]
    named += [("conditioning.problems", problem) for problem in conditioning["problems"]]
    for key, problem in named:
        if problem not in PROBLEMS:
            raise ConfigError(
                f"invalid config: {key}: {problem} is not a registered problem; allowed: {', '.join(PROBLEMS)}"
            )
    check_unique(conditioning["problems"], "conditioning.problems", str)
    if conditioning["problems"]:
        check_batch_sizes(config, "conditioning.batch_size", conditioning["batch_size"])
        for optimizer, axes in conditioning["optimizers"].items():
            check_optimizer(optimizer, axes, f"conditioning.optimizers.{optimizer}")


def check_batch_size_runs(config):
    """The extra batch sizes: allowed sizes, none a grid regime (the claim reads both), and
    their optimizers."""
    batch_sizes = config["batch_sizes"]
    if not batch_sizes["batch_size"]:
        return
    check_batch_sizes(config, "batch_sizes.batch_size", batch_sizes["batch_size"])
    for size in batch_sizes["batch_size"]:
        if size in config["training"]["batch_size"]:
            raise ConfigError(
                f"invalid config: batch_sizes.batch_size: {size} is a regime of the grid already "
                f"(training.batch_size); allowed: batch sizes the grid does not train"
            )
    for optimizer, axes in batch_sizes["optimizers"].items():
        check_optimizer(optimizer, axes, f"batch_sizes.optimizers.{optimizer}")


def check_epsilon_runs(config):
    """Claim 9f's Adam runs: their heavy-ball partners must be grid cells (the claim reads them),
    and their lrs must print exactly (paths name them)."""
    epsilon = config["epsilon"]
    if not epsilon["eps"]:
        return
    check_unique(epsilon["eps"], "epsilon.eps", format_number)
    sgd = config["optimizers"].get("sgd", {"lr": [], "momentum": []})
    grid = {
        "epsilon.momentum": ([epsilon["momentum"]], sgd["momentum"], "optimizers.sgd.momentum"),
        "epsilon.heavy_ball_lr": (epsilon["heavy_ball_lr"], sgd["lr"], "optimizers.sgd.lr"),
        "epsilon.batch_size": (epsilon["batch_size"], config["training"]["batch_size"], "training.batch_size"),
    }
    for key, (values, allowed_values, grid_key) in grid.items():
        for value in values:
            if value not in allowed_values:
                raise ConfigError(
                    f"invalid config: {key}: {value} is not in {grid_key} (the heavy-ball partners are the grid's "
                    f"SGD runs); allowed: one of {short_list(allowed_values)}"
                )
    if not epsilon["heavy_ball_lr"]:
        raise ConfigError("invalid config: epsilon.heavy_ball_lr: empty; allowed: one or more lrs of optimizers.sgd.lr")
    check_unique(epsilon["heavy_ball_lr"], "epsilon.heavy_ball_lr", format_number)


def check_minibatch_curvature(config):
    minibatch = config["curvature"]["minibatch"]
    if not (config["curvature"]["every"] and minibatch["cells"]):
        return
    check_batch_sizes(config, "curvature.minibatch.batch_size", [minibatch["batch_size"]])
    for optimizer, axes in minibatch["cells"].items():
        check_optimizer(optimizer, axes, f"curvature.minibatch.cells.{optimizer}")


def check_budgets(config):
    budgets = config["analysis"]["budgets"]
    check_unique(budgets, "analysis.budgets", format_number)
    if 1 not in budgets:
        raise ConfigError(
            f"invalid config: analysis.budgets: {budgets} lacks 1 (the whole run, which the "
            f"figures show); allowed: fractions in (0, 1], 1 among them"
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
                raise ConfigError(
                    f"invalid config: analysis.reference.{optimizer}.{axis}: "
                    f"{format_number(cell[axis])} is not in optimizers.{optimizer}.{axis}; "
                    f"allowed: one of {short_list(grid)}"
                )
    for optimizer, (low, high) in analysis["claimed_windows"].items():
        if not low < high:
            raise ConfigError(
                f"invalid config: analysis.claimed_windows.{optimizer}: [{low}, {high}] is "
                f"not an interval; allowed: [low, high] with low < high"
            )


def check_curvature_cells(config):
    for optimizer, axes in config["curvature"]["cells"].items():
        check_optimizer(optimizer, axes, f"curvature.cells.{optimizer}")
        if OPTIMIZERS[optimizer].stability_threshold is None:
            # the curvature runs compare the sharpness with the threshold; a fixed-size step has none
            with_threshold = [name for name, entry in OPTIMIZERS.items() if entry.stability_threshold is not None]
            raise ConfigError(
                f"invalid config: curvature.cells.{optimizer}: {optimizer} has no stability threshold (its "
                f"step has a fixed size); allowed: {', '.join(with_threshold)}"
            )


def check_job_count(config):
    blocks = study.blocks(config)
    if len(blocks) > config["max_jobs"]:
        raise ConfigError(
            f"invalid config: optimizers: the grid makes {len(blocks)} training jobs "
            f"(training.block: {config['training']['block']}), but max_jobs is "
            f"{config['max_jobs']}; allowed: at most max_jobs jobs (shrink the grid, use "
            f"training.block: line with a larger training.max_runs_per_job, or raise max_jobs)"
        )
