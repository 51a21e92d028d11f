"""Pacing shared by every process and Ray actor that uses one app key, through Redis.

One atomic Lua script does it all on Redis's own clock (``TIME``): reserve the next slot
(virtual scheduling, like :class:`~app.kis.ratelimit.LocalLimiter`), and register the caller in
a set of live sharers with a TTL, returning how many there are.

Slots are absolute times on Redis's clock, mapped to the local clock through an offset taken
from the fastest recent round trip (as NTP does), so a slow reply does not shift the slot.
Callers queue locally and a limiter asks for the next slot one interval before its previous
slot is due, which hides the Redis round trip; a limiter therefore holds at most two unused
slots. A caller woken too late for its slot leaves at once and moves the shared schedule later
by the excess (see :mod:`app.kis.ratelimit`). The few slots other sharers already hold (two
each at most) keep their time, but every later one moves, so any ``limit + 1`` consecutive
requests still span at least ``limit`` intervals minus the tolerance.

If Redis goes away the limiter warns once and paces in-process at its share of the limit (see
:func:`~app.kis.ratelimit.paced_rate`), starting after every slot Redis could still have handed
out (two per sharer); it probes Redis again every ``retry_s``. After Redis is back it keeps that
local share as a cap for a grace period, until the other sharers have had time to come back too.
"""
from __future__ import annotations

import asyncio
import collections
import time
import uuid

import redis.asyncio as aioredis

from app.kis.ratelimit import DEFAULT_MARGIN, LocalLimiter, late_tolerance, paced_rate, sleep_until
from app.kis.redact import get_logger
from app.kis.redis_conn import REDIS_ERRORS

log = get_logger(__name__)

#: KEYS: tat, live sharers. ARGV: interval µs, member, member TTL ms, shift µs (moves the
#: schedule later), reserve ("1": take the slot after the shift; "0": only shift and register).
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local ttl_ms = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[4])
local slot = tat
if ARGV[5] == '1' then tat = tat + interval end
local keep_ms = math.floor((tat - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', keep_ms))
local now_ms = math.floor(now / 1000)
redis.call('ZADD', KEYS[2], string.format('%.0f', now_ms + ttl_ms), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now_ms))
redis.call('PEXPIRE', KEYS[2], string.format('%.0f', ttl_ms * 2))
return {string.format('%.0f', slot), redis.call('ZCARD', KEYS[2]), string.format('%.0f', now)}
"""
_OUTSTANDING = 2  # unused slots one limiter can hold (see module doc)


class ClockOffset:
    """Redis clock minus local monotonic clock, from the fastest of the recent round trips."""

    def __init__(self, keep: int = 64) -> None:
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=keep)

    @property
    def ready(self) -> bool:
        return bool(self._samples)

    def add(self, remote: float, sent: float, received: float) -> None:
        self._samples.append((received - sent, remote - (sent + received) / 2))

    def to_local(self, remote: float) -> float:
        return remote - min(self._samples)[1]


class RedisLimiter:
    def __init__(
        self,
        client: aioredis.Redis,
        key_id: str,
        limit: float,
        *,
        margin: float = DEFAULT_MARGIN,
        prefix: str = "kis:",
        member_ttl_s: float = 10.0,
        retry_s: float = 5.0,
    ) -> None:
        self.limit, self.margin = limit, margin
        self.rate = paced_rate(limit, margin)
        self._interval_us = round(1e6 / self.rate)
        self._interval = self._interval_us / 1e6
        self.tolerance = late_tolerance(self.rate)
        self.late = 0  # wake-ups beyond the tolerance
        self._script = client.register_script(ACQUIRE_LUA)
        self._redis = client
        self._keys = [f"{prefix}rl:{key_id}:tat", f"{prefix}rl:{key_id}:live"]
        self._member = uuid.uuid4().hex
        self._ttl_ms = int(member_ttl_s * 1000)
        self._retry_s = retry_s
        self._clock = ClockOffset()
        self.sharers = 1
        self._fallback: LocalLimiter | None = None
        self._guard: LocalLimiter | None = None
        self._guard_until = 0.0
        self._next_probe = 0.0
        self._queue = asyncio.Lock()

    @property
    def degraded(self) -> bool:
        """True while pacing in-process because Redis is unreachable."""
        return self._fallback is not None

    async def acquire(self) -> None:
        slot = await self._acquire_once()
        late = time.monotonic() - slot if slot is not None else 0.0
        if late > self.tolerance:  # keep the spacing to the slots after this one
            self.late += 1
            try:
                await self._call(shift_s=late - self.tolerance, reserve=False)
            except REDIS_ERRORS as exc:
                self._redis_down(exc)

    async def _acquire_once(self) -> float | None:
        """Wait for one slot; return it, or None when the local pace alone decided."""
        local = self._local_cap()
        if local is not None:
            await local.acquire()
        if self._fallback is not None and not self._probe_due():
            return None
        async with self._queue:
            try:
                slot = await self._reserve()
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
                slot = None
            else:
                await sleep_until(slot - self._interval)  # the next caller reserves meanwhile
        if slot is not None:
            await sleep_until(slot)
        elif local is None:
            await self._fallback.acquire()  # type: ignore[union-attr]
        return slot

    async def _calibrate(self) -> None:
        """Seed the clock offset with a few plain round trips: the first call of a connection
        pays for its set-up, which would skew a single sample."""
        for _ in range(3):
            sent = time.monotonic()
            sec, usec = await self._redis.time()
            self._clock.add(sec + usec / 1e6, sent, time.monotonic())

    async def _reserve(self) -> float:
        """One slot from Redis, as a local monotonic time."""
        if not self._clock.ready:
            await self._calibrate()
        return await self._call()

    async def _call(self, shift_s: float = 0.0, reserve: bool = True) -> float:
        sent = time.monotonic()
        slot_us, sharers, now_us = await self._script(
            keys=self._keys,
            args=[self._interval_us, self._member, self._ttl_ms, round(shift_s * 1e6), "1" if reserve else "0"])
        self._clock.add(int(now_us) / 1e6, sent, time.monotonic())
        if self._fallback is not None:
            self._redis_back()
        self.sharers = max(1, int(sharers))
        return self._clock.to_local(int(slot_us) / 1e6)

    def _local_cap(self) -> LocalLimiter | None:
        if self._fallback is not None:
            return self._fallback
        if self._guard is not None and time.monotonic() < self._guard_until:
            return self._guard
        self._guard = None
        return None

    def _probe_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._retry_s
        return True

    def _redis_down(self, exc: BaseException) -> None:
        self._next_probe = time.monotonic() + self._retry_s
        if self._fallback is not None:
            return
        start = time.monotonic() + _OUTSTANDING * self.sharers * self._interval
        local = self._guard or LocalLimiter(paced_rate(self.limit, self.margin, self.sharers), start_at=start)
        self._fallback, self._guard = local, None
        log.warning(
            "Redis rate limiter unreachable (%s); pacing in-process at %.2f req/s (a 1/%d share "
            "of the limit) and retrying Redis every %.0f s",
            type(exc).__name__, local.rate, self.sharers, self._retry_s,
        )

    def _redis_back(self) -> None:
        self._guard, self._fallback = self._fallback, None
        self._guard_until = time.monotonic() + 2 * self._retry_s
        log.info("Redis rate limiter reachable again; shared pacing resumed")

    async def close(self) -> None:
        try:
            await self._redis.zrem(self._keys[1], self._member)
        except REDIS_ERRORS:
            pass
