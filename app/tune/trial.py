"""The function every Tune trial runs: sampled values → configs → one training run.

Two ways to train, the same loop either way (``app.train.loop``):

* ``direct``: the trial process runs the epochs itself and reports to Tune (one worker; no
  nested trainer, so no Ray Train start-up per trial);
* ``trainer``: the trial builds a ``TorchTrainer`` through ``app.train.fit.fit`` with a report
  callback (Ray's Train V2 + Tune pattern), for trials with several DDP workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.train.config import TrainConfig
from app.typed import typed
from app.tune.space import SearchSpace, apply_params
from app.tune.windows import TrialWindows


@dataclass(frozen=True)
class TrialSpec:
    """What every trial shares (sent once through the object store with ``tune.with_parameters``)."""

    base: dict[str, dict[str, Any]]  # {"train": ..., "model": ..., "windows": {"seq_len": n}}
    space: SearchSpace
    metric: str
    mode: str
    epochs: int  # tune.max_t
    mode_of_trial: str  # direct | trainer
    windows: dict[int, TrialWindows]
    experiment_uri: str | None = None  # the sweep's experiment on a storage URI (trials checkpoint there)

    def configs(self, values: dict[str, Any]) -> tuple[dict, TrainConfig, TrialWindows]:
        """The trial's model node, train config and windows for its sampled ``values``."""
        cfg = apply_params(self.base, self.space, values)
        train = {**cfg["train"], "epochs": self.epochs, "monitor": self.metric, "baselines": False, "resume": False,
                 "min_workers": cfg["train"]["num_workers"]}  # a fixed group: the sweep sized its trials so
        return cfg["model"], typed(TrainConfig, train, "train"), self.windows[int(cfg["windows"]["seq_len"])]


def run_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """Tune's entry: train with the sampled ``config``; every epoch is reported to Tune."""
    model_cfg, train_cfg, windows = spec.configs(config)
    if spec.mode_of_trial == "direct":
        from app.tune.direct import train_in_trial

        train_in_trial(model_cfg, train_cfg, windows, spec.metric, spec.mode)
    else:
        from app.tune.nested import train_with_trainer

        train_with_trainer(model_cfg, train_cfg, windows, spec.metric, spec.mode, spec.experiment_uri)
