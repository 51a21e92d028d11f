"""Training settings (the ``train`` config group) with their defaults and checks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from app.errors import ConfigError

AMP_MODES = ("auto", "bf16", "fp16", "off")
SCHEDULERS = ("cosine", "onecycle", "none")
LOSSES = ("mse", "huber")
#: Metrics early stopping and checkpoint ranking may follow, with their direction.
MONITORS = {"val_loss": "min", "val_mse": "min", "val_ic": "max", "val_rank_ic": "max", "val_dir_acc": "max"}


@dataclass
class TrainConfig:
    """Everything the loop reads, checked when built (the composed config, or :func:`app.typed.typed`)."""

    num_workers: int = 1
    # fewest workers to continue with after a node is lost (Ray Train's elastic group, up to num_workers);
    # None: 1 on a cluster of several nodes, num_workers (a fixed group) on one machine
    min_workers: Optional[int] = None
    use_gpu: Any = "auto"  # auto (the GPUs the Ray cluster has) | true | false; see app.train.device
    gpus_per_worker: Optional[float] = None  # GPU share per worker in (0, 1]; None = 1, a sweep shares
    cpus_per_worker: int = 1  # Ray CPU reservation per worker; torch uses as many threads
    epochs: int = 20
    batch_size: int = 256  # per worker, per optimizer micro-step
    eval_batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"  # cosine | onecycle | none (stepped per optimizer step)
    onecycle_pct_start: float = 0.3
    loss: str = "mse"  # mse | huber
    huber_delta: float = 1.0
    amp: str = "auto"  # auto | bf16 | fp16 | off; auto = bf16 on CPU, bf16 or fp16+GradScaler on CUDA
    grad_accum_steps: int = 1
    clip_grad_norm: Optional[float] = 1.0  # None or 0 disables clipping
    monitor: str = "val_loss"  # early stopping and best-checkpoint metric (see MONITORS)
    early_stopping_patience: int = 5  # epochs without improvement; 0 disables
    shuffle_buffer_batches: int = 4  # local shuffle buffer in batches; 0 disables shuffling
    num_to_keep: int = 2  # best checkpoints Ray keeps (the latest is always kept too)
    resume: bool = False  # continue the run folder's latest training run from its last checkpoint
    max_failures: int = 1  # worker-group restarts from the last checkpoint
    seed: int = 42
    baselines: bool = True  # also score the zero/ridge(/persistence) baselines on the validation split
    ridge_alpha: float = 1.0
    persistence_feature: Optional[str] = None  # a feature name (e.g. a 1-bar return) for the persistence baseline

    def __post_init__(self) -> None:
        self.validate()

    @property
    def monitor_mode(self) -> str:
        return MONITORS[self.monitor]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        self.use_gpu = _use_gpu(self.use_gpu)
        if self.gpus_per_worker is not None and not 0 < float(self.gpus_per_worker) <= 1:
            raise ConfigError(f"train.gpus_per_worker={self.gpus_per_worker} is outside (0, 1]",
                              "use e.g. 0.25 to put four workers on one GPU, 1 for a whole GPU, or null")
        choices = {"amp": AMP_MODES, "scheduler": SCHEDULERS, "loss": LOSSES, "monitor": tuple(MONITORS)}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"train.{key}={getattr(self, key)!r} is unknown", f"use one of {', '.join(allowed)}")
        for key in ("num_workers", "cpus_per_worker", "epochs", "batch_size", "eval_batch_size", "grad_accum_steps"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"train.{key}={getattr(self, key)} must be >= 1", f"set train.{key} to 1 or more")
        if self.min_workers is not None and not 1 <= int(self.min_workers) <= int(self.num_workers):
            raise ConfigError(f"train.min_workers={self.min_workers} is outside 1..train.num_workers={self.num_workers}",
                              "set train.min_workers between 1 and train.num_workers, or null")
        for key in ("early_stopping_patience", "shuffle_buffer_batches", "weight_decay", "huber_delta", "ridge_alpha"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}={getattr(self, key)} is negative", f"set train.{key} >= 0")
        if not self.lr > 0:
            raise ConfigError(f"train.lr={self.lr} must be positive", "set e.g. train.lr=1e-3")
        if self.num_to_keep < 1:
            raise ConfigError(f"train.num_to_keep={self.num_to_keep} must be >= 1", "keep at least one checkpoint")
        if self.max_failures < -1:
            raise ConfigError(f"train.max_failures={self.max_failures} is invalid", "use -1 (unlimited), 0 or more")
        if not 0 < self.onecycle_pct_start < 1:
            raise ConfigError(f"train.onecycle_pct_start={self.onecycle_pct_start} is outside (0, 1)", "use e.g. 0.3")


def _use_gpu(value: Any) -> "bool | str":
    """``train.use_gpu`` as True, False or "auto" (Hydra passes ``true``/``false`` as booleans)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("auto", "true", "false"):
        return {"true": True, "false": False}.get(text, "auto")
    raise ConfigError(f"train.use_gpu={value!r} is unknown", "use train.use_gpu=auto, true or false")

