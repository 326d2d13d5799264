"""The config checks as a plain module (optimizer_dynamics.checks), without Snakemake: each
refusal names the key, the value and what is allowed; good configs pass. The same messages
through the real command line: tests/test_bad_config.py."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from conftest import REPO, with_changes
from optimizer_dynamics import checks

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
TEST_CONFIG = yaml.safe_load((REPO / "config/test.yaml").read_text())  # every section given


def changed(**changes) -> dict:
    return with_changes(TEST_CONFIG, **changes)


def test_the_shipped_configs_pass():
    checks.check_config(copy.deepcopy(TEST_CONFIG))
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(default))
    checks.check_config(default)


REFUSED = [
    (changed(optimizers__rmsprop={"lr": [0.1], "momentum": [0.0]}),
     ("optimizers.rmsprop", "not a registered optimizer", "allowed: sgd, nesterov, adam")),
    (changed(optimizers__nesterov={"lr": [0.1], "momentum": [0.0]}),
     ("optimizers.nesterov.momentum", "0 is not allowed for nesterov", "(0, 1)")),
    (changed(optimizers__sgd={"lr": [0.1, 0.5, 0.1], "momentum": [0.0]}),
     ("optimizers.sgd.lr", "0.1 is listed more than once", "allowed: each value once")),
    (changed(optimizers__sgd={"lr": [0.1, 0.1234567], "momentum": [0.0]}),
     ("optimizers.sgd.lr", "more than 6 significant digits", "0.123457")),
    (changed(seeds=[0, 1, 0]), ("seeds", "0 is listed more than once",)),
    (changed(training__batch_size=[None, 65]), ("training.batch_size", "65 is larger than data.n_train = 64", "[1, 63]")),
    (changed(training__batch_size=[64]), ("training.batch_size", "64 is all of data.n_train = 64", "null")),
    (changed(training__batch_size=[16, None, 16]), ("training.batch_size", "16 is listed more than once",)),
    (changed(training__batch_size=[None, None]), ("training.batch_size", "null is listed more than once",)),
    (changed(analysis__budgets=[0.5, 0.5, 1.0]), ("analysis.budgets", "0.5 is listed more than once",)),
    (changed(analysis__budgets=[0.25, 0.5]), ("analysis.budgets", "lacks 1", "1 among them")),
    (changed(curvature__cells__rmsprop={"lr": [0.1], "momentum": [0.0]}),
     ("curvature.cells.rmsprop", "not a registered optimizer",)),
    (changed(curvature__cells__sgd={"lr": [0.1, 0.1], "momentum": [0.0]}),
     ("curvature.cells.sgd.lr", "0.1 is listed more than once",)),
    (changed(analysis__reference__sgd={"lr": 0.3, "momentum": 0.0}),
     ("analysis.reference.sgd.lr", "0.3 is not in optimizers.sgd.lr", "one of ['0.1', '0.5']")),
    (changed(analysis__claimed_windows__adam=[0.01, 0.001]),
     ("analysis.claimed_windows.adam", "not an interval", "low < high")),
    (changed(max_jobs=1), ("optimizers", "makes 6 training jobs", "max_jobs is 1")),
    (changed(problem="spirals"), ("problem", "spirals is not a registered problem", "moons_kappa10")),
    (changed(conditioning__problems=["moons", "moons_kappa7"]),
     ("conditioning.problems", "moons_kappa7 is not a registered problem", "moons_kappa100_rot45")),
    (changed(conditioning__problems=["moons", "moons"]), ("conditioning.problems", "moons is listed more than once",)),
    (changed(conditioning__problems=["moons"], conditioning__batch_size=[64]), ("conditioning.batch_size", "64 is all of data.n_train = 64", "null")),
    (changed(conditioning__problems=["moons"],
             conditioning__optimizers__nesterov={"lr": [0.1], "momentum": [0.0]}),
     ("conditioning.optimizers.nesterov.momentum", "0 is not allowed for nesterov",)),
    (changed(batch_sizes__batch_size=[8, 16]),
     ("batch_sizes.batch_size", "16 is a regime of the grid already", "batch sizes the grid does not train")),
    (changed(batch_sizes__batch_size=[64]), ("batch_sizes.batch_size", "64 is all of data.n_train = 64",)),
    (changed(batch_sizes__batch_size=[8], batch_sizes__optimizers__rmsprop={"lr": [0.1], "momentum": [0.9]}),
     ("batch_sizes.optimizers.rmsprop", "not a registered optimizer",)),
    # claim 9f's heavy-ball partners are the grid's SGD runs
    (changed(epsilon__eps=[1.0], epsilon__heavy_ball_lr=[0.1, 0.2]),
     ("epsilon.heavy_ball_lr", "0.2 is not in optimizers.sgd.lr", "one of [0.1, 0.5]")),
    (changed(epsilon__eps=[1.0], epsilon__momentum=0.9), ("epsilon.momentum", "0.9 is not in optimizers.sgd.momentum",)),
    (changed(epsilon__eps=[1.0], epsilon__batch_size=[64]), ("epsilon.batch_size", "64 is not in training.batch_size",)),
    (changed(epsilon__eps=[1.0, 1.0]), ("epsilon.eps", "1 is listed more than once",)),
    (changed(epsilon__eps=[1.0], epsilon__heavy_ball_lr=[]), ("epsilon.heavy_ball_lr", "empty",)),
]


@pytest.mark.parametrize(("config", "says"), REFUSED, ids=[says[0] + ":" + says[1] for _, says in REFUSED])
def test_a_bad_config_is_refused_naming_the_key_and_what_is_allowed(config, says):
    with pytest.raises(checks.ConfigError) as refused:
        checks.check_config(config)
    for fragment in says:
        assert fragment in str(refused.value)


def test_curvature_cells_are_runs_of_their_own_not_grid_cells():
    checks.check_config(changed(curvature__cells__sgd={"lr": [0.3], "momentum": [0.5]}))


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (changed(training__steps="60"), ("training.steps", "write 60 without quotes")),
        (changed(optimizers__adam={"lr": ["1e-3"], "momentum": [0.9]}), ("optimizers.adam.lr[0]", "write 1.0e-3")),
        (changed(training__block="stack"), ("training.block", "allowed: one of line, cell")),
        (changed(data__n_trian=5), ("data", "allowed keys here: n_train, n_val")),
        (changed(training__batch_size=[]), ("training.batch_size", "a non-empty list")),
        (changed(training__batch_size=None), ("training.batch_size", "a non-empty list, each an integer >= 1 or null")),
        (changed(training__batch_size=[None, 0]), ("training.batch_size[1]", "an integer >= 1 or null")),
        (changed(training__batch_size=[-16]), ("training.batch_size[0]", "an integer >= 1 or null")),
        (changed(training__batch_size=[16.5]), ("training.batch_size[0]", "an integer >= 1 or null")),
        (changed(analysis__budgets=[0, 1.0]), ("analysis.budgets[0]", "a number in (0, 1]")),
        (changed(analysis__budgets=[1.0, 2]), ("analysis.budgets[1]", "a number in (0, 1]")),
        (changed(analysis__budgets=[]), ("analysis.budgets", "a non-empty list")),
        (changed(curvature__steps=0), ("curvature.steps", "an integer in [1, 1000000]")),
        (changed(curvature__early_every=0), ("curvature.early_every", "an integer >= 1")),
    ],
    ids=["quoted-number", "yaml-exponent", "enum", "misspelled-key", "batch-empty", "batch-scalar", "batch-zero",
         "batch-negative", "batch-fraction", "budget-zero", "budget-above-1", "budgets-empty", "curvature-steps-0",
         "early-every-0"],
)
def test_schema_errors_are_worded_with_what_is_allowed(config, says):
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert errors
    message = checks.describe_schema_error(errors[0])
    for fragment in says:
        assert fragment in message
