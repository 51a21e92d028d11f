"""The synthetic market: a deterministic universe, its daily and minute bars, and the oracle.

Everything derives from ``MarketConfig`` (seed included): two Markets built from equal configs
serve identical bytes. "Today" is the last session; with ``now`` set inside the session today's
daily bar is the aggregate of the minute bars up to ``now`` (prices after it stay hidden).
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from app.contracts import BARS_SCHEMA, daily_ts, minute_ts
from app.errors import DataError
from app.krx import calendar, ticks
from app.sim import minutes, oracle, process, universe
from app.sim.config import MarketConfig

log = logging.getLogger(__name__)
PERIODS = ("D", "W", "M", "Y")


@dataclass
class Series:
    """One symbol's visible bars of one period and basis, ascending; ints as int64."""

    dates: np.ndarray  # int yyyymmdd of the bar's label
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    value: np.ndarray
    change: np.ndarray  # vs the previous bar's close (D: vs the base price)
    sign: np.ndarray  # prdy_vrss_sign 1..5
    split: np.ndarray  # split ratio booked on the bar (1.0 = none)


def _hhmm_to_min(hhmmss: str) -> int:
    return int(hhmmss[:2]) * 60 + int(hhmmss[2:4])


class Market:
    def __init__(self, cfg: MarketConfig):
        self.cfg = cfg
        start = dt.date.fromisoformat(cfg.start)
        wanted = dt.date.fromisoformat(cfg.today) if cfg.today else calendar.today_kst()
        self.today = calendar.latest_session_on_or_before(wanted)
        self._days, self._open_min, self._close_min = calendar.sessions(start, self.today)
        self.today = self._days[-1]
        n = cfg.n_symbols
        self.symbols = universe.symbol_codes(cfg.seed, n)
        self.names = universe.symbol_names(cfg.seed, self.symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self.params = process.draw_params(cfg, n)
        self.kosdaq = {s: bool(self.params.kosdaq[i]) for i, s in enumerate(self.symbols)}
        self.hist = process.simulate(cfg, self._days, self.params)
        self._dates = np.array([d.year * 10000 + d.month * 100 + d.day for d in self._days], dtype=np.int64)
        # per-instance caches: the server slices these for every page
        self.series = functools.lru_cache(maxsize=None)(self.series)
        self.minute_series = functools.lru_cache(maxsize=None)(self.minute_series)
        self._set_visible()
        log.info("market: %d symbols x %d sessions, today %s (%s)", n, len(self._days), self.today, self.state)

    # --- what is visible at (today, now) -------------------------------------------------
    def _set_visible(self) -> None:
        h, t_len = self.hist, len(self._days)
        open_min, close_min = int(self._open_min[-1]), int(self._close_min[-1])
        now = self.cfg.now
        if now is None or _hhmm_to_min(now) >= close_min:
            self.state, self.now_label = "closed", None
        elif _hhmm_to_min(now) < open_min:
            self.state, self.now_label = "pre-open", now
        else:
            self.state, self.now_label = "open", now
        self.n_full = t_len if self.state == "closed" else t_len - 1
        n_vis = t_len if self.state != "pre-open" else t_len - 1
        self._vis = {k: getattr(h, k)[:, :n_vis].copy() for k in ("open", "high", "low", "close", "volume", "value", "base", "split")}
        if self.state == "open":
            for i in range(len(self.symbols)):
                mb = self._today_minutes(i)
                self._vis["open"][i, -1], self._vis["high"][i, -1] = mb.open[0], mb.high.max()
                self._vis["low"][i, -1], self._vis["close"][i, -1] = mb.low.min(), mb.close[-1]
                self._vis["volume"][i, -1], self._vis["value"][i, -1] = mb.volume.sum(), mb.value.sum()
        # factor[i, t]: product of split ratios booked after t (divide raw prices by it to adjust)
        ratios = self._vis["split"]
        self._adj = np.cumprod(ratios[:, ::-1], axis=1)[:, ::-1] / ratios
        self._vis_dates = self._dates[:n_vis]

    def index(self, symbol: str) -> int:
        try:
            return self._index[symbol]
        except KeyError:
            raise DataError(f"symbol {symbol!r} is not listed in the simulated market",
                            f"use one of Market.symbols, e.g. {self.symbols[0]}") from None

    def sessions(self) -> list[dt.date]:
        return list(self._days)

    def session_hours(self, day: dt.date) -> tuple[int, int]:
        """Open and close of a session in minutes after midnight KST."""
        t = self._days.index(day)
        return int(self._open_min[t]), int(self._close_min[t])

    # --- daily bars ----------------------------------------------------------------------
    def visible_days(self) -> int:
        return len(self._vis_dates)

    def day_row(self, i: int, t: int) -> dict[str, float]:
        """Raw visible bar t of symbol i (t may be negative)."""
        return {k: float(v[i, t]) for k, v in self._vis.items()}

    def limits(self, i: int, t: int) -> tuple[float, float]:
        day = self._days[t if t >= 0 else len(self._vis_dates) + t]
        up, lo = process.limits(np.array([self._vis["base"][i, t]]), day, self.params.kosdaq[i:i + 1])
        return float(up[0]), float(lo[0])

    def tick_size(self, i: int, price: float) -> int:
        tab = ticks.table(self.today, bool(self.params.kosdaq[i]))
        return int(ticks.tick_size(np.array([price]), tab)[0])

    def series(self, symbol: str, period: str = "D", adjusted: bool = True) -> Series:
        """Visible bars of one symbol (cached: the server slices these for every chart page)."""
        if period not in PERIODS:
            raise DataError(f"period {period!r} is unknown", "use D, W, M or Y")
        i = self.index(symbol)
        v, f = self._vis, (self._adj[i] if adjusted else np.ones(len(self._vis_dates)))
        px = {k: np.rint(v[k][i] / f) for k in ("open", "high", "low", "close", "base")}
        vol = np.rint(v["volume"][i] * f).astype(np.int64)
        daily = Series(self._vis_dates, px["open"], px["high"], px["low"], px["close"], vol,
                       v["value"][i].astype(np.int64), px["close"] - px["base"], self._signs(i), v["split"][i])
        return daily if period == "D" else _aggregate(daily, period)

    def _signs(self, i: int) -> np.ndarray:
        """prdy_vrss_sign of each raw daily bar: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down."""
        v = self._vis
        up, lo = np.zeros(len(self._vis_dates)), np.zeros(len(self._vis_dates))
        kos = self.params.kosdaq[i:i + 1]
        old = np.array([d < ticks.NEW_TABLE_FROM for d in self._days[: len(self._vis_dates)]])
        base = v["base"][i]
        for is_old, day in ((True, dt.date(2000, 1, 1)), (False, ticks.NEW_TABLE_FROM)):
            u, lw = process.limits(base, day, np.repeat(kos, len(base)))
            up = np.where(old == is_old, u, up)
            lo = np.where(old == is_old, lw, lo)
        c = v["close"][i]
        return np.select([c >= up, c <= lo, c > base, c < base], [1, 4, 2, 5], 3)

    def daily_bars(self, symbol: str, start: dt.date | None = None, end: dt.date | None = None,
                   period: str = "D", adjusted: bool = True) -> pa.Table:
        s = self.series(symbol, period, adjusted)
        lo = _yyyymmdd(start) if start else 0
        hi = _yyyymmdd(end) if end else 99_999_999
        keep = (s.dates >= lo) & (s.dates <= hi)
        days = [dt.date(d // 10000, d // 100 % 100, d % 100) for d in s.dates[keep]]
        return _bars_table(symbol, [daily_ts(d) for d in days], s, keep, adjusted)

    # --- minute bars ---------------------------------------------------------------------
    def _minutes(self, i: int, t: int) -> minutes.MinuteBars:
        h, day = self.hist, self._days[t]
        bar = minutes.DayBar(h.open[i, t], h.high[i, t], h.low[i, t], h.close[i, t], int(h.volume[i, t]), int(h.value[i, t]))
        labels = calendar.minute_labels(int(self._open_min[t]), int(self._close_min[t]))
        rng = np.random.default_rng([self.cfg.seed, 21, i, day.toordinal()])
        tab = ticks.table(day, bool(self.params.kosdaq[i]))
        return minutes.generate(bar, labels, tab, rng, float(self.params.s_tot[i]))

    def _today_minutes(self, i: int) -> minutes.MinuteBars:
        mb = self._minutes(i, len(self._days) - 1)
        return _cut(mb, self.now_label) if self.now_label else mb

    def minute_series(self, symbol: str) -> minutes.MinuteBars:
        """Today's visible minute bars (up to ``now``), ascending."""
        i = self.index(symbol)
        if self.state == "pre-open":
            return _cut(self._minutes(i, len(self._days) - 1), "000000")
        return self._today_minutes(i)

    def minute_bars(self, symbol: str, day: dt.date | None = None, until: str | None = None) -> pa.Table:
        i = self.index(symbol)
        day = day or self.today
        if day not in self._days:
            raise DataError(f"{day} is not a session of the simulated market", "pick a date from Market.sessions()")
        mb = self.minute_series(symbol) if day == self.today else self._minutes(i, self._days.index(day))
        if until:
            mb = _cut(mb, until)
        ts = [minute_ts(day, lab) for lab in mb.labels]
        keep = np.ones(len(ts), dtype=bool)
        return _bars_table(symbol, ts, mb, keep, True)

    # --- oracle --------------------------------------------------------------------------
    def oracle(self, horizon: int = 1) -> pa.Table:
        """E[close_{t+h}/close_t - 1 | state at t] on adjusted closes, every symbol and final session."""
        er = oracle.expected_return(self.cfg, self.params, self.hist, horizon)[:, : self.n_full]
        n, t_len = er.shape
        ts = pa.array([daily_ts(d) for d in self._days[:t_len]], pa.timestamp("s", tz="Asia/Seoul"))
        return pa.table({
            "symbol": pa.array(np.repeat(self.symbols, t_len), pa.string()),
            "ts": pa.concat_arrays([ts] * n) if n else ts,
            "expected_return": pa.array(er.reshape(-1), pa.float64()),
        })


def _yyyymmdd(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _cut(mb: minutes.MinuteBars, until: str) -> minutes.MinuteBars:
    k = int(np.searchsorted(np.array(mb.labels), until, side="right"))
    return minutes.MinuteBars(mb.labels[:k], mb.open[:k], mb.high[:k], mb.low[:k], mb.close[:k], mb.volume[:k], mb.value[:k])


def _period_keys(dates: np.ndarray, period: str) -> np.ndarray:
    if period == "M":
        return dates // 100
    if period == "Y":
        return dates // 10000
    days = [dt.date(d // 10000, d // 100 % 100, d % 100).isocalendar() for d in dates]
    return np.array([y * 100 + w for y, w, _ in days])


def _aggregate(s: Series, period: str) -> Series:
    """W/M/Y bars from daily ones, labelled by the last session of the period."""
    keys = _period_keys(s.dates, period)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)] - 1
    close = s.close[ends]
    prev = np.r_[s.close[starts[0]] - s.change[starts[0]], close[:-1]]
    change = close - prev
    return Series(
        dates=s.dates[ends], open=s.open[starts], high=np.maximum.reduceat(s.high, starts),
        low=np.minimum.reduceat(s.low, starts), close=close, volume=np.add.reduceat(s.volume, starts),
        value=np.add.reduceat(s.value, starts), change=change,
        sign=np.select([change > 0, change < 0], [2, 5], 3), split=np.multiply.reduceat(s.split, starts),
    )


def _bars_table(symbol: str, ts: list[dt.datetime], s, keep: np.ndarray, adjusted: bool) -> pa.Table:
    n = int(keep.sum())
    return pa.table({
        "symbol": pa.array([symbol] * n, pa.string()),
        "ts": pa.array(ts, pa.timestamp("s", tz="Asia/Seoul")),
        "open": pa.array(np.asarray(s.open, dtype=float)[keep]),
        "high": pa.array(np.asarray(s.high, dtype=float)[keep]),
        "low": pa.array(np.asarray(s.low, dtype=float)[keep]),
        "close": pa.array(np.asarray(s.close, dtype=float)[keep]),
        "volume": pa.array(np.asarray(s.volume, dtype=np.int64)[keep]),
        "value": pa.array(np.asarray(s.value, dtype=np.int64)[keep]),
        "adjusted": pa.array([adjusted] * n, pa.bool_()),
    }, schema=BARS_SCHEMA)
