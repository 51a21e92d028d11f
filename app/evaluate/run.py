"""``evaluate_run``: forecast metrics and backtests of the model, its baselines and the oracle.

Every forecaster in the predictions frame (``prediction`` and each ``pred_<name>``) goes through
the same code: forecast metrics on the out-of-sample rows (overall, per month, per fold), then a
top-k long-only and a long-short quantile backtest on one shared rebalance schedule, compared
with the equal-weight universe.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from app.evaluate import forecast, portfolios
from app.evaluate.backtest import BacktestResult, Rebalance, rebalance_rows, run_backtest
from app.evaluate.config import EvaluateConfig, no_costs
from app.typed import typed
from app.evaluate.jsonable import json_ready
from app.evaluate.panel import PricePanel, check_predictions, prediction_columns, price_panel
from app.evaluate.performance import drawdown, portfolio_metrics
from app.evaluate.results import Evaluation
from app.evaluate.select import calendar_rows, folds_of, latest_fold_only, out_of_sample

log = logging.getLogger(__name__)


class _Signals:
    """Prediction rows placed on the panel; builds each forecaster's rebalances on one schedule."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, panel: PricePanel, every: int) -> None:
        self.frame, self.rows, self.cols, self.panel = frame, rows, cols, panel
        self.schedule = rebalance_rows(rows, every, len(panel.ts))

    def scores(self, column: str) -> np.ndarray:
        grid = np.full(self.panel.close.shape, np.nan)
        grid[self.rows, self.cols] = self.frame[column].to_numpy(np.float64)
        return grid

    def rebalances(self, column: str, weigh) -> list[Rebalance]:
        grid = self.scores(column)
        return [Rebalance(int(r), weigh(grid[r])) for r in self.schedule]


def _frame(result: BacktestResult, model: str, portfolio: str) -> pd.DataFrame:
    daily = result.daily.copy()
    daily["drawdown"] = drawdown(daily["ret"].to_numpy())
    return daily.assign(model=model, portfolio=portfolio)


def _books(cfg: EvaluateConfig) -> dict[str, Any]:
    books = {"top_k": lambda s: portfolios.top_k(s, cfg.top_k)}
    if cfg.long_short:
        books["long_short"] = lambda s: portfolios.long_short(s, cfg.n_quantiles)
    return books


def _backtests(signals: _Signals, name: str, column: str, cfg: EvaluateConfig, bench: np.ndarray | None,
               series: list, trades: list) -> tuple[dict | None, list[str]]:
    out, notes = {}, []
    for book, weigh in _books(cfg).items():
        rebs = signals.rebalances(column, weigh)
        if all(r.weights is None for r in rebs):
            notes.append(f"{book}: no cross-sectional ranking on any rebalance date (constant or missing "
                         "predictions), so the portfolio is undefined")
            continue
        res = run_backtest(signals.panel, rebs, cfg, cfg.costs)
        series.append(_frame(res, name, book))
        trades.append(res.trades.assign(model=name, portfolio=book))
        ref = bench if book == "top_k" else None  # a dollar-neutral book is judged by its own Sharpe
        out[book] = portfolio_metrics(res.daily, ref, cfg.periods_per_year, cfg.risk_free_annual, cfg.capital)
        if res.skipped:
            notes.append(f"{book}: {res.skipped} rebalance(s) without a ranking kept the previous book")
    return (out or None), notes


def _forecast(frame: pd.DataFrame, column: str, folds: tuple[pd.DataFrame, pd.Series] | None, name: str,
              ic_frames: list) -> tuple[dict, list[str]]:
    """Metrics on the deduplicated rows; per fold on each fold's own rows (overlaps included)."""
    ic = forecast.daily_ic(frame, column)
    ic_frames.append(ic.assign(model=name))
    block: dict[str, Any] = forecast.summary(frame, column, ic)
    block["monthly"] = forecast.by_month(frame, column, ic)
    if folds is not None:
        block["folds"] = forecast.by_fold(folds[0], column, folds[1])
    notes = []
    if block["n_ic_dates"] == 0:
        notes.append("IC and rank IC are undefined: predictions are constant (or single) within every date; "
                     "reported as null")
    return block, notes


def _benchmark(signals: _Signals, cfg: EvaluateConfig, series: list) -> tuple[np.ndarray | None, dict | None]:
    """Daily returns and metrics of the equal-weight universe (frictionless unless benchmark_costs)."""
    costs = cfg.costs if cfg.benchmark_costs else no_costs()
    rebs = signals.rebalances("prediction", portfolios.equal_weight)
    if all(r.weights is None for r in rebs):
        return None, None
    res = run_backtest(signals.panel, rebs, cfg, costs, frictionless=not cfg.benchmark_costs)
    series.append(_frame(res, "benchmark", "equal_weight"))
    metrics = portfolio_metrics(res.daily, None, cfg.periods_per_year, cfg.risk_free_annual, cfg.capital)
    return res.daily["ret"].to_numpy(), metrics


def evaluate_run(predictions: pd.DataFrame | pa.Table, bars: pd.DataFrame | pa.Table,
                 cfg: EvaluateConfig | Mapping[str, Any] | None = None) -> Evaluation:
    """Forecast and backtest metrics of every forecaster in ``predictions`` (see module doc)."""
    cfg = typed(EvaluateConfig, cfg, "evaluate")
    preds = check_predictions(predictions)
    frame, splits, notes = out_of_sample(preds, cfg)
    folds, fold_notes = folds_of(frame, cfg)
    fold_rows = (frame, folds) if folds is not None else None
    frame = latest_fold_only(frame, folds)
    panel = price_panel(bars, sorted(frame["symbol"].unique()))
    placed, rows, cols, place_notes = calendar_rows(frame, panel)
    signals = _Signals(placed.reset_index(drop=True), rows, cols, panel, cfg.rebalance_every)
    notes += fold_notes + place_notes
    series: list[pd.DataFrame] = []
    trades: list[pd.DataFrame] = []
    ic_frames: list[pd.DataFrame] = []
    bench, bench_metrics = _benchmark(signals, cfg, series)
    models = {}
    for name, column in prediction_columns(frame).items():
        fc, fc_notes = _forecast(frame, column, fold_rows, name, ic_frames)
        bt, bt_notes = _backtests(signals, name, column, cfg, bench, series, trades)
        models[name] = {"column": column, "forecast": fc, "backtest": bt, "notes": fc_notes + bt_notes}
        notes += [f"{name}: {n}" for n in fc_notes + bt_notes]
    if "oracle" not in models:
        notes.append("no oracle column (pred_oracle): the best possible forecast is only known on simulator data")
    summary = {
        "splits": splits, "n_rows": int(len(frame)), "n_symbols": int(frame["symbol"].nunique()),
        "n_dates": int(frame["ts"].nunique()), "n_rebalances": int(len(signals.schedule)),
        "period": {"start": frame["ts"].min(), "end": frame["ts"].max()},
        "horizon": cfg.rebalance_every, "execution": cfg.execution, "settings": cfg,
        "benchmark": bench_metrics, "models": models, "notes": notes,
    }
    for note in notes:
        log.info("evaluate: %s", note)
    return Evaluation(
        summary=json_ready(summary),
        ic_daily=pd.concat(ic_frames, ignore_index=True),
        backtest_daily=pd.concat(series, ignore_index=True) if series else pd.DataFrame(),
        trades=pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(),
        oos=frame.reset_index(drop=True),
    )
