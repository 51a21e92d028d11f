"""In-process request pacing (GCRA / virtual scheduling).

KIS counts requests per app key in any sliding one-second window, at arrival. A token bucket with
a burst above 1 can put more than the limit into one server-side second, so every request instead
reserves the next slot ``max(now, tat)`` and moves ``tat`` on by one interval: requests leave evenly
spaced and never in bursts. The pace sits a small margin under the limit so that network jitter
cannot squeeze ``limit + 1`` arrivals into one second.

That margin is also a time budget: a request that leaves its slot late moves towards the next
ones. When a request wakes later than half the budget (a descheduled process, a busy event
loop; :func:`late_tolerance`), the limiter moves its whole remaining schedule later by the
excess, so the requests after it keep their spacing; the lost time is the excess only.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Protocol

DEFAULT_MARGIN = 0.025


class RateLimiter(Protocol):
    rate: float

    async def acquire(self) -> None: ...

    async def close(self) -> None: ...


def paced_rate(limit: float, margin: float = DEFAULT_MARGIN, sharers: int = 1) -> float:
    """The pace of one of ``sharers`` uncoordinated senders that keeps any closed one-second
    window at or under ``limit`` in total.

    A sender spaced ``1/r`` apart can land ``floor(r) + 1`` requests in a closed second, so each
    gets a whole share ``floor(limit / sharers)`` and paces just under it. With more sharers than
    requests per second no uncoordinated pacing can be exact; the fractional share is the best
    effort there.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    share = limit / max(1, sharers)
    whole = math.floor(share)
    return (whole if whole >= 1 else share) * (1.0 - margin)


def late_tolerance(rate: float) -> float:
    """Half the slack of an even pace ``rate``: ``floor(rate) + 1`` requests (one more than
    any closed second can hold) span ``(floor(rate) + 1) / rate`` seconds, a little over one."""
    return ((math.floor(rate) + 1) / rate - 1.0) / 2


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class LocalLimiter:
    """GCRA pacing for one process; safe to share between event loops and threads.

    Slots are kept on a clock that runs ``shift`` behind the monotonic one; a late wake-up
    increases ``shift`` (see the module doc), which delays every slot not yet used.
    """

    def __init__(self, rate: float, *, start_at: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        self.tolerance = late_tolerance(rate)
        self._tat = start_at
        self._shift = 0.0
        self._lock = threading.Lock()
        self.late = 0  # wake-ups beyond the tolerance

    def reserve(self) -> float:
        """Take the next slot (on the shifted clock)."""
        with self._lock:
            slot = max(time.monotonic() - self._shift, self._tat)
            self._tat = slot + self.interval
        return slot

    async def acquire(self) -> None:
        slot = self.reserve()
        while True:
            await sleep_until(slot + self._shift)
            with self._lock:
                late = time.monotonic() - (slot + self._shift)
                if late < 0:
                    continue  # the schedule moved while this request slept
                if late > self.tolerance:
                    self._shift += late - self.tolerance
                    self.late += 1
                return

    async def close(self) -> None:
        return None


class Unlimited:
    """No pacing (``rate_limit=0``: a simulator run without a limit)."""

    rate = math.inf

    async def acquire(self) -> None:
        return None

    async def close(self) -> None:
        return None


_shared: dict[str, LocalLimiter] = {}
_shared_lock = threading.Lock()


def shared_local_limiter(key_id: str, rate: float) -> LocalLimiter:
    """One in-process limiter per app key, so that several clients in a process share the pace."""
    with _shared_lock:
        limiter = _shared.get(key_id)
        if limiter is None or limiter.rate != rate:
            limiter = _shared[key_id] = LocalLimiter(rate)
        return limiter
