"""``python -m app.sim.bench``: chart pages per second served by one simulator process.

The server runs in its own process (``start_sim_process``, one core) with the rate limit off; a
load generator in this process keeps ``--concurrency`` requests in flight for ``--seconds`` and
counts 200 responses carrying 100 rows. The baseline, measured in the same run, is the rate of
``/sim/stats`` (a trivial JSON answer): the cost of aiohttp alone on this machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from app.sim.config import MarketConfig, SimConfig
from app.sim.runner import start_sim_process

CHART = "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice"


async def _load(url: str, headers: dict, params_for, seconds: float, concurrency: int, rows: int | None) -> dict:
    done = bad = 0
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal done, bad
        n = k
        while time.perf_counter() < stop_at:
            async with session.get(url, headers=headers, params=params_for(n)) as resp:
                body = await resp.read()
            n += concurrency
            ok = resp.status == 200 and (rows is None or body.count(b'"stck_bsop_date"') == rows)
            done, bad = done + ok, bad + (not ok)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"ok": done, "bad": bad, "seconds": round(elapsed, 2), "per_s": round(done / elapsed, 1)}


async def _run(base: str, symbols: list[str], seconds: float, concurrency: int) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/oauth2/tokenP", json={"grant_type": "client_credentials", "appkey": "bench",
                                                          "appsecret": "bench"}) as r:
            token = (await r.json())["access_token"]
    headers = {"authorization": f"Bearer {token}", "appkey": "bench", "appsecret": "bench",
               "tr_id": "FHKST03010100", "custtype": "P", "content-type": "application/json; charset=utf-8"}

    def chart(n: int) -> dict:
        return {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbols[n % len(symbols)],
                "FID_INPUT_DATE_1": "20160101", "FID_INPUT_DATE_2": f"{2025 - n % 5}1231",
                "FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "0"}

    # one page per symbol first: the per-symbol caches are built once, as in a collection run
    async with aiohttp.ClientSession() as s:
        for n in range(len(symbols)):
            async with s.get(base + CHART, headers=headers, params=chart(n)) as r:
                await r.read()
    baseline = await _load(base + "/sim/stats", {}, lambda n: {}, seconds, concurrency, None)
    pages = await _load(base + CHART, headers, chart, seconds, concurrency, 100)
    return {"baseline_stats_endpoint": baseline, "chart_pages_100_rows": pages}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--n-symbols", type=int, default=50)
    a = p.parse_args()
    cfg = SimConfig(rest_rate_limit=0, market=MarketConfig(n_symbols=a.n_symbols, today="2026-11-20"))
    from app.sim.universe import symbol_codes

    symbols = symbol_codes(cfg.market.seed, cfg.market.n_symbols)
    with start_sim_process(cfg) as sim:
        result = asyncio.run(_run(sim.base_url, symbols, a.seconds, a.concurrency))
        result["server_stats"] = sim.stats()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
