"""Invariants of the synthetic market: tick grid, limits, OHLC envelope, minutes = day, splits, oracle."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from app.contracts import BARS_SCHEMA
from app.errors import ConfigError, DataError
from app.krx import calendar, ticks
from app.sim import process
from app.sim.config import MarketConfig, SimConfig, sim_config_from_dict
from app.sim.market import Market
from app.sim.quotes import inquire_price_output

from sim_testutil import TODAY


@pytest.fixture(scope="module")
def market() -> Market:
    # spans the 2023-01-25 tick-table change, a first session of the year and a CSAT day
    return Market(MarketConfig(n_symbols=24, start="2022-10-04", today=TODAY, jump_prob=0.01))


def test_raw_prices_sit_on_the_tick_grid_of_their_day_and_market(market):
    h, days = market.hist, market.sessions()
    kosdaq = market.params.kosdaq
    assert kosdaq.any() and (~kosdaq).any()
    for t, day in enumerate(days):
        for flag in (False, True):
            rows = np.flatnonzero(kosdaq == flag)
            tab = ticks.table(day, flag)
            for arr in (h.open, h.high, h.low, h.close):
                assert ticks.on_grid(arr[rows, t], tab).all(), (day, flag)


def test_tick_tables_and_limits_match_the_documented_examples():
    new, old = ticks.table(dt.date(2024, 1, 2), False), ticks.table(dt.date(2022, 6, 2), False)
    up, lo = ticks.limits(np.array([128500.0, 73400.0]), new)
    assert up.tolist() == [167000, 95400] and lo.tolist() == [90000, 51400]
    assert ticks.tick_size(128500.0, old) == 500 and ticks.tick_size(128500.0, new) == 100
    assert ticks.tick_size(60000.0, ticks.table(dt.date(2022, 6, 2), True)) == 100  # old KOSDAQ cap
    assert ticks.tick_size(1999.0, new) == 1 and ticks.tick_size(2000.0, new) == 5


def test_daily_bars_respect_the_30pct_limits_and_the_ohlc_envelope(market):
    h, days = market.hist, market.sessions()
    for t, day in enumerate(days):
        up, lo = process.limits(h.base[:, t], day, market.params.kosdaq)
        assert (h.high[:, t] <= up).all() and (h.low[:, t] >= lo).all()
        assert (h.high[:, t] >= np.maximum(h.open[:, t], h.close[:, t])).all()
        assert (h.low[:, t] <= np.minimum(h.open[:, t], h.close[:, t])).all()
    assert ((h.close == 0) | (h.close > 0)).all() and (h.volume > 0).all()
    # jumps do reach the limit now and then, and the limit is exactly floor_tick(base*1.3)
    ups = [process.limits(h.base[:, t], d, market.params.kosdaq)[0] for t, d in enumerate(days)]
    assert (h.close == np.array(ups).T).sum() >= 1


def test_value_is_volume_times_a_price_inside_the_day(market):
    h = market.hist
    vwap = h.value / h.volume
    assert (vwap >= h.low - 1e-9).all() and (vwap <= h.high + 1e-9).all()
    assert h.value.dtype == np.int64 and h.volume.dtype == np.int64


@pytest.mark.parametrize("day, first, last", [
    ("2026-11-20", "090000", "153000"),
    ("2024-01-02", "100000", "153000"),  # first session of the year opens at 10:00
])
def test_minute_bars_aggregate_exactly_to_the_daily_bar(market, day, first, last):
    d = dt.date.fromisoformat(day)
    for symbol in market.symbols[:8]:
        mb = market.minute_bars(symbol, d)
        db = market.daily_bars(symbol, d, d, adjusted=False)
        assert mb.schema == BARS_SCHEMA and db.num_rows == 1
        labels = [ts.strftime("%H%M%S") for ts in mb["ts"].to_pylist()]
        assert labels[0] == first and labels[-1] == last
        assert labels[-2] == "151900"  # the ten closing-auction minutes carry no bar
        agg = (mb["open"][0].as_py(), max(mb["high"].to_pylist()), min(mb["low"].to_pylist()),
               mb["close"][-1].as_py(), sum(mb["volume"].to_pylist()), sum(mb["value"].to_pylist()))
        ref = tuple(db[c][0].as_py() for c in ("open", "high", "low", "close", "volume", "value"))
        assert agg == ref
        tab = ticks.table(d, market.kosdaq[symbol])
        assert ticks.on_grid(np.array(mb["low"].to_pylist()), tab).all()


def test_csat_day_and_early_history_follow_the_xkrx_calendar():
    days, opens, closes = calendar.sessions(dt.date(2016, 1, 4), dt.date(2020, 12, 31))
    hours = dict(zip(days, zip(opens.tolist(), closes.tolist())))
    assert hours[dt.date(2020, 12, 3)] == (600, 990)  # CSAT day: 10:00-16:30
    assert hours[dt.date(2016, 1, 5)] == (540, 900)  # 15:00 close before 2016-08-01
    labels = calendar.minute_labels(*hours[dt.date(2020, 12, 3)])
    assert labels[0] == "100000" and labels[-2:] == ["161900", "163000"] and len(labels) == 381


def test_same_seed_same_market_other_seed_other_market():
    cfg = dict(n_symbols=6, start="2025-01-02", today=TODAY)
    a, b, c = Market(MarketConfig(**cfg)), Market(MarketConfig(**cfg)), Market(MarketConfig(seed=8, **cfg))
    assert a.symbols == b.symbols and a.names == b.names
    assert a.daily_bars(a.symbols[0]).equals(b.daily_bars(b.symbols[0]))
    assert a.minute_bars(a.symbols[1]).equals(b.minute_bars(b.symbols[1]))
    assert a.oracle(1).equals(b.oracle(1))
    assert a.symbols != c.symbols


def test_adjusted_and_raw_differ_exactly_by_the_split_ratio():
    m = Market(MarketConfig(n_symbols=10, start="2024-01-02", today=TODAY, split_fraction=0.2))
    split_rows = np.argwhere(m.hist.split > 1)
    assert len(split_rows) == 2
    i, t = split_rows[0]
    symbol, ratio = m.symbols[i], m.hist.split[i, t]
    raw, adj = m.daily_bars(symbol, adjusted=False), m.daily_bars(symbol, adjusted=True)
    before, after = slice(t - 5, t), slice(t, t + 5)
    rc, ac = np.array(raw["close"].to_pylist()), np.array(adj["close"].to_pylist())
    np.testing.assert_allclose(ac[before], np.rint(rc[before] / ratio))
    np.testing.assert_array_equal(ac[after], rc[after])
    rv, av = np.array(raw["volume"].to_pylist()), np.array(adj["volume"].to_pylist())
    np.testing.assert_array_equal(av[before], rv[before] * ratio)
    # the raw series jumps by about the ratio on the split day; the adjusted one does not
    assert rc[t - 1] / rc[t] > ratio * 0.7
    assert 0.7 < ac[t - 1] / ac[t] < 1.3
    assert adj["adjusted"].to_pylist()[0] and not raw["adjusted"].to_pylist()[0]


def test_weekly_bars_aggregate_daily_ones_labelled_by_the_last_session(market):
    symbol = market.symbols[3]
    w = market.series(symbol, "W", True)
    d = market.series(symbol, "D", True)
    k = len(w.dates) - 2  # a complete week
    days = [x for x in d.dates if dt.date(x // 10000, x // 100 % 100, x % 100).isocalendar()[:2]
            == dt.date(w.dates[k] // 10000, w.dates[k] // 100 % 100, w.dates[k] % 100).isocalendar()[:2]]
    sel = np.isin(d.dates, days)
    assert w.dates[k] == max(days)
    assert w.open[k] == d.open[sel][0] and w.close[k] == d.close[sel][-1]
    assert w.high[k] == d.high[sel].max() and w.low[k] == d.low[sel].min() and w.volume[k] == d.volume[sel].sum()


def test_now_inside_the_session_hides_the_rest_of_the_day():
    full = Market(MarketConfig(n_symbols=4, start="2026-01-02", today=TODAY))
    part = Market(MarketConfig(n_symbols=4, start="2026-01-02", today=TODAY, now="103000"))
    pre = Market(MarketConfig(n_symbols=4, start="2026-01-02", today=TODAY, now="081500"))
    s = full.symbols[0]
    mb = part.minute_bars(s)
    assert mb["ts"][-1].as_py().strftime("%H%M%S") == "103000" and mb.num_rows == 91
    today_bar = part.daily_bars(s).slice(part.daily_bars(s).num_rows - 1)
    assert today_bar["close"][0].as_py() == mb["close"][-1].as_py()
    assert today_bar["volume"][0].as_py() == sum(mb["volume"].to_pylist())
    assert today_bar["volume"][0].as_py() < full.daily_bars(s)["volume"][-1].as_py()
    assert pre.daily_bars(s)["ts"][-1].as_py().date() < pre.today and pre.minute_bars(s).num_rows == 0
    assert inquire_price_output(pre, s)["stck_prpr"] == str(int(full.daily_bars(s, adjusted=False)["close"][-2].as_py()))
    assert part.oracle(1).num_rows == full.oracle(1).num_rows - 4


def _forward(m: Market, h: int) -> tuple[np.ndarray, np.ndarray]:
    er = m.oracle(h)["expected_return"].to_numpy().reshape(len(m.symbols), -1)
    cum = np.cumsum(np.log(m.hist.close / m.hist.base), axis=1)  # adjusted log price
    fwd = np.expm1(cum[:, h:] - cum[:, :-h])
    return er[:, :-h], fwd


def test_oracle_predicts_forward_returns_when_the_signal_is_strong():
    m = Market(MarketConfig(n_symbols=60, start="2023-01-02", today=TODAY, signal_strength=0.6))
    er, fwd = _forward(m, 1)
    ic = np.mean([np.corrcoef(er[:, t], fwd[:, t])[0, 1] for t in range(er.shape[1])])
    assert ic > 0.35
    # calibrated: cross-sectionally demeaned realised returns regress on the oracle with slope ~1
    x, y = er - er.mean(0), fwd - fwd.mean(0)
    slope = (x * y).sum() / (x * x).sum()
    assert 0.85 < slope < 1.15
    er5, fwd5 = _forward(m, 5)
    assert np.mean([np.corrcoef(er5[:, t], fwd5[:, t])[0, 1] for t in range(er5.shape[1])]) > 0.35


def test_default_signal_gives_a_modest_daily_ic_and_none_without_signal():
    on = Market(MarketConfig(n_symbols=60, start="2021-01-04", today=TODAY))
    off = Market(MarketConfig(n_symbols=60, start="2021-01-04", today=TODAY, signal_strength=0.0))
    ics = []
    for m in (on, off):
        er, fwd = _forward(m, 1)
        ics.append(np.mean([np.corrcoef(er[:, t], fwd[:, t])[0, 1] for t in range(er.shape[1])]))
    assert 0.05 <= ics[0] <= 0.15 and abs(ics[1]) < 0.04


def test_predictable_part_is_a_function_of_observed_bars():
    m = Market(MarketConfig(n_symbols=5, start="2025-01-02", today=TODAY, signal_strength=0.5))
    s = m.symbols[2]
    i = m.index(s)
    bars = m.daily_bars(s)
    close, vol = np.array(bars["close"].to_pylist()), np.array(bars["volume"].to_pylist())
    prm = m.params
    z = np.diff(np.log(close)) / prm.s_tot[i]  # no split for this symbol: checked below
    assert (m.hist.split[i] == 1).all()
    x = (np.log(vol[1:]) - prm.log_vol_mean[i] - process.VOLUME_ABS_RET * (np.abs(z) - 0.8)) / process.VOLUME_SD
    t = len(z) - 1
    sig = -0.5 * z[t] + 0.25 * z[t - 4:t].sum() + process.SQRT_HALF * x[t]
    mu = prm.drift[i] + m.cfg.signal_strength * prm.sigma[i] * sig
    assert mu == pytest.approx(m.hist.mu[i, -1], abs=2e-6)  # volume rounding is the only gap


def test_bad_symbol_and_bad_config_fail_with_one_line_fixes(market):
    with pytest.raises(DataError, match="not listed"):
        market.daily_bars("999999")
    with pytest.raises(ConfigError, match="signal_strength"):
        sim_config_from_dict({"market": {"signal_strength": 3}})
    with pytest.raises(ConfigError, match="unknown simulator config key"):
        sim_config_from_dict({"markett": {}})
    cfg = sim_config_from_dict({"env": "paper", "faults": {"drop": 0.5}, "market": {"n_symbols": 3}})
    assert isinstance(cfg, SimConfig) and cfg.effective_rate_limit() == 1.0 and cfg.faults.drop == 0.5


def test_nonlinear_component_keeps_the_oracle_calibrated_and_beyond_linear_reach():
    """With x^2 in the signal the oracle stays E[r | state]; a linear fit on the state misses part of it."""
    import numpy as np

    from app.sim.config import MarketConfig as MC
    from app.sim.market import Market as Mk

    m = Mk(MC(seed=3, n_symbols=20, start="2020-01-02", today="2024-12-30", signal_strength=0.5,
              nonlinear_strength=1.0))
    o = m.oracle(1).to_pandas()
    frames = []
    for s in m.symbols:
        b = m.daily_bars(s).to_pandas()
        b["fwd"] = b["close"].shift(-1) / b["close"] - 1
        frames.append(b[["symbol", "ts", "fwd"]])
    import pandas as pd

    d = pd.concat(frames).merge(o, on=["symbol", "ts"]).dropna()
    slope = np.polyfit(d["expected_return"], d["fwd"], 1)[0]
    assert 0.9 < slope < 1.1
    # x is what the volume reveals; its square carries signal a linear model of x cannot use
    i = m.symbols.index(d["symbol"].iloc[0])
    x = m.hist.x[i]
    mu = m.hist.mu[i] - m.params.drift[i]
    lin = np.polyfit(x, mu, 1)
    resid = mu - np.polyval(lin, x)
    assert np.corrcoef(resid, x * x)[0, 1] > 0.3
