"""Retries with exponential back-off and full jitter (delay ~ U(0, min(cap, base·2^n))).

Two bounds: ``attempts`` caps the tries a faulty server (5xx, timeouts, broken bodies) gets, and
``budget_s`` caps the wall time of one call. A rate-limit rejection (EGW00201) is no fault of the
server's: it is retried for as long as the budget lasts, never given up after a handful of tries.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries of one request that failed for a reason other than the rate limit
    base_s: float = 0.1
    cap_s: float = 5.0
    budget_s: float = 120.0  # wall time of one call, all its tries and sleeps included

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s or self.budget_s <= 0:
            from app.errors import ConfigError

            raise ConfigError(
                f"bad retry policy {self}", "use attempts >= 1, 0 <= base_s <= cap_s and budget_s > 0"
            )

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Sleep before the next try after ``failures`` failed tries (1-based)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        return (rng or random).uniform(0.0, ceiling)


class Retryable(Exception):
    """A transient failure of one try; carries what the final error should say."""

    def __init__(self, reason: str, *, status: int | None = None, msg_cd: str = "", msg1: str = "",
                 unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.status, self.msg_cd, self.msg1 = reason, status, msg_cd, msg1
        self.unreachable = unreachable  # no connection was made: the server never saw the request


class TokenRejected(Retryable):
    """The server refused the access token (EGW00121/EGW00123): get another, then retry."""
