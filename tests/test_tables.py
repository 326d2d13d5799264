"""The one reader of the aggregate tables: exact keys, and the config's numbers find their rows."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import tiny_study_config
from optimizer_dynamics import study, tables


def test_select_matches_keys_exactly_and_none_matches_all():
    frame = pd.DataFrame({"optimizer": ["sgd", "sgd", "adam"], "lr": [0.1, 0.1 + 1e-12, 0.1],
                          "momentum": [0.0, 0.0, 0.9]})
    assert list(tables.select(frame, optimizer="sgd", lr=0.1).index) == [0]  # 0.1 + 1e-12 is another lr
    assert list(tables.select(frame, lr=0.1, momentum=None).index) == [0, 2]
    with pytest.raises(TypeError, match="not key columns"):
        tables.select(frame, learning_rate=0.1)


def test_one_names_the_keys_when_not_exactly_one_row():
    frame = pd.DataFrame({"optimizer": ["sgd", "sgd"], "lr": [0.1, 0.1], "momentum": [0.0, 0.9]})
    assert tables.one(frame, optimizer="sgd", momentum=0.9).name == 1
    with pytest.raises(LookupError, match="2 rows for optimizer sgd, lr 0.1"):
        tables.one(frame, optimizer="sgd", lr=0.1)
    with pytest.raises(LookupError, match="0 rows for optimizer adam"):
        tables.one(frame, optimizer="adam")


def test_every_config_cell_finds_its_one_row_after_yaml_json_and_parquet(tiny_aggregate):
    """The config's lr and momentum, as study.json gives them back, equal the tables' floats."""
    agg = tables.load_aggregate(tiny_aggregate)
    assert agg.study["config"] == tiny_study_config()
    for regime in study.regimes(agg.config):
        in_regime = agg.in_regime(regime)
        for name, axes in agg.config["optimizers"].items():
            for lr in axes["lr"]:
                for momentum in axes["momentum"]:
                    assert in_regime.cell(name, lr, momentum)["n_runs"] == len(agg.config["seeds"])
                    assert len(in_regime.cell_runs(name, lr, momentum)) == len(agg.config["seeds"])

