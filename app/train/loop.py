"""The framework-free body of training: one epoch, prediction, optimisation state, early stopping.

Nothing here knows about Ray, so it is tested (and benchmarked) in a single process; the Ray
worker in :mod:`app.train.worker` only feeds it batches and handles distribution and reporting.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from app.train.amp import AmpPolicy
from app.train.config import TrainConfig

Batch = Mapping[str, torch.Tensor]  # "x" (batch, seq, F), "y" (batch,), optional "ts" (int64)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loss(cfg: TrainConfig) -> nn.Module:
    return nn.HuberLoss(delta=cfg.huber_delta) if cfg.loss == "huber" else nn.MSELoss()


def steps_per_epoch(rows_per_worker: int, cfg: TrainConfig) -> int:
    """Optimizer steps one worker takes per epoch (the last partial accumulation group steps too)."""
    micro = math.ceil(rows_per_worker / cfg.batch_size)
    return max(1, math.ceil(micro / cfg.grad_accum_steps))


class Optimization:
    """AdamW, the LR schedule (stepped per optimizer step), the GradScaler and clipping, as one state."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, amp: AmpPolicy, total_steps: int) -> None:
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.total_steps = max(1, int(total_steps))
        self.scheduler = self._make_scheduler(cfg)
        self.scaler = amp.grad_scaler()
        self.clip = cfg.clip_grad_norm or 0.0
        self.steps_done = 0

    def _make_scheduler(self, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
        if cfg.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.total_steps)
        if cfg.scheduler == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=cfg.lr, total_steps=self.total_steps, pct_start=cfg.onecycle_pct_start
            )
        return None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, model: nn.Module) -> None:
        if self.clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        # Step k trains at schedule(k - 1), so the last planned step uses schedule(total - 1); past
        # the plan (a resumed run with more epochs) the LR holds there.
        if self.scheduler is not None and self.steps_done < self.total_steps:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "steps_done": self.steps_done,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.steps_done = int(state.get("steps_done", 0))
        # The restored scheduler follows the original plan; extra epochs on resume run at its final LR.
        self.total_steps = int(state.get("total_steps", self.total_steps))


@dataclass
class EpochStats:
    loss: float  # sample-weighted mean training loss of this worker
    samples: int
    steps: int  # optimizer steps
    seconds: float
    cpu_seconds: float  # process CPU time (all threads): cost under contention, unlike wall time
    wait_seconds: float  # blocked waiting for the next batch: an input pipeline that cannot keep up


class TimedIterator:
    """Wraps an iterator and adds up the wall time spent waiting in ``next``."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._it = iter(items)
        self.seconds = 0.0

    def __iter__(self) -> "TimedIterator":
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.seconds += time.perf_counter() - started


def accumulation_groups(batches: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    """Consecutive groups of ``size`` micro-batches, one optimizer step each; the last may be shorter."""
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    opt: Optimization,
    loss_fn: nn.Module,
    amp: AmpPolicy,
    grad_accum_steps: int = 1,
    device: torch.device | None = None,
) -> EpochStats:
    """One pass over ``batches``; each group of ``grad_accum_steps`` micro-batches is one step.

    A micro-batch's loss is weighted by its share of the group's samples, so a group's gradient is
    the one of a single batch holding all its samples, a short last group or micro-batch included.
    Gradients sync (DDP) only on the group's last micro-batch, the one that updates the weights.
    """
    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    loss_sum: torch.Tensor | float = 0.0  # stays on the loss's device: no host sync per step
    samples = steps = 0
    timed = TimedIterator(batches)
    for group in accumulation_groups(timed, grad_accum_steps):
        group_samples = sum(len(b["y"]) for b in group)
        for i, batch in enumerate(group):
            x, y = batch["x"], batch["y"]
            if device is not None:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            last = i == len(group) - 1
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with amp.autocast():
                    pred = model(x)
                loss = loss_fn(pred.float(), y.float())
                opt.scaler.scale(loss * (len(y) / group_samples)).backward()
            loss_sum = loss_sum + loss.detach().double() * len(y)
            samples += len(y)
        opt.step(model)
        steps += 1
    mean = float(loss_sum) / samples if samples else float("nan")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return EpochStats(mean, samples, steps, wall, cpu, timed.seconds)


@torch.inference_mode()
def predict_batches(
    model: nn.Module, batches: Iterable[Batch], amp: AmpPolicy, device: torch.device | None = None
) -> dict[str, np.ndarray]:
    """Flat numpy ``pred``, ``y`` and ``ts`` (empty when the batches carry no ``ts``)."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {"pred": [], "y": [], "ts": []}
    for batch in batches:
        x = batch["x"] if device is None else batch["x"].to(device, non_blocking=True)
        with amp.autocast():
            pred = model(x)
        out["pred"].append(pred.float().cpu().numpy())
        out["y"].append(batch["y"].float().cpu().numpy())
        if "ts" in batch:
            out["ts"].append(batch["ts"].cpu().numpy())
    empty = {"pred": np.float32, "y": np.float32, "ts": np.int64}
    return {k: np.concatenate(v) if v else np.empty(0, empty[k]) for k, v in out.items()}


def loss_value(loss_fn: nn.Module, pred: np.ndarray, label: np.ndarray) -> float:
    if pred.size == 0:
        return float("nan")
    return float(loss_fn(torch.from_numpy(pred).double(), torch.from_numpy(label).double()))


@dataclass
class EarlyStopping:
    """Tracks the best value of the monitored metric; NaN never counts as an improvement."""

    mode: str  # "min" | "max"
    patience: int  # 0 = never stop early
    best: float = float("nan")
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record one epoch; True when it is the new best."""
        better = math.isfinite(value) and (
            not math.isfinite(self.best) or (value < self.best if self.mode == "min" else value > self.best)
        )
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience
