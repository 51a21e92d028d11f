"""In-process pacing: even spacing (no bursts), a pace under the limit, fair shares."""
from __future__ import annotations

import asyncio
import time

import pytest

from app.kis.ratelimit import LocalLimiter, paced_rate
from kis_testutil import max_in_window


def test_paced_rate_whole_shares():
    assert paced_rate(18, 0.025) == pytest.approx(17.55)
    assert paced_rate(18, 0.0, sharers=2) == 9
    assert paced_rate(18, 0.0, sharers=4) == 4  # floor(4.5): four streams of <=4 per second each
    assert paced_rate(1, 0.025) == pytest.approx(0.975)
    for n in range(1, 10):
        r = paced_rate(18, 0.01, sharers=n)
        assert n * (int(r) + 1) <= 18  # closed-window worst case of n independent even streams


def test_local_limiter_spaces_requests_evenly():
    limiter = LocalLimiter(50.0)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(40)))

    t0 = time.monotonic()
    asyncio.run(main())
    stamps.sort()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= limiter.interval - limiter.tolerance - 0.002  # no burst: spaced even after a hiccup
    assert stamps[-1] - t0 >= 39 * 0.02 - 0.002
    assert max_in_window(stamps, 0.2) <= 11


def test_reserve_is_max_of_now_and_tat():
    limiter = LocalLimiter(10.0)
    t0 = time.monotonic()
    first, second = limiter.reserve(), limiter.reserve()
    assert first == pytest.approx(t0, abs=0.005)
    assert second - first == pytest.approx(0.1)
    time.sleep(0.25)
    assert limiter.reserve() == pytest.approx(time.monotonic(), abs=0.005)  # idle time is no burst credit


def test_late_wake_up_moves_the_rest_of_the_schedule():
    limiter = LocalLimiter(17.55)
    assert limiter.tolerance == pytest.approx((18 / 17.55 - 1) / 2)
    stamps: list[float] = []

    async def main() -> None:
        async def one() -> None:
            await limiter.acquire()
            stamps.append(time.monotonic())

        tasks = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(0.1)
        time.sleep(0.2)  # the event loop is blocked: the slots due meanwhile are missed
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert limiter.late >= 1  # a late request moved the schedule (a loaded machine may add a late wake-up)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= limiter.interval - limiter.tolerance - 0.002  # no bunch after the stall
    # the stall (until 0.3 s; the third slot was due at 2 intervals) delays the rest by its excess
    expected = 7 * limiter.interval + (0.3 - 2 * limiter.interval - limiter.tolerance)
    assert stamps[-1] - stamps[0] == pytest.approx(expected, abs=0.03)
