"""The quotation endpoints: query validation and body assembly.

Each handler takes the upper-cased query and returns ``(http_status, body_bytes)``. Bodies are
assembled from the pre-serialised pieces of :mod:`app.sim.rows`.
"""
from __future__ import annotations

import json

from app.sim import quotes
from app.sim.history import PAGE_ROWS, MinuteHistory
from app.sim.market import Market
from app.sim.rows import CHART_ROWS, MINUTE_ROWS, OK_TAIL, RowCache

_Q = "/uapi/domestic-stock/v1/quotations"
MARKETS = ("J", "NX", "UN")


class ParamError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def business_error(code: str, message: str) -> bytes:
    return json.dumps({"rt_cd": "1", "msg_cd": code, "msg1": message}, ensure_ascii=False, separators=(",", ":")).encode()


def _need(q: dict[str, str], name: str) -> str:
    value = q.get(name)
    if value is None or value == "":
        raise ParamError("OPSQ2002", f"ERROR : INPUT FIELD NOT FOUND [{name}]")
    return value


def _market_and_code(q: dict[str, str]) -> str:
    if _need(q, "FID_COND_MRKT_DIV_CODE") not in MARKETS:
        raise ParamError("OPSQ2001", "ERROR : INPUT INVALID FID_COND_MRKT_DIV_CODE")
    code = _need(q, "FID_INPUT_ISCD")
    if len(code) > 12:
        raise ParamError("OPSQ2002", "ERROR : INPUT FIELD SIZE ERROR [FID_INPUT_ISCD]")
    return code


def _date(q: dict[str, str], name: str) -> int:
    value = _need(q, name)
    if len(value) != 8 or not value.isdigit():
        raise ParamError("OPSQ2002", f"ERROR : INPUT FIELD SIZE ERROR [{name}]")
    return int(value)


def _flag(q: dict[str, str], name: str) -> int:
    value = _need(q, name)
    if not value.isdigit() or int(value) not in (0, 1):
        raise ParamError("OPSQ2002", f"ERROR : INPUT INVALID [{name}]")
    return int(value)


def _period(q: dict[str, str], allowed: str) -> str:
    value = _need(q, "FID_PERIOD_DIV_CODE").upper()
    if value not in allowed:
        raise ParamError("OPSQ2002", "ERROR : INPUT INVALID [FID_PERIOD_DIV_CODE]")
    return value


class Quotations:
    def __init__(self, market: Market):
        self.m = market
        self.rows = RowCache(market)
        sample = market.symbols[0]
        self._unknown_chart = quotes.unknown_output1(list(quotes.chart_output1(market, sample)))
        self._unknown_minute = quotes.unknown_output1(list(quotes.minute_output1(market, sample)))
        self._unknown_price = quotes.unknown_output1(list(quotes.inquire_price_output(market, sample)))
        self.routes = {
            f"{_Q}/inquire-price": ("FHKST01010100", self.inquire_price),
            f"{_Q}/inquire-daily-itemchartprice": ("FHKST03010100", self.daily_chart),
            f"{_Q}/inquire-time-itemchartprice": ("FHKST03010200", self.minute_chart),
            f"{_Q}/inquire-daily-price": ("FHKST01010400", self.daily_price),
            f"{_Q}/inquire-time-dailychartprice": ("FHKST03010230", self.past_minute_chart),
        }
        from app.sim.reference import Reference

        self.history = MinuteHistory(market)
        self.routes.update(Reference(market, ParamError).routes)

    def _known(self, code: str) -> bool:
        return code in self.m.names

    def _unknown(self, key: str, out1: dict | None, array: bool = False) -> bytes:
        payload = {key: [] if array else out1}
        if out1 is not None and key == "output1":
            payload["output2"] = []
        head = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))[:-1].encode()
        return head + b"," + OK_TAIL

    def inquire_price(self, q: dict[str, str]) -> bytes:
        code = _market_and_code(q)
        if not self._known(code):
            return self._unknown("output", self._unknown_price)
        return self.rows.price_body(code)

    def daily_chart(self, q: dict[str, str]) -> bytes:
        code = _market_and_code(q)
        d1, d2 = _date(q, "FID_INPUT_DATE_1"), _date(q, "FID_INPUT_DATE_2")
        period = _period(q, "DWMY")
        adjusted = _flag(q, "FID_ORG_ADJ_PRC") == 0  # 0 = 수정주가, 1 = 원주가
        if not self._known(code):
            return self._unknown("output1", self._unknown_chart)
        page = self.rows.chart_blob(code, period, adjusted).page(d2, d1, CHART_ROWS)
        return self.rows.chart_head(code) + page + b"]," + OK_TAIL

    def minute_chart(self, q: dict[str, str]) -> bytes:
        code = _market_and_code(q)
        hour = _need(q, "FID_INPUT_HOUR_1")
        if len(hour) != 6 or not hour.isdigit():
            raise ParamError("OPSQ2002", "ERROR : INPUT FIELD SIZE ERROR [FID_INPUT_HOUR_1]")
        if not self._known(code):
            return self._unknown("output1", self._unknown_minute)
        page = self.rows.minute_blob(code).page(int(hour), 0, MINUTE_ROWS)
        return self.rows.minute_head(code) + page + b"]," + OK_TAIL

    def past_minute_chart(self, q: dict[str, str]) -> bytes:
        """FHKST03010230: up to 120 minute rows at or before (DATE_1, HOUR_1), across sessions with
        FID_PW_DATA_INCU_YN=Y."""
        code = _market_and_code(q)
        day, hour = _date(q, "FID_INPUT_DATE_1"), _need(q, "FID_INPUT_HOUR_1")
        if len(hour) != 6 or not hour.isdigit():
            raise ParamError("OPSQ2002", "ERROR : INPUT FIELD SIZE ERROR [FID_INPUT_HOUR_1]")
        if not self._known(code):
            return self._unknown("output1", self._unknown_minute)
        past = q.get("FID_PW_DATA_INCU_YN", "N").upper() == "Y"
        page = self.history.page(code, day, hour, past, PAGE_ROWS)
        return self.rows.minute_head(code) + page + b"]," + OK_TAIL

    def daily_price(self, q: dict[str, str]) -> bytes:
        code = _market_and_code(q)
        period = _period(q, "DWM")
        adjusted = _flag(q, "FID_ORG_ADJ_PRC") == 1  # the current official sample: 1 = adjusted
        if not self._known(code):
            return self._unknown("output", None, array=True)
        return self.rows.daily_price_body(code, period, adjusted)
