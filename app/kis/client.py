"""The async KIS client: typed calls, paging, many symbols at once.

    async with KisClient(KisSettings(env="real")) as kis:          # credentials from KIS_APP_KEY/SECRET
        bars = await kis.daily_bars("005930", "20200101", "20241231")
        many = await kis.map_symbols(kis.minute_bars, ["005930", "000660"])

One client = one aiohttp session (keep-alive connector of ``max_connections``), one rate limiter
per app key (Redis-shared when Redis is configured), one token manager.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from app.contracts import KST, empty_bars, normalize_symbol
from app.errors import ConfigError, DataError
from app.kis import endpoints as ep
from app.kis import parse
from app.kis.credentials import Credentials
from app.kis.oauth import OAuth
from app.kis.paging import SESSION_OPEN, walk_dates, walk_minutes, walk_past_minutes
from app.kis.ratelimit import RateLimiter, Unlimited, paced_rate, shared_local_limiter
from app.kis.redis_conn import connect, redis_url
from app.kis.redis_limiter import RedisLimiter
from app.kis.retry import RetryPolicy
from app.kis.settings import KisSettings
from app.kis.token_store import FileTokenStore, RedisTokenStore
from app.kis.tokens import TokenManager
from app.kis.transport import Transport

T = TypeVar("T")
DateLike = dt.date | str


@dataclass(frozen=True)
class ChartPage:
    """One FHKST03010100 response: up to 100 bars (as sent, newest first) and ``output1``."""

    bars: pa.Table
    summary: dict[str, str]


def as_date(value: DateLike) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(KST).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).replace("-", "")
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise DataError(f"bad date {value!r}", "use YYYYMMDD, YYYY-MM-DD or a datetime.date") from None


def _period(period: str) -> str:
    if period not in ep.PERIODS:
        raise DataError(f"bad chart period {period!r}", f"use one of {', '.join(ep.PERIODS)}")
    return period


def _hhmmss(value: str) -> str:
    text = str(value).replace(":", "").ljust(6, "0")
    if len(text) != 6 or not text.isdigit() or text[:2] > "23" or text[2:4] > "59":
        raise DataError(f"bad time {value!r}", "use HHMMSS or HH:MM[:SS]")
    return text


def _listed(symbol: str, summary: dict | None, rows: list[dict]) -> dict:
    """KIS answers rt_cd 0 with zeros (``stck_prpr`` "0") and no rows for a code it does not list."""
    summary = summary or {}
    if not rows and summary.get("stck_prpr", "0") in ("0", ""):
        raise DataError(f"KIS does not list symbol {symbol!r}",
                        "use a 6-digit KRX short code from the master file (e.g. 005930)")
    return summary


class KisClient:
    def __init__(
        self,
        settings: KisSettings | None = None,
        credentials: Credentials | None = None,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = s = settings or KisSettings()
        self.credentials = credentials or Credentials.from_env()
        self.base_url = s.url
        self.key_id = self.credentials.key_id(self.base_url)
        url = redis_url(s.redis_url)
        self._redis = connect(url) if url else None
        self.limiter = limiter or self._make_limiter()
        self._transport = Transport(
            self.base_url, self.limiter, timeout_s=s.timeout_s, max_connections=s.max_connections,
            retry=RetryPolicy(s.retry_attempts, s.retry_base_s, s.retry_cap_s, s.retry_budget_s),
        )
        store = (
            RedisTokenStore(self._redis, self.key_id, s.key_prefix)
            if self._redis is not None else FileTokenStore(self.key_id, s.token_dir)
        )
        self._oauth = OAuth(self._transport, self.credentials, s.env)
        self.tokens = TokenManager(
            store, self._oauth.issue_token, interval_s=s.token_interval_s, refresh_before_s=s.token_refresh_before_s,
        )
        self._approval: tuple[str, float] | None = None  # (key, monotonic time it was issued)

    def _make_limiter(self) -> RateLimiter:
        s = self.settings
        if s.limit == 0:
            return Unlimited()
        if self._redis is not None:
            return RedisLimiter(self._redis, self.key_id, s.limit, margin=s.rate_margin, prefix=s.key_prefix)
        return shared_local_limiter(self.key_id, paced_rate(s.limit, s.rate_margin))

    async def __aenter__(self) -> "KisClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()
        await self.limiter.close()
        if self._redis is not None:
            await self._redis.aclose()

    def stats(self) -> dict[str, int]:
        """Counters of this client since it was made: ``requests`` (HTTP tries sent),
        ``retries``, ``rate_limited`` (EGW00201 answers, spurious ones included),
        ``token_refused``, ``failed`` (calls that raised), ``late_wakeups`` (of this client's
        limiter, shared by the clients of a process when in-process)."""
        out = dict(self._transport.counters)
        out["late_wakeups"] = int(getattr(self.limiter, "late", 0))
        return out

    def __repr__(self) -> str:
        return f"KisClient(base_url={self.base_url!r}, env={self.settings.env!r}, limit={self.settings.limit})"

    # ---- OAuth -------------------------------------------------------------------------------

    async def access_token(self) -> str:
        return (await self.tokens.get()).access_token

    async def revoke_token(self) -> bool:
        """POST /oauth2/revokeP for the cached token (if any) and forget it everywhere."""
        token = self.tokens.current or await self.tokens.stored()
        if token is None:
            return False
        revoked = await self._oauth.revoke(token.access_token)
        await self.tokens.invalidate(token.access_token)
        return revoked

    async def approval_key(self, *, renew: bool = False) -> str:
        """The websocket approval key: cached, asked for again once it is a day old (or on ``renew``,
        after the server refused it)."""
        if renew or self._approval is None or time.monotonic() - self._approval[1] >= ep.APPROVAL_LIFETIME_S:
            self._approval = (await self._oauth.approval_key(), time.monotonic())
        return self._approval[0]

    # ---- quotations: one call each -------------------------------------------------------------

    async def _headers(self, tr_id: str) -> tuple[str, dict[str, str]]:
        token = await self.tokens.get()
        return token.access_token, {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {token.access_token}",
            "appkey": self.credentials.app_key,
            "appsecret": self.credentials.app_secret,
            "tr_id": tr_id,
            "custtype": self.settings.custtype,
        }

    async def get(self, endpoint: ep.Endpoint, params: dict[str, str]) -> dict:
        """A raw quotation GET (retries, token refresh, pacing included)."""
        if endpoint.real_only and self.settings.env != "real":
            raise ConfigError(f"{endpoint.tr_id} is not served on the paper host", "use kis.env=real")
        return await self._transport.call(
            "GET", endpoint.path, endpoint.tr_id, params=params,
            headers=lambda: self._headers(endpoint.tr_id), on_token_rejected=self.tokens.invalidate,
        )

    def _base(self, symbol: str) -> dict[str, str]:
        return {"FID_COND_MRKT_DIV_CODE": self.settings.market, "FID_INPUT_ISCD": normalize_symbol(symbol)}

    async def inquire_price(self, symbol: str) -> parse.Quote:
        """FHKST01010100: the current quote."""
        data = await self.get(ep.INQUIRE_PRICE, self._base(symbol))
        output = _listed(symbol, data.get("output"), [])
        return parse.quote(normalize_symbol(symbol), output)

    async def daily_chart_rows(self, symbol: str, start: DateLike, end: DateLike,
                               period: str = "D", adjusted: bool = True) -> tuple[list[dict], dict]:
        """FHKST03010100 raw: the newest ≤100 non-empty rows in [start, end] and output1."""
        params = {**self._base(symbol), "FID_INPUT_DATE_1": as_date(start).strftime("%Y%m%d"),
                  "FID_INPUT_DATE_2": as_date(end).strftime("%Y%m%d"),
                  "FID_PERIOD_DIV_CODE": _period(period), "FID_ORG_ADJ_PRC": ep.CHART_ADJ[bool(adjusted)]}
        data = await self.get(ep.DAILY_CHART, params)
        rows = parse.rows_of(data, "output2")
        return rows, _listed(symbol, parse.chart_summary(data.get("output1")), rows)

    async def daily_chart(self, symbol: str, start: DateLike, end: DateLike,
                          period: str = "D", adjusted: bool = True) -> ChartPage:
        """FHKST03010100: one page of date bars (newest first, as sent)."""
        rows, summary = await self.daily_chart_rows(symbol, start, end, period, adjusted)
        return ChartPage(parse.date_bars(normalize_symbol(symbol), rows, adjusted), summary)

    async def minute_chart_rows(self, symbol: str, hour: str = "153000") -> list[dict]:
        """FHKST03010200 raw: up to 30 of today's 1-minute rows at or before ``hour``."""
        params = {"FID_ETC_CLS_CODE": "", **self._base(symbol), "FID_INPUT_HOUR_1": _hhmmss(hour),
                  "FID_PW_DATA_INCU_YN": "N"}
        data = await self.get(ep.MINUTE_CHART, params)
        rows = parse.rows_of(data, "output2")
        _listed(symbol, data.get("output1"), rows)
        return rows

    async def past_minute_chart_rows(self, symbol: str, day: DateLike, hour: str = "153000") -> list[dict]:
        """FHKST03010230 raw (real host only): up to 120 one-minute rows at or before (day, hour),
        newest first, continuing into earlier sessions."""
        params = {**self._base(symbol), "FID_INPUT_HOUR_1": _hhmmss(hour),
                  "FID_INPUT_DATE_1": as_date(day).strftime("%Y%m%d"), "FID_PW_DATA_INCU_YN": "Y",
                  "FID_FAKE_TICK_INCU_YN": ""}
        data = await self.get(ep.PAST_MINUTE_CHART, params)
        rows = parse.rows_of(data, "output2")
        _listed(symbol, data.get("output1"), rows)
        return rows

    async def daily_price(self, symbol: str, period: str = "D", adjusted: bool = True) -> pa.Table:
        """FHKST01010400: the last 30 days/weeks/months, ascending. This endpoint sends no traded
        value, so ``value`` is 0 here; use :meth:`daily_bars` when value matters."""
        if period == "Y":
            raise DataError("inquire-daily-price has no yearly period", "use D, W or M, or daily_bars(period='Y')")
        params = {**self._base(symbol), "FID_PERIOD_DIV_CODE": _period(period),
                  "FID_ORG_ADJ_PRC": ep.DAILY_PRICE_ADJ[bool(adjusted)]}
        rows = parse.rows_of(await self.get(ep.DAILY_PRICE, params), "output")
        if not rows:
            _listed(symbol, None, rows)
        return parse.sort_unique(parse.date_bars(normalize_symbol(symbol), rows, adjusted))

    # ---- paged collections ------------------------------------------------------------------

    async def daily_bars(self, symbol: str, start: DateLike, end: DateLike | None = None,
                         period: str = "D", adjusted: bool = True) -> pa.Table:
        """Date bars (D/W/M/Y) over any range, ascending, no gaps or duplicates at page seams."""
        first, last = as_date(start), as_date(end) if end is not None else dt.datetime.now(KST).date()
        if first > last:
            raise DataError(f"start {first} is after end {last}", "swap the dates")

        async def fetch(a: dt.date, b: dt.date) -> list[dict]:
            return (await self.daily_chart_rows(symbol, a, b, period, adjusted))[0]

        rows = await walk_dates(fetch, first, last, ep.DAILY_CHART.max_rows)
        return parse.sort_unique(parse.date_bars(normalize_symbol(symbol), rows, adjusted))

    async def minute_bars(self, symbol: str, start: str = SESSION_OPEN, end: str = "153000") -> pa.Table:
        """Today's 1-minute bars in [start, end] (HHMMSS), ascending, dated by the server's
        ``stck_bsop_date``; ``value`` per minute is derived from cumulative values (see parse)."""
        first, last = _hhmmss(start), _hhmmss(end)
        rows = await walk_minutes(lambda h: self.minute_chart_rows(symbol, h), first, last,
                                  ep.MINUTE_CHART.max_rows)
        if not rows:
            return empty_bars()
        table = parse.minute_bars([parse.minute_rows(normalize_symbol(symbol), rows)])
        day = table.column("ts")[0].as_py().date()
        cut = dt.datetime.combine(day, dt.datetime.strptime(first, "%H%M%S").time(), tzinfo=KST)
        return table.filter(pc.greater_equal(table.column("ts"), pa.scalar(cut, table.schema.field("ts").type)))

    async def past_minute_bars(self, symbol: str, start: DateLike, end: DateLike | None = None) -> pa.Table:
        """1-minute bars of every session in [start, end] (real host only; KIS keeps about a year),
        ascending, no gaps or duplicates at page seams; per-minute ``value`` as in :meth:`minute_bars`."""
        first, last = as_date(start), as_date(end) if end is not None else dt.datetime.now(KST).date()
        if first > last:
            raise DataError(f"start {first} is after end {last}", "swap the dates")
        rows = await walk_past_minutes(lambda d, h: self.past_minute_chart_rows(symbol, d, h), first, last,
                                       ep.PAST_MINUTE_CHART.max_rows)
        if not rows:
            return empty_bars()
        return parse.minute_bars([parse.minute_rows(normalize_symbol(symbol), rows)])

    async def map_symbols(
        self, fn: Callable[..., Awaitable[T]], symbols: Iterable[str], *args: Any,
        concurrency: int | None = None, return_exceptions: bool = False, **kwargs: Any,
    ) -> list[T]:
        """``fn(symbol, *args, **kwargs)`` for every symbol concurrently (at most ``concurrency``
        at a time; default: the connector size), results in input order."""
        gate = asyncio.Semaphore(concurrency or self.settings.max_connections)

        async def one(symbol: str) -> T:
            async with gate:
                return await fn(symbol, *args, **kwargs)

        return await asyncio.gather(*(one(s) for s in symbols), return_exceptions=return_exceptions)
