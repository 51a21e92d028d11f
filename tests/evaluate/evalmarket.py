"""Tiny, fully specified markets for the evaluation and report tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.contracts import BARS_SCHEMA

KST = "Asia/Seoul"


def sessions(start: str, n: int) -> pd.DatetimeIndex:
    """``n`` weekday date bars stamped 15:30 KST."""
    return pd.bdate_range(start, periods=n).tz_localize(KST) + pd.Timedelta(hours=15, minutes=30)


def bars_frame(days: pd.DatetimeIndex, opens: dict[str, list[float]], closes: dict[str, list[float]]) -> pd.DataFrame:
    """Bars for each symbol from explicit open and close paths (NaN = no bar that day)."""
    rows = []
    for symbol in opens:
        for ts, o, c in zip(days, opens[symbol], closes[symbol]):
            if np.isfinite(o) and np.isfinite(c):
                rows.append({"symbol": symbol, "ts": ts, "open": float(o), "high": float(max(o, c)),
                             "low": float(min(o, c)), "close": float(c), "volume": 1000, "value": int(1000 * c),
                             "adjusted": False})
    return pd.DataFrame(rows)


def predictions_frame(days: pd.DatetimeIndex, scores: dict[str, list[float]], split: str = "test",
                      labels: dict[str, list[float]] | None = None, **extra: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for symbol, values in scores.items():
        for i, (ts, v) in enumerate(zip(days, values)):
            row = {"symbol": symbol, "ts": ts, "prediction": v,
                   "label": labels[symbol][i] if labels else 0.0, "split": split}
            for name, table in extra.items():
                row[name] = table[symbol][i]
            rows.append(row)
    return pd.DataFrame(rows)


def random_market(n_days: int = 60, n_symbols: int = 8, seed: int = 0, start: str = "2024-03-04",
                  noise: float = 0.02) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, predictions): close-to-close labels, a noisy model, zero/ridge/oracle columns; val then test."""
    rng = np.random.default_rng(seed)
    days = sessions(start, n_days)
    symbols = [f"{i:06d}" for i in range(1, n_symbols + 1)]
    ret = rng.normal(0.0005, 0.02, (n_days, n_symbols))
    close = np.round(10_000 * np.cumprod(1 + ret, axis=0), -1)
    opens = np.vstack([close[:1], close[:-1]]) * (1 + rng.normal(0, 0.002, (n_days, n_symbols)))
    opens = np.round(opens, -1)
    label = np.vstack([close[1:] / close[:-1] - 1, np.full((1, n_symbols), np.nan)])
    model = label + rng.normal(0, noise, label.shape)
    ridge = 0.5 * label + rng.normal(0, 2 * noise, label.shape)
    bars = bars_frame(days, {s: opens[:, j] for j, s in enumerate(symbols)}, {s: close[:, j] for j, s in enumerate(symbols)})
    preds = predictions_frame(
        days, {s: model[:, j] for j, s in enumerate(symbols)}, labels={s: label[:, j] for j, s in enumerate(symbols)},
        pred_zero={s: np.zeros(n_days) for s in symbols}, pred_ridge={s: ridge[:, j] for j, s in enumerate(symbols)},
        pred_oracle={s: label[:, j] for j, s in enumerate(symbols)})
    preds["split"] = np.where(preds["ts"] < days[n_days // 3], "val", "test")
    preds = preds[np.isfinite(preds["label"]) | (preds["ts"] == days[-1])]
    return bars, preds.reset_index(drop=True)


def write_store(root: Path, bars: pd.DataFrame) -> None:
    """Bars in the store layout ``{root}/bars/freq=D/symbol=S/part-0.parquet``."""
    for symbol, rows in bars.groupby("symbol"):
        path = root / "bars" / "freq=D" / f"symbol={symbol}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows.sort_values("ts"), schema=BARS_SCHEMA, preserve_index=False), path)
