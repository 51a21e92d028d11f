"""Access-token lifecycle: issue, cache, reuse, refresh before expiry, re-issue when refused.

KIS allows one issuance per minute per app key (403 EGW00133 otherwise) and notifies the account
owner of every issuance, so tokens are shared through a :mod:`~app.kis.token_store` (Redis or a
0600 file) and every issuance *attempt* is claimed there first: whoever holds the claim issues,
everyone else waits for the token to appear in the store. A token close to expiry is refreshed
only when a claim is free; until then the still-valid token keeps being used.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from app.contracts import KST
from app.kis.endpoints import TOKEN_INTERVAL_S
from app.kis.errors import KisAuthError, KisError, KisRequest
from app.kis.redact import get_logger, register_secret
from app.kis.retry import Retryable
from app.kis.token_store import TokenStore

log = get_logger(__name__)

_EXPIRY_SKEW_S = 5.0  # treat a token as expired this long before its stated expiry


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: float  # epoch seconds
    issued_at: float

    def __post_init__(self) -> None:
        register_secret(self.access_token)

    @property
    def _life(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)

    def usable(self, now: float) -> bool:
        return now < self.expires_at - min(_EXPIRY_SKEW_S, 0.1 * self._life)

    def fresh(self, now: float, refresh_before_s: float) -> bool:
        """Usable and not yet due for refresh (short-lived tokens refresh at half-life)."""
        lead = min(refresh_before_s, 0.5 * self._life)
        return now < self.expires_at - max(lead, min(_EXPIRY_SKEW_S, 0.1 * self._life))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Token":
        d = json.loads(text)
        return cls(str(d["access_token"]), float(d["expires_at"]), float(d["issued_at"]))

    @classmethod
    def from_response(cls, body: dict, issued_at: float) -> "Token":
        """From a tokenP body: the absolute KST expiry wins over ``expires_in`` (which has no
        reference time when KIS hands back an earlier token)."""
        stamp = body.get("access_token_token_expired")
        if stamp:
            expires = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST).timestamp()
        else:
            expires = issued_at + float(body.get("expires_in", 0))
        return cls(str(body["access_token"]), expires, issued_at)

    def __repr__(self) -> str:
        return f"Token(***, expires_at={self.expires_at:.0f})"


class TokenThrottled(Retryable):
    """403 EGW00133: another issuance happened less than a minute ago."""


class TokenManager:
    def __init__(
        self,
        store: TokenStore,
        issue: Callable[[], Awaitable[Token]],
        *,
        interval_s: float = TOKEN_INTERVAL_S,
        refresh_before_s: float = 600.0,
        max_wait_s: float | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self._store, self._issue = store, issue
        self._interval, self._refresh_before = interval_s, refresh_before_s
        self._max_wait = max_wait_s if max_wait_s is not None else 2 * interval_s + 10
        self._poll = poll_s
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Token:
        token = self._token
        if token is not None and token.fresh(time.time(), self._refresh_before):
            return token
        async with self._lock:
            return await self._obtain()

    @property
    def current(self) -> Token | None:
        return self._token

    async def stored(self) -> Token | None:
        return await self._load()

    async def invalidate(self, access_token: str) -> None:
        """The server refused this token: forget it here and in the shared store."""
        if self._token is not None and self._token.access_token == access_token:
            self._token = None
        await self._store.discard(access_token)

    async def _obtain(self) -> Token:
        deadline = time.time() + self._max_wait
        while True:
            now = time.time()
            current = self._token if self._token and self._token.usable(now) else None
            if current and current.fresh(now, self._refresh_before):
                return current
            stored = await self._load()
            if stored and stored.fresh(now, self._refresh_before):
                self._token = stored
                return stored
            best = current or (stored if stored and stored.usable(now) else None)
            wait = await self._store.claim(self._interval)
            if wait <= 0:
                token = await self._try_issue()
                if token is not None:
                    return token
            elif best is not None:
                self._token = best  # refresh not allowed yet: keep using the valid token
                return best
            if time.time() > deadline:
                raise KisAuthError(
                    f"no access token after waiting {self._max_wait:.0f} s",
                    request=KisRequest("POST", "/oauth2/tokenP"),
                    hint="check the KIS server and credentials; KIS allows one token per minute",
                )
            await asyncio.sleep(self._poll if wait <= 0 else min(self._poll, wait))

    async def _load(self) -> Token | None:
        text = await self._store.load()
        if not text:
            return None
        try:
            return Token.from_json(text)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable cached token")
            return None

    async def _try_issue(self) -> Token | None:
        """One claimed issuance attempt; None when it failed in a way worth waiting out."""
        stored = await self._load()
        if stored and stored.fresh(time.time(), self._refresh_before):
            self._token = stored
            return stored
        try:
            token = await self._issue()
        except TokenThrottled:
            log.info("token issuance refused (EGW00133); waiting for the token of another process")
            return None
        except Retryable as exc:
            if exc.unreachable:  # nothing reached KIS, so waiting out the issuance interval is pointless
                raise KisAuthError(f"token issuance failed: {exc.reason}", request=KisRequest("POST", "/oauth2/tokenP"),
                                   hint="check kis.base_url / kis.env and the network") from None
            log.warning("token issuance failed (%s); retrying after the issuance interval", exc.reason)
            return None
        except KisError:
            raise
        await self._store.save(token.to_json(), token.expires_at - time.time())
        self._token = token
        log.info("issued a new KIS access token (expires %s)", dt.datetime.fromtimestamp(token.expires_at, KST))
        return token
