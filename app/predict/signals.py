"""Scores → signals (per-ts rank and percentile), the book the backtest would hold, and their tables.

No I/O: the stage saves and prints what these functions return.

* ``rank``: 1 is the highest score of its ``ts`` (ties share the best rank);
* ``pct_rank``: the score's percentile within its ``ts``, in (0, 1], 1 for the highest;
* the book: the backtest's long-only top-k rule (:func:`app.evaluate.portfolios.top_k`) on the
  newest bar's scores, traded at the next session, with that session's daily price limits (±30%
  of the last close, on the KRX tick grid of that day).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from app.evaluate import portfolios
from app.krx import ticks

SIGNAL_COLUMNS = ["symbol", "ts", "score", "rank", "pct_rank", "model_run"]


def signals(scores: pd.DataFrame, model_run: str) -> pd.DataFrame:
    """The signals table: one row per scored bar, sorted by ts then rank."""
    out = scores.copy()
    by_ts = out.groupby("ts")["score"]
    out["rank"] = by_ts.rank(method="min", ascending=False).astype("int64")
    out["pct_rank"] = by_ts.rank(method="max", pct=True).astype("float64")
    out["model_run"] = model_run
    return out.sort_values(["ts", "rank", "symbol"], kind="stable").reset_index(drop=True)[SIGNAL_COLUMNS]


def book(newest: pd.DataFrame, last_close: pd.Series, k: int, capital: float, next_day: dt.date) -> pd.DataFrame:
    """Top-``k`` names of the newest bar's signals, equal weight, with the next session's limits.

    ``last_close`` is indexed by symbol. ``shares`` is what the capital buys at the last close
    (the backtest fills at the next open, which is not known yet).
    """
    rows = newest.sort_values("symbol").reset_index(drop=True)
    weights = portfolios.top_k(rows["score"].to_numpy(np.float64), k)
    if weights is None:
        return pd.DataFrame(columns=["symbol", "score", "weight", "last_close", "shares", "upper_limit", "lower_limit"])
    held = rows[weights > 0].assign(weight=weights[weights > 0])
    close = last_close.reindex(held["symbol"]).to_numpy(np.float64)
    upper, lower = ticks.limits(close, ticks.table(next_day, kosdaq=False))
    held = held.assign(last_close=close, shares=np.floor(held["weight"] * capital / close),
                       upper_limit=upper, lower_limit=lower)  # fmt: skip
    cols = ["symbol", "score", "weight", "last_close", "shares", "upper_limit", "lower_limit"]
    return held.sort_values("score", ascending=False).reset_index(drop=True)[cols]


def top_bottom(newest: pd.DataFrame, n: int) -> str:
    """The ``n`` best and ``n`` worst signals of the newest bar as a small text table."""
    cols = ["rank", "symbol", "score", "pct_rank"]
    ordered = newest.sort_values("rank", kind="stable")
    top, bottom = ordered.head(n), ordered.tail(min(n, max(len(ordered) - n, 0)))
    text = "top:\n" + top[cols].to_string(index=False, float_format=lambda v: f"{v:.5f}")
    if len(bottom):
        text += "\nbottom:\n" + bottom[cols].to_string(index=False, float_format=lambda v: f"{v:.5f}")
    return text
