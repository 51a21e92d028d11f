"""KIS client throughput without a rate limit: bars/s for daily and minute data, one process.

The simulator runs in its own process with ``rest_rate_limit=0``; the client collects every
symbol's whole daily history (2016 to today, ~21 pages each) and today's minute bars (~13 pages
each) with many requests in flight, then again as a naive sequential client (one request at a
time, the same parser) in the same run.

    .venv/bin/python bench/kis_throughput.py [--symbols 32] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid

from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from app.sim.config import MarketConfig, SimConfig
from app.sim.runner import start_sim_process

START, TODAY = "2016-01-04", "2024-06-14"


async def collect(kis: KisClient, kind: str, symbols: list[str], concurrent: bool) -> int:
    async def one(symbol: str):
        if kind == "daily":
            return await kis.daily_bars(symbol, START, TODAY)
        return await kis.minute_bars(symbol)

    if concurrent:
        tables = await kis.map_symbols(one, symbols)
    else:
        tables = [await one(s) for s in symbols]
    return sum(t.num_rows for t in tables)


async def measure(base_url: str, token_dir: str, symbols: list[str], rounds: int) -> dict:
    settings = KisSettings(base_url=base_url, rate_limit=0, redis_url="", token_dir=token_dir, max_connections=32)
    out: dict = {}
    async with KisClient(settings, Credentials(f"bench-{uuid.uuid4().hex}", "s" * 180)) as kis:
        await kis.access_token()
        for kind in ("daily", "minute"):
            row = {}
            for mode, concurrent in (("concurrent", True), ("sequential", False)):
                best, requests0 = 0.0, kis.stats()["requests"]
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    bars = await collect(kis, kind, symbols, concurrent)
                    best = max(best, bars / (time.perf_counter() - t0))
                row[mode] = {"bars_per_round": bars, "best_bars_per_s": round(best),
                             "requests_per_round": (kis.stats()["requests"] - requests0) // rounds}
            row["speedup"] = round(row["concurrent"]["best_bars_per_s"] / row["sequential"]["best_bars_per_s"], 2)
            out[kind] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    market = MarketConfig(seed=3, n_symbols=args.symbols, start=START, today=TODAY)
    from app.sim.market import Market

    symbols = Market(market).symbols
    with start_sim_process(SimConfig(rest_rate_limit=0, market=market)) as sim, tempfile.TemporaryDirectory() as tok:
        results = asyncio.run(measure(sim.base_url, tok, symbols, args.rounds))
    print(json.dumps({
        "bench": "kis_throughput", "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "symbols": len(symbols), "rounds": args.rounds, "goal_bars_per_s": 100_000, **results,
    }, indent=2))


if __name__ == "__main__":
    main()
