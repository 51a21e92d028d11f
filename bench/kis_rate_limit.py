"""KIS client pacing against the simulator's sliding-window limit: achieved ÷ limit, rejections.

The simulator (a separate process) counts requests per app key in any sliding second at
arrival and rejects the excess with EGW00201. Each scenario sends ``--seconds`` worth of quote
requests with 64 in flight and reports the achieved rate (requests on the wire between the first
and the last send) over the configured limit, and the server's count of rejections. Baselines in
the same run: the Redis-shared limiter (``REDIS_URL``, else 127.0.0.1:6379), and the same
client with a fixed-window limiter (``limit`` requests per calendar
second, as several public clients do) and with a token bucket of burst ``limit``.

    .venv/bin/python bench/kis_rate_limit.py [--seconds 8]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
import uuid

from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.ratelimit import RateLimiter, paced_rate, shared_local_limiter
from app.kis.redis_conn import connect
from app.kis.redis_limiter import RedisLimiter
from app.kis.settings import KisSettings
from app.sim.config import FaultConfig, MarketConfig, SimConfig
from app.sim.runner import start_sim_process

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
MARKET = MarketConfig(seed=3, n_symbols=8, start="2024-01-02", today="2024-06-14")


class Stamped:
    """Wraps a limiter and records when each request was let go."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner, self.rate, self.sends = inner, inner.rate, []

    async def acquire(self) -> None:
        await self.inner.acquire()
        self.sends.append(time.monotonic())

    async def close(self) -> None:
        await self.inner.close()


class FixedWindow:
    """Baseline: at most ``limit`` per calendar second, then sleep to the next second."""

    def __init__(self, limit: float) -> None:
        self.limit, self.rate, self.window, self.used = int(limit), limit, math.floor(time.monotonic()), 0

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            if math.floor(now) != self.window:
                self.window, self.used = math.floor(now), 0
            if self.used < self.limit:
                self.used += 1
                return
            await asyncio.sleep(self.window + 1 - now)

    async def close(self) -> None:
        return None


class TokenBucket:
    """Baseline: refill at ``limit``/s, burst capacity ``limit``."""

    def __init__(self, limit: float) -> None:
        self.rate, self.cap, self.tokens, self.t = limit, limit, limit, time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.cap, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)

    async def close(self) -> None:
        return None


async def drive(sim, env: str, limit: float, seconds: float, limiter_kind: str, token_dir: str,
                symbols: list[str]) -> dict:
    creds = Credentials(f"bench-{uuid.uuid4().hex}", "s" * 180)
    settings = KisSettings(env=env, base_url=sim.base_url, rate_limit=limit, redis_url="", token_dir=token_dir)
    key_id = creds.key_id(settings.url)
    redis = connect(REDIS_URL) if limiter_kind == "gcra_redis" else None
    inner = {
        "gcra": lambda: shared_local_limiter(key_id, paced_rate(limit, settings.rate_margin)),
        "gcra_redis": lambda: RedisLimiter(redis, key_id, limit, margin=settings.rate_margin, prefix="bench:"),
        "fixed_window": lambda: FixedWindow(limit),
        "token_bucket": lambda: TokenBucket(limit),
    }[limiter_kind]()
    stamped = Stamped(inner)
    n = max(3, round(seconds * limit))
    async with KisClient(settings, creds, limiter=stamped) as kis:
        await kis.access_token()
        before = sim.stats()
        stamped.sends.clear()
        t0 = time.monotonic()
        await kis.map_symbols(kis.inquire_price, [symbols[i % len(symbols)] for i in range(n)], concurrency=64)
        wall = time.monotonic() - t0
        counters = kis.stats()
    if redis is not None:
        await redis.delete(f"bench:rl:{key_id}:tat", f"bench:rl:{key_id}:live")
        await redis.aclose()
    after = sim.stats()
    sends = stamped.sends
    achieved = (len(sends) - 1) / (sends[-1] - sends[0])
    return {
        "limiter": limiter_kind, "limit": limit, "successful_calls": n, "requests_sent": len(sends),
        "achieved_req_per_s": round(achieved, 3), "achieved_over_limit": round(achieved / limit, 4),
        "successful_per_s_wall": round(n / wall, 3),
        "server_rate_limited": after["rate_limited"] - before["rate_limited"],
        "server_spurious_rate_limited": after["spurious_rate_limited"] - before["spurious_rate_limited"],
        "server_max_in_window": after["max_in_window"], "client_retries": counters["retries"],
        "late_wakeups": counters["late_wakeups"],
    }


def scenario(name: str, cfg: SimConfig, limit: float, seconds: float, kinds: list[str]) -> dict:
    from app.sim.market import Market

    symbols = Market(cfg.market).symbols
    with start_sim_process(cfg) as sim, tempfile.TemporaryDirectory() as tokens:
        runs = []
        for kind in kinds:
            sim.reset_stats()
            runs.append(asyncio.run(drive(sim, cfg.env, limit, seconds, kind, tokens, symbols)))
    return {"scenario": name, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    base = dict(market=MARKET, token_interval_s=60.0)
    out = {
        "bench": "kis_rate_limit", "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "seconds_per_run": args.seconds,
        "results": [
            scenario("real 18/s", SimConfig(env="real", **base), 18.0, args.seconds,
                     ["gcra", "gcra_redis", "fixed_window", "token_bucket"]),
            scenario("paper 1/s", SimConfig(env="paper", **base), 1.0, args.seconds, ["gcra"]),
            scenario("real 18/s, 2% spurious EGW00201",
                     SimConfig(env="real", faults=FaultConfig(seed=1, spurious_rate_limit=0.02), **base),
                     18.0, args.seconds, ["gcra"]),
        ],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
