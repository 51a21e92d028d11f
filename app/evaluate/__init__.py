"""Forecast metrics and a cost-aware KRX backtest on out-of-sample predictions (docs/report.md)."""
from app.evaluate.config import CostConfig, EvaluateConfig, FoldRange, TaxRate
from app.evaluate.panel import load_bars, with_prediction_column
from app.evaluate.results import Evaluation
from app.evaluate.run import evaluate_run

__all__ = [
    "CostConfig", "EvaluateConfig", "Evaluation", "FoldRange", "TaxRate",
    "evaluate_run", "load_bars", "with_prediction_column",
]
