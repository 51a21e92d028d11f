"""The best trial's best checkpoint, re-evaluated on the test split as the train stage would.

Writes what the evaluate and report stages read from a training run: ``checkpoints/best``,
``predictions.parquet`` (val and test rows, the model beside ``pred_zero``, ``pred_ridge`` and,
on simulator data, ``pred_oracle``), ``metrics.json`` (the best trial's history, its best
epoch, validation baselines and test metrics), ``scaler.json``, ``split.json`` and the model
bundle ``model/`` (:func:`app.predict.bundle.save_run_bundle`, the same writer as the train stage's).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.evaluate.baselines import run_baselines
from app.evaluate.forecasters import with_references
from app.models.factory import load_model, read_meta
from app.predict.bundle import save_run_bundle
from app.run_folder import BEST_CHECKPOINT, METRICS, PREDICTIONS, RunFolder
from app.train.checkpoint import json_safe
from app.train.config import TrainConfig
from app.typed import typed
from app.train.predict import predict
from app.tune.place import download
from app.tune.results import Best
from app.tune.windows import with_seq_len

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)

def copy_checkpoint(best: Best, run_dir: Path) -> Path:
    target = Path(run_dir) / BEST_CHECKPOINT
    if best.trial.filesystem is not None:  # the sweep's checkpoints are on a storage URI
        return download(best.trial.filesystem, str(best.checkpoint), target)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(best.checkpoint, target)
    return target


def _predictions(checkpoint: Path, data: Any, batch_size: int) -> pd.DataFrame:
    frames = [predict(checkpoint, data.dataset(part), batch_size=batch_size).assign(split=part)
              for part in ("val", "test")]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def evaluate_best(cfg: AppConfig, run_dir: Path, base: Any, best: Best, tune_info: dict[str, Any]) -> dict[str, Any]:
    """Predict val and test with the best checkpoint; returns the metrics.json it wrote."""
    run_dir = Path(run_dir)
    checkpoint = copy_checkpoint(best, run_dir)
    meta = read_meta(checkpoint)
    train_cfg = typed(TrainConfig, meta["train_cfg"], "train")
    data = with_seq_len(base, int(meta["extra_meta"]["seq_len"]))
    data.save(run_dir)
    folder = RunFolder(run_dir)
    preds, test = with_references(_predictions(checkpoint, data, train_cfg.eval_batch_size), data,
                                  train_cfg.ridge_alpha, cfg, run_dir)
    folder.write_frame(PREDICTIONS, preds)
    save_run_bundle(cfg, run_dir, checkpoint, data)
    history = best.trial.history or meta.get("history") or []
    n_parameters = sum(p.numel() for p in load_model(checkpoint)[0].parameters())
    summary = {
        "run_name": f"tune/{tune_info.get('experiment')}/trial_{best.trial.trial_id}", "model": meta["model_cfg"],
        "n_parameters": n_parameters, "monitor": train_cfg.monitor,
        "best_epoch": best.row.get("epoch"), "best": meta.get("metrics") or best.row, "history": history,
        "baselines": run_baselines(data.train, data.val, alpha=train_cfg.ridge_alpha), "train": train_cfg.to_dict(),
        **test, "tune": tune_info,
    }  # fmt: skip
    folder.write_json(METRICS, json_safe(summary))
    log.info("best trial %s re-evaluated: test IC %s", best.trial.trial_id,
             {k: round(v.get("ic") or float("nan"), 4) for k, v in summary["test"].items()})  # fmt: skip
    return summary
