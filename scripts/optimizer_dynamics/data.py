"""A problem's data set: make_moons, split, standardized with train statistics, then the
problem's transform (optimizer_dynamics.problems), saved once as .npz.

Training jobs load the file with numpy alone, so they never import scikit-learn.
Run by hand: python -m optimizer_dynamics.data --problem moons --out results/data/moons.npz
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.config import RUN_DEFAULTS
from optimizer_dynamics.problems import PROBLEMS

DATA_KEYS = ("problem", "n_train", "n_val", "noise", "data_seed")


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (n_train, 2) float64, standardized
    y_train: np.ndarray  # (n_train,) float64 in {0, 1}
    x_val: np.ndarray
    y_val: np.ndarray
    settings: dict  # problem, n_train, n_val, noise, data_seed


def make_dataset(n_train: int, n_val: int, noise: float, data_seed: int,
                 problem: str = RUN_DEFAULTS["problem"]) -> Dataset:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_val, noise=noise, random_state=data_seed)
    x_train, x_val = x[:n_train], x[n_train:]
    # Standardize with train statistics only, so nothing of the validation set leaks in.
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    transform = PROBLEMS[problem].transform
    settings = {"problem": problem, "n_train": n_train, "n_val": n_val, "noise": noise, "data_seed": data_seed}
    return Dataset(
        x_train=transform((x_train - mean) / std),
        y_train=y[:n_train].astype(np.float64),
        x_val=transform((x_val - mean) / std),
        y_val=y[n_train:].astype(np.float64),
        settings=settings,
    )


def save_dataset(dataset: Dataset, path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            x_train=dataset.x_train,
            y_train=dataset.y_train,
            x_val=dataset.x_val,
            y_val=dataset.y_val,
            **{key: np.asarray(dataset.settings[key]) for key in DATA_KEYS},
        )


def load_dataset(path: str | Path, expected: dict | None = None) -> Dataset:
    """Load a saved dataset; if `expected` settings are given, refuse a file built otherwise."""
    with np.load(path) as f:
        settings = {key: f[key].item() for key in DATA_KEYS}
        dataset = Dataset(f["x_train"], f["y_train"], f["x_val"], f["y_val"], settings)
    if expected is not None:
        wrong = {k: (settings[k], expected[k]) for k in DATA_KEYS if settings[k] != expected[k]}
        if wrong:
            detail = ", ".join(f"{k}: file has {have!r}, run wants {want!r}" for k, (have, want) in wrong.items())
            raise ValueError(f"dataset {path} was built with other settings ({detail}); rebuild it")
    return dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="path of the .npz file to write")
    # The defaults are RunConfig's, the one home of a run's settings in Python.
    for key in DATA_KEYS:
        default = RUN_DEFAULTS[key]
        kwargs = {"choices": list(PROBLEMS)} if key == "problem" else {}
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(default), default=default, **kwargs)
    args = parser.parse_args(argv)
    dataset = make_dataset(**{key: getattr(args, key) for key in DATA_KEYS})
    save_dataset(dataset, args.out)
    print(f"wrote {args.out}: {args.problem}, {args.n_train} train / {args.n_val} val points, noise {args.noise}")


if __name__ == "__main__":
    main()
