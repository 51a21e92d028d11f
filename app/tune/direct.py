"""The training loop run inside a Tune trial (one process, no nested trainer).

The same pieces as a Ray Train worker (``app.train.loop``: ``train_epoch``, ``predict_batches``,
``Optimization``, ``EarlyStopping``; ``app.train.worker``: ``epoch_metrics``, ``monitor_score``),
the same batches (``iter_torch_batches`` + ``WindowCollate`` with the worker's shuffle seeds),
and the same checkpoint format, so ``predict`` and ``load_model`` read a trial's checkpoint like
a training run's. Reports go to Tune; a restored trial continues from its last recorded
checkpoint (:mod:`app.tune.restore`).
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ray import tune

from app.models.factory import build_model
from app.train.amp import resolve_amp
from app.train.batches import WindowCollate
from app.train.checkpoint import capture_rng, restore_rng, write_checkpoint
from app.train.config import TrainConfig
from app.train.device import peak_gpu_memory, select_device
from app.train.loop import EarlyStopping, Optimization, make_loss, predict_batches, seed_everything, steps_per_epoch
from app.train.loop import train_epoch
from app.train.worker import epoch_metrics, monitor_score
from app.tune.ranking import best_key, best_of, running_best
from app.tune.restore import restored_state
from app.tune.windows import TrialWindows

log = logging.getLogger(__name__)


@dataclass
class _State:
    model: torch.nn.Module
    opt: Optimization
    early: EarlyStopping
    amp: Any
    loss_fn: torch.nn.Module
    device: torch.device
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0


def _setup(model_cfg: dict, cfg: TrainConfig, data: TrialWindows) -> _State:
    torch.set_num_threads(cfg.cpus_per_worker)
    seed_everything(cfg.seed)
    device = select_device(bool(cfg.use_gpu))  # the trial holds a GPU share when use_gpu is on
    model = build_model(model_cfg, data.n_features).to(device)
    amp = resolve_amp(cfg.amp, device)
    opt = Optimization(model, cfg, amp, total_steps=steps_per_epoch(data.n_train, cfg) * cfg.epochs)
    state = _State(model, opt, EarlyStopping(cfg.monitor_mode, cfg.early_stopping_patience), amp, make_loss(cfg),
                   device)
    restored = restored_state()
    if restored is not None:  # a restored trial (resumed sweep or a retry after a failure)
        model.load_state_dict(restored.model)
        opt.load_state_dict(restored.optimization)
        state.early = EarlyStopping(**restored.early)
        if restored.rng:
            restore_rng(restored.rng[0])
        state.history, state.start_epoch = list(restored.meta.get("history", [])), restored.epoch
        log.info("trial continues after epoch %d", restored.epoch)
    return state


def _epoch(s: _State, cfg: TrainConfig, data: TrialWindows, epoch: int) -> dict[str, Any]:
    """One epoch exactly as a single Ray Train worker runs it (rank 0's shuffle seed)."""
    started, started_at = time.perf_counter(), time.time()
    pin = s.device.type == "cuda"
    train_it = data.train.iter_torch_batches(
        batch_size=cfg.batch_size,
        collate_fn=WindowCollate(with_ts=False, pin_memory=pin),
        local_shuffle_buffer_size=cfg.shuffle_buffer_batches * cfg.batch_size or None,
        local_shuffle_seed=cfg.seed + 1000 * epoch if cfg.shuffle_buffer_batches else None,
    )
    stats = train_epoch(s.model, train_it, s.opt, s.loss_fn, s.amp, cfg.grad_accum_steps, s.device)
    val_it = data.val.iter_torch_batches(batch_size=cfg.eval_batch_size,
                                         collate_fn=WindowCollate(with_ts=True, pin_memory=pin))
    val = predict_batches(s.model, val_it, s.amp, s.device)
    row = epoch_metrics(epoch, [stats], val, s.loss_fn, s.opt.lr) | peak_gpu_memory(s.device)
    improved = s.early.update(row[cfg.monitor], epoch)
    return row | {
        "is_best": improved,
        "best_epoch": s.early.best_epoch,
        "score": monitor_score(row[cfg.monitor], cfg.monitor_mode),
        "epoch_seconds": time.perf_counter() - started,
        "started_at": started_at,
    }


def _report(s: _State, row: dict[str, Any], meta: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_checkpoint(Path(tmp), model=s.model, optimization=s.opt.state_dict(), early=s.early,
                         epoch=row["epoch"], rng=[capture_rng()], meta=meta | {"metrics": row, "history": s.history})
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(tmp))  # fmt: skip


def train_in_trial(model_cfg: dict, cfg: TrainConfig, data: TrialWindows, metric: str, mode: str) -> None:
    """Train up to ``cfg.epochs`` epochs, reporting each with a checkpoint; stops early on patience."""
    s = _setup(model_cfg, cfg, data)
    meta = {"model_cfg": model_cfg, "n_features": data.n_features, "extra_meta": data.extra_meta,
            "train_cfg": cfg.to_dict(), "amp": s.amp.name}  # fmt: skip
    best = best_of(s.history, metric, mode)
    for epoch in range(s.start_epoch + 1, cfg.epochs + 1):
        if s.early.should_stop:
            break  # a restored trial that had already stopped early
        row = _epoch(s, cfg, data, epoch)
        best = running_best(best, row.get(metric), mode)
        row[best_key(metric)] = best
        s.history.append(row)
        _report(s, row, meta)
        if s.early.should_stop:
            log.info("early stop after epoch %d: no %s improvement in %d epochs", epoch, cfg.monitor,
                     s.early.bad_epochs)
            break
