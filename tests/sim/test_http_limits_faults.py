"""The per-app-key sliding window (EGW00201 as HTTP 500) and each injected fault, reproducibly seeded."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from app.sim.config import FaultConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread
from sim_testutil import Kis, sim_config, small_market

MARKET = small_market(n_symbols=2, start="2026-10-01")
PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": Market(MARKET).symbols[0]}


async def _burst(kis: Kis, n: int) -> list[int]:
    replies = await asyncio.gather(*(kis.get("inquire-price", PARAMS) for _ in range(n)))
    for r in replies:
        if r.status == 500:
            assert r.json() == {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}
    return [r.status for r in replies]


async def test_the_n_plus_first_request_in_a_second_is_refused_then_later_ones_pass():
    with start_sim_thread(sim_config(market=MARKET, rest_rate_limit=5)) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            sim.reset_stats()
            t0 = time.monotonic()
            statuses = await _burst(kis, 6)
            assert sorted(statuses) == [200] * 5 + [500]
            await asyncio.sleep(max(0.0, 1.05 - (time.monotonic() - t0)))
            assert await _burst(kis, 5) == [200] * 5
            other = Kis(session, sim.base_url, "key-2", "secret-2")  # its own window
            await other.issue()
            assert (await other.get("inquire-price", PARAMS)).status == 200
        stats = sim.stats()
    assert stats["rate_limited"] == 1 and stats["max_in_window"] == 6 and stats["spurious_rate_limited"] == 0


async def test_the_window_slides_rather_than_resetting_on_the_second():
    with start_sim_thread(sim_config(market=MARKET, rest_rate_limit=4)) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            assert await _burst(kis, 3) == [200] * 3
            await asyncio.sleep(0.6)
            # 3 in the window already: one more fits, the next two do not, whatever the wall-clock second
            assert sorted(await _burst(kis, 3)) == [200, 500, 500]
            await asyncio.sleep(0.5)  # the first three have left the window, the fourth has not
            assert sorted(await _burst(kis, 4)) == [200, 200, 200, 500]
        stats = sim.stats()
    assert stats["rate_limited"] == 3 and stats["max_in_window"] == 7  # 3 + 3 within 0.6 s, + 1 refused later


async def test_paper_env_defaults_to_one_request_per_second():
    cfg = sim_config(market=MARKET, env="paper")
    cfg.rest_rate_limit = None
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            assert sorted(await _burst(kis, 2)) == [200, 500]


async def _fault_run(faults: FaultConfig, n: int, fresh_connections: bool = False) -> tuple[list, dict]:
    with start_sim_thread(sim_config(market=MARKET, faults=faults)) as sim:
        conn = aiohttp.TCPConnector(force_close=True) if fresh_connections else None
        async with aiohttp.ClientSession(connector=conn) as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            seen = []
            for _ in range(n):
                t0 = time.monotonic()
                try:
                    r = await kis.get("inquire-price", PARAMS)
                    seen.append((r.status, r.headers.get("Content-Type", ""), r.text, time.monotonic() - t0))
                except aiohttp.ServerDisconnectedError:
                    seen.append(("disconnected", "", "", time.monotonic() - t0))
        return seen, sim.stats()


async def test_spurious_rate_limit_fault():
    seen, stats = await _fault_run(FaultConfig(seed=1, spurious_rate_limit=1.0), 3)
    assert [s[0] for s in seen] == [500] * 3 and all('"EGW00201"' in s[2] for s in seen)
    assert stats["spurious_rate_limited"] == 3 and stats["rate_limited"] == 0


async def test_server_error_html_fault():
    seen, stats = await _fault_run(FaultConfig(seed=1, server_error_html=1.0), 6)
    assert {s[0] for s in seen} <= {502, 503} and all(s[1].startswith("text/html") for s in seen)
    assert all(s[2].lstrip().startswith("<html>") for s in seen)
    assert stats["faults"] == {"server_error_html": 6}


async def test_slow_fault():
    seen, stats = await _fault_run(FaultConfig(seed=1, slow=1.0, slow_seconds=0.3), 2)
    assert all(s[0] == 200 and s[3] >= 0.3 for s in seen) and stats["faults"] == {"slow": 2}


async def test_drop_fault_closes_the_connection_without_an_answer():
    seen, stats = await _fault_run(FaultConfig(seed=1, drop=1.0), 2, fresh_connections=True)
    assert [s[0] for s in seen] == ["disconnected"] * 2
    # aiohttp retries an idempotent GET once on a dropped connection: every try was dropped
    assert set(stats["faults"]) == {"drop"} and stats["faults"]["drop"] == stats["requests"] - 1 >= 2


async def test_a_seeded_fault_mix_is_reproducible():
    faults = FaultConfig(seed=42, spurious_rate_limit=0.15, server_error_html=0.15, malformed_json=0.15)
    a, stats_a = await _fault_run(faults, 25)
    b, stats_b = await _fault_run(faults, 25)
    c, _ = await _fault_run(FaultConfig(seed=43, spurious_rate_limit=0.15, server_error_html=0.15,
                                        malformed_json=0.15), 25)
    outcome = lambda seen: [(s[0], len(s[2]) if s[0] == 200 else 0) for s in seen]  # noqa: E731
    assert outcome(a) == outcome(b) != outcome(c)
    assert stats_a["faults"] == stats_b["faults"] and len(stats_a["faults"]) == 3
