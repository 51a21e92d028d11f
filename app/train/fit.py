"""``fit``: train one model with Ray Train and write the run's outputs.

Run folder outputs: ``checkpoints/<run name>/epoch_NNNN`` (Ray's storage: the best and the latest
checkpoints), ``checkpoints/best`` (a copy of the best one: what prediction and the realtime path
load), ``predictions.parquet`` (val and, when given, test), ``metrics.json`` and ``run.log``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd
import ray.train
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, UserCallback
from ray.train.torch import TorchTrainer

from app.errors import AppError
from app.evaluate.baselines import run_baselines
from app.models.factory import read_meta
from app.run_folder import CHECKPOINTS, METRICS, PREDICTIONS, RunFolder
from app.storage import filesystem, is_uri
from app.train import controller_hooks
from app.train.checkpoint import json_safe
from app.train.config import TrainConfig
from app.train.loop import steps_per_epoch
from app.train.node_view import FreshNodeView
from app.train.plan import FitData, Plan, make_plan
from app.train.predict import predict
from app.train.progress import EpochLogCallback, run_log
from app.train.shortfall import ShortfallWatch
from app.train.shortfall import wait_s as shortfall_wait_s
from app.train.worker import train_loop_per_worker

log = logging.getLogger(__name__)

BEST_DIR = "best"
__all__ = ["FitData", "FitResult", "fit"]

#: predictions -> (predictions with more columns, more metrics.json keys)
Finish = Callable[[pd.DataFrame], tuple[pd.DataFrame, dict[str, Any]]]


@dataclass
class FitResult:
    best_checkpoint: Path  # run_dir/checkpoints/best
    history: list[dict[str, Any]]  # one row per epoch (metrics as reported)
    best_metrics: dict[str, Any]  # the best epoch's row
    run_name: str  # Ray Train run name under run_dir/checkpoints
    metrics_path: Path
    predictions_path: Path  # not written when fit(..., write_predictions=False)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # startup_s, epochs_s, shutdown_s, outputs_s, total_s


def _unwrap_worker_error(exc: ray.train.TrainingFailedError) -> None:
    """Re-raise a worker's AppError (bad data, bad config), or the controller's (too few workers fit),
    as the one-line error it is."""
    causes = [getattr(f, "cause", f) for f in getattr(exc, "worker_failures", {}).values()]
    for cause in [*causes, getattr(exc, "controller_failure", None)]:
        if isinstance(cause, AppError):
            raise type(cause)(str(cause)) from None


def worker_resources(cfg: TrainConfig) -> dict[str, float]:
    """A worker's Ray reservation: its CPUs and, when it trains on a GPU, its share of one."""
    gpu = {"GPU": float(cfg.gpus_per_worker or 1)} if cfg.use_gpu else {}
    return {"CPU": cfg.cpus_per_worker, **gpu}


def worker_count(cfg: TrainConfig, nodes: int) -> int | tuple[int, int]:
    """``num_workers``, or Ray Train's elastic ``(min, max)``: after a node loss the group restarts
    from the last checkpoint with the workers that still fit, instead of waiting for CPUs that are gone."""
    low = cfg.min_workers if cfg.min_workers is not None else (1 if nodes > 1 else cfg.num_workers)
    return cfg.num_workers if low >= cfg.num_workers else (int(low), cfg.num_workers)


#: Ray Train's wait for a new worker group's resources, on an elastic group. A restart right after a
#: node loss can still count the lost node's CPUs (Ray declares a node dead some 15 s after it stops
#: answering) and wait for a placement that cannot happen; Ray's default 60 s of it was most of the
#: time to resume. A timed-out start is retried with a fresh count, up to GROUP_START_RETRIES times.
ELASTIC_START_TIMEOUT_S = 20
GROUP_START_RETRIES = 5
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"


@contextlib.contextmanager
def _group_start_timeout(elastic: bool) -> Iterator[None]:
    """Set Ray Train's group start timeout for an elastic run (a value the user exported wins)."""
    added = elastic and START_TIMEOUT_ENV not in os.environ
    if added:
        os.environ[START_TIMEOUT_ENV] = str(ELASTIC_START_TIMEOUT_S)  # the controller gets it from here
    try:
        yield
    finally:
        if added:
            os.environ.pop(START_TIMEOUT_ENV, None)


def _alive_nodes() -> int:
    return sum(1 for n in ray.nodes() if n.get("Alive"))


def _watchers(cfg: TrainConfig, fewest: int, elastic: bool) -> list[Any]:
    """The controller watchers: fail when too few workers fit; re-read the nodes after a loss."""
    if not controller_hooks.available():
        return []
    return [ShortfallWatch(fewest, worker_resources(cfg), shortfall_wait_s()), *([FreshNodeView()] if elastic else [])]


def _trainer(plan: Plan, spe: int, callbacks: Sequence[UserCallback], workers: int | tuple[int, int]) -> TorchTrainer:
    cfg, data = plan.cfg, plan.data
    storage_fs, storage_path = filesystem(plan.storage)
    storage_fs = storage_fs if is_uri(plan.storage) else None  # a local path: Ray's own default
    # an elastic group never waits forever: each timed-out start counts, and after the last one the run fails
    starts = {"controller_failure_limit": GROUP_START_RETRIES} if isinstance(workers, tuple) else {}
    fewest = workers[0] if isinstance(workers, tuple) else workers  # fewer fit for long: the run fails
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "train_cfg": cfg,
            "model_cfg": plan.model_cfg,
            "n_features": int(data.n_features),
            "extra_meta": json_safe(dict(data.extra_meta)),
            "steps_per_epoch": spe,
        },
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=cfg.use_gpu,
            resources_per_worker=worker_resources(cfg),
        ),
        run_config=RunConfig(
            name=plan.name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            checkpoint_config=CheckpointConfig(
                num_to_keep=cfg.num_to_keep, checkpoint_score_attribute="score", checkpoint_score_order="max"
            ),
            failure_config=FailureConfig(max_failures=cfg.max_failures, **starts),
            callbacks=[EpochLogCallback(plan.log_path, cfg.epochs), *callbacks,
                       *_watchers(cfg, fewest, elastic=isinstance(workers, tuple))],
        ),
        datasets={"train": data.train, "val": data.val},
    )


def _predictions(best: Path, data: FitData, cfg: TrainConfig) -> pd.DataFrame:
    splits = {"val": data.val} | ({"test": data.test} if data.test is not None else {})
    gpus = float(cfg.gpus_per_worker or 1) if cfg.use_gpu else 0.0
    frames = [predict(best, ds, batch_size=cfg.eval_batch_size, gpus_per_actor=gpus).assign(split=name)
              for name, ds in splits.items()]
    return pd.concat(frames, ignore_index=True)


def _train(plan: Plan, callbacks: Sequence[UserCallback]) -> ray.train.Result:
    cfg = plan.cfg
    log.info(
        "training %s (%d parameters) as %s: %d train rows, %d worker(s), %s",
        plan.model_cfg["_target_"], plan.n_params, plan.name, plan.n_train, cfg.num_workers,
        "resuming" if cfg.resume else "new run",
    )
    spe = steps_per_epoch(plan.n_train // cfg.num_workers, cfg)
    workers = worker_count(cfg, _alive_nodes())
    trainer = _trainer(plan, spe, callbacks, workers)
    try:
        with _group_start_timeout(isinstance(workers, tuple)):
            return trainer.fit()
    except ray.train.TrainingFailedError as exc:
        log.error("training run %s failed; continue it with train.resume=true", plan.name)
        _unwrap_worker_error(exc)
        raise


def _timings(history: list[dict], began: float, trained: float, finished: float) -> dict[str, float]:
    """Start-up (to the first epoch), epochs, shutdown and output writing, for this call only."""
    fresh = [r for r in history if (r.get("started_at") or 0) >= began]
    first = min((r["started_at"] for r in fresh), default=trained)
    last = max((r["started_at"] + r["epoch_seconds"] for r in fresh), default=trained)
    return {
        "startup_s": first - began,
        "epochs_s": last - first,
        "shutdown_s": trained - last,
        "outputs_s": finished - trained,
        "total_s": finished - began,
    }


def _write_outputs(plan: Plan, result: ray.train.Result, began: float, trained: float, predictions: bool,
                   finish: Finish | None) -> FitResult:
    best_ckpt = result.get_best_checkpoint(metric="score", mode="max")
    if best_ckpt is None or result.checkpoint is None:
        raise AppError(f"training run {plan.name} reported no checkpoint", "see run.log for the worker errors")
    folder = RunFolder(plan.run_dir)
    best = plan.run_dir / CHECKPOINTS / BEST_DIR  # local: the bundle and predictions read it
    shutil.rmtree(best, ignore_errors=True)
    best_ckpt.to_directory(str(best))  # a copy from wherever Ray keeps checkpoints (a URI included)
    with result.checkpoint.as_directory() as latest:
        last_meta = read_meta(Path(latest))
    history, restores = last_meta["history"], last_meta.get("restores", [])
    for r in restores:  # the run's records say that, and from where, the group was restarted
        log.info("training restored from the epoch-%d checkpoint on %d worker(s)", r["from_epoch"], r["workers"])
    best_row = read_meta(best)["metrics"]
    extra: dict[str, Any] = {}
    if predictions:
        preds = _predictions(best, plan.data, plan.cfg)
        if finish is not None:
            preds, extra = finish(preds)
        folder.write_frame(PREDICTIONS, preds)
    baselines = {}
    if plan.cfg.baselines:
        baselines = run_baselines(
            plan.data.train, plan.data.val, alpha=plan.cfg.ridge_alpha, persistence_index=plan.persistence
        )
    timings = _timings(history, began, trained, time.time())
    summary = {
        "run_name": plan.name, "model": plan.model_cfg, "n_parameters": plan.n_params,
        "monitor": plan.cfg.monitor, "best_epoch": best_row.get("epoch"), "best": best_row,
        "history": history, "restores": restores, "baselines": baselines, "timings": timings,
        "train": plan.cfg.to_dict(), **extra,
    }
    metrics_path = folder.write_json(METRICS, json_safe(summary))
    log.info("best epoch %s: %s=%s; outputs in %s", best_row.get("epoch"), plan.cfg.monitor,
             best_row.get(plan.cfg.monitor), plan.run_dir)
    return FitResult(best, history, best_row, plan.name, metrics_path, folder.path(PREDICTIONS), baselines, timings)


def fit(
    model_cfg: Mapping[str, Any],
    train_cfg: TrainConfig | Mapping[str, Any],
    data: FitData | tuple,
    run_dir: str | Path,
    *,
    callbacks: Sequence[UserCallback] = (),
    write_predictions: bool = True,
    checkpoints: str | None = None,
    finish: Finish | None = None,
) -> FitResult:
    """Train ``model_cfg`` (a Hydra node with ``_target_``) on ``data``; outputs go to ``run_dir``.

    ``data`` is ``(train_ds, val_ds, n_features, extra_meta[, test_ds])``. Needs Ray initialised.
    Inputs are checked before Ray Train starts. With ``train_cfg.resume`` the newest training run
    in ``run_dir`` continues from its last checkpoint (epoch, optimizer, scheduler, RNG state).
    ``callbacks`` are extra Ray Train callbacks (a Tune trial passes ``TuneReportCallback()``);
    ``write_predictions=False`` skips the batch-inference pass (e.g. inside a sweep); ``finish``
    adds columns to the predictions and keys to the metrics before either is written;
    ``checkpoints`` puts Ray Train's checkpoints elsewhere than ``run_dir/checkpoints`` (a storage URI).
    """
    began = time.time()
    plan = make_plan(model_cfg, train_cfg, data, run_dir, checkpoints)
    with run_log(plan.log_path):
        result = _train(plan, callbacks)
        return _write_outputs(plan, result, began, time.time(), write_predictions, finish)
