"""Redis-shared pacing: sharers stay under the limit together; a lost Redis degrades safely."""
from __future__ import annotations

import asyncio
import logging
import time


from app.kis.redis_conn import connect
from app.kis.redis_limiter import RedisLimiter
from kis_testutil import max_in_window
from tests.conftest import shared_redis_url

SHARED_REDIS = shared_redis_url()  # read after the session made sure one answers


async def _drive(limiter: RedisLimiter, n: int, stamps: list[float], concurrency: int = 8) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await limiter.acquire()
            stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(n)))


def test_two_limiters_share_one_pace(redis_prefix):
    async def main() -> list[float]:
        stamps: list[float] = []
        a, b = connect(SHARED_REDIS), connect(SHARED_REDIS)
        la = RedisLimiter(a, "kid", 40, prefix=redis_prefix)
        lb = RedisLimiter(b, "kid", 40, prefix=redis_prefix)
        await asyncio.gather(_drive(la, 40, stamps), _drive(lb, 40, stamps))
        assert la.sharers == 2 and lb.sharers == 2
        await la.close(), await lb.close()
        await a.aclose(), await b.aclose()
        return stamps

    t0 = time.monotonic()
    stamps = sorted(asyncio.run(main()))
    assert max_in_window(stamps) <= 40
    assert max_in_window(stamps, 0.25) <= 12  # interleaved evenly, not two bursts
    elapsed = stamps[-1] - t0
    assert 79 / 40 * 0.95 < elapsed < 79 / 39 + 0.3  # close to the shared limit, not double


def test_redis_lost_mid_run_falls_back_with_one_warning(private_redis, caplog):
    limit = 20

    async def main() -> tuple[list[float], list[RedisLimiter]]:
        stamps: list[float] = []
        clients = [connect(private_redis.url), connect(private_redis.url)]
        lims = [RedisLimiter(c, "kid", limit, prefix="t:", retry_s=30) for c in clients]

        async def kill_later() -> None:
            await asyncio.sleep(1.0)
            private_redis.stop()

        await asyncio.gather(kill_later(), *(_drive(lim, 30, stamps) for lim in lims))
        for c in clients:
            await c.aclose()
        return stamps, lims

    with caplog.at_level(logging.WARNING, logger="app.kis.redis_limiter"):
        stamps, lims = asyncio.run(main())
    assert all(lim.degraded for lim in lims)
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 2  # one per limiter, not one per request
    assert max_in_window(sorted(stamps)) <= limit


def test_redis_comes_back(private_redis):
    async def main() -> RedisLimiter:
        client = connect(private_redis.url)
        lim = RedisLimiter(client, "kid", 50, prefix="t:", retry_s=0.2)
        await lim.acquire()
        private_redis.stop()
        await lim.acquire()
        assert lim.degraded
        private_redis.start()
        for _ in range(30):
            await lim.acquire()
        await client.aclose()
        return lim

    lim = asyncio.run(main())
    assert not lim.degraded
