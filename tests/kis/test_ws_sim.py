"""The websocket client against the simulator: ticks that rebuild the REST minute bars, PINGPONG
echo, the subscription limit, one session per app key, reconnects that re-subscribe and report the gap."""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict

import pytest

from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from app.kis.ws import Backoff, Gap, KisWebSocket, KisWsError, spread
from app.kis.ws_frames import Book, Tick
from app.sim.config import FaultConfig, MarketConfig, SimConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread

MARKET = MarketConfig(seed=5, n_symbols=4, start="2024-05-02", today="2024-06-14")
SYMBOLS = Market(MARKET).symbols
FAST = Backoff(base_s=0.02, cap_s=0.2)


def _sim(**kw):
    faults = FaultConfig(**kw.pop("faults", {}))
    return start_sim_thread(SimConfig(market=MARKET, faults=faults, rest_rate_limit=0, token_interval_s=0, **kw))


def _client(sim, tmp_path) -> KisClient:
    tag = uuid.uuid4().hex
    creds = Credentials(f"WSKEY{tag}", f"WSSECRET{tag}{'x' * 100}")
    return KisClient(KisSettings(base_url=sim.base_url, redis_url="", token_dir=str(tmp_path)), creds)


async def _until(ws: KisWebSocket, done, timeout: float = 30.0) -> list:
    got = []

    async def collect():
        async for event in ws.events():
            got.append(event)
            if done(got):
                return

    await asyncio.wait_for(collect(), timeout)
    return got


def test_ticks_rebuild_the_rest_minute_bars_and_pingpong_is_echoed(tmp_path):
    symbol = SYMBOLS[0]

    async def main(sim):
        async with _client(sim, tmp_path) as kis, KisWebSocket.for_client(kis) as ws:
            await ws.subscribe("H0STCNT0", symbol)
            await ws.subscribe("H0STASP0", SYMBOLS[1])
            events = await _until(ws, lambda ev: isinstance(ev[-1], Tick) and ev[-1].ts.strftime("%H%M") == "1530")
            return events, await kis.minute_bars(symbol), dict(ws.stats)

    with _sim(ws_replay_speed=20_000, ws_ping_interval_s=0.05) as sim:
        events, rest, stats = asyncio.run(main(sim))
        assert sim.stats()["ws_pongs"] >= 1
    assert stats["pings"] >= 1 and stats["bad_frames"] == 0
    assert any(isinstance(e, Book) and e.symbol == SYMBOLS[1] for e in events)
    minutes: dict[str, list[Tick]] = defaultdict(list)
    for t in (e for e in events if isinstance(e, Tick)):
        minutes[t.ts.strftime("%H%M00")].append(t)
    bars = rest.to_pylist()
    assert sorted(minutes) == [b["ts"].strftime("%H%M%S") for b in bars]
    prev_cum = 0
    for b in bars:
        ticks = minutes[b["ts"].strftime("%H%M%S")]
        px = [t.price for t in ticks]
        assert (px[0], max(px), min(px), px[-1]) == (b["open"], b["high"], b["low"], b["close"])
        assert sum(t.quantity for t in ticks) == b["volume"]
        assert ticks[-1].cum_value - prev_cum == b["value"]  # the tape's running value agrees with REST's
        prev_cum = ticks[-1].cum_value
        assert all(t.ts.date() == b["ts"].date() and t.session == "20" for t in ticks)


def test_subscription_limit_and_one_session_per_app_key(tmp_path):
    pairs = [("H0STCNT0", f"{i:06d}") for i in range(83)]
    assert [len(s) for s in spread(pairs[:82], 2)] == [41, 41]
    with pytest.raises(KisWsError, match=r"83 websocket subscriptions .* 41 .* at most 82") as info:
        spread(pairs, 2)
    assert "\n" not in str(info.value) and "fix:" in str(info.value)

    async def main(sim):
        async with _client(sim, tmp_path) as kis:
            async with KisWebSocket.for_client(kis, max_subscriptions=2) as ws:
                await ws.subscribe("H0STCNT0", SYMBOLS[0])
                await ws.subscribe("H0STCNT0", SYMBOLS[1])
                with pytest.raises(KisWsError, match="3 websocket subscriptions asked, but KIS allows 2"):
                    await ws.subscribe("H0STCNT0", SYMBOLS[2])  # refused here, before the server sees it
                async with KisWebSocket.for_client(kis) as second:
                    with pytest.raises(KisWsError, match="OPSP8996") as refused:
                        await second.subscribe("H0STCNT0", SYMBOLS[3])
                    assert "another app key" in str(refused.value)
            async with KisWebSocket.for_client(kis) as ws:  # the server's own limit (set to 3 here)
                for s in SYMBOLS[:3]:
                    await ws.subscribe("H0STASP0", s)
                with pytest.raises(KisWsError, match="allows 41"):
                    await ws.subscribe("H0STASP0", SYMBOLS[3])
                assert ws.subscriptions == [("H0STASP0", s) for s in SYMBOLS[:3]]

    with _sim(ws_replay_speed=50, ws_max_subscriptions=3) as sim:
        asyncio.run(main(sim))


def test_dropped_connection_reconnects_resubscribes_and_reports_the_gap(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main(sim):
        async with _client(sim, tmp_path) as kis, KisWebSocket.for_client(kis, backoff=FAST) as ws:
            for s in SYMBOLS[:2]:
                await ws.subscribe("H0STCNT0", s)
            before = await _until(ws, lambda ev: len({e.symbol for e in ev}) == 2 and len(ev) >= 20)
            assert await asyncio.to_thread(sim.drop_websockets) == 1
            after = await _until(ws, _both_resumed)
            return before, after, dict(ws.stats), await kis.approval_key()

    with _sim(ws_replay_speed=600) as sim:
        before, after, stats, key = asyncio.run(main(sim))
        server = sim.stats()
    assert "reconnecting" in caplog.text and key not in caplog.text  # the approval key is never logged
    gap = next(e for e in after if isinstance(e, Gap))
    seen = {}
    for t in before + [e for e in after[:after.index(gap)] if isinstance(e, Tick)]:
        seen[t.symbol] = t.ts
    assert gap.last_seen == seen and gap.attempts == 1 and gap.resumed_at > gap.dropped_at
    resumed = [e for e in after[after.index(gap) + 1:] if isinstance(e, Tick)]
    for s in SYMBOLS[:2]:  # the feed resumes for every subscription, later than it stopped
        assert min(t.ts for t in resumed if t.symbol == s) > gap.last_seen[s]
    assert server["ws_connections"] == 2 and server["ws_subscribed"] == 4 and server["ws_drops"] == 1
    assert stats["reconnects"] == 1 and stats["connections"] == 2


def _both_resumed(events: list) -> bool:
    gaps = [k for k, e in enumerate(events) if isinstance(e, Gap)]
    return bool(gaps) and len({e.symbol for e in events[gaps[0]:] if isinstance(e, Tick)}) == 2


@pytest.mark.parametrize("healthy_after_s, attempts", [(0.0, [1, 1, 1]), (60.0, [1, 2, 3])])
def test_retry_count_starts_again_after_a_healthy_connection(tmp_path, healthy_after_s, attempts):
    async def main(sim):
        async with _client(sim, tmp_path) as kis, KisWebSocket.for_client(
                kis, backoff=FAST, healthy_after_s=healthy_after_s) as ws:
            await ws.subscribe("H0STCNT0", SYMBOLS[0])
            events = await _until(ws, lambda ev: sum(isinstance(e, Gap) for e in ev) == 3)
            return [e.attempts for e in events if isinstance(e, Gap)]

    with _sim(ws_replay_speed=2000, faults={"ws_drop_after_frames": 3}) as sim:
        assert asyncio.run(main(sim)) == attempts
