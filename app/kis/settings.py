"""Client settings (the ``kis`` config group maps onto this one-to-one)."""
from __future__ import annotations

from dataclasses import dataclass

from app.errors import ConfigError
from app.kis.endpoints import BASE_URLS, DEFAULT_RATE, MARKETS, TOKEN_INTERVAL_S, WS_URLS


@dataclass(frozen=True)
class KisSettings:
    env: str = "real"  # real | paper: picks the host and the default rate limit
    base_url: str | None = None  # overrides the env's host (simulator, proxy)
    rate_limit: float | None = None  # requests/s per app key; None = env default; 0 = unpaced
    rate_margin: float = 0.025  # pace this fraction under the limit
    redis_url: str | None = None  # None = $REDIS_URL; "" = no Redis (file tokens, local pacing)
    key_prefix: str = "kis:"  # Redis key prefix
    token_dir: str | None = None  # file token store; None = user cache dir
    token_interval_s: float = TOKEN_INTERVAL_S  # at most one issuance per this many seconds
    token_refresh_before_s: float = 600.0  # refresh a token this long before it expires
    max_connections: int = 32  # connector size = max in-flight requests
    timeout_s: float = 10.0  # connect / read timeout of one try
    retry_attempts: int = 5
    retry_base_s: float = 0.1
    retry_cap_s: float = 5.0
    retry_budget_s: float = 120.0  # wall time one call may spend on retries (rate-limit ones unbounded in count)
    market: str = "J"  # FID_COND_MRKT_DIV_CODE: J (KRX), NX, UN
    custtype: str = "P"  # P individual, B corporate
    ws_url: str | None = None  # realtime host; None = the env's, or base_url's host when base_url is set

    def __post_init__(self) -> None:
        problems = []
        if self.env not in BASE_URLS:
            problems.append(f"env={self.env!r} (use real or paper)")
        if self.rate_limit is not None and self.rate_limit < 0:
            problems.append("rate_limit < 0 (use a positive number, or 0 for no pacing)")
        if not 0 <= self.rate_margin < 0.5:
            problems.append("rate_margin outside [0, 0.5)")
        if self.market not in MARKETS:
            problems.append(f"market={self.market!r} (use one of {', '.join(MARKETS)})")
        if self.max_connections < 1 or self.timeout_s <= 0 or self.token_interval_s < 0:
            problems.append("max_connections >= 1, timeout_s > 0 and token_interval_s >= 0 are required")
        if problems:
            raise ConfigError("bad kis settings: " + "; ".join(problems), "fix the kis config group")

    @property
    def url(self) -> str:
        return (self.base_url or BASE_URLS[self.env]).rstrip("/")

    @property
    def websocket_url(self) -> str:
        """The realtime host: ``ws_url``, else the REST override's host (the simulator serves both
        on one port), else KIS's websocket host of ``env``."""
        if self.ws_url:
            return self.ws_url.rstrip("/")
        if self.base_url:
            return self.base_url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return WS_URLS[self.env]

    @property
    def limit(self) -> float:
        """Requests per second per app key (0 = unpaced)."""
        return DEFAULT_RATE[self.env] if self.rate_limit is None else float(self.rate_limit)
