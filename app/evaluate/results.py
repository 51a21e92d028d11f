"""The result of an evaluation, and its files in a run folder (so a report can be rebuilt later)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from app import run_folder
from app.run_folder import RunFolder

log = logging.getLogger(__name__)

SUMMARY_FILE = run_folder.EVALUATION
IC_FILE = run_folder.EVALUATION_IC
BACKTEST_FILE = run_folder.EVALUATION_BACKTEST
TRADES_FILE = run_folder.EVALUATION_TRADES
PREDICTIONS_FILE = run_folder.PREDICTIONS


@dataclass
class Evaluation:
    summary: dict  # JSON-ready: splits, period, settings, benchmark, models{name: forecast, backtest, notes}, notes
    ic_daily: pd.DataFrame  # ts, ic, rank_ic, n, model
    backtest_daily: pd.DataFrame  # ts, model, portfolio, nav, ret, drawdown, turnover, costs (KRW), gross, …
    trades: pd.DataFrame  # model, portfolio, ts, signal_ts, symbol, shares, price, value, commission, tax, slippage
    oos: pd.DataFrame  # the evaluated prediction rows (symbol, ts, label, prediction, pred_*)

    def save(self, run_dir: str | Path) -> dict[str, Path]:
        """Write the summary and the per-date series next to the predictions."""
        folder = RunFolder(run_dir)
        return {"summary": folder.write_json(SUMMARY_FILE, self.summary, allow_nan=False),
                "ic": folder.write_frame(IC_FILE, self.ic_daily),
                "backtest": folder.write_frame(BACKTEST_FILE, self.backtest_daily),
                "trades": folder.write_frame(TRADES_FILE, self.trades)}

    @classmethod
    def load(cls, run_dir: str | Path) -> "Evaluation | None":
        """The saved evaluation of a run, or None when it was never evaluated."""
        run_dir = Path(run_dir)
        if not (run_dir / SUMMARY_FILE).exists():
            return None
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())

        def frame(name: str) -> pd.DataFrame:
            path = run_dir / name
            return pd.read_parquet(path) if path.exists() else pd.DataFrame()

        oos = frame(PREDICTIONS_FILE)
        if not oos.empty and "split" in oos.columns:
            oos = oos[oos["split"].isin(summary.get("splits", []))].reset_index(drop=True)
        return cls(summary, frame(IC_FILE), frame(BACKTEST_FILE), frame(TRADES_FILE), oos)
