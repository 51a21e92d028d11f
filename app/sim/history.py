"""Past minute bars (``inquire-time-dailychartprice``, FHKST03010230, real host only).

A page holds up to 120 rows, newest first, at or before (FID_INPUT_DATE_1, FID_INPUT_HOUR_1);
with FID_PW_DATA_INCU_YN=Y it continues into earlier sessions, with N it stays in that day's
session. Sessions older than a year are not served (the live server keeps about a year). The
rows are exactly :meth:`Market.minute_bars` of each session (today's: up to ``now``), with the
session's cumulative value in ``acml_tr_pbmn`` like the current-day minute chart.
"""
from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from app.sim.market import Market

PAGE_ROWS = 120
KEEP_DAYS = 365


class MinuteHistory:
    def __init__(self, market: Market):
        self.m = market
        self._dates = np.array([int(d.strftime("%Y%m%d")) for d in market.sessions()], dtype=np.int64)
        oldest = market.today - dt.timedelta(days=KEEP_DAYS)
        self._first = int(np.searchsorted(self._dates, int(oldest.strftime("%Y%m%d")), side="left"))
        self.session_rows = functools.lru_cache(maxsize=2048)(self.session_rows)

    def session_rows(self, symbol: str, t: int) -> tuple[list[str], list[str]]:
        """(HHMMSS labels, JSON rows) of session t, ascending."""
        i, day = self.m.index(symbol), self.m.sessions()[t]
        mb = self.m.minute_series(symbol) if t == len(self._dates) - 1 else self.m._minutes(i, t)
        ymd, cum = day.strftime("%Y%m%d"), np.cumsum(mb.value)
        rows = [
            f'{{"stck_bsop_date":"{ymd}","stck_cntg_hour":"{mb.labels[k]}","stck_prpr":"{mb.close[k]:.0f}",'
            f'"stck_oprc":"{mb.open[k]:.0f}","stck_hgpr":"{mb.high[k]:.0f}","stck_lwpr":"{mb.low[k]:.0f}",'
            f'"cntg_vol":"{mb.volume[k]}","acml_tr_pbmn":"{cum[k]}"}}'
            for k in range(len(mb.labels))
        ]
        return list(mb.labels), rows

    def page(self, symbol: str, date1: int, hour1: str, past: bool, limit: int = PAGE_ROWS) -> bytes:
        """Comma-joined rows newest first, at or before (date1, hour1)."""
        t = int(np.searchsorted(self._dates, date1, side="right")) - 1
        out: list[str] = []
        if t < 0 or (not past and self._dates[t] != date1):
            return b""
        cut = hour1 if self._dates[t] == date1 else "999999"
        while t >= self._first and len(out) < limit:
            labels, rows = self.session_rows(symbol, t)
            k = int(np.searchsorted(np.array(labels), cut, side="right"))
            out.extend(reversed(rows[max(0, k - (limit - len(out))):k]))
            if not past:
                break
            t, cut = t - 1, "999999"
        return ",".join(out).encode()
