"""make_moons, split and standardized with train statistics, saved once as .npz.

Training jobs load the file with numpy alone, so they never import scikit-learn.
Run by hand: python -m optimizer_dynamics.data --out results/data/moons.npz
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer_dynamics.atomic import atomic_path

DATA_KEYS = ("n_train", "n_val", "noise", "data_seed")


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (n_train, 2) float64, standardized
    y_train: np.ndarray  # (n_train,) float64 in {0, 1}
    x_val: np.ndarray
    y_val: np.ndarray
    settings: dict  # n_train, n_val, noise, data_seed


def make_dataset(n_train: int, n_val: int, noise: float, data_seed: int) -> Dataset:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_val, noise=noise, random_state=data_seed)
    x_train, x_val = x[:n_train], x[n_train:]
    # Standardize with train statistics only, so nothing of the validation set leaks in.
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    settings = {"n_train": n_train, "n_val": n_val, "noise": noise, "data_seed": data_seed}
    return Dataset(
        x_train=(x_train - mean) / std,
        y_train=y[:n_train].astype(np.float64),
        x_val=(x_val - mean) / std,
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
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-val", type=int, default=500)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args(argv)
    dataset = make_dataset(args.n_train, args.n_val, args.noise, args.data_seed)
    save_dataset(dataset, args.out)
    print(f"wrote {args.out}: {args.n_train} train / {args.n_val} val points, noise {args.noise}")


if __name__ == "__main__":
    main()
