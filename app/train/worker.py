"""The epoch loop, and ``train_loop_per_worker``: its Ray Train side (shards, DDP, gathering, reporting).

Each epoch: train on this worker's shard, predict this worker's validation shard, gather every
worker's predictions so all ranks compute the same metrics (and take the same early-stopping
decision), then report metrics with a checkpoint written by rank 0. :func:`run_epochs` is the one
loop: a Ray Train worker runs it over its shards, a Tune trial (:mod:`app.tune.direct`) over its
whole datasets as rank 0 of one.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn

from app.models.factory import build_model
from app.evaluate import metrics as M
from app.train.amp import AmpPolicy, resolve_amp
from app.train.batches import WindowCollate
from app.train.checkpoint import capture_rng, read_checkpoint, restore_rng, write_checkpoint
from app.train.config import TrainConfig
from app.train.device import peak_gpu_memory
from app.train.loop import (
    EarlyStopping,
    EpochStats,
    Optimization,
    loss_value,
    make_loss,
    predict_batches,
    seed_everything,
    train_epoch,
)

log = logging.getLogger(__name__)


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (just ``[obj]`` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def max_per_key(rows: list[dict[str, float]]) -> dict[str, float]:
    """The largest value of each key over the ranks (peak GPU memory: the busiest worker's)."""
    keys = {k for r in rows for k in r}
    return {k: max(r[k] for r in rows if k in r) for k in sorted(keys)}


def bare(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def monitor_score(value: float, mode: str) -> float:
    """The monitored metric oriented so higher is better; NaN ranks last (Ray keeps the top ones)."""
    if not np.isfinite(value):
        return float("-inf")
    return float(value if mode == "max" else -value)


def epoch_metrics(
    epoch: int, stats: list[EpochStats], val: dict[str, np.ndarray], loss_fn: nn.Module, lr: float
) -> dict[str, Any]:
    """Merge every rank's training stats and the gathered validation predictions."""
    samples = sum(s.samples for s in stats)
    train_s = max(s.seconds for s in stats)
    vm = M.forecast_metrics(val["pred"], val["y"], val["ts"])
    return {
        "epoch": epoch,
        "train_loss": sum(s.loss * s.samples for s in stats) / max(samples, 1),
        "val_loss": loss_value(loss_fn, val["pred"], val["y"]),
        **{f"val_{k}": v for k, v in vm.items()},
        "lr": lr,
        "train_samples": samples,
        "train_seconds": train_s,
        "train_samples_per_s": samples / train_s if train_s > 0 else float("nan"),
        "train_cpu_seconds": sum(s.cpu_seconds for s in stats),
        "train_data_wait_seconds": max(s.wait_seconds for s in stats),
    }


@dataclass
class WorkerState:
    """One worker's model, optimisation and bookkeeping across epochs."""

    cfg: TrainConfig
    rank: int
    device: torch.device
    amp: AmpPolicy
    model: nn.Module  # DDP-wrapped when there is more than one worker
    opt: Optimization
    early: EarlyStopping
    loss_fn: nn.Module
    history: list[dict[str, Any]]
    start_epoch: int
    meta: dict[str, Any]  # what every checkpoint's meta.json carries besides metrics and history


def _setup(config: dict[str, Any]) -> WorkerState:
    """Build the model and optimiser; continue from Ray's checkpoint (resume or restart) if any."""
    cfg: TrainConfig = config["train_cfg"]
    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(cfg.cpus_per_worker)
    seed_everything(cfg.seed + rank)
    device = ray.train.torch.get_device()
    amp = resolve_amp(cfg.amp, device)
    model = build_model(config["model_cfg"], config["n_features"])
    restored = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            restored = read_checkpoint(Path(folder))
        model.load_state_dict(restored.model)
        if rank < len(restored.rng):
            restore_rng(restored.rng[rank])
        log.info("rank %d continues after epoch %d", rank, restored.epoch)
        restored.meta["restores"] = [*restored.meta.get("restores", []), {
            "from_epoch": restored.epoch, "workers": ray.train.get_context().get_world_size(), "at": time.time()}]
    model = ray.train.torch.prepare_model(model)
    opt = Optimization(model, cfg, amp, total_steps=config["steps_per_epoch"] * cfg.epochs)
    early = EarlyStopping(cfg.monitor_mode, cfg.early_stopping_patience)
    if restored is not None:
        opt.load_state_dict(restored.optimization)
        early = EarlyStopping(**restored.early)
    meta = {k: config[k] for k in ("model_cfg", "n_features", "extra_meta")}
    return WorkerState(
        cfg, rank, device, amp, model, opt, early, make_loss(cfg),
        history=list(restored.meta.get("history", [])) if restored else [],
        start_epoch=restored.epoch if restored else 0,
        meta=meta | {"train_cfg": cfg.to_dict(), "amp": amp.name,
                     "restores": restored.meta.get("restores", []) if restored else []},
    )


def _train_and_validate(w: WorkerState, epoch: int, shards: Mapping[str, Any]) -> tuple[EpochStats, dict[str, np.ndarray]]:
    cfg = w.cfg
    pin = w.device.type == "cuda"  # page-locked batches: the loop's copies to the GPU do not block
    train_it = shards["train"].iter_torch_batches(
        batch_size=cfg.batch_size,
        collate_fn=WindowCollate(with_ts=False, pin_memory=pin),
        local_shuffle_buffer_size=cfg.shuffle_buffer_batches * cfg.batch_size or None,
        local_shuffle_seed=cfg.seed + 1000 * epoch + w.rank if cfg.shuffle_buffer_batches else None,
    )
    stats = train_epoch(w.model, train_it, w.opt, w.loss_fn, w.amp, cfg.grad_accum_steps, w.device)
    val_it = shards["val"].iter_torch_batches(
        batch_size=cfg.eval_batch_size, collate_fn=WindowCollate(with_ts=True, pin_memory=pin)
    )
    return stats, predict_batches(w.model, val_it, w.amp, w.device)


def _epoch(w: WorkerState, epoch: int, shards: Mapping[str, Any]) -> dict[str, Any]:
    """Train and validate one epoch; the row is identical on every rank (gathered inputs)."""
    started, started_at = time.perf_counter(), time.time()
    gathered = all_gather((*_train_and_validate(w, epoch, shards), peak_gpu_memory(w.device)))
    val = {k: np.concatenate([v[k] for _, v, _ in gathered]) for k in ("pred", "y", "ts")}
    row = epoch_metrics(epoch, [s for s, _, _ in gathered], val, w.loss_fn, w.opt.lr) | max_per_key(
        [m for _, _, m in gathered])
    improved = w.early.update(row[w.cfg.monitor], epoch)
    return row | {
        "is_best": improved,
        "best_epoch": w.early.best_epoch,
        "score": monitor_score(row[w.cfg.monitor], w.cfg.monitor_mode),
        "epoch_seconds": time.perf_counter() - started,
        "started_at": started_at,  # wall clock, so the driver can measure start-up
        # the checkpoint this attempt started from (0: from scratch): a restored trial or group says so
        "restored_from_epoch": w.start_epoch,
    }


def _report(w: WorkerState, row: dict[str, Any]) -> None:
    """Every rank reports (Ray's barrier); rank 0 alone writes the checkpoint."""
    rng = all_gather(capture_rng())
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if w.rank == 0:
            write_checkpoint(
                Path(tmp),
                model=bare(w.model),
                optimization=w.opt.state_dict(),
                early=w.early,
                epoch=row["epoch"],
                rng=rng,
                meta=w.meta | {"metrics": row, "history": w.history},
            )
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(row, checkpoint=checkpoint, checkpoint_dir_name=f"epoch_{row['epoch']:04d}")


def run_epochs(w: WorkerState, shards: Mapping[str, Any], report: Callable[[WorkerState, dict], None],
               extend: Callable[[dict], dict] | None = None) -> None:
    """Epochs after ``w.start_epoch`` up to ``cfg.epochs``, each reported; stops early on patience.
    ``shards``: ``train`` and ``val`` datasets (``iter_torch_batches``); ``extend`` adds keys to a row."""
    for epoch in range(w.start_epoch + 1, w.cfg.epochs + 1):
        if w.early.should_stop:
            break  # a resumed run that had already stopped early
        row = _epoch(w, epoch, shards)
        if extend is not None:
            row = extend(row)
        w.history.append(row)
        report(w, row)
        if w.early.should_stop:
            log.info(
                "early stop after epoch %d: no %s improvement in %d epochs", epoch, w.cfg.monitor, w.early.bad_epochs
            )
            break


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Config keys: ``train_cfg`` (a TrainConfig), ``model_cfg``, ``n_features``, ``extra_meta``, ``steps_per_epoch``."""
    w = _setup(config)
    run_epochs(w, {name: ray.train.get_dataset_shard(name) for name in ("train", "val")}, _report)
