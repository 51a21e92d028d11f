"""Pre-serialised response pieces: each chart row is JSON text built once; a page is a byte slice.

A request for the period chart costs a binary search on the dates and one slice of a joined
blob, not a ``json.dumps`` of 100 dicts; that is what lets one core serve thousands of pages/s.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from app.sim import quotes
from app.sim.market import Market

OK_TAIL = ('"rt_cd":"0","msg_cd":"MCA00000","msg1":"정상처리 되었습니다."}').encode()
CHART_ROWS = 100
MINUTE_ROWS = 30
DAILY_PRICE_ROWS = 30


@dataclass
class Blob:
    """Rows newest first: row k is data[starts[k]:ends[k]]; rows are joined by commas."""

    keys: np.ndarray  # descending sort key of each row (yyyymmdd, or HHMMSS as int)
    data: bytes
    starts: np.ndarray
    ends: np.ndarray

    def page(self, newest_key: int, oldest_key: int, limit: int) -> bytes:
        """Comma-joined rows with oldest_key <= key <= newest_key, the newest ``limit`` of them."""
        neg = -self.keys
        a = int(np.searchsorted(neg, -newest_key, side="left"))
        b = int(np.searchsorted(neg, -oldest_key, side="right"))
        b = min(b, a + limit)
        return self.data[self.starts[a]:self.ends[b - 1]] if b > a else b""


def make_blob(keys: list[int], rows: list[str]) -> Blob:
    """``keys``/``rows`` ascending in; stored newest first."""
    enc = [r.encode() for r in reversed(rows)]
    lens = np.array([len(r) for r in enc], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]) if len(enc) else np.zeros(0, dtype=np.int64)
    return Blob(np.array(keys[::-1], dtype=np.int64), b",".join(enc), starts, starts + lens)


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class RowCache:
    """Per-symbol serialised pieces for one Market (the market is static, so nothing expires)."""

    def __init__(self, market: Market):
        self.m = market
        # per-instance caches (a class-level lru_cache would keep every Market ever served alive)
        for name in ("chart_blob", "chart_head", "minute_blob", "minute_head", "price_body", "daily_price_body"):
            setattr(self, name, functools.lru_cache(maxsize=None)(getattr(self, name)))

    def chart_blob(self, symbol: str, period: str, adjusted: bool) -> Blob:
        s = self.m.series(symbol, period, adjusted)
        ints = lambda a: np.asarray(a).astype(np.int64).tolist()  # noqa: E731
        booked = (s.split > 1) & (period == "D")
        flng = np.where(booked, "01", "00").tolist()
        prtt = [f"{r:.2f}" for r in np.where(booked, s.split, 0.0).tolist()]
        rows = [
            f'{{"stck_bsop_date":"{d}","stck_clpr":"{c}","stck_oprc":"{o}","stck_hgpr":"{h}","stck_lwpr":"{lw}",'
            f'"acml_vol":"{v}","acml_tr_pbmn":"{val}","flng_cls_code":"{fl}","prtt_rate":"{pr}","mod_yn":"N",'
            f'"prdy_vrss_sign":"{sg}","prdy_vrss":"{ch}","revl_issu_reas":""}}'
            for d, c, o, h, lw, v, val, fl, pr, sg, ch in zip(
                ints(s.dates), ints(s.close), ints(s.open), ints(s.high), ints(s.low), ints(s.volume),
                ints(s.value), flng, prtt, ints(s.sign), ints(s.change))
        ]
        return make_blob(s.dates.tolist(), rows)

    def chart_head(self, symbol: str) -> bytes:
        return b'{"output1":' + _dumps(quotes.chart_output1(self.m, symbol)) + b',"output2":['

    def minute_blob(self, symbol: str) -> Blob:
        mb = self.m.minute_series(symbol)
        day = self.m.today.strftime("%Y%m%d")
        cum = np.cumsum(mb.value)
        rows = [
            f'{{"stck_bsop_date":"{day}","stck_cntg_hour":"{mb.labels[k]}","stck_prpr":"{mb.close[k]:.0f}",'
            f'"stck_oprc":"{mb.open[k]:.0f}","stck_hgpr":"{mb.high[k]:.0f}","stck_lwpr":"{mb.low[k]:.0f}",'
            f'"cntg_vol":"{mb.volume[k]}","acml_tr_pbmn":"{cum[k]}"}}'
            for k in range(len(mb.labels))
        ]
        return make_blob([int(lab) for lab in mb.labels], rows)

    def minute_head(self, symbol: str) -> bytes:
        return b'{"output1":' + _dumps(quotes.minute_output1(self.m, symbol)) + b',"output2":['

    def price_body(self, symbol: str) -> bytes:
        return b'{"output":' + _dumps(quotes.inquire_price_output(self.m, symbol)) + b"," + OK_TAIL

    def daily_price_body(self, symbol: str, period: str, adjusted: bool) -> bytes:
        s = self.m.series(symbol, period, adjusted)
        frgn = quotes.fundamentals(self.m, self.m.index(symbol))["frgn"]
        cum_split = np.cumprod(s.split[::-1])[::-1]  # splits booked on or after each bar
        rows = []
        for k in range(len(s.dates) - 1, max(len(s.dates) - 1 - DAILY_PRICE_ROWS, -1), -1):
            prev_vol = s.volume[k - 1] if k else 0
            prev_close = s.close[k] - s.change[k]
            rows.append({
                "stck_bsop_date": str(s.dates[k]), "stck_oprc": f"{s.open[k]:.0f}", "stck_hgpr": f"{s.high[k]:.0f}",
                "stck_lwpr": f"{s.low[k]:.0f}", "stck_clpr": f"{s.close[k]:.0f}", "acml_vol": str(s.volume[k]),
                "prdy_vrss_vol_rate": f"{((s.volume[k] / prev_vol - 1) * 100 if prev_vol else 0):.2f}",
                "prdy_vrss": f"{s.change[k]:.0f}", "prdy_vrss_sign": str(s.sign[k]),
                "prdy_ctrt": f"{(s.change[k] / prev_close * 100 if prev_close else 0):.2f}",
                "hts_frgn_ehrt": f"{frgn:.2f}", "frgn_ntby_qty": "0",
                "flng_cls_code": "01" if (s.split[k] > 1 and period == "D") else "00",
                "acml_prtt_rate": f"{cum_split[k]:.2f}",
            })
        return b'{"output":' + _dumps(rows) + b"," + OK_TAIL
