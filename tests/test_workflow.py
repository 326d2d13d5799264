"""The Snakemake workflow: the plan it makes, a full run of the tiny study, bad configs.

Every test works in a temporary copy of the repository, so results/ of the checkout (and
other runs on the same machine) never affect it. Expected numbers come from the config files.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE_ENV, copy_repo, snakemake
from optimizer_dynamics import figures
from optimizer_dynamics.config import RunConfig, format_number

ONE_OF_EACH = ("dataset", "aggregate", "claims", "figures", "report", "all")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    return copy_repo(tmp_path)


def job_counts(output: str) -> dict[str, int]:
    """The 'job count' table Snakemake prints for a plan."""
    table = output[output.index("job ") : output.index("total")]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def regime(batch_size) -> str:
    return "full" if batch_size is None else str(batch_size)


def run_lines(config: dict):
    """(set, problem, regime, optimizer, axes) of every line of runs: the grid in each regime,
    the curvature cells full batch, the conditioning cells on each of their problems, the
    batch-size cells at each extra batch size, Adam's epsilon cells (written out here, not taken
    from optimizer_dynamics.study)."""
    problem = config.get("problem", "moons")
    for size in config["training"]["batch_size"]:
        for optimizer, axes in config["optimizers"].items():
            yield "grid", problem, regime(size), optimizer, axes
    if config["curvature"]["every"]:
        for optimizer, axes in config["curvature"]["cells"].items():
            yield "curvature", problem, "full", optimizer, axes
        minibatch = config["curvature"].get("minibatch", {})
        for optimizer, axes in minibatch.get("cells", {}).items():
            yield "minibatch_curvature", problem, regime(minibatch["batch_size"]), optimizer, axes
    conditioning = config.get("conditioning", {})
    for other in conditioning.get("problems", []):
        for size in conditioning["batch_size"]:
            for optimizer, axes in conditioning["optimizers"].items():
                yield "conditioning", other, regime(size), optimizer, axes
    batch_sizes = config.get("batch_sizes", {})
    for size in batch_sizes.get("batch_size", []):
        for optimizer, axes in batch_sizes["optimizers"].items():
            yield "batch_sizes", problem, regime(size), optimizer, axes
    epsilon = config.get("epsilon", {})
    for size in epsilon.get("batch_size", []) if epsilon.get("eps") else []:
        for eps in epsilon["eps"]:  # Adam at the lrs matched to heavy ball's: lr x eps / (1 - beta1)
            lrs = [float(format_number(lr * eps / (1 - epsilon["momentum"]))) for lr in epsilon["heavy_ball_lr"]]
            yield "epsilon", problem, regime(size), "adam", {"lr": lrs, "momentum": [epsilon["momentum"]], "eps": [eps]}


def hyperparameter_settings(optimizer: str, axes: dict) -> list[str]:
    """Each combination of the optimizer's own hyperparameters the axes list, as RunConfig writes it."""
    own = {name: values for name, values in axes.items() if name not in ("lr", "momentum")}
    return [RunConfig(optimizer=optimizer, hyperparameters=",".join(f"{name}={value}" for name, value in zip(own, values)))
            .hyperparameters for values in itertools.product(*own.values())]


def problems(config: dict) -> set[str]:
    """The problems whose data sets the study builds."""
    return {problem for _, problem, _, _, _ in run_lines(config)}


def expected_run_files(config: dict) -> set[str]:
    return {
        f"results/runs/{run_set}/problem~{problem}/batch~{batch}/optimizer~{optimizer}/hyperparameters~{hyperparameters}"
        f"/lr~{format_number(lr)}/momentum~{format_number(momentum)}/seed~{seed}.parquet"
        for run_set, problem, batch, optimizer, axes in run_lines(config)
        for hyperparameters in hyperparameter_settings(optimizer, axes)
        for lr in axes["lr"]
        for momentum in axes["momentum"]
        for seed in config["seeds"]
    }


# --- the plan ------------------------------------------------------------------------------


def flag_values(command: str) -> dict[str, list[str]]:
    """--name value... pairs of a printed shell command (up to its redirection)."""
    flags, current = {}, None
    for word in shlex.split(command.split(" > ")[0]):
        if word.startswith("--"):
            current = flags.setdefault(word[2:], [])
        elif current is not None:
            current.append(word)
    return flags


def line_jobs(config: dict) -> dict[str, int]:
    """One training job per set x regime x optimizer x hyperparameters x momentum line (training.block: line)."""
    return {
        re.sub(r"\W", "_", f"train_{run_set}_{problem}_{batch}_{optimizer}_{hyperparameters}"
                           f"_momentum_{format_number(momentum)}"): 1
        for run_set, problem, batch, optimizer, axes in run_lines(config)
        for hyperparameters in hyperparameter_settings(optimizer, axes)
        for momentum in axes["momentum"]
    }


def test_default_config_plans_one_training_job_per_line(repo_copy):
    config = load_yaml(repo_copy / "config/config.yaml")
    result = snakemake(repo_copy, "-n", "-p")
    assert result.returncode == 0, result.stderr + result.stdout
    output = result.stdout + result.stderr

    assert job_counts(output) == {**line_jobs(config), **dict.fromkeys(ONE_OF_EACH, 1), "dataset": len(problems(config))}
    planned_runs = set(re.findall(r"results/runs/\S+?\.parquet", output))
    assert planned_runs == expected_run_files(config)
    aggregate_command = next(line for line in output.splitlines() if "optimizer_dynamics.aggregate" in line)
    assert ".parquet" not in aggregate_command  # the run files are found from the config


@pytest.mark.parametrize("block", ["line", "cell"])
def test_each_training_job_trains_every_lr_and_seed_of_its_block(repo_copy, block):
    config = load_yaml(repo_copy / "config/test.yaml")
    result = snakemake(repo_copy, "-n", "-p", "--configfile", "config/test.yaml", "--config", f"training={{block: {block}}}")
    assert result.returncode == 0, result.stderr + result.stdout
    commands = re.findall(r"\"\$PYTHON\" -m optimizer_dynamics\.train .*", result.stdout + result.stderr)
    cells = len(expected_run_files(config)) // len(config["seeds"])
    assert len(commands) == (len(line_jobs(config)) if block == "line" else cells)
    trained = []
    for command in commands:
        flags = flag_values(command)
        assert flags["seed"] == [str(seed) for seed in config["seeds"]]
        curvature = "/curvature/" in flags["out"][0]
        assert flags["steps"] == [str(config["curvature" if curvature else "training"]["steps"])]
        assert flags["curvature-every"] == [str(config["curvature"]["every"] if curvature else 0)]
        batch = re.search(r"batch~(\w+)", flags["out"][0]).group(1)
        assert flags["batch-size"] == ["null" if batch == "full" else batch]
        assert len(flags["out"]) == len(flags["lr"]) * len(flags["seed"])
        trained += flags["out"]
    assert sorted(trained) == sorted(expected_run_files(config))


# --- bad configs are refused before any job runs ------------------------------------------

# Bad configs: tests/test_bad_config.py (one table of every case).


def test_lint_and_formatting_are_clean(repo_copy):
    lint = snakemake(repo_copy, "--lint")
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [Path(sys.executable).parent / "snakefmt", "--check", "workflow"], cwd=repo_copy, capture_output=True, text=True, timeout=60
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def schema_objects(node):
    """Every object-typed subschema of the config schema, at any depth."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for child in node.values():
            yield from schema_objects(child)
    elif isinstance(node, list):
        for child in node:
            yield from schema_objects(child)


def test_schema_describes_every_key_and_allows_no_other():
    schema = load_yaml(REPO / "workflow/schemas/config.schema.yaml")
    objects = list(schema_objects(schema))
    assert len(objects) > 5
    for node in objects:
        # Closed, or a mapping keyed by optimizer names, or an optimizer's axes with its own
        # hyperparameters beside lr and momentum (both checked against the registry before any
        # job: tests/test_bad_config.py), whose values follow one schema.
        extra = node.get("additionalProperties")
        hyperparameter_lists = isinstance(extra, dict) and extra.get("type") == "array" and extra.get("description")
        assert extra is False or set(extra) == {"$ref"} or hyperparameter_lists, node.get("description")
        for key, subschema in node.get("properties", {}).items():
            assert subschema.get("description"), key


def test_conda_env_pins_match_requirements():
    def pins(lines):
        return {line.strip() for line in lines if re.fullmatch(r"[\w.-]+==\S+", line.strip())}

    env = load_yaml(REPO / "workflow/envs/optimizer_dynamics.yaml")
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    requirements = pins((REPO / "requirements.txt").read_text().splitlines())
    # Snakemake drives the jobs; it is not needed inside them.
    assert pins(pip) == {pin for pin in requirements if not pin.startswith("snakemake==")}


# --- the tiny study, end to end -------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).replace("\u2019", "'").split())


def last_val_loss(path: Path) -> float:
    values = pd.read_parquet(path, columns=["val.loss"])["val.loss"].dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


@pytest.mark.slow
def test_tiny_study_end_to_end(repo_copy):
    config = load_yaml(repo_copy / "config/test.yaml")
    # A run file of an older config: the aggregation must take only the current runs.
    stale = repo_copy / "results/runs/grid/batch~full/optimizer~sgd/lr~9/momentum~0/seed~0.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_text("not a run of this config")

    result = snakemake(repo_copy, "--cores", "2", "--configfile", "config/test.yaml", timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]

    run_files = expected_run_files(config)
    found = {str(p.relative_to(repo_copy)) for p in (repo_copy / "results/runs").rglob("*.parquet")}
    assert found - {str(stale.relative_to(repo_copy))} == run_files

    runs = pd.read_parquet(repo_copy / "results/aggregate/runs.parquet", filters=[("budget", "==", 1.0)])
    assert len(runs) == len(run_files)
    for path in run_files:
        first = pd.read_parquet(repo_copy / path).iloc[0]
        row = runs[
            (runs.batch == first.batch)
            & (runs.curvature_every == first.curvature_every)
            & (runs.optimizer == first.optimizer)
            & (runs.lr == first.lr)
            & (runs.momentum == first.momentum)
            & (runs.seed == first.seed)
        ]
        assert len(row) == 1, path
        expected = math.nan if first.diverged else last_val_loss(repo_copy / path)
        assert row.final_val_loss.iloc[0] == pytest.approx(expected, nan_ok=True), path

    cells = pd.read_parquet(repo_copy / "results/aggregate/cells.parquet", filters=[("budget", "==", 1.0)])
    grid_files = [path for path in run_files if "/grid/" in path]
    assert len(cells) == len(grid_files) // len(config["seeds"])
    assert set(cells.n_runs) == {len(config["seeds"])}

    for stem in ("loss_curves_full", "lr_sensitivity_16", "effective_step_16", "stability"):
        assert (repo_copy / f"results/figures/{stem}.png").stat().st_size > 0

    # The terminal: a short line per job saying what it does (no per-job reasons listing every
    # output path), then where the report is and the key findings, as the report opens with them.
    terminal = result.stdout + result.stderr
    assert "Reason:" not in terminal and max(map(len, terminal.splitlines())) <= 160
    assert "training grid runs on moons, full batch: SGD m = 0, 2 lrs x 2 seeds" in terminal
    assert f"Report: {repo_copy / 'results/report/findings.html'}" in terminal
    findings = json.loads((repo_copy / "results/aggregate/key_findings.json").read_text())
    page = (repo_copy / "results/report/findings.html").read_text()
    text = visible_text(page)
    assert len(findings) >= 2
    for number, finding in enumerate(findings, start=1):
        assert " ".join(f"{number}. {finding['text']}".split()) in " ".join(terminal.split())
        assert finding["text"].replace("\u2019", "'") in text
    verdicts = pd.read_parquet(repo_copy / "results/aggregate/verdicts.parquet")
    assert len(verdicts) > 0
    # the findings open the page: before the verdict table, each linking to its claim's row there
    assert text.index(findings[-1]["text"].replace("\u2019", "'")) < text.index(verdicts.headline.iloc[0])
    for claim_id in {claim_id for finding in findings for claim_id in finding["claims"]}:
        assert f'id="claim-{claim_id}"' in page
    for claim, headline in zip(verdicts.claim, verdicts.headline):
        assert claim.replace("\u2019", "'") in text and headline in text
    for setting, verdict in zip(verdicts.setting, verdicts.verdict):
        assert f"{setting} {verdict}" in text

    # Snakemake's own report: every figure (its PNG), the tagged tables and the findings report.
    zipped = repo_copy / "results/report/workflow-report.zip"
    made = snakemake(repo_copy, "--configfile", "config/test.yaml", "--report", str(zipped))
    assert made.returncode == 0 and "Report created" in made.stdout + made.stderr, made.stderr[-3000:]
    names = {Path(name).name for name in zipfile.ZipFile(zipped).namelist()}
    pngs = {f"{stem}.png" for stem in figures.figure_stems(config)}
    assert pngs | {"findings.html", "findings.pdf", "verdicts.parquet", "report.html"} <= names
    assert "ERROR" not in made.stdout + made.stderr  # the captions' reStructuredText is valid
    zipped.unlink()

    again = snakemake(repo_copy, "-n", "--configfile", "config/test.yaml")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    # A changed setting reruns exactly the jobs that use it, and what follows from them.
    downstream = dict.fromkeys(("aggregate", "claims", "figures", "report", "all"), 1)
    grid_jobs = {name: n for name, n in line_jobs(config).items() if name.startswith("train_grid_")}
    curvature_jobs = {name: n for name, n in line_jobs(config).items() if name.startswith("train_curvature_")}
    assert grid_jobs and curvature_jobs
    for section, key, value, expected in [
        ("analysis", "target_val_loss", config["analysis"]["target_val_loss"] / 2, downstream),
        ("training", "steps", config["training"]["steps"] + 1, {**grid_jobs, **downstream}),
        ("curvature", "steps", config["curvature"]["steps"] + 1, {**curvature_jobs, **downstream}),
    ]:
        changed = {**config, section: {**config[section], key: value}}
        (repo_copy / "changed.yaml").write_text(yaml.safe_dump(changed))
        plan = snakemake(repo_copy, "-n", "--configfile", "changed.yaml")
        assert plan.returncode == 0, plan.stderr
        assert job_counts(plan.stdout + plan.stderr) == expected, f"{section}.{key}"

    # An edited module makes stale what it made, and what follows: the aggregation's code reruns
    # the aggregation and after; a claim's reruns the judging and what shows it (the figures draw
    # the claims' bands), not the aggregation; the model's reruns the training too; the figures'
    # only those.
    package = repo_copy / "scripts/optimizer_dynamics"
    for module, expected in [
        ("figures/drawing", dict.fromkeys(("figures", "report", "all"), 1)),
        ("aggregate", downstream),
        ("claims/experiment1", dict.fromkeys(("claims", "figures", "report", "all"), 1)),
        ("model", {**line_jobs(config), **downstream}),
    ]:
        source = package / f"{module}.py"
        original = source.read_text()
        source.write_text(original + "\n# an edit\n")
        plan = snakemake(repo_copy, "-n", "--configfile", "config/test.yaml")
        assert plan.returncode == 0, plan.stderr
        assert job_counts(plan.stdout + plan.stderr) == expected, module
        source.write_text(original)
        os.utime(source, (0, 0))  # back to older than every output


# --- an optimizer added as one file ----------------------------------------------

# RMSprop as a new optimizer: one new file in the registry's folder of a copy of the repository,
# nothing else in the copy edited. Its own hyperparameter alpha (torch's second-moment decay), new
# to the study, is set in the config to a value other than its default.
TOY_MODULE = '''"""RMSprop, torch's form, without momentum."""

from optimizer_dynamics.optimizers.base import Hyperparameter, Optimizer, library_optimizer


def rmsprop_state(thetas):
    import torch

    return {"square_avg": torch.zeros_like(thetas)}


def rmsprop(thetas, grads, state, hyper, t):
    square_avg = state["square_avg"]
    square_avg.mul_(hyper.alpha).add_((1 - hyper.alpha) * grads * grads)
    thetas.sub_(hyper.lr * grads / (square_avg.sqrt() + hyper.eps))


OPTIMIZER = Optimizer(
    name="rmsprop",
    label="RMSprop",
    momentum_label="unused (0)",
    momentum_symbol="m",
    description="without momentum",
    init_state=rmsprop_state,
    update=rmsprop,
    hyperparameters=(Hyperparameter("alpha", default=0.99, minimum=0, maximum=1, exclusive_maximum=True, symbol="α"),
                     Hyperparameter("eps", default=1e-8, minimum=0, exclusive_minimum=True, symbol="ε")),
    reference=lambda params, c: library_optimizer("torch.optim", "RMSprop")(params, lr=c.lr, **c.hyperparameter_values),
    stability_threshold=lambda lr, m: 2 / lr,
    preconditioner=lambda state, hyper, t: state["square_avg"].sqrt() + hyper.eps,
    color="#999999",
)
'''


# A new problem: moons turned by 30 degrees, one new file in the problem registry's folder.
TOY_PROBLEM = '''"""make_moons turned by 30 degrees."""

import numpy as np

from optimizer_dynamics.problems.base import Problem

TURN = np.radians(30)
MATRIX = np.array([[np.cos(TURN), -np.sin(TURN)], [np.sin(TURN), np.cos(TURN)]])

PROBLEM = Problem(name="moons_turned", label="moons turned 30°", description="make_moons turned by 30 degrees",
                  transform=lambda x: x @ MATRIX.T, rotation_degrees=30)
'''


TOY_FIGURE = '''"""Figure final_losses. Each run's final validation loss against its learning rate."""

from matplotlib.figure import Figure

from optimizer_dynamics.figures.base import FigureEntry


def draw(agg):
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(agg.runs["lr"], agg.runs["final_val_loss"])
    ax.set(xscale="log", xlabel="lr", ylabel="final val loss")
    return fig


FIGURE = FigureEntry(name="final_losses", order=99, per_regime=True, draw=draw,
                     caption="Every run's final validation loss against its learning rate, a dot per run.")
'''


@pytest.mark.slow
def test_an_optimizer_a_problem_and_a_figure_added_as_one_file_each_run_through_to_the_report(repo_copy):
    (repo_copy / "scripts/optimizer_dynamics/optimizers/rmsprop.py").write_text(TOY_MODULE)
    (repo_copy / "scripts/optimizer_dynamics/problems/turned.py").write_text(TOY_PROBLEM)
    (repo_copy / "scripts/optimizer_dynamics/figures/final_losses.py").write_text(TOY_FIGURE)
    config = load_yaml(repo_copy / "config/test.yaml")
    config["optimizers"]["rmsprop"] = {"lr": [1.0e-3, 1.0e-2], "momentum": [0.0], "alpha": [0.9]}
    config["curvature"]["cells"]["rmsprop"] = {"lr": [1.0e-2], "momentum": [0.0]}
    config["conditioning"]["problems"] = ["moons", "moons_kappa10", "moons_turned"]
    config["batch_sizes"]["batch_size"] = [8]  # beside the grid's 16 and full batch: claim 9e's three sizes
    config["curvature"]["minibatch"]["cells"] = {"sgd": {"lr": [0.5], "momentum": [0.0]}}  # claim 7e
    config["epsilon"]["eps"] = [1.0e-3, 1.0]  # claim 9f, beside the grid's SGD at momentum 0
    config["max_jobs"] = 32
    (repo_copy / "config/toy.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(repo_copy, "--cores", "2", "--configfile", "config/toy.yaml")
    assert result.returncode == 0, result.stdout + result.stderr

    runs = pd.read_parquet(repo_copy / "results/aggregate/runs.parquet", filters=[("budget", "==", 1.0)])
    toy = runs[(runs["optimizer"] == "rmsprop") & (runs["set"] == "grid")]
    regimes = len(config["training"]["batch_size"])
    assert len(toy) == 2 * regimes * len(config["seeds"]) and toy["final_val_loss"].notna().all()
    assert set(toy["hyperparameters"]) == {"alpha=0.9,eps=1e-08"}  # the config's alpha, the module's eps
    curvature = pd.read_parquet(repo_copy / "results/aggregate/curvature.parquet")
    toy_curvature = curvature[curvature["optimizer"] == "rmsprop"]
    assert len(toy_curvature) and toy_curvature["precond_sharpness"].notna().all()  # adaptive: P^-1 H
    page = (repo_copy / "results/report/findings.html").read_text()
    assert "RMSprop" in page
    # The new figure: drawn per regime, shown in the report with its caption
    for regime in config["training"]["batch_size"]:
        assert (repo_copy / f"results/figures/final_losses_{'full' if regime is None else regime}.png").exists()
    assert "Every run's final validation loss against its learning rate, a dot per run." in visible_text(page)
    # The new problem: its data set, its runs, and claim 10d (a rotation of moons) judged on it
    assert (repo_copy / "results/data/moons_turned.npz").exists()
    conditioning = pd.read_parquet(repo_copy / "results/aggregate/conditioning.parquet")
    assert set(conditioning["problem"]) == {*config["conditioning"]["problems"]}
    assert (conditioning[conditioning["problem"] == "moons_turned"]["n_runs"] == len(config["seeds"])).all()
    verdicts = pd.read_parquet(repo_copy / "results/aggregate/verdicts.parquet")
    assert verdicts[verdicts["id"] == "10d"]["measured"].str.contains("moons_turned").all()
    edge = verdicts[verdicts["id"] == "7e"]
    assert edge["key"].str.contains(r"at batch 16, the late batch sharpness is \d").all()
    overlay = verdicts[verdicts["id"] == "9f"]
    assert overlay["measured"].str.contains("ε 0.001: overlays heavy ball in .* ε 1: overlays heavy ball in").all()
    gap = verdicts[verdicts["id"] == "9e"]
    assert gap["measured"].str.contains("batch 8 .*batch 16 .*full batch").all()
    assert "moons_turned" in page
    # The copy's new module reproduces torch.optim.RMSprop, like every entry of the registry.
    check = subprocess.run(
        [sys.executable, "-c", REFERENCE_CHECK.format(tests=REPO / "tests")], cwd=repo_copy, capture_output=True, text=True, timeout=300,
        env={**SNAKEMAKE_ENV, "PYTHONPATH": str(repo_copy / "scripts")},
    )
    assert check.returncode == 0 and float(check.stdout) < 1e-12, check.stdout + check.stderr


REFERENCE_CHECK = """
import sys
sys.path.insert(0, "{tests}")
import numpy as np
from optimizer_dynamics.config import RunConfig
from optimizer_dynamics.data import make_dataset
from optimizer_dynamics.train import train
from test_engine import reference_trajectory
dataset = make_dataset(60, 60, 0.2, 0)
config = RunConfig(optimizer="rmsprop", lr=1e-2, hyperparameters="alpha=0.9", n_train=60, n_val=60, hidden=16, steps=300)
got = train(config, dataset, record_trajectory=True).trajectory["params"]
expected = reference_trajectory(config, dataset, len(got) - 1)
print((np.abs(got - expected).max(axis=1) / np.abs(expected).max(axis=1)).max())
"""


@pytest.mark.slow
def test_a_20000_run_grid_plans(repo_copy):
    config = load_yaml(repo_copy / "config/test.yaml")
    config["optimizers"] = {
        "sgd": {"lr": [0.1, 0.5, *(k / 1000 for k in range(1, 99))], "momentum": [0.0, 0.5, 0.9, 0.99]},
        "adam": {"lr": [1.0e-3, 1.0e-2], "momentum": [0.9]},
    }
    config["seeds"] = list(range(50))
    config["training"]["batch_size"] = [None]
    config["curvature"]["every"] = 0
    config["max_jobs"] = 2000
    (repo_copy / "config/big.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(repo_copy, "-n", "--configfile", "config/big.yaml", "--replace-workflow-config")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    counts = job_counts(plan.stdout + plan.stderr)
    train_jobs = sum(count for name, count in counts.items() if name.startswith("train_"))
    assert train_jobs == 4 * 100 * 50 // 100 + 1  # lines split at max_runs_per_job = 100 runs
    assert len(expected_run_files(config)) == 20_100


# --- jobs run the Python that runs Snakemake ----------------------------------------------


def test_jobs_run_the_python_that_runs_snakemake(repo_copy):
    """With no environment's python on PATH (only the system's), a job still finds the
    packages of the interpreter that runs Snakemake (scikit-learn, for the data set)."""
    env = {**SNAKEMAKE_ENV, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/data/moons.npz", "--cores", "1", "--configfile", "config/test.yaml"],
        cwd=repo_copy, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (repo_copy / "results/data/moons.npz").exists()


def test_curvature_off_trains_no_curvature_runs(repo_copy):
    config = load_yaml(repo_copy / "config/test.yaml")
    config["curvature"]["every"] = 0
    (repo_copy / "config/off.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(repo_copy, "-n", "-p", "--configfile", "config/off.yaml")
    output = plan.stdout + plan.stderr
    assert plan.returncode == 0, output
    assert "/curvature/" not in output and "train_curvature" not in output
    assert set(re.findall(r"--curvature-every (\d+)", output)) == {"0"}
