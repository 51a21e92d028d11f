"""One aiohttp session per client: paced, retried, token-aware KIS calls.

Pacing happens *after* a connection is in hand (aiohttp trace hooks on connection reuse and on
connection creation), right before the request is written: TCP/TLS set-up of new connections
can therefore never bunch requests together at the server, and keep-alive connections are reused.
"""
from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import NoReturn

import aiohttp

from app.kis.errors import RETRYABLE_CODES, TOKEN_CODES, TOKEN_THROTTLED, KisAuthError, KisError, KisRequest
from app.kis.ratelimit import RateLimiter
from app.kis.redact import get_logger, redact
from app.kis.retry import Retryable, RetryPolicy, TokenRejected

log = get_logger(__name__)

_PACED = SimpleNamespace(paced=True)


def _trace_config(limiter: RateLimiter, counters: collections.Counter) -> aiohttp.TraceConfig:
    async def pace(session, ctx, params) -> None:  # noqa: ANN001 (aiohttp signature)
        if getattr(ctx.trace_request_ctx, "paced", False):
            await limiter.acquire()
        counters["requests"] += 1  # here, because aiohttp itself resends once on a dropped keep-alive

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(pace)
    trace.on_connection_create_end.append(pace)
    return trace


class Transport:
    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter, self.retry = limiter, retry
        self._timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        #: requests sent, retried tries, EGW00201 answers, refused tokens, calls that failed for good
        self.counters: collections.Counter[str] = collections.Counter(
            {k: 0 for k in ("requests", "retries", "rate_limited", "token_refused", "failed")})

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=self._max_connections,
                keepalive_timeout=30.0, ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout,
                trace_configs=[_trace_config(self.limiter, self.counters)],
                json_serialize=json.dumps, raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def once(
        self, method: str, path: str, *, headers: dict[str, str],
        params: dict[str, str] | None = None, body: dict | None = None,
    ) -> tuple[int, dict]:
        """One paced try; transport faults, 5xx and unreadable bodies raise :class:`Retryable`."""
        session = self._open()
        try:
            async with session.request(
                method, self.base_url + path, params=params, json=body, headers=headers,
                trace_request_ctx=_PACED,
            ) as resp:
                status, raw = resp.status, await resp.read()
        except asyncio.TimeoutError:
            raise Retryable("timed out") from None
        except aiohttp.ClientConnectorError as exc:
            raise Retryable(f"cannot connect ({type(exc).__name__})", unreachable=True) from None
        except aiohttp.ClientError as exc:
            raise Retryable(f"connection failed ({type(exc).__name__})") from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if status >= 500 or status == 200:
                raise Retryable(f"unreadable response body (HTTP {status})", status=status)
            data = {}
        return status, data

    async def call(
        self, method: str, path: str, tr_id: str, *, params: dict[str, str],
        headers: Callable[[], Awaitable[tuple[str, dict[str, str]]]],
        on_token_rejected: Callable[[str], Awaitable[None]],
    ) -> dict:
        """A KIS API call, retried (see :mod:`app.kis.retry`). ``headers()`` yields (access token,
        headers) afresh for every try, so a re-issued token is picked up."""
        request = KisRequest(method, path, dict(params))
        started, tries, faults, limited = time.monotonic(), 0, 0, 0
        while True:
            tries += 1
            token, hdrs = await headers()
            delay = 0.0
            try:
                status, data = await self.once(method, path, headers=hdrs, params=params)
                return check(status, data, request, tr_id, tries)
            except TokenRejected as exc:
                self.counters["token_refused"] += 1
                await on_token_rejected(token)
                last, faults = exc, faults + 1
            except Retryable as exc:
                last = exc
                if exc.msg_cd == "EGW00201":
                    self.counters["rate_limited"] += 1
                    limited += 1
                    delay = self.retry.delay(limited)
                else:
                    faults += 1
                    delay = self.retry.delay(faults)
            except KisError:
                self.counters["failed"] += 1
                raise
            spent = time.monotonic() - started
            log.debug("%s %s: %s (try %d; %d of %d faults; %.1f of %g s)", tr_id, path, last.reason, tries,
                      faults, self.retry.attempts, spent, self.retry.budget_s)
            if faults >= self.retry.attempts or spent + delay > self.retry.budget_s:
                break
            self.counters["retries"] += 1
            if delay:
                await asyncio.sleep(delay)
        self.counters["failed"] += 1
        raise KisError(
            f"gave up: {last.reason}", request=request, tr_id=tr_id, status=last.status,
            msg_cd=last.msg_cd, msg1=last.msg1, attempts=tries, transient=True,
            hint=f"the KIS server kept failing for {time.monotonic() - started:.0f} s; re-run later to fetch "
                 "what is missing, or raise kis.retry_attempts / kis.retry_budget_s",
        )


def check(status: int, data: dict, request: KisRequest, tr_id: str, attempt: int = 1) -> dict:
    """The body of a successful call; otherwise raises what kind of failure it is."""
    if status == 200 and data.get("rt_cd") == "0":
        return data
    raise_failure(status, data, request, tr_id, attempt)


def raise_failure(status: int, data: dict, request: KisRequest, tr_id: str, attempt: int = 1) -> NoReturn:
    """Token codes → :class:`TokenRejected`; transient codes, 5xx without a code and 200 without
    ``rt_cd`` → :class:`Retryable`; anything else is final (:class:`KisError`)."""
    msg_cd = str(data.get("msg_cd") or data.get("error_code") or "")
    msg1 = redact(str(data.get("msg1") or data.get("error_description") or "")).strip()
    if msg_cd in TOKEN_CODES:
        raise TokenRejected(f"token refused ({msg_cd})", status=status, msg_cd=msg_cd, msg1=msg1)
    if msg_cd in RETRYABLE_CODES or (status >= 500 and not msg_cd):
        raise Retryable(f"{msg_cd or 'server error'} (HTTP {status})", status=status, msg_cd=msg_cd, msg1=msg1)
    if status == 200 and "rt_cd" not in data and not msg_cd:
        raise Retryable("response without rt_cd", status=status)
    cls = KisAuthError if msg_cd.startswith("EGW001") or msg_cd == TOKEN_THROTTLED else KisError
    raise cls("request refused", request=request, tr_id=tr_id, status=status, msg_cd=msg_cd, msg1=msg1, attempts=attempt)
