"""The result of an evaluation, and its files in a run folder (so a report can be rebuilt later)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

SUMMARY_FILE = "evaluation.json"
IC_FILE = "evaluation_ic.parquet"
BACKTEST_FILE = "evaluation_backtest.parquet"
TRADES_FILE = "evaluation_trades.parquet"
PREDICTIONS_FILE = "predictions.parquet"


@dataclass
class Evaluation:
    summary: dict  # JSON-ready: splits, period, settings, benchmark, models{name: forecast, backtest, notes}, notes
    ic_daily: pd.DataFrame  # ts, ic, rank_ic, n, model
    backtest_daily: pd.DataFrame  # ts, model, portfolio, nav, ret, drawdown, turnover, costs (KRW), gross, …
    trades: pd.DataFrame  # model, portfolio, ts, signal_ts, symbol, shares, price, value, commission, tax, slippage
    oos: pd.DataFrame  # the evaluated prediction rows (symbol, ts, label, prediction, pred_*)

    def save(self, run_dir: str | Path) -> dict[str, Path]:
        """Write the summary and the per-date series next to the predictions."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        paths = {"summary": run_dir / SUMMARY_FILE, "ic": run_dir / IC_FILE,
                 "backtest": run_dir / BACKTEST_FILE, "trades": run_dir / TRADES_FILE}
        paths["summary"].write_text(json.dumps(self.summary, indent=1, allow_nan=False))
        self.ic_daily.to_parquet(paths["ic"], index=False)
        self.backtest_daily.to_parquet(paths["backtest"], index=False)
        self.trades.to_parquet(paths["trades"], index=False)
        return paths

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
