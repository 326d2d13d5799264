"""RunConfig: every setting of one training run, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from optimizer_dynamics import batch_regime
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.problems import PROBLEMS

MAX_STEPS = 1_000_000


class ConfigError(ValueError):
    """A refused run setting or workflow config (checks.py); the message names the field or
    key, the value and what is allowed."""


@dataclass(frozen=True)
class RunConfig:
    # optimizer
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0  # SGD: heavy-ball coefficient; Nesterov: its coefficient; Adam: beta1
    # The optimizer's own hyperparameters (its registry entry's), as "name=value,..." in the
    # entry's order; omitted ones take the entry's defaults, and the field is rewritten in full
    # ("beta2=0.999,eps=1e-08"; NO_HYPERPARAMETERS for an optimizer that declares none).
    hyperparameters: str = ""
    # run
    seed: int = 0  # model init and batch order; the data has its own seed
    steps: int = 1000
    batch_size: int | None = None  # None: full batch
    eval_every: int = 10
    divergence_factor: float = 10.0  # loss above this x initial loss ends the run
    curvature_every: int = 0  # exact Hessians at steps s, s + 1 for s a multiple of K; 0 = off
    curvature_early_steps: int = 0  # ... and, before this step,
    curvature_early_every: int = 1  # a pair every this many steps (dense early, where the catapult happens)
    curvature_consecutive: int = 2  # Hessians at s, ..., s + this - 1: 2 = the pair; 1 = step s alone
    noise_every: int = 0  # exact gradient-noise instruments every K steps (noise.py); 0 = off
    # model
    hidden: int = 128
    # data
    problem: str = "moons"  # a name of the problem registry (optimizer_dynamics.problems)
    n_train: int = 500
    n_val: int = 500
    noise: float = 0.2
    data_seed: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), field.type)
        checks = [
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {sorted(OPTIMIZERS)}"),
            ("lr", math.isfinite(self.lr) and self.lr > 0, "a finite number > 0"),
            ("momentum", 0 <= self.momentum < 1, "a number in [0, 1)"),
            (
                "momentum",
                self.optimizer not in OPTIMIZERS or not OPTIMIZERS[self.optimizer].requires_momentum or self.momentum > 0,
                f"a number in (0, 1) for {self.optimizer}",
            ),
            ("seed", self.seed >= 0, "an integer >= 0"),
            ("steps", 1 <= self.steps <= MAX_STEPS, f"an integer in [1, {MAX_STEPS}]"),
            (
                "batch_size",
                self.batch_size is None or 1 <= self.batch_size <= self.n_train,
                "null (full batch) or an integer in [1, n_train]",
            ),
            ("eval_every", self.eval_every >= 1, "an integer >= 1"),
            ("divergence_factor", self.divergence_factor > 1, "a number > 1"),
            ("curvature_every", self.curvature_every >= 0, "an integer >= 0 (0 = off)"),
            ("curvature_early_steps", self.curvature_early_steps >= 0, "an integer >= 0"),
            ("curvature_early_every", self.curvature_early_every >= 1, "an integer >= 1"),
            ("curvature_consecutive", self.curvature_consecutive in (1, 2), "1 or 2"),
            ("noise_every", self.noise_every >= 0, "an integer >= 0 (0 = off)"),
            ("hidden", self.hidden >= 1, "an integer >= 1"),
            ("problem", self.problem in PROBLEMS, f"one of {list(PROBLEMS)}"),
            ("n_train", self.n_train >= 2, "an integer >= 2"),
            ("n_val", self.n_val >= 2, "an integer >= 2"),
            ("noise", self.noise >= 0, "a number >= 0"),
            ("data_seed", self.data_seed >= 0, "an integer >= 0"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r} is not allowed: must be {allowed}")
        object.__setattr__(self, "hyperparameters", hyperparameter_text(self.optimizer, self.hyperparameter_values))

    @property
    def hyperparameter_values(self) -> dict[str, float]:
        """The optimizer's own hyperparameters, every one, in its entry's order."""
        return parse_hyperparameters(self.optimizer, self.hyperparameters)

    @property
    def full_batch(self) -> bool:
        return self.batch_size is None or self.batch_size == self.n_train

    @property
    def batch(self) -> str:
        """The run's regime as paths and the run file's `batch` column name it."""
        return batch_regime.name(self.batch_size)

    def is_hessian_step(self, step: int) -> bool:
        """Whether the run takes an exact Hessian at this step (curvature_every 0: never).
        Hessians come in pairs of consecutive steps, s and s + 1 for s a multiple of the period
        (curvature_early_every before curvature_early_steps, curvature_every after): gradient
        descent at the edge of stability oscillates with period 2, and a schedule of even steps
        alone would see one phase of the orbit only. curvature_consecutive 1 takes step s alone,
        for runs that read no oscillation (the conditioning runs' step-0 sharpness)."""
        if not self.curvature_every:
            return False
        period = self.curvature_early_every if step < self.curvature_early_steps else self.curvature_every
        return step % period < self.curvature_consecutive

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RUN_DEFAULTS = {field.name: field.default for field in dataclasses.fields(RunConfig)}


def _check_type(name: str, value, annotation: str) -> None:
    # Annotations are strings (postponed evaluation); bool is an int subclass, so test it first.
    if annotation == "bool":
        ok = isinstance(value, bool)
    elif annotation.startswith("int"):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            value is None and "None" in annotation
        )
    elif annotation == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{name} = {value!r} is not allowed: must be of type {annotation}")


NO_HYPERPARAMETERS = "none"  # the hyperparameters field of an optimizer that declares none


def parse_hyperparameters(optimizer: str, text: str) -> dict[str, float]:
    """ "eps=1,beta2=0.99" -> every hyperparameter of the optimizer's entry, defaults for the
    ones not given, checked against the entry's ranges."""
    declared = {h.name: h for h in OPTIMIZERS[optimizer].hyperparameters}
    given = {}
    for item in text.split(",") if text and text != NO_HYPERPARAMETERS else []:
        name, _, value = item.partition("=")
        if name not in declared:
            raise ConfigError(f"hyperparameters = {text!r} is not allowed: {optimizer} has no hyperparameter "
                              f"{name!r}; allowed: {', '.join(declared) or 'none'}")
        try:
            given[name] = float(value)
        except ValueError:
            raise ConfigError(f"hyperparameters = {text!r} is not allowed: {name} = {value!r} is not a number") from None
        if not declared[name].allows(given[name]):
            raise ConfigError(f"hyperparameters = {text!r} is not allowed: {optimizer}'s {name} must be "
                              f"{declared[name].allowed}")
    return {name: given.get(name, h.default) for name, h in declared.items()}


def hyperparameter_text(optimizer: str, values: dict[str, float]) -> str:
    """The one text form of an optimizer's hyperparameters: in runs, paths and command lines."""
    return ",".join(f"{name}={format_number(value)}" for name, value in values.items()) or NO_HYPERPARAMETERS


def format_number(value: float) -> str:
    """The one text form of a number in paths and labels: 6 significant digits, no padding."""
    return f"{value:.6g}"
