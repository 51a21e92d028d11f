"""The ``evaluate`` stage: score a run folder's predictions against the stored bars and save the result."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app import storage
from app.errors import DataError
from app.evaluate.config import EvaluateConfig
from app.evaluate.panel import load_bars
from app.evaluate.results import PREDICTIONS_FILE, Evaluation
from app.evaluate.run import evaluate_run
from app.stage_registry import BaseStage
from app.typed import typed

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def settings_from(evaluate: EvaluateConfig | Mapping[str, Any] | None, label_horizon: int) -> EvaluateConfig:
    """The ``evaluate`` section, its rebalance horizon defaulting to the label's."""
    settings = typed(EvaluateConfig, evaluate, "evaluate")
    return settings if settings.horizon is not None else dataclasses.replace(settings, horizon=int(label_horizon))


def evaluate_folder(run_dir: str | Path, settings: EvaluateConfig, store_root: str = "data", freq: str = "D",
                    bars: pd.DataFrame | None = None) -> Evaluation:
    """Evaluate ``run_dir/predictions.parquet``; bars come from the store unless given. Saves the result."""
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS_FILE
    if not path.exists():
        raise DataError(f"{path} does not exist", "run the train stage first (it writes predictions.parquet)")
    predictions = pd.read_parquet(path)
    if bars is None:
        symbols = sorted({str(s) for s in predictions["symbol"].unique()})
        bars = load_bars(storage.absolute(store_root), symbols, freq)
    evaluation = evaluate_run(predictions, bars, settings)
    evaluation.save(run_dir)
    log.info("evaluation of %s saved (%d forecasters)", run_dir, len(evaluation.summary["models"]))
    return evaluation


def run(cfg: AppConfig, run_dir: Path) -> dict:
    """Pipeline entry ``(cfg, run_dir)``: evaluates the run's predictions; returns the JSON summary."""
    settings = settings_from(cfg.evaluate, cfg.label.horizon)
    return evaluate_folder(run_dir, settings, cfg.store.root, str(cfg.data.freq)).summary


class EvaluateStage(BaseStage):
    def run(self, cfg: AppConfig, run_dir: Path) -> dict:
        return run(cfg, run_dir)


STAGE = EvaluateStage()
