"""Signals: per-ts rank and percentile, and the top-k book with the next session's price limits."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from app.krx import ticks
from app.predict.signals import SIGNAL_COLUMNS, book, signals, top_bottom


def scores() -> pd.DataFrame:
    ts = pd.Timestamp("2024-06-03 15:30", tz="Asia/Seoul")
    return pd.DataFrame({"symbol": ["000010", "000020", "000030", "000040", "000010"],
                         "ts": [ts, ts, ts, ts, ts - pd.Timedelta(days=3)],
                         "score": np.array([0.3, -0.1, 0.3, 0.05, 1.0], np.float32)})  # fmt: skip


def test_rank_one_is_the_best_score_of_its_ts_and_ties_share_it():
    out = signals(scores(), "lstm/run")
    assert list(out.columns) == SIGNAL_COLUMNS and (out["model_run"] == "lstm/run").all()
    newest = out[out["ts"] == out["ts"].max()].set_index("symbol")
    assert newest["rank"].to_dict() == {"000010": 1, "000030": 1, "000040": 3, "000020": 4}
    assert newest.loc["000010", "pct_rank"] == 1.0 and newest.loc["000020", "pct_rank"] == 0.25
    assert out[out["ts"] < out["ts"].max()]["rank"].tolist() == [1]  # ranked within its own ts
    assert "top:" in top_bottom(newest.reset_index(), 2) and "bottom:" in top_bottom(newest.reset_index(), 2)


def test_book_holds_the_top_k_with_limits_on_the_tick_grid_of_the_next_session():
    out = signals(scores(), "r")
    newest = out[out["ts"] == out["ts"].max()]
    close = pd.Series({"000010": 61_234.0, "000020": 1_999.0, "000030": 4_321.0, "000040": 250_000.0})
    held = book(newest, close, 2, 1e8, dt.date(2024, 6, 4))
    assert held["symbol"].tolist() == ["000010", "000030"] and np.allclose(held["weight"], 0.5)
    tab = ticks.table(dt.date(2024, 6, 4), kosdaq=False)
    upper, lower, close_held = (held[c].to_numpy() for c in ("upper_limit", "lower_limit", "last_close"))
    assert ticks.on_grid(upper, tab).all() and ticks.on_grid(lower, tab).all()
    assert (upper <= close_held * 1.3).all() and (lower >= close_held * 0.7).all()
    assert held.loc[0, "shares"] == np.floor(0.5e8 / 61_234.0)
    flat = newest.assign(score=0.0)
    assert book(flat, close, 2, 1e8, dt.date(2024, 6, 4)).empty  # no ranking, no book
