"""RunConfig validation and the dataset file."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer_dynamics.config import ConfigError, RunConfig, format_number
from optimizer_dynamics.data import load_dataset, make_dataset, save_dataset

BAD_VALUES = [
    ({"lr": 0.0}, "lr", "> 0"),
    ({"lr": -0.1}, "lr", "> 0"),
    ({"lr": float("nan")}, "lr", "finite"),
    ({"lr": "0.1"}, "lr", "type float"),
    ({"momentum": 1.0}, "momentum", "[0, 1)"),
    ({"momentum": -0.1}, "momentum", "[0, 1)"),
    ({"optimizer": "rmsprop"}, "optimizer", "'adam', 'lion', 'nesterov', 'normalized', 'sgd', 'sign'"),
    ({"steps": 0}, "steps", "[1, "),
    ({"steps": 10**9}, "steps", "[1, "),
    ({"steps": 10.5}, "steps", "type int"),
    ({"batch_size": 0}, "batch_size", "null (full batch)"),
    ({"batch_size": 10**6}, "batch_size", "[1, n_train]"),
    ({"eval_every": 0}, "eval_every", ">= 1"),
    ({"optimizer": "nesterov", "momentum": 0.0}, "momentum", "(0, 1) for nesterov"),
    ({"optimizer": "adam", "hyperparameters": "beta2=1"}, "hyperparameters", "beta2 must be a number in [0, 1)"),
    ({"optimizer": "adam", "hyperparameters": "eps=0"}, "hyperparameters", "eps must be a number > 0"),
    ({"optimizer": "adam", "hyperparameters": "alpha=0.9"}, "hyperparameters", "allowed: beta2, eps"),
    ({"optimizer": "sgd", "hyperparameters": "eps=1"}, "hyperparameters", "allowed: none"),
    ({"divergence_factor": 1.0}, "divergence_factor", "> 1"),
    ({"seed": -1}, "seed", ">= 0"),
    ({"seed": True}, "seed", "type int"),
    ({"noise": -0.1}, "noise", ">= 0"),
    ({"hidden": 0}, "hidden", ">= 1"),
]


@pytest.mark.parametrize(("overrides", "field", "allowed"), BAD_VALUES, ids=[f"{f}={o[f]!r}" for o, f, _ in BAD_VALUES])
def test_bad_values_fail_naming_the_field_and_what_is_allowed(overrides, field, allowed):
    with pytest.raises(ConfigError) as error:
        RunConfig(**overrides)
    message = str(error.value)
    assert message.startswith(f"{field} = ")
    assert allowed in message


def test_defaults_are_valid_and_round_trip():
    config = RunConfig()
    assert RunConfig(**config.to_dict()) == config
    assert config.full_batch


@pytest.mark.parametrize(("value", "text"), [(0.001, "0.001"), (1e-05, "1e-05"), (0.5, "0.5"), (0.0, "0"), (2.0, "2")])
def test_number_format_is_stable(value, text):
    assert format_number(value) == text
    assert float(text) == value


def test_dataset_is_standardized_with_train_statistics_only():
    data = make_dataset(n_train=300, n_val=200, noise=0.2, data_seed=1)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-12)
    assert not np.allclose(data.x_val.mean(axis=0), 0, atol=1e-3)  # val uses the train statistics
    assert set(np.unique(data.y_train)) == {0.0, 1.0} and data.x_val.shape == (200, 2)


def test_dataset_seed_is_separate_and_file_round_trips(tmp_path):
    a, b = make_dataset(64, 64, 0.2, 0), make_dataset(64, 64, 0.2, 1)
    assert not np.array_equal(a.x_train, b.x_train)
    path = tmp_path / "moons.npz"
    save_dataset(a, path)
    loaded = load_dataset(path, expected=a.settings)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(a, name))
    with pytest.raises(ValueError, match="noise: file has 0.2, run wants 0.3"):
        load_dataset(path, expected={**a.settings, "noise": 0.3})
    assert [p.name for p in tmp_path.iterdir()] == ["moons.npz"]


def test_the_config_readmes_key_tables_are_generated_from_the_schema():
    # The schema holds every key's meaning, range, default and reason once; the README's tables
    # are generated from it (python -m optimizer_dynamics.config_docs): stale tables fail here.
    import yaml

    from optimizer_dynamics import config_docs

    schema, study = yaml.safe_load(config_docs.SCHEMA.read_text()), yaml.safe_load(config_docs.CONFIG.read_text())
    text = config_docs.README.read_text()
    assert text.count("<!-- keys: ") == 7
    assert config_docs.generate(text, schema, study) == text, "run python -m optimizer_dynamics.config_docs"
    # a default changed in the schema reaches the table
    schema["properties"]["data"]["properties"]["n_train"]["default"] = 400
    assert "| `n_train` | Number of training points (full batch by default). | an integer >= 2 | `400` (config.yaml: `500`) |" \
        in config_docs.generate(text, schema, study)


def test_a_single_runs_defaults_are_the_workflows():
    # RunConfig (a run by hand) keeps its defaults in Python, so a training job need not parse the
    # schema; they must be the schema's, which the README's tables show.
    import yaml

    from optimizer_dynamics import config_docs
    from optimizer_dynamics.config import RUN_DEFAULTS

    sections = yaml.safe_load(config_docs.SCHEMA.read_text())["properties"]
    shared = {**{key: ("data", key) for key in ("n_train", "n_val", "noise")}, "data_seed": ("data", "seed"),
              **{key: ("training", key) for key in ("steps", "eval_every", "divergence_factor")}}
    for field, (section, key) in shared.items():
        assert RUN_DEFAULTS[field] == sections[section]["properties"][key]["default"], field
