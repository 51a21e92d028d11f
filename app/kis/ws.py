"""The KIS realtime websocket client: subscriptions, acks, PINGPONG, reconnects, typed events.

    async with KisClient(settings) as kis, KisWebSocket.for_client(kis) as ws:
        await ws.subscribe("H0STCNT0", "005930")
        async for event in ws.events():      # Tick, Book, Records (other TRs) or Gap
            ...

KIS allows one websocket session per app key and 41 (tr_id, tr_key) registrations in it: asking
for more raises at once (with several app keys, :func:`spread` the subscriptions over them). A
dropped connection is re-opened with exponential back-off and jitter (the failure count starts
again after a connection that stayed up ``healthy_after_s``), every subscription is registered
again, and a :class:`Gap` event says when the feed stopped and the last tick time seen per symbol,
so the caller can backfill the minutes in between from the REST minute bars. A connection that
sends nothing (not even KIS's PINGPONG) for ``idle_timeout_s`` counts as dropped.

The approval key travels in every subscribe message: messages are never logged.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from app.contracts import KST
from app.errors import AppError, DataError, ServiceError
from app.kis import endpoints as ep
from app.kis import ws_frames as fr
from app.kis.redact import get_logger

log = get_logger(__name__)

Subscription = tuple[str, str]  # (tr_id, tr_key)
ApprovalKey = Callable[..., Awaitable[str]]  # approval_key(renew=False) -> key
SUBSCRIBE, UNSUBSCRIBE = "1", "2"
ALREADY_IN_USE, MAX_OVER = "OPSP8996", "OPSP0008"
_UNSUB_CODES = ("OPSP0001", "OPSP0003")  # unsubscribed; not subscribed (nothing to undo)


class KisWsError(AppError):
    """The server refused something on the websocket (``msg_cd`` says what)."""

    def __init__(self, message: str, hint: str | None = None, msg_cd: str = "") -> None:
        self.msg_cd = msg_cd
        super().__init__(message, hint)


@dataclass(frozen=True)
class Gap:
    """The feed was down from ``dropped_at`` to ``resumed_at`` (wall clock, KST)."""

    dropped_at: dt.datetime
    resumed_at: dt.datetime
    attempts: int  # connection attempts it took
    last_seen: dict[str, dt.datetime] = field(default_factory=dict)  # symbol -> last tick's exchange time
    reason: str = ""


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt n: uniform in [c/2, c] with c = min(cap, base·2^(n-1))."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_failures: int | None = 20  # failed connections in a row before giving up; None = never

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))
        return rng.uniform(ceiling / 2, ceiling)


def limit_error(asked: int, limit: int = ep.WS_MAX_SUBSCRIPTIONS, keys: int = 1) -> KisWsError:
    return KisWsError(
        f"{asked} websocket subscriptions asked, but KIS allows {limit} (tr_id, symbol) pairs per session "
        f"and one session per app key ({keys} key{'s' if keys != 1 else ''}: at most {limit * keys})",
        "subscribe fewer pairs, or configure more app keys and spread the subscriptions over them",
        MAX_OVER)


def spread(subs: list[Subscription], n_keys: int, limit: int = ep.WS_MAX_SUBSCRIPTIONS) -> list[list[Subscription]]:
    """Subscriptions dealt evenly over ``n_keys`` sessions (one per app key); too many raise."""
    unique = list(dict.fromkeys(subs))
    if n_keys < 1 or len(unique) > n_keys * limit:
        raise limit_error(len(unique), limit, max(n_keys, 1))
    return [unique[i::n_keys] for i in range(n_keys)]


def request_message(approval_key: str, custtype: str, tr_type: str, sub: Subscription) -> str:
    return json.dumps({"header": {"approval_key": approval_key, "custtype": custtype, "tr_type": tr_type,
                                  "content-type": "utf-8"},
                       "body": {"input": {"tr_id": sub[0], "tr_key": sub[1]}}})


def _now() -> dt.datetime:
    return dt.datetime.now(KST)


class KisWebSocket:
    def __init__(
        self, approval_key: ApprovalKey, url: str, *, custtype: str = "P",
        max_subscriptions: int = ep.WS_MAX_SUBSCRIPTIONS, backoff: Backoff = Backoff(),
        healthy_after_s: float = 10.0, idle_timeout_s: float = 150.0, ack_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._approval, self.url = approval_key, url.rstrip("/") + ep.WS_PATH
        self._custtype, self.max_subscriptions = custtype, max_subscriptions
        self._backoff, self._healthy_after, self._idle = backoff, healthy_after_s, idle_timeout_s
        self._ack_timeout, self._rng = ack_timeout_s, rng or random.Random()
        self._wanted: dict[Subscription, None] = {}
        self._pending: dict[tuple[Subscription, str], asyncio.Future] = {}
        self._keys: dict[str, tuple[str, str]] = {}  # tr_id -> (AES key, iv) of its ack
        self._last_seen: dict[str, dt.datetime] = {}
        self._extra_logged: set[str] = set()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._renew_key = False
        self._closing = False
        self.fatal: AppError | None = None
        #: frames, records, pings (answered), reconnects, extra_fields, bad_frames, connections
        self.stats: collections.Counter[str] = collections.Counter({k: 0 for k in (
            "connections", "reconnects", "frames", "records", "pings", "extra_fields", "bad_frames")})

    @classmethod
    def for_client(cls, client, **kw) -> "KisWebSocket":
        """A websocket on ``client``'s app key (its approval key and the settings' websocket host)."""
        kw.setdefault("custtype", client.settings.custtype)
        return cls(client.approval_key, client.settings.websocket_url, **kw)

    async def __aenter__(self) -> "KisWebSocket":
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._wanted)

    def start(self) -> None:
        if self._task is None:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._run(), name="kis-websocket")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        for fut in self._pending.values():
            fut.cancel()

    # ---- subscriptions -----------------------------------------------------------------------

    async def subscribe(self, tr_id: str, tr_key: str) -> None:
        """Register (tr_id, tr_key) and wait for the server's ack (across reconnects)."""
        sub = (tr_id, str(tr_key))
        self._raise_fatal()
        if sub in self._wanted:
            return
        if len(self._wanted) >= self.max_subscriptions:
            raise limit_error(len(self._wanted) + 1, self.max_subscriptions)
        self._wanted[sub] = None
        self.start()
        try:
            await self._request(sub, SUBSCRIBE)
        except BaseException:
            self._wanted.pop(sub, None)
            raise

    async def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        sub = (tr_id, str(tr_key))
        if sub in self._wanted:
            del self._wanted[sub]
            if self._connected.is_set():
                await self._request(sub, UNSUBSCRIBE)

    async def _request(self, sub: Subscription, tr_type: str) -> None:
        fut = self._pending[(sub, tr_type)] = asyncio.get_running_loop().create_future()
        if self._connected.is_set():
            await self._send(tr_type, sub)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self._ack_timeout)
        except asyncio.TimeoutError:
            raise ServiceError(f"KIS websocket: no answer to {sub[0]} {sub[1]} within {self._ack_timeout:.0f} s",
                               "check the websocket host (kis.ws_url) and the network") from None
        finally:
            self._pending.pop((sub, tr_type), None)

    async def _send(self, tr_type: str, sub: Subscription) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            key = await self._approval(renew=self._renew_key)
            self._renew_key = False
            await ws.send_str(request_message(key, self._custtype, tr_type, sub))

    # ---- events ------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[fr.Tick | fr.Book | fr.Records | Gap]:
        """Events in arrival order; raises the error that ended the feed for good."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def _raise_fatal(self) -> None:
        if self.fatal is not None:
            raise self.fatal

    def _fail(self, err: AppError) -> None:
        """End the feed: every waiter and the event stream see ``err``."""
        self.fatal = err
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._queue.put_nowait(err)

    # ---- the connection loop ------------------------------------------------------------------

    async def _run(self) -> None:
        failures, dropped_at, reason = 0, None, ""
        while not self._closing and self.fatal is None:
            opened = None
            try:
                async with self._session.ws_connect(self.url, autoping=True, max_msg_size=0) as ws:
                    opened = asyncio.get_running_loop().time()
                    await self._opened(ws, dropped_at, failures, reason)
                    dropped_at, reason = None, await self._read(ws)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                reason = f"{type(exc).__name__}"
            except AppError as exc:  # the approval key could not be had
                self._fail(exc)
            finally:
                self._ws = None
                self._connected.clear()
            if self._closing or self.fatal is not None:
                return
            lived = asyncio.get_running_loop().time() - opened if opened is not None else 0.0
            failures = 1 if opened is not None and lived >= self._healthy_after else failures + 1
            dropped_at = dropped_at or _now()
            if self._backoff.max_failures is not None and failures > self._backoff.max_failures:
                self._fail(ServiceError(f"KIS websocket: gave up after {failures - 1} failed connections in a row "
                                        f"(last: {reason})", "check the network and the websocket host (kis.ws_url)"))
                return
            self.stats["reconnects"] += 1
            log.warning("KIS websocket dropped (%s); reconnecting (attempt %d)", reason, failures)
            await asyncio.sleep(self._backoff.delay(failures, self._rng))

    async def _opened(self, ws, dropped_at: dt.datetime | None, failures: int, reason: str) -> None:
        """A fresh connection: register every subscription again; report the gap if there was one."""
        self._ws = ws
        self.stats["connections"] += 1
        self._connected.set()
        for sub in list(self._wanted):
            await self._send(SUBSCRIBE, sub)
        if dropped_at is not None:
            gap = Gap(dropped_at, _now(), failures, dict(self._last_seen), reason)
            log.info("KIS websocket back after %.1f s; %d subscriptions registered again",
                     (gap.resumed_at - gap.dropped_at).total_seconds(), len(self._wanted))
            self._queue.put_nowait(gap)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Handle messages until the connection ends; returns why it ended."""
        while True:
            try:
                msg = await ws.receive(timeout=self._idle)
            except asyncio.TimeoutError:
                return f"nothing received for {self._idle:.0f} s"
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self._on_text(ws, msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return f"closed by the server (code {ws.close_code})"
            elif msg.type == aiohttp.WSMsgType.ERROR:
                return f"connection error ({type(ws.exception()).__name__})"
            if self.fatal is not None:
                return "refused"

    async def _on_text(self, ws, text: str) -> None:
        try:
            if text[:1] in ("0", "1"):
                self._on_data(text)
                return
            control = fr.parse_control(text)
        except DataError as exc:
            self.stats["bad_frames"] += 1
            log.warning("skipping a websocket frame: %s", exc.one_line())
            return
        if isinstance(control, fr.Ping):
            await ws.send_str(control.text)  # KIS expects the PINGPONG text back
            self.stats["pings"] += 1
        else:
            self._on_ack(control)

    # ---- acks and data -------------------------------------------------------------------------

    def _on_ack(self, ack: fr.Ack) -> None:
        if ack.msg_cd == ALREADY_IN_USE:
            self._fail(KisWsError("KIS websocket refused: this app key already has a session (OPSP8996 ALREADY IN USE "
                                  "appkey)", "close the other session, or give this one another app key", ack.msg_cd))
            return
        sub = (ack.tr_id, ack.tr_key)
        tr_type = UNSUBSCRIBE if ack.msg_cd in _UNSUB_CODES else SUBSCRIBE
        fut = self._pending.get((sub, tr_type))
        if ack.ok or ack.msg_cd in ("OPSP0002",) + _UNSUB_CODES:
            if tr_type == SUBSCRIBE and ack.key and ack.iv:
                self._keys[ack.tr_id] = (ack.key, ack.iv)
            if fut is not None and not fut.done():
                fut.set_result(ack)
            return
        err = self._refusal(ack)
        self._wanted.pop(sub, None)
        if fut is not None and not fut.done():
            fut.set_exception(err)
        else:
            self._queue.put_nowait(err)

    def _refusal(self, ack: fr.Ack) -> KisWsError:
        if ack.msg_cd == MAX_OVER:
            return limit_error(len(self._wanted), self.max_subscriptions)
        if "APPROVAL" in ack.msg1.upper():
            self._renew_key = True
        return KisWsError(f"KIS websocket refused {ack.tr_id} {ack.tr_key}: {ack.msg_cd} {ack.msg1}",
                          "check the tr_id and the symbol code", ack.msg_cd)

    def _on_data(self, text: str) -> None:
        encrypted, tr_id, count, payload = fr.split_frame(text)
        if encrypted:
            if tr_id not in self._keys:
                raise DataError(f"encrypted {tr_id} frame before its ack", "re-subscribe")
            payload = fr.decrypt(payload, *self._keys[tr_id])
        rec = fr.split_records(tr_id, count, payload)
        self.stats["frames"] += 1
        self.stats["records"] += len(rec.rows)
        if rec.extra_fields:
            self._count_extra(rec)
        for row in rec.rows:
            self._queue.put_nowait(self._event(tr_id, row))

    def _event(self, tr_id: str, row: list[str]) -> fr.Tick | fr.Book | fr.Records:
        if tr_id == fr.TRADE_TR:
            t = fr.tick(row)
            self._last_seen[t.symbol] = t.ts
            return t
        if tr_id == fr.BOOK_TR:
            return fr.book(row)
        return fr.Records(tr_id, [row])

    def _count_extra(self, rec: fr.Records) -> None:
        self.stats["extra_fields"] += rec.extra_fields * len(rec.rows)
        if rec.tr_id not in self._extra_logged:
            self._extra_logged.add(rec.tr_id)
            log.warning("%s records carry %d field(s) beyond the %d documented; reading the documented ones",
                        rec.tr_id, rec.extra_fields, len(fr.KNOWN_FIELDS[rec.tr_id]))
