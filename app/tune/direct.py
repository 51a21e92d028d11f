"""Training inside a Tune trial: the trial process runs the epoch loop itself (no nested trainer).

The loop is Ray Train's own (:func:`app.train.worker.run_epochs`), run as rank 0 of one over the
trial's whole datasets: the same batches and shuffle seeds, metrics, early stopping and checkpoint
format, so ``predict`` and ``load_model`` read a trial's checkpoint like a training run's. Only the
set-up (no process group, the trial's device) and the report (to Tune) are this module's. Ray Train
V2's local mode (``ScalingConfig(num_workers=0)``) could run the same loop through a TorchTrainer,
at a higher start-up per trial (``bench/train_local_mode.py``, docs/BENCHMARKS.md). A restored trial
continues from its last recorded checkpoint (:mod:`app.tune.restore`).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from app.models.factory import build_model
from app.train.amp import resolve_amp
from app.train.checkpoint import capture_rng, restore_rng, write_checkpoint
from app.train.config import TrainConfig
from app.train.device import select_device
from app.train.loop import EarlyStopping, Optimization, make_loss, seed_everything, steps_per_epoch
from app.train.worker import WorkerState, run_epochs
from app.tune.ranking import best_key, best_of, running_best
from app.tune.restore import restored_state
from app.tune.windows import TrialWindows

log = logging.getLogger(__name__)


def _setup(model_cfg: dict, cfg: TrainConfig, data: TrialWindows) -> WorkerState:
    torch.set_num_threads(cfg.cpus_per_worker)
    seed_everything(cfg.seed)
    device = select_device(bool(cfg.use_gpu))  # the trial holds a GPU share when use_gpu is on
    model = build_model(model_cfg, data.n_features).to(device)
    amp = resolve_amp(cfg.amp, device)
    opt = Optimization(model, cfg, amp, total_steps=steps_per_epoch(data.n_train, cfg) * cfg.epochs)
    early = EarlyStopping(cfg.monitor_mode, cfg.early_stopping_patience)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    restored = restored_state()
    if restored is not None:  # a restored trial (resumed sweep or a retry after a failure)
        model.load_state_dict(restored.model)
        opt.load_state_dict(restored.optimization)
        early = EarlyStopping(**restored.early)
        if restored.rng:
            restore_rng(restored.rng[0])
        history, start_epoch = list(restored.meta.get("history", [])), restored.epoch
        log.info("trial continues after epoch %d", restored.epoch)
    meta = {"model_cfg": model_cfg, "n_features": data.n_features, "extra_meta": data.extra_meta,
            "train_cfg": cfg.to_dict(), "amp": amp.name}  # fmt: skip
    return WorkerState(cfg, 0, device, amp, model, opt, early, make_loss(cfg), history, start_epoch, meta)


def _report(w: WorkerState, row: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_checkpoint(Path(tmp), model=w.model, optimization=w.opt.state_dict(), early=w.early,
                         epoch=row["epoch"], rng=[capture_rng()], meta=w.meta | {"metrics": row, "history": w.history})
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(tmp))  # fmt: skip


def train_in_trial(model_cfg: dict, cfg: TrainConfig, data: TrialWindows, metric: str, mode: str) -> None:
    """Train up to ``cfg.epochs`` epochs, reporting each with a checkpoint; stops early on patience.
    Every row also carries the best ``metric`` so far (``best_<metric>``), which ASHA ranks."""
    w = _setup(model_cfg, cfg, data)
    best = best_of(w.history, metric, mode)

    def with_best(row: dict[str, Any]) -> dict[str, Any]:
        nonlocal best
        best = running_best(best, row.get(metric), mode)
        return row | {best_key(metric): best}

    run_epochs(w, {"train": data.train, "val": data.val}, _report, with_best)
