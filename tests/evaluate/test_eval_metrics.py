"""Forecast and performance metrics against values worked out by hand on tiny examples."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.evaluate import forecast, performance
from tests.evaluate.evalmarket import sessions


def _two_dates() -> pd.DataFrame:
    days = sessions("2024-03-04", 2)
    return pd.DataFrame({
        "ts": [days[0]] * 3 + [days[1]] * 3,
        "symbol": ["000001", "000002", "000003"] * 2,
        "p": [1.0, 2.0, 3.0, 1.0, 2.0, 4.0],
        "label": [1.0, 3.0, 2.0, 0.1, 0.2, 0.3],
    })


def test_ic_rank_ic_and_icir_by_hand():
    frame = _two_dates()
    ic = forecast.daily_ic(frame, "p")
    # date 1: centred p = (-1, 0, 1), y = (-1, 1, 0): cov 1, variances 2 and 2 -> 0.5; ranks identical -> 0.5
    # date 2: centred p = (-4/3, -1/3, 5/3), y = (-.1, 0, .1): cov .3, var_p 42/9, var_y .02; ranks agree -> 1
    ic2 = 0.3 / math.sqrt(42 / 9 * 0.02)
    assert ic["ic"].tolist() == pytest.approx([0.5, ic2])
    assert ic["rank_ic"].tolist() == pytest.approx([0.5, 1.0])
    s = forecast.summary(frame, "p")
    assert s["ic"] == pytest.approx((0.5 + ic2) / 2)
    assert s["rank_ic"] == pytest.approx(0.75)
    # ICIR = mean / sample std; for two values the std is |a - b| / sqrt(2)
    assert s["icir"] == pytest.approx(((0.5 + ic2) / 2) / (abs(ic2 - 0.5) / math.sqrt(2)))
    assert s["rank_icir"] == pytest.approx(0.75 / (0.5 / math.sqrt(2)))
    assert (s["n"], s["n_dates"], s["n_ic_dates"]) == (6, 2, 2)


def test_errors_and_direction_by_hand():
    frame = _two_dates()
    # errors: 0, -1, 1, 0.9, 1.8, 3.7
    assert forecast.summary(frame, "p")["mae"] == pytest.approx((0 + 1 + 1 + 0.9 + 1.8 + 3.7) / 6)
    assert forecast.summary(frame, "p")["mse"] == pytest.approx((0 + 1 + 1 + 0.81 + 3.24 + 13.69) / 6)
    frame["p"] = [1.0, -2.0, 3.0, -1.0, 2.0, 4.0]  # signs right on rows 1, 3, 5, 6
    assert forecast.summary(frame, "p")["dir_acc"] == pytest.approx(4 / 6)


def test_constant_forecast_has_undefined_ic_not_an_error():
    frame = _two_dates().assign(p=0.0)
    s = forecast.summary(frame, "p")
    assert math.isnan(s["ic"]) and math.isnan(s["rank_ic"]) and math.isnan(s["icir"])
    assert s["n_ic_dates"] == 0 and math.isnan(s["dir_acc"])  # all-zero: no direction either
    assert s["mse"] == pytest.approx((1 + 9 + 4 + 0.01 + 0.04 + 0.09) / 6)


def test_monthly_blocks_use_their_own_dates():
    days = sessions("2024-03-28", 4)  # Thu, Fri in March; Mon, Tue in April
    frame = pd.DataFrame({"ts": np.repeat(days, 2), "symbol": ["000001", "000002"] * 4,
                          "p": [1, 2, 1, 2, 2, 1, 2, 1.0], "label": [1, 2, 1, 2, 1, 2, 1, 2.0]})
    months = forecast.by_month(frame, "p", forecast.daily_ic(frame, "p"))
    assert [m["month"] for m in months] == ["2024-03", "2024-04"]
    assert months[0]["ic"] == pytest.approx(1.0) and months[1]["ic"] == pytest.approx(-1.0)


RETURNS = np.array([0.01, -0.01, 0.02, 0.0])


def test_sharpe_volatility_and_returns_by_hand():
    # mean .005; deviations .005, -.015, .015, -.005 -> sample var .0005/3
    sd = math.sqrt(0.0005 / 3)
    assert performance.sharpe(RETURNS, 252) == pytest.approx(0.005 / sd * math.sqrt(252))
    assert performance.annualised_volatility(RETURNS, 252) == pytest.approx(sd * math.sqrt(252))
    growth = 1.01 * 0.99 * 1.02 * 1.0
    assert performance.cumulative_return(RETURNS) == pytest.approx(growth - 1)
    assert performance.annualised_return(RETURNS, 252) == pytest.approx(growth ** (252 / 4) - 1)
    rf = 0.0252  # 0.0001 per day
    assert performance.sharpe(RETURNS, 252, rf) == pytest.approx(0.0049 / sd * math.sqrt(252))


def test_information_ratio_by_hand():
    bench = np.array([0.0, -0.02, 0.01, 0.01])  # active: .01, .01, .01, -.01 -> mean .005, sample sd .01
    assert performance.information_ratio(RETURNS, bench, 252) == pytest.approx(0.005 / 0.01 * math.sqrt(252))
    assert math.isnan(performance.sharpe(np.array([0.01, 0.01]), 252))  # zero variance: undefined


def test_max_drawdown_by_hand():
    r = np.array([0.1, -0.2, 0.05, -0.1, 0.3])  # NAV 1.1, .88, .924, .8316, 1.08108; peak 1.1
    assert performance.max_drawdown(r) == pytest.approx(0.8316 / 1.1 - 1)
    assert performance.drawdown(r)[-1] == pytest.approx(1.08108 / 1.1 - 1)
    assert performance.max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(-0.1)  # the start is a peak
    assert performance.max_drawdown(np.array([0.01, 0.02])) == 0.0
