"""Today's trade prints and their real-time records (docs/kis.md §6.6): the websocket's source.

Every minute bar is split into four prints in time order (open, then high and low in a random
order, then close) at seconds 00/20/40/55, the closing-auction bar into one print, with integer
volumes and values that add up to the bar's. A consumer that aggregates the prints by minute label
gets back ``Market.minute_bars`` exactly.
"""
from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import numpy as np

from app.krx import ticks
from app.sim.market import Market
from app.sim.minutes import split_int

OFFSETS = ("00", "20", "40", "55")
CNT_FIELDS = 46
ASP_FIELDS = 59


@dataclass
class Prints:
    times: list[str]  # HHMMSS
    price: np.ndarray
    volume: np.ndarray
    value: np.ndarray


def seconds(hhmmss: str) -> int:
    return int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6])


def _sign(diff: float) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


class Tape:
    def __init__(self, market: Market):
        self.m = market
        self._tables = {k: tuple(a.tolist() for a in ticks.table(market.today, k)) for k in (False, True)}
        self.prints = functools.lru_cache(maxsize=None)(self.prints)
        self.cnt_records = functools.lru_cache(maxsize=None)(self.cnt_records)
        self.asp_records = functools.lru_cache(maxsize=None)(self.asp_records)

    def prints(self, symbol: str) -> Prints:
        """All of today's prints (the whole session, ``now`` notwithstanding)."""
        i = self.m.index(symbol)
        mb = self.m._minutes(i, len(self.m.sessions()) - 1)
        rng = np.random.default_rng([self.m.cfg.seed, 41, i])
        times, price, vol, val = [], [], [], []
        last = len(mb.labels) - 1
        for k, label in enumerate(mb.labels):
            if k == last:
                pts, offs = [mb.close[k]], ["00"]
            else:
                mid = [mb.high[k], mb.low[k]] if rng.random() < 0.5 else [mb.low[k], mb.high[k]]
                pts, offs = [mb.open[k], *mid, mb.close[k]], OFFSETS
            n = len(pts)
            v = 1 + split_int(int(mb.volume[k]) - n, rng.random(n) + 0.2)
            times += [label[:4] + o for o in offs]
            price += pts
            vol += v.tolist()
            val += split_int(int(mb.value[k]), v * np.array(pts)).tolist()
        return Prints(times, np.array(price), np.array(vol, dtype=np.int64), np.array(val, dtype=np.int64))

    def _tick(self, i: int, price: float) -> float:
        """Tick of one price today (scalar bisect: this runs per print and per book level)."""
        edges, steps = self._tables[bool(self.m.params.kosdaq[i])]
        return steps[bisect.bisect_right(edges, price)]

    def cnt_records(self, symbol: str) -> list[str]:
        """One H0STCNT0 record (46 ``^``-joined fields) per print."""
        i, p = self.m.index(symbol), self.prints(symbol)
        h = self.m.hist
        t = len(self.m.sessions()) - 1
        base = float(h.base[i, t])
        prev_vol = float(h.volume[i, t - 1]) if t else float(h.volume[i, t])
        up, lo = self.m.limits(i, t) if self.m.state != "pre-open" else (base * 1.3, base * 0.7)
        shares = float(self.m.params.shares[i])
        open_min, close_min = self.m.session_hours(self.m.today)
        span = max(60.0, (close_min - open_min) * 60.0)
        rng = np.random.default_rng([self.m.cfg.seed, 42, i])
        day = self.m.today.strftime("%Y%m%d")
        out: list[str] = []
        cum_v = cum_val = n_buy = n_sell = v_buy = v_sell = 0
        hi = lo_ = o = None
        last = base
        for k, hms in enumerate(p.times):
            px, v = float(p.price[k]), int(p.volume[k])
            cum_v, cum_val = cum_v + v, cum_val + int(p.value[k])
            buy = px >= last
            n_buy, n_sell = n_buy + buy, n_sell + (not buy)
            v_buy, v_sell = v_buy + v * buy, v_sell + v * (not buy)
            if o is None:
                o = (px, hms)
            if hi is None or px > hi[0]:
                hi = (px, hms)
            if lo_ is None or px < lo_[0]:
                lo_ = (px, hms)
            tick = self._tick(i, px)
            ask, bid = (px, px - tick) if buy else (px + tick, px)
            sign = "1" if px >= up else "4" if px <= lo else _sign(px - base)
            elapsed = min(1.0, max(1.0, seconds(hms) - open_min * 60) / span)
            same_time = max(1, int(prev_vol * elapsed))
            fields = [
                symbol, hms, f"{px:.0f}", sign, f"{px - base:.0f}", f"{(px - base) / base * 100:.2f}",
                f"{cum_val / cum_v:.2f}", f"{o[0]:.0f}", f"{hi[0]:.0f}", f"{lo_[0]:.0f}", f"{ask:.0f}", f"{bid:.0f}",
                str(v), str(cum_v), str(cum_val), str(n_sell), str(n_buy), str(n_buy - n_sell),
                f"{(v_buy / v_sell * 100 if v_sell else 0):.2f}", str(v_sell), str(v_buy), "1" if buy else "5",
                f"{v_buy / cum_v * 100:.2f}", f"{cum_v / prev_vol * 100:.2f}", o[1], _sign(px - o[0]),
                f"{px - o[0]:.0f}", hi[1], _sign(px - hi[0]), f"{px - hi[0]:.0f}", lo_[1], _sign(px - lo_[0]),
                f"{px - lo_[0]:.0f}", day, "20", "N", str(int(rng.integers(100, 50_000))),
                str(int(rng.integers(100, 50_000))), str(int(rng.integers(50_000, 900_000))),
                str(int(rng.integers(50_000, 900_000))), f"{cum_v / shares * 100:.2f}", str(same_time),
                f"{cum_v / same_time * 100:.2f}", "0", "0", f"{base:.0f}",
            ]
            out.append("^".join(fields))
            last = px
        return out

    def asp_records(self, symbol: str) -> list[str]:
        """One H0STASP0 record (59 fields, a 10-level book around the last print) per print."""
        i, p = self.m.index(symbol), self.prints(symbol)
        rng = np.random.default_rng([self.m.cfg.seed, 43, i])
        n = len(p.times)
        ask_q, bid_q = rng.integers(10, 20_000, (n, 10)).tolist(), rng.integers(10, 20_000, (n, 10)).tolist()
        cum = np.cumsum(p.volume).tolist()
        out: list[str] = []
        ladders: dict[float, list[str]] = {}
        for k, (hms, px) in enumerate(zip(p.times, p.price.tolist())):
            if px not in ladders:
                ladders[px] = self._ladder(i, px)
            aq, bq = ask_q[k], bid_q[k]
            fields = ([symbol, hms, "0"] + ladders[px]
                      + [str(q) for q in aq] + [str(q) for q in bq]
                      + [str(sum(aq)), str(sum(bq)), "0", "0", "0", "0", "0", "0", "3", "0.00", str(cum[k]),
                         "0", "0", "0", "0", "0"])
            out.append("^".join(fields))
        return out

    def _ladder(self, i: int, px: float) -> list[str]:
        """Ten ask prices from one tick above ``px`` up, ten bid prices from ``px`` down, on the grid."""
        asks, bids = [px + self._tick(i, px)], [px]
        for _ in range(9):
            asks.append(asks[-1] + self._tick(i, asks[-1]))
            bids.append(max(1.0, bids[-1] - self._tick(i, bids[-1] - 1)))
        return [f"{x:.0f}" for x in asks] + [f"{x:.0f}" for x in bids]
