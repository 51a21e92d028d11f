"""Redis as the hot cache: the latest bar of each symbol and when it was fetched, with a TTL.

Other processes (prediction, the realtime path, a dashboard) read it without touching Parquet, and
an incremental collection skips the request that re-fetches a stored bar the cache shows final
(:func:`is_final`). The store stays the source of truth, so every failure here is a warning,
never a failed collection.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

import pyarrow as pa

from app.contracts import KST

log = logging.getLogger(__name__)

#: KST time after which a date bar no longer changes: after-hours single-price trading ends at 18:00.
FINAL_AFTER = dt.time(18, 0)


def is_final(entry: dict | None, freq: str) -> bool:
    """Whether a cached date bar was fetched after its session's trading was over (so it is final).

    Week/month/year and minute bars are left out: their periods end on dates this cannot tell."""
    if not entry or freq != "D" or not entry.get("fetched_at"):
        return False
    bar_day = dt.datetime.fromisoformat(entry["ts"]).astimezone(KST).date()
    return dt.datetime.fromisoformat(entry["fetched_at"]) >= dt.datetime.combine(bar_day, FINAL_AFTER, KST)


def latest_key(prefix: str, freq: str, symbol: str) -> str:
    return f"{prefix}:latest:{freq}:{symbol}"


class HotCache:
    def __init__(self, redis_url: str | None, prefix: str, ttl_s: int) -> None:
        self.prefix, self.ttl = prefix, ttl_s
        self.client = None
        if redis_url:
            import redis

            self.client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.warned = False

    def _unavailable(self, exc: Exception) -> None:
        if not self.warned:
            log.warning("hot cache unavailable (%s); collection goes on without it", type(exc).__name__)
            self.warned = True

    def put_latest(self, freq: str, symbol: str, bars: pa.Table, fetched_at: dt.datetime | None = None) -> None:
        """Store the newest row of ``bars`` (sorted by ts) and when it came from the API (default now)."""
        if self.client is None or bars.num_rows == 0:
            return
        row = bars.slice(bars.num_rows - 1, 1).to_pylist()[0]
        row["ts"] = row["ts"].isoformat()
        row["fetched_at"] = (fetched_at or dt.datetime.now(KST)).isoformat()
        key = latest_key(self.prefix, freq, symbol)
        try:
            self.client.set(key, json.dumps(row), ex=self.ttl)
        except Exception as exc:  # redis.RedisError or a socket error: the cache is optional
            self._unavailable(exc)

    def get_latest(self, freq: str, symbol: str) -> dict | None:
        return self.get_latest_many(freq, [symbol]).get(symbol)

    def get_latest_many(self, freq: str, symbols: list[str]) -> dict[str, dict]:
        """symbol -> cached latest bar (``ts`` and ``fetched_at`` as ISO strings), for those cached."""
        if self.client is None or not symbols:
            return {}
        try:
            raws = self.client.mget([latest_key(self.prefix, freq, s) for s in symbols])
        except Exception as exc:  # as in put_latest: without the cache every bar is fetched
            self._unavailable(exc)
            return {}
        return {s: json.loads(raw) for s, raw in zip(symbols, raws) if raw}
