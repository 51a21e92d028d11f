"""Reference endpoints: product info (``search-info``, CTPF1604R) and the trading-day calendar
(``chk-holiday``, CTCA0903R). Clients such as python-kis resolve a symbol with the first before
anything else; the second answers whether a day is a KRX session.
"""
from __future__ import annotations

import datetime as dt
import json

from app.krx import calendar
from app.sim import universe
from app.sim.market import Market
from app.sim.rows import OK_TAIL

_Q = "/uapi/domestic-stock/v1/quotations"
STOCK_TYPE = "300"  # PRDT_TYPE_CD of a domestic stock
NOT_FOUND = {"rt_cd": "7", "msg_cd": "KIOK0560", "msg1": "조회할 자료가 없습니다"}


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _ok(payload: dict) -> bytes:
    return _dumps(payload)[:-1] + b"," + OK_TAIL


class Reference:
    def __init__(self, market: Market, param_error):
        self.m, self._param_error = market, param_error
        self.routes = {
            f"{_Q}/search-info": ("CTPF1604R", self.search_info),
            f"{_Q}/chk-holiday": ("CTCA0903R", self.chk_holiday),
        }

    def _need(self, q: dict[str, str], name: str) -> str:
        value = q.get(name)
        if not value:
            raise self._param_error("OPSQ2002", f"ERROR : INPUT FIELD NOT FOUND [{name}]")
        return value

    def search_info(self, q: dict[str, str]) -> bytes:
        """One listed stock's product info; rt_cd "7" for an unknown code or a non-stock type."""
        code, kind = self._need(q, "PDNO"), self._need(q, "PRDT_TYPE_CD")
        if kind != STOCK_TYPE or code not in self.m.names:
            return _dumps(NOT_FOUND)
        return _ok({"output": self.product(code)})

    def product(self, code: str) -> dict[str, str]:
        name = self.m.names[code]
        english = f"SIM {code}"
        kosdaq = self.m.kosdaq[code]
        return {
            "pdno": f"00000A{code}", "prdt_type_cd": STOCK_TYPE, "prdt_name": name, "prdt_name120": name,
            "prdt_abrv_name": name, "prdt_eng_name": english, "prdt_eng_name120": english,
            "prdt_eng_abrv_name": english, "std_pdno": universe.isin(code), "shtn_pdno": code,
            "prdt_sale_stat_cd": "", "prdt_risk_grad_cd": "", "prdt_clsf_cd": "",
            "prdt_clsf_name": "코스닥" if kosdaq else "유가증권", "sale_strt_dt": "", "sale_end_dt": "",
            "wrap_asst_type_cd": "", "ivst_prdt_type_cd": "", "ivst_prdt_type_cd_name": "",
            "frst_erlm_dt": "",
        }

    def chk_holiday(self, q: dict[str, str]) -> bytes:
        """Days from BASS_DT (or the day after CTX_AREA_NK) to the end of that month, one row each."""
        start = self._day(q.get("CTX_AREA_NK") or "", 1) or self._day(self._need(q, "BASS_DT"), 0)
        if start is None:
            raise self._param_error("OPSQ2002", "ERROR : INPUT FIELD SIZE ERROR [BASS_DT]")
        nxt = (start.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        days = [start + dt.timedelta(days=k) for k in range((nxt - start).days)]
        rows = [self._day_row(d) for d in days]
        return _ok({"ctx_area_nk": days[-1].strftime("%Y%m%d"), "ctx_area_fk": start.strftime("%Y%m%d"),
                    "output": rows})

    @staticmethod
    def _day(text: str, shift: int) -> dt.date | None:
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date() + dt.timedelta(days=shift)
        except ValueError:
            return None

    @staticmethod
    def _day_row(day: dt.date) -> dict[str, str]:
        """``wday_dvsn_cd`` 01 Sunday .. 07 Saturday; every flag follows the KRX session calendar."""
        open_ = "Y" if calendar.is_session(day) else "N"
        return {"bass_dt": day.strftime("%Y%m%d"), "wday_dvsn_cd": f"{(day.isoweekday() % 7) + 1:02d}",
                "bzdy_yn": open_, "tr_day_yn": open_, "opnd_yn": open_, "sttl_day_yn": open_}
