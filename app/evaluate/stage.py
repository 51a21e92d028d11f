"""The ``evaluate`` stage: score a run folder's predictions against the stored bars and save the result."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from app import storage
from app.errors import DataError
from app.evaluate.config import EvaluateConfig, as_evaluate_config
from app.evaluate.panel import load_bars
from app.evaluate.results import PREDICTIONS_FILE, Evaluation
from app.evaluate.run import evaluate_run
from app.stage_registry import BaseStage

log = logging.getLogger(__name__)


def lookup(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``cfg.a.b`` from a nested mapping or OmegaConf node, or ``default`` when any level is missing."""
    node = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node or node[key] is None:
            return default
        node = node[key]
    return node


def settings_from(cfg: Any) -> EvaluateConfig:
    """The ``evaluate`` node of a pipeline config; the rebalance horizon defaults to ``label.horizon``."""
    settings = as_evaluate_config(lookup(cfg, "evaluate", {}))
    if settings.horizon is None:
        settings.horizon = int(lookup(cfg, "label.horizon", 1))
    return settings


def evaluate_folder(run_dir: str | Path, cfg: Any = None, bars: pd.DataFrame | None = None) -> Evaluation:
    """Evaluate ``run_dir/predictions.parquet``; bars come from ``store.root`` unless given. Saves the result."""
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS_FILE
    if not path.exists():
        raise DataError(f"{path} does not exist", "run the train stage first (it writes predictions.parquet)")
    predictions = pd.read_parquet(path)
    if bars is None:
        root = storage.absolute(lookup(cfg, "store.root", "data"))
        symbols = sorted({str(s) for s in predictions["symbol"].unique()})
        bars = load_bars(root, symbols, str(lookup(cfg, "data.freq", "D")))
    evaluation = evaluate_run(predictions, bars, settings_from(cfg))
    evaluation.save(run_dir)
    log.info("evaluation of %s saved (%d forecasters)", run_dir, len(evaluation.summary["models"]))
    return evaluation


def run(cfg: Any, run_dir: Path) -> dict:
    """Pipeline entry ``(cfg, run_dir)``: evaluates the run's predictions; returns the JSON summary."""
    return evaluate_folder(run_dir, cfg).summary


class EvaluateStage(BaseStage):
    def run(self, cfg: Any, run_dir: Path) -> dict:
        return run(cfg, run_dir)


STAGE = EvaluateStage()
