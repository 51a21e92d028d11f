"""The real-time websocket (docs/kis.md §6): subscriptions, acks, PINGPONG, ``0|TR|NNN|...`` frames.

Served at ``/tryitout`` (and ``/tryitout/{tr_id}``, ``/``) on the REST port. One session per app
key (the key behind the approval key of the first message); a second one is refused with OPSP8996.
H0STCNT0 (trades) and H0STASP0 (10-level book) replay today's prints at ``ws_replay_speed`` on
one clock for the whole server, started by the first subscription at the open (or at ``now``):
a later subscription, or a client that reconnects, joins at the current market time, so a dropped
connection misses the prints in between. Prints that fall due together go out in one frame with
their count. ``faults.ws_drop_after_frames`` cuts every connection after that many data frames;
``POST /sim/ws/drop`` cuts all open connections at once. H0STCNI0/H0STCNI9 (order notices) are acknowledged encrypted and stay silent: the simulator
takes no orders.
"""
from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import json
import secrets
import string

from aiohttp import WSMsgType, web

from app.contracts import KST
from app.sim.state import STATE
from app.sim.tape import Tape, seconds

MARKET_TRS = ("H0STCNT0", "H0STASP0")
NOTICE_TRS = ("H0STCNI0", "H0STCNI9")
MAX_BATCH = 50
_ALNUM = string.ascii_letters + string.digits


def control(tr_id: str, tr_key: str, code: str, msg: str, rt_cd: str = "9", encrypt: str = "N",
            output: dict | None = None) -> str:
    body = {"rt_cd": rt_cd, "msg_cd": code, "msg1": msg}
    if output is not None:
        body["output"] = output
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body},
                      ensure_ascii=False)


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class Session:
    """One websocket connection: its app key, subscriptions and their replay tasks."""

    def __init__(self, st, ws: web.WebSocketResponse, tape: Tape, request: web.Request | None = None):
        self.st, self.ws, self.tape, self.request = st, ws, tape, request
        self.app_key: str | None = None
        self.subs: dict[tuple[str, str], asyncio.Task | None] = {}
        self.data_frames = 0

    async def send(self, text: str) -> None:
        if not self.ws.closed:
            await self.ws.send_str(text)
            self.st.stats.ws_frames += 1

    async def send_data(self, text: str) -> None:
        """A data frame; the drop fault cuts the connection once enough have gone out."""
        await self.send(text)
        self.data_frames += 1
        limit = self.st.cfg.faults.ws_drop_after_frames
        if limit is not None and self.data_frames >= limit:
            self.drop()

    def drop(self) -> None:
        """Cut the TCP connection without a close frame, like a network failure."""
        transport = self.request.transport if self.request is not None else None
        self.st.stats.ws_drops += 1
        for task in self.subs.values():
            if task:
                task.cancel()
        if transport is not None:
            transport.abort()

    async def ping_loop(self) -> None:
        while not self.ws.closed:
            await asyncio.sleep(self.st.cfg.ws_ping_interval_s)
            stamp = dt.datetime.now(KST).strftime("%Y%m%d%H%M%S")
            await self.send(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}}))

    async def on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
            header, body = msg["header"], msg.get("body") or {}
        except (ValueError, KeyError, TypeError):
            await self.send(control("(null)", "", "OPSP9999", "JSON PARSING ERROR : invalid json format"))
            return
        if header.get("tr_id") == "PINGPONG":
            self.st.stats.ws_pongs += 1  # the client's echo
            return
        inp = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inp, dict) or "tr_id" not in inp or "tr_key" not in inp:
            await self.send(control("(null)", "", "OPSP9998", "JSON PARSING ERROR : body.input not found"))
            return
        await self.on_request(header, str(inp["tr_id"]), str(inp["tr_key"]))

    async def on_request(self, header: dict, tr_id: str, tr_key: str) -> None:
        app_key = self.st.auth.approvals.get(header.get("approval_key", ""))
        if app_key is None:
            await self.send(control(tr_id, tr_key, "OPSP9997", "INVALID APPROVAL KEY"))
            return
        owner = self.st.ws_owners.get(app_key)
        if owner is not None and owner is not self:
            await self.send(control("(null)", "", "OPSP8996", "ALREADY IN USE appkey"))
            return
        self.st.ws_owners[app_key], self.app_key = self, app_key
        if header.get("custtype", "P") not in ("P", "B"):
            await self.send(control(tr_id, tr_key, "OPSP8998", "invalid custtype"))
        elif header.get("tr_type") == "1":
            await self.subscribe(tr_id, tr_key)
        elif header.get("tr_type") == "2":
            await self.unsubscribe(tr_id, tr_key)
        else:
            await self.send(control(tr_id, tr_key, "OPSP8997", "invalid tr_type"))

    async def subscribe(self, tr_id: str, tr_key: str) -> None:
        if tr_id not in MARKET_TRS + NOTICE_TRS:
            await self.send(control(tr_id, tr_key, "OPSP8991", "invalid tr_id"))
            return
        if tr_id in MARKET_TRS and tr_key not in self.st.market.names:
            await self.send(control(tr_id, tr_key, "OPSP8992", "invalid tr_key"))
            return
        if (tr_id, tr_key) in self.subs:
            await self.send(control(tr_id, tr_key, "OPSP0002", "ALREADY IN SUBSCRIBE"))
            return
        if len(self.subs) >= self.st.cfg.ws_max_subscriptions:
            await self.send(control(tr_id, tr_key, "OPSP0008", "MAX SUBSCRIBE OVER"))
            return
        encrypt = "Y" if tr_id in NOTICE_TRS else "N"
        await self.send(control(tr_id, tr_key, "OPSP0000", "SUBSCRIBE SUCCESS", "0", encrypt,
                                {"iv": _random(16), "key": _random(32)}))
        self.st.stats.ws_subscribed += 1
        task = asyncio.create_task(self.replay(tr_id, tr_key)) if tr_id in MARKET_TRS else None
        self.subs[(tr_id, tr_key)] = task

    async def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        if (tr_id, tr_key) not in self.subs:
            await self.send(control(tr_id, tr_key, "OPSP0003", "UNSUBSCRIBE ERROR(not found)"))
            return
        task = self.subs.pop((tr_id, tr_key))
        if task:
            task.cancel()
        await self.send(control(tr_id, tr_key, "OPSP0001", "UNSUBSCRIBE SUCCESS", "0"))

    async def replay(self, tr_id: str, symbol: str) -> None:
        """Send the prints still to come on the server's replay clock, batched when due together."""
        records = (self.tape.cnt_records if tr_id == "H0STCNT0" else self.tape.asp_records)(symbol)
        times = [seconds(t) for t in self.tape.prints(symbol).times]
        m = self.st.market
        loop, speed = asyncio.get_running_loop(), self.st.cfg.ws_replay_speed
        start_at = seconds(m.now_label) if m.state == "open" else times[0]
        t0_real, t0_sim = self.st.replay_origin(loop.time(), start_at)
        k = bisect.bisect_left(times, int(t0_sim + (loop.time() - t0_real) * speed))
        while k < len(times):
            delay = t0_real + (times[k] - t0_sim) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now_sim = t0_sim + (loop.time() - t0_real) * speed
            j = k + 1
            while j < len(times) and times[j] <= now_sim and j - k < MAX_BATCH:
                j += 1
            if tr_id == "H0STASP0":
                k = j - 1  # a book frame carries one record: the latest book
            await self.send_data(f"0|{tr_id}|{j - k:03d}|" + "^".join(records[k:j]))
            k = j

    def close(self) -> None:
        for task in self.subs.values():
            if task:
                task.cancel()
        self.subs.clear()
        if self.app_key and self.st.ws_owners.get(self.app_key) is self:
            del self.st.ws_owners[self.app_key]


async def websocket(request: web.Request) -> web.WebSocketResponse:
    st = request.app[STATE]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    st.stats.ws_connections += 1
    session = Session(st, ws, st.tape, request)
    st.ws_sessions.add(session)
    pinger = asyncio.create_task(session.ping_loop())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await session.on_text(msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        st.ws_sessions.discard(session)
        pinger.cancel()
        session.close()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
    return ws
