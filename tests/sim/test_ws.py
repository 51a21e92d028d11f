"""The real-time websocket (docs/kis.md §6): acks, limits, PINGPONG, and frames that rebuild the minute bars."""
from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import aiohttp

from app.sim.market import Market
from app.sim.runner import start_sim_thread
from sim_testutil import sim_config, small_market

MARKET = small_market(n_symbols=3, start="2026-06-01")
SYMBOLS = Market(MARKET).symbols


def _msg(approval_key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps({"header": {"approval_key": approval_key, "custtype": "P", "tr_type": tr_type,
                                  "content-type": "utf-8"}, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})


async def _approval(session: aiohttp.ClientSession, base: str, appkey: str = "key-1") -> str:
    async with session.post(f"{base}/oauth2/Approval", json={"grant_type": "client_credentials", "appkey": appkey,
                                                             "secretkey": "secret"}) as r:
        return (await r.json())["approval_key"]


async def _control(ws) -> dict:
    while True:
        text = await ws.receive_str(timeout=5)
        if text.startswith("{") and '"PINGPONG"' not in text:
            return json.loads(text)


async def test_trade_frames_replay_the_session_and_rebuild_the_minute_bars():
    cfg = sim_config(market=MARKET, ws_replay_speed=20_000)
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            key = await _approval(session, sim.base_url)
            async with session.ws_connect(sim.base_url.replace("http", "ws") + "/tryitout") as ws:
                await ws.send_str(_msg(key, "H0STCNT0", SYMBOLS[0]))
                ack = await _control(ws)
                assert ack["header"] == {"tr_id": "H0STCNT0", "tr_key": SYMBOLS[0], "encrypt": "N"}
                assert ack["body"]["rt_cd"] == "0" and ack["body"]["msg_cd"] == "OPSP0000"
                assert ack["body"]["msg1"] == "SUBSCRIBE SUCCESS"
                assert len(ack["body"]["output"]["iv"]) == 16 and len(ack["body"]["output"]["key"]) == 32
                bars: dict[str, list] = defaultdict(list)
                counts = []
                while True:
                    text = await ws.receive_str(timeout=5)
                    if text.startswith("{"):
                        continue
                    enc, tr_id, count, payload = text.split("|", 3)
                    fields = payload.split("^")
                    assert enc == "0" and tr_id == "H0STCNT0" and len(fields) == 46 * int(count)
                    counts.append(int(count))
                    for r in range(int(count)):
                        f = fields[46 * r: 46 * (r + 1)]
                        bars[f[1][:4] + "00"].append((float(f[2]), int(f[12]), int(f[13])))
                    if "153000" in bars:
                        break
    assert max(counts) > 1  # prints due together are batched into one frame
    ref = Market(MARKET).minute_bars(SYMBOLS[0]).to_pylist()
    assert sorted(bars) == [b["ts"].strftime("%H%M%S") for b in ref]
    for b in ref:
        prints = bars[b["ts"].strftime("%H%M%S")]
        px = [p for p, _, _ in prints]
        assert (px[0], max(px), min(px), px[-1]) == (b["open"], b["high"], b["low"], b["close"])
        assert sum(v for _, v, _ in prints) == b["volume"]
    assert prints[-1][2] == sum(b["volume"] for b in ref)  # ACML_VOL of the last print


async def test_session_rules_and_error_codes():
    cfg = sim_config(market=MARKET, ws_max_subscriptions=2, ws_ping_interval_s=0.2, ws_replay_speed=1.0)
    with start_sim_thread(cfg) as sim:
        url = sim.base_url.replace("http", "ws") + "/tryitout"
        async with aiohttp.ClientSession() as session:
            key = await _approval(session, sim.base_url)
            async with session.ws_connect(url) as ws, session.ws_connect(url) as second:
                await ws.send_str(_msg(key, "H0STCNT0", SYMBOLS[0]))
                assert (await _control(ws))["body"]["msg_cd"] == "OPSP0000"
                await second.send_str(_msg(key, "H0STCNT0", SYMBOLS[1]))
                refused = await _control(second)
                assert refused == {"header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
                                   "body": {"rt_cd": "9", "msg_cd": "OPSP8996", "msg1": "ALREADY IN USE appkey"}}
                for tr_id, tr_key, tr_type, code in [
                    ("H0STCNT0", SYMBOLS[0], "1", "OPSP0002"),  # already subscribed
                    ("H0STCNI0", "HTSID", "1", "OPSP0000"),     # order notices: acked, encrypted
                    ("H0STASP0", SYMBOLS[1], "1", "OPSP0008"),  # over the limit of 2
                    ("H0STXXX0", SYMBOLS[1], "1", "OPSP8991"),
                    ("H0STCNT0", "999999", "1", "OPSP8992"),
                    ("H0STCNT0", SYMBOLS[0], "9", "OPSP8997"),
                    ("H0STASP0", SYMBOLS[2], "2", "OPSP0003"),  # not subscribed
                    ("H0STCNT0", SYMBOLS[0], "2", "OPSP0001"),
                ]:
                    await ws.send_str(_msg(key, tr_id, tr_key, tr_type))
                    reply = await _control(ws)
                    assert reply["body"]["msg_cd"] == code, (tr_id, tr_type, reply)
                    if code == "OPSP0000":
                        assert reply["header"]["encrypt"] == "Y"
                await ws.send_str(_msg("not-a-key", "H0STCNT0", SYMBOLS[2]))
                assert (await _control(ws))["body"]["msg1"] == "INVALID APPROVAL KEY"
                await ws.send_str("{not json")
                assert (await _control(ws))["body"]["rt_cd"] == "9"
                ping = json.loads(await asyncio.wait_for(_next_ping(ws), 3))
                assert ping["header"]["tr_id"] == "PINGPONG" and len(ping["header"]["datetime"]) == 14
                await ws.send_str(json.dumps(ping))  # the echo clients send back is ignored
            # the key is free again once its session closed
            async with session.ws_connect(url) as third:
                await third.send_str(_msg(key, "H0STCNT0", SYMBOLS[1]))
                assert (await _control(third))["body"]["msg_cd"] == "OPSP0000"
        assert sim.stats()["ws_connections"] == 3


async def _next_ping(ws) -> str:
    while True:
        text = await ws.receive_str()
        if '"PINGPONG"' in text:
            return text
