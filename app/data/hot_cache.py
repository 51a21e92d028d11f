"""Redis as the hot cache: the latest bar and last collected ts per symbol, with a TTL.

Other processes (the realtime path, a dashboard) read it without touching Parquet; the store stays
the source of truth, so every failure here is a warning, never a failed collection.
"""
from __future__ import annotations

import json
import logging

import pyarrow as pa

log = logging.getLogger(__name__)


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

    def put_latest(self, freq: str, symbol: str, bars: pa.Table) -> None:
        """Store the newest row of ``bars`` (sorted by ts) and its ts."""
        if self.client is None or bars.num_rows == 0:
            return
        row = bars.slice(bars.num_rows - 1, 1).to_pylist()[0]
        row["ts"] = row["ts"].isoformat()
        key = latest_key(self.prefix, freq, symbol)
        try:
            self.client.set(key, json.dumps(row), ex=self.ttl)
        except Exception as exc:  # redis.RedisError or a socket error: the cache is optional
            if not self.warned:
                log.warning("hot cache unavailable (%s); collection goes on without it", type(exc).__name__)
                self.warned = True

    def get_latest(self, freq: str, symbol: str) -> dict | None:
        if self.client is None:
            return None
        raw = self.client.get(latest_key(self.prefix, freq, symbol))
        return json.loads(raw) if raw else None
