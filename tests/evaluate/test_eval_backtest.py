"""The backtest trades after the signal, pays the right costs, respects halts and limits."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from app.evaluate import EvaluateConfig, evaluate_run
from app.evaluate.config import CostConfig, no_costs
from tests.evaluate.evalmarket import bars_frame, predictions_frame, random_market, sessions

NAN = float("nan")
FREE = {"costs": {"commission_rate": 0.0, "sell_tax": [], "slippage_ticks": 0.0, "borrow_rate_annual": 0.0},
        "whole_shares": False, "price_limits": False, "long_short": False, "top_k": 1}


def _jump_market(jump_day: int):
    """A jumps from 100 to 150 at the open of ``jump_day``; B is flat. The model picks A on day 0 only."""
    days = sessions("2024-03-04", 4)
    a = [100.0 if i < jump_day else 150.0 for i in range(4)]
    bars = bars_frame(days, {"000001": a, "000002": [100.0] * 4}, {"000001": a, "000002": [100.0] * 4})
    preds = predictions_frame(days[:1], {"000001": [1.0], "000002": [0.0]})
    return bars, preds


@pytest.mark.parametrize("execution", ["open", "close"])
def test_the_signal_bar_is_never_traded(execution):
    # The jump happens between the signal bar's close (day 0) and day 1's open: a backtest that
    # filled at the signal bar's close would earn +50%; filling on day 1 earns nothing.
    bars, preds = _jump_market(jump_day=1)
    ev = evaluate_run(preds, bars, {**FREE, "execution": execution})
    top = ev.summary["models"]["model"]["backtest"]["top_k"]
    assert top["cumulative_return"] == pytest.approx(0.0, abs=1e-12)
    trades = ev.trades[ev.trades["model"] == "model"]
    assert len(trades) == 1 and trades["price"].iloc[0] == 150.0
    assert (trades["ts"] > trades["signal_ts"]).all()


def test_a_move_after_the_fill_is_earned():
    # Control for the test above: the same jump one day later is captured (so the check can fail).
    bars, preds = _jump_market(jump_day=2)
    ev = evaluate_run(preds, bars, {**FREE, "execution": "open"})
    assert ev.summary["models"]["model"]["backtest"]["top_k"]["cumulative_return"] == pytest.approx(0.5)


def test_costs_of_a_round_trip_by_hand():
    """Buy on 2024-12-26's open, sell on 12-27's open (settles 2025-01-02: 0.15% tax), whole shares."""
    days = pd.DatetimeIndex([f"{d} 15:30" for d in ("2024-12-24", "2024-12-26", "2024-12-27", "2024-12-30", "2025-01-02")],
                            tz="Asia/Seoul")  # the KRX calendar: closed 12-25, 12-31 and 01-01
    path = [10_000.0] * 5
    bars = bars_frame(days, {"000001": path, "000002": path}, {"000001": path, "000002": path})
    preds = predictions_frame(days[:2], {"000001": [1.0, 0.0], "000002": [0.0, 1.0]})
    cfg = {"top_k": 1, "long_short": False, "capital": 1_000_000.0, "price_limits": False, "horizon": 1,
           "costs": {"commission_rate": 0.00015, "slippage_ticks": 1.0, "borrow_rate_annual": 0.0}}
    ev = evaluate_run(preds, bars, cfg)
    t = ev.trades[ev.trades["model"] == "model"].reset_index(drop=True)
    # day 1: invest 1e6 less the first-pass cost (150 + 1000) -> 99.885 -> 99 shares of A
    assert t["shares"].tolist() == [99.0, -99.0, 99.0]
    assert t["commission"].tolist() == pytest.approx([148.5, 148.5, 148.5])
    assert t["slippage"].tolist() == pytest.approx([990.0, 990.0, 990.0])
    assert t["tax"].tolist() == pytest.approx([0.0, 0.0015 * 990_000, 0.0])
    cash_after = 1_000_000 - 3 * (148.5 + 990.0) - 0.0015 * 990_000
    daily = ev.backtest_daily[(ev.backtest_daily["model"] == "model") & (ev.backtest_daily["portfolio"] == "top_k")]
    assert daily["nav"].iloc[-1] == pytest.approx(cash_after)  # flat prices: NAV = capital - costs
    costs = ev.summary["models"]["model"]["backtest"]["top_k"]["costs_krw"]
    assert costs["tax"] == pytest.approx(1485.0) and costs["total"] == pytest.approx(1_000_000 - cash_after)


def test_halted_and_limit_locked_names_keep_their_shares():
    days = sessions("2024-03-04", 4)
    # day 1: A has no bar (halt) and C opens at its upper limit (13,000 on a 10,000 close)
    opens = {"000001": [10_000, NAN, 10_000, 10_000], "000002": [10_000] * 4, "000003": [10_000, 13_000, 13_000, 13_000]}
    closes = {"000001": [10_000, NAN, 10_000, 10_000], "000002": [10_000] * 4, "000003": [10_000, 13_000, 13_000, 13_000]}
    bars = bars_frame(days, opens, closes)
    preds = predictions_frame(days[:1], {"000001": [3.0], "000002": [1.0], "000003": [2.0]})
    cfg = {**FREE, "top_k": 3, "price_limits": True}
    ev = evaluate_run(preds, bars, cfg)
    traded = ev.trades[ev.trades["model"] == "model"]
    assert traded["symbol"].tolist() == ["000002"]  # A halted, C locked limit-up: only B is bought
    # the money meant for A and C stays in cash: B gets its own third, not the whole book
    assert traded["value"].iloc[0] == pytest.approx(100_000_000 / 3)
    unlocked = evaluate_run(preds, bars, {**cfg, "price_limits": False}).trades
    assert sorted(unlocked.loc[unlocked["model"] == "model", "symbol"]) == ["000002", "000003"]


def test_long_short_book_and_short_costs():
    bars, preds = random_market(n_days=30, n_symbols=10, seed=1)
    ev = evaluate_run(preds, bars, {"n_quantiles": 5, "top_k": 3})
    ls = ev.backtest_daily[(ev.backtest_daily["model"] == "model") & (ev.backtest_daily["portfolio"] == "long_short")]
    assert (ls["n_long"] == 2).all() and (ls["n_short"] == 2).all()  # 10 names / 5 quantiles
    assert ls["gross"].mean() == pytest.approx(2.0, rel=0.05)
    m = ev.summary["models"]["model"]["backtest"]["long_short"]
    assert m["costs_krw"]["borrow"] > 0 and m["costs_krw"]["tax"] > 0
    assert m["information_ratio"] is None  # dollar-neutral: judged by its own Sharpe
    shorts = ev.trades[(ev.trades["portfolio"] == "long_short") & (ev.trades["shares"] < 0)]
    assert (shorts["tax"] > 0).all()  # every sell, short sales included, pays the sell tax


def test_rebalance_every_horizon_bars():
    bars, preds = random_market(n_days=31, n_symbols=6, seed=2)
    test_dates = preds.loc[preds["split"] == "test", "ts"].nunique()
    ev = evaluate_run(preds, bars, {"horizon": 3})
    top = ev.summary["models"]["model"]["backtest"]["top_k"]
    # signal dates 0, 3, 6, ... of the test split; the last date has no next bar to trade on
    expected = len(range(0, test_dates, 3)) - (1 if (test_dates - 1) % 3 == 0 else 0)
    assert top["n_rebalances"] == expected == ev.summary["n_rebalances"]
    signal_days = ev.trades.loc[ev.trades["model"] == "model", "signal_ts"].drop_duplicates().sort_values()
    assert (np.diff(signal_days.to_numpy()).astype("timedelta64[D]").astype(int) >= 3).all()


def test_model_baselines_and_oracle_in_one_summary():
    bars, preds = random_market(n_days=40, n_symbols=8, seed=3)
    ev = evaluate_run(preds, bars, None)
    models = ev.summary["models"]
    assert list(models) == ["model", "zero", "ridge", "oracle"]
    assert models["zero"]["forecast"]["ic"] is None and models["zero"]["backtest"] is None
    assert any("undefined" in n for n in models["zero"]["notes"])
    assert models["oracle"]["forecast"]["ic"] == pytest.approx(1.0)
    assert models["oracle"]["forecast"]["rank_ic"] > models["model"]["forecast"]["rank_ic"] > 0
    assert ev.summary["benchmark"]["costs_krw"]["total"] == 0.0  # the index is frictionless
    json.dumps(ev.summary, allow_nan=False)  # JSON-ready: NaN became null
    assert ev.summary["splits"] == ["test"]


def test_walk_forward_metrics_per_fold():
    bars, preds = random_market(n_days=40, n_symbols=6, seed=4)
    test = preds["split"] == "test"
    cut = preds.loc[test, "ts"].sort_values().unique()[10]
    preds["fold"] = np.where(preds["ts"] < cut, "f0", "f1")
    ev = evaluate_run(preds, bars, {"walk_forward": True})
    folds = ev.summary["models"]["model"]["forecast"]["folds"]
    assert set(folds) == {"f0", "f1"} and folds["f0"]["n_dates"] == 10
    by_range = evaluate_run(preds.drop(columns="fold"), bars, {"walk_forward": True, "folds": [
        {"name": "early", "start": str(preds["ts"].min().date()), "end": str((cut - np.timedelta64(1, "D")).date())},
        {"name": "late", "start": str(cut.date()), "end": "2030-01-01"}]})
    ranged = by_range.summary["models"]["model"]["forecast"]["folds"]
    assert ranged["early"]["ic"] == pytest.approx(folds["f0"]["ic"])
    assert ranged["late"]["n"] == folds["f1"]["n"]


def test_fallback_to_val_is_noted():
    bars, preds = random_market(n_days=20, n_symbols=5, seed=5)
    ev = evaluate_run(preds[preds["split"] == "val"], bars, None)
    assert ev.summary["splits"] == ["val"]
    assert any("evaluated the val split instead" in n for n in ev.summary["notes"])


def test_frictionless_config_is_cheaper_than_krx_costs():
    bars, preds = random_market(n_days=30, n_symbols=8, seed=6)
    krx = evaluate_run(preds, bars, EvaluateConfig())
    free = evaluate_run(preds, bars, EvaluateConfig(costs=no_costs()))
    a = krx.summary["models"]["model"]["backtest"]["top_k"]
    b = free.summary["models"]["model"]["backtest"]["top_k"]
    assert a["cost_drag"]["total"] > 0 and b["cost_drag"]["total"] == 0
    assert a["cumulative_return"] < b["cumulative_return"]
    assert math.isclose(CostConfig().commission_rate, 0.00015)


def test_overlapping_folds_trade_the_later_fold():
    days = sessions("2024-03-04", 4)
    flat = [10_000.0] * 4
    bars = bars_frame(days, {"000001": flat, "000002": flat}, {"000001": flat, "000002": flat})
    labels = {"000001": [0.01, 0.02], "000002": [-0.01, 0.03]}
    f0 = predictions_frame(days[:2], {"000001": [1.0, 1.0], "000002": [0.0, 0.0]}, labels=labels).assign(fold="f0")
    f1 = predictions_frame(days[1:3], {"000001": [0.0, 0.0], "000002": [1.0, 1.0]},
                           labels={"000001": [0.02, 0.0], "000002": [0.03, 0.01]}).assign(fold="f1")
    ev = evaluate_run(pd.concat([f0, f1], ignore_index=True), bars, {**FREE, "walk_forward": True})
    trades = ev.trades[ev.trades["model"] == "model"]
    picked = trades[trades["shares"] > 0].set_index("signal_ts")["symbol"]
    assert picked[days[0]] == "000001" and picked[days[1]] == "000002"  # day 1: the later fold's pick
    forecast = ev.summary["models"]["model"]["forecast"]
    assert forecast["n"] == 6 and forecast["folds"]["f0"]["n"] == 4 and forecast["folds"]["f1"]["n"] == 4
