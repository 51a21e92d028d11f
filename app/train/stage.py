"""Stage ``train``: windows from the features dataset → ``fit`` → predictions with every baseline.

``predictions.parquet`` gets one column per forecaster the evaluation compares: the model
(``prediction``) and the reference columns of :mod:`app.evaluate.forecasters`. The run's
model bundle ``model/`` (:func:`app.predict.bundle.save_run_bundle`) is what ``stage=predict`` loads.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app import storage
from app.evaluate.forecasters import with_references
from app.predict.bundle import save_run_bundle
from app.stage_registry import BaseStage
from app.train.fit import FitData, FitResult, fit

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def features_path(cfg: AppConfig) -> str:
    from app.features.features import default_features_path

    root = storage.absolute(cfg.store.root)
    return str(cfg.features.path or default_features_path(root, str(cfg.data.freq)))


def run(cfg: AppConfig, run_dir: Path) -> FitResult:
    from app.features.windows import make_window_datasets
    from app.ray_runtime import init_ray

    init_ray(cfg.ray, cfg.storage)
    data = make_window_datasets(features_path(cfg), cfg)
    data.save(run_dir)
    meta: dict[str, Any] = {"feature_names": data.feature_names, "seq_len": data.seq_len,
                            "label": asdict(cfg.label), "scaler": data.scaler.to_dict()}
    train_cfg = cfg.train

    def finish(preds: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        return with_references(preds, data, train_cfg.ridge_alpha, cfg, run_dir)

    data_fit = FitData(data.train, data.val, data.n_features, meta, data.test)
    result = fit(cfg.model, train_cfg, data_fit, run_dir, finish=finish,
                 checkpoints=storage.checkpoint_root(Path(run_dir), cfg))
    save_run_bundle(cfg, run_dir, result.best_checkpoint, data)
    return result


class TrainStage(BaseStage):
    def run(self, cfg: AppConfig, run_dir: Path) -> FitResult:
        return run(cfg, run_dir)

    def counts(self, result: Any) -> dict[str, Any]:
        history = getattr(result, "history", None) or []
        gpu = [h["gpu_peak_allocated_mb"] for h in history if h.get("gpu_peak_allocated_mb") is not None]
        return {"samples": sum(int(h.get("train_samples", 0)) for h in history) or None,
                "gpu_peak_mb": max(gpu, default=None)}


STAGE = TrainStage()
