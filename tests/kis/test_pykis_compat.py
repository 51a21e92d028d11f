"""An independent, widely used client (python-kis) against the simulator: pointed at it only through
its domain constants, it resolves symbols (search-info), collects daily bars equal to ours, and
receives realtime price events for the symbols it subscribes."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid

import pykis.client.websocket
import pykis.kis
import pytest
from pykis import PyKis

from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from app.sim.config import MarketConfig, SimConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread

MARKET = MarketConfig(seed=5, n_symbols=4, start="2023-01-02", today="2024-06-14")
SYMBOLS = Market(MARKET).symbols
TODAY = dt.date(2024, 6, 14)


@pytest.fixture
def sim(monkeypatch):
    with start_sim_thread(SimConfig(market=MARKET, rest_rate_limit=0, token_interval_s=0, ws_replay_speed=100)) as handle:
        monkeypatch.setattr(pykis.kis, "REAL_DOMAIN", handle.base_url)
        monkeypatch.setattr(pykis.client.websocket, "WEBSOCKET_REAL_DOMAIN", handle.base_url.replace("http", "ws"))
        yield handle


def _pykis() -> PyKis:
    tag = uuid.uuid4().hex  # python-kis checks the documented lengths: 36 and 180
    return PyKis(id="simuser", account="00000000-01", appkey=f"PK{tag}".ljust(36, "k"),
                 secretkey=f"PS{tag}".ljust(180, "s"), keep_token=False)


def _ours(sim, tmp_path, symbol: str, start: dt.date, end: dt.date):
    async def main():
        creds = Credentials(f"OURS{uuid.uuid4().hex}", "s" * 180)
        settings = KisSettings(base_url=sim.base_url, redis_url="", token_dir=str(tmp_path))
        async with KisClient(settings, creds) as kis:
            return await kis.daily_bars(symbol, start, end, adjusted=False)

    return asyncio.run(main())


def test_pykis_daily_bars_equal_ours(sim, tmp_path):
    kis = _pykis()
    try:
        start, end = dt.date(2023, 3, 2), dt.date(2024, 6, 14)  # over 300 sessions: python-kis pages too
        for symbol in SYMBOLS[:2]:
            stock = kis.stock(symbol)  # resolves the symbol through search-info
            assert (stock.symbol, stock.market) == (symbol, "KRX")
            theirs = stock.chart(start=start, end=end)  # raw prices, python-kis's default
            ours = _ours(sim, tmp_path, symbol, start, end).to_pylist()
            assert len(theirs.bars) == len(ours) > 300
            for bar, row in zip(theirs.bars, ours):
                assert bar.time.date() == row["ts"].date()
                assert (float(bar.open), float(bar.high), float(bar.low), float(bar.close)) == (
                    row["open"], row["high"], row["low"], row["close"])
                assert (bar.volume, int(bar.amount)) == (row["volume"], row["value"])
    finally:
        kis.close()


@pytest.mark.slow
def test_pykis_receives_realtime_prices_for_subscribed_symbols(sim):
    kis = _pykis()
    got: dict[str, list] = {s: [] for s in SYMBOLS[:2]}
    enough = threading.Event()

    def on_price(_sender, event) -> None:
        got[event.response.symbol].append(event.response)
        if all(len(v) >= 5 for v in got.values()):
            enough.set()

    tickets = []
    try:
        for s in SYMBOLS[:2]:
            tickets.append(kis.stock(s).on("price", on_price))
            # python-kis asks for a new approval key with every subscribe message, and KIS (like the
            # simulator) issues at most one a second
            time.sleep(1.1)
        assert enough.wait(30), {s: len(v) for s, v in got.items()}
    finally:
        for t in tickets:  # an unsubscribe message asks for an approval key too
            t.unsubscribe()
            time.sleep(1.1)
        kis.websocket.disconnect()
        kis.close()
    truth = {s: Market(MARKET).minute_bars(s) for s in SYMBOLS[:2]}
    assert got[SYMBOLS[0]][0].time.strftime("%H%M%S") == "090000"  # the first subscription opens the tape
    for symbol, prices in got.items():
        assert all(p.symbol == symbol and p.time.date() == TODAY for p in prices)
        lo, hi = min(truth[symbol].column("low").to_pylist()), max(truth[symbol].column("high").to_pylist())
        assert all(lo <= float(p.price) <= hi for p in prices)  # today's prices of that very symbol
    assert sim.stats()["ws_subscribed"] == 2

