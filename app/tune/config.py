"""Sweep settings (the ``tune`` config group): search, scheduler, resources, resume.

A plain dataclass, free of Hydra, so the sweep can be driven from a dict as well as from the
composed config; ``app.config`` registers it in the schema. The search space itself is parsed
and checked by :mod:`app.tune.space`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from app.errors import ConfigError
from app.train.config import MONITORS

SEARCHES = ("optuna", "random")
SCHEDULERS = ("asha", "fifo")
TRIAL_MODES = ("auto", "direct", "trainer")


@dataclass
class TuneConfig:
    """Every key the sweep reads; see docs/tuning.md for what each one does."""

    num_samples: int = 16  # trials to run
    metric: str = "val_loss"  # per-epoch validation metric to optimise (see app.train.config.MONITORS)
    mode: Optional[str] = None  # min | max; None = the metric's natural direction
    search_space: dict[str, Any] = field(default_factory=dict)  # name -> {type, low, high, values, path}
    search: str = "optuna"  # optuna (seeded TPE) | random (seeded, for comparisons)
    seed: int = 42
    n_startup_trials: Optional[int] = None  # TPE's random trials first; None = about a quarter of num_samples
    scheduler: str = "asha"  # asha | fifo
    max_t: Optional[int] = None  # epochs of a trial that is never stopped; None = train.epochs
    grace_period: int = 1  # ASHA: epochs every trial gets
    reduction_factor: int = 3  # ASHA: 1 in reduction_factor trials go on at each rung
    max_concurrent_trials: Optional[int] = None  # None = as many as the cluster's CPUs allow
    trial_mode: str = "auto"  # auto | direct (loop in the trial) | trainer (TorchTrainer per trial)
    max_trial_epochs: Optional[int] = None  # stop the sweep once the trials have run this many epochs in all
    time_budget_s: Optional[float] = None  # stop the sweep after this many seconds
    max_failures: int = 1  # retries of a failed trial from its last checkpoint
    checkpoints_to_keep: int = 2  # per trial, ranked by the metric (the best one is re-evaluated)
    name: str = "sweep"  # Tune's experiment folder: <run_dir>/tune/<name>
    resume: bool = False  # continue the sweep in <run_dir>/tune/<name> (re-run with the same hydra.run.dir)
    plots: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def metric_mode(self) -> str:
        return self.mode or MONITORS[self.metric]

    @property
    def startup_trials(self) -> int:
        """TPE's random start: explicit, or a quarter of the trials (2 to 10)."""
        if self.n_startup_trials is not None:
            return int(self.n_startup_trials)
        return max(2, min(10, self.num_samples // 4))

    def epochs(self, train_epochs: int) -> int:
        return int(self.max_t or train_epochs)

    def validate(self) -> None:
        choices = {"metric": tuple(MONITORS), "search": SEARCHES, "scheduler": SCHEDULERS, "trial_mode": TRIAL_MODES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"tune.{key}={getattr(self, key)!r} is unknown", f"use one of {', '.join(allowed)}")
        if self.mode not in (None, "min", "max"):
            raise ConfigError(f"tune.mode={self.mode!r} is unknown", "use tune.mode=min, max or null")
        for key in ("num_samples", "grace_period", "checkpoints_to_keep"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"tune.{key}={getattr(self, key)} must be >= 1", f"set tune.{key} to 1 or more")
        for key in ("max_t", "max_concurrent_trials", "max_trial_epochs"):
            value = getattr(self, key)
            if value is not None and int(value) < 1:
                raise ConfigError(f"tune.{key}={value} must be >= 1", f"set tune.{key} to 1 or more, or null")
        if self.n_startup_trials is not None and self.n_startup_trials < 0:
            raise ConfigError(f"tune.n_startup_trials={self.n_startup_trials} is negative", "use 0 or more, or null")
        if self.reduction_factor < 2:
            raise ConfigError(f"tune.reduction_factor={self.reduction_factor} must be >= 2", "use e.g. 3")
        if self.max_t is not None and self.grace_period > self.max_t:
            raise ConfigError(
                f"tune.grace_period={self.grace_period} exceeds tune.max_t={self.max_t}", "lower tune.grace_period"
            )
        if not isinstance(self.search_space, Mapping):
            raise ConfigError("tune.search_space is not a mapping", "write tune.search_space.<name>={type: ..., ...}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"tune.name={self.name!r} is not a folder name", "use e.g. tune.name=sweep")

