"""Per-app-key sliding-window rate limit and the server's counters.

A request is admitted when fewer than ``limit`` admitted requests of the same key arrived in the
last second (any sliding 1 s window, measured at arrival); a rejected one does not count toward
the limit. ``max_in_window`` is the most requests of one key that arrived within any second,
rejected ones included, so it shows by how much a client overshot.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field


@dataclass
class Stats:
    requests: int = 0
    rate_limited: int = 0
    spurious_rate_limited: int = 0
    token_issuances: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    max_in_window: int = 0
    ws_connections: int = 0
    ws_frames: int = 0
    ws_subscribed: int = 0  # subscriptions acknowledged (OPSP0000), re-subscriptions included
    ws_pongs: int = 0  # PINGPONG echoes received from clients
    ws_drops: int = 0  # connections dropped on purpose (faults.ws_drop_after_frames, POST /sim/ws/drop)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "rate_limited": self.rate_limited,
                "spurious_rate_limited": self.spurious_rate_limited, "token_issuances": self.token_issuances,
                "faults": dict(self.faults), "max_in_window": self.max_in_window,
                "ws_connections": self.ws_connections, "ws_frames": self.ws_frames,
                "ws_subscribed": self.ws_subscribed, "ws_pongs": self.ws_pongs, "ws_drops": self.ws_drops}


class SlidingWindow:
    """Admitted arrivals decide the limit; all arrivals (refused ones too) feed ``max_in_window``."""

    def __init__(self, limit: float, stats: Stats, clock=time.monotonic):
        self.limit = int(limit) if limit and limit > 0 else 0  # 0 = unlimited
        self.stats = stats
        self.clock = clock
        self._admitted: dict[str, collections.deque] = {}
        self._arrived: dict[str, collections.deque] = {}

    @staticmethod
    def _recent(table: dict[str, collections.deque], key: str, edge: float) -> collections.deque:
        q = table.get(key)
        if q is None:
            q = table[key] = collections.deque()
        while q and q[0] <= edge:
            q.popleft()
        return q

    def admit(self, app_key: str) -> bool:
        now = self.clock()
        arrived = self._recent(self._arrived, app_key, now - 1.0)
        arrived.append(now)
        if len(arrived) > self.stats.max_in_window:
            self.stats.max_in_window = len(arrived)
        admitted = self._recent(self._admitted, app_key, now - 1.0)
        if self.limit and len(admitted) >= self.limit:
            self.stats.rate_limited += 1
            return False
        admitted.append(now)
        return True

    def reset(self) -> None:
        self._admitted.clear()
        self._arrived.clear()
