"""Helpers for the simulator tests: configs and a tiny client that speaks KIS over HTTP."""
from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp
from app.sim.config import FaultConfig, MarketConfig, SimConfig

TODAY = "2026-11-20"  # a Friday session
Q = "/uapi/domestic-stock/v1/quotations"
TR = {
    "inquire-price": "FHKST01010100",
    "inquire-daily-itemchartprice": "FHKST03010100",
    "inquire-time-itemchartprice": "FHKST03010200",
    "inquire-daily-price": "FHKST01010400",
}


def small_market(**kw) -> MarketConfig:
    base = dict(n_symbols=8, start="2024-06-03", today=TODAY)
    base.update(kw)
    return MarketConfig(**base)


def sim_config(**kw) -> SimConfig:
    market = kw.pop("market", None) or small_market()
    faults = kw.pop("faults", None) or FaultConfig()
    kw.setdefault("rest_rate_limit", 0)
    return SimConfig(market=market, faults=faults, **kw)


@dataclass
class Reply:
    status: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)


class Kis:
    """Speaks to the simulator as a KIS client would (headers of docs/kis.md §3.1)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, appkey: str = "key-1", appsecret: str = "secret-1"):
        self.s, self.base, self.appkey, self.appsecret = session, base_url, appkey, appsecret
        self.token: str | None = None

    async def post(self, path: str, body: dict) -> Reply:
        async with self.s.post(self.base + path, json=body, headers={"content-type": "application/json"}) as r:
            return Reply(r.status, dict(r.headers), await r.text())

    async def issue(self) -> Reply:
        reply = await self.post("/oauth2/tokenP", {"grant_type": "client_credentials", "appkey": self.appkey,
                                                   "appsecret": self.appsecret})
        if reply.status == 200:
            self.token = reply.json()["access_token"]
        return reply

    def headers(self, tr_id: str, **override) -> dict:
        h = {"content-type": "application/json; charset=utf-8", "authorization": f"Bearer {self.token}",
             "appkey": self.appkey, "appsecret": self.appsecret, "tr_id": tr_id, "custtype": "P"}
        h.update(override)
        return {k: v for k, v in h.items() if v is not None}

    async def get(self, endpoint: str, params: dict, tr_id: str | None = None, **header_override) -> Reply:
        headers = self.headers(tr_id or TR[endpoint], **header_override)
        async with self.s.get(f"{self.base}{Q}/{endpoint}", params=params, headers=headers) as r:
            return Reply(r.status, dict(r.headers), await r.text())


def chart_params(symbol: str, d1: str, d2: str, period: str = "D", adj: str = "0") -> dict:
    return {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol, "FID_INPUT_DATE_1": d1,
            "FID_INPUT_DATE_2": d2, "FID_PERIOD_DIV_CODE": period, "FID_ORG_ADJ_PRC": adj}


def minute_params(symbol: str, hour: str) -> dict:
    return {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": hour, "FID_PW_DATA_INCU_YN": "N"}


