"""OAuth over HTTP: token reuse and throttle, expiry after N requests, revoke, approval keys (docs/kis.md §2)."""
from __future__ import annotations

import asyncio
import datetime as dt
import re

import aiohttp

from app.contracts import KST
from app.sim.config import FaultConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread
from sim_testutil import Kis, sim_config, small_market

SYMBOL = Market(small_market(n_symbols=2, start="2026-10-01")).symbols[0]
PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": SYMBOL}


def _server(**kw):
    return start_sim_thread(sim_config(market=small_market(n_symbols=2, start="2026-10-01"), **kw))


async def test_token_shape_and_second_request_within_a_minute_is_refused():
    with _server() as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            first = await kis.issue()
            body = first.json()
            assert first.status == 200 and set(body) == {"access_token", "access_token_token_expired", "token_type",
                                                         "expires_in"}
            assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
            assert 86390 <= body["expires_in"] <= 86400
            assert len(body["access_token"].split(".")) == 3 and len(body["access_token"]) > 300
            expiry = dt.datetime.strptime(body["access_token_token_expired"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
            assert abs((expiry - dt.datetime.now(KST)).total_seconds() - 86400) < 15
            again = await kis.issue()
            assert again.status == 403
            assert again.json() == {"error_code": "EGW00133",
                                    "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"}
            # another app key has its own allowance
            assert (await Kis(session, sim.base_url, "key-2", "secret-2").issue()).status == 200
        assert sim.stats()["token_issuances"] == 2


async def test_same_token_within_the_reuse_window_and_a_new_one_after_it():
    with _server(token_interval_s=0.0, token_reuse_s=0.3) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            a = (await kis.issue()).json()["access_token"]
            b = (await kis.issue()).json()["access_token"]
            await asyncio.sleep(0.35)
            c = (await kis.issue()).json()["access_token"]
            assert a == b != c
            assert (await kis.get("inquire-price", PARAMS)).status == 200
        assert sim.stats()["token_issuances"] == 2


async def test_token_expires_after_n_requests_then_a_new_one_works():
    with _server(token_interval_s=0.0, faults=FaultConfig(token_expire_after=3)) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            first = (await kis.issue()).json()["access_token"]
            for _ in range(3):
                assert (await kis.get("inquire-price", PARAMS)).status == 200
            expired = await kis.get("inquire-price", PARAMS)
            assert expired.status == 500
            assert expired.json() == {"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "기간이 만료된 token 입니다."}
            second = (await kis.issue()).json()["access_token"]
            assert second != first
            assert (await kis.get("inquire-price", PARAMS)).status == 200


async def test_token_lifetime_expiry_gives_egw00123():
    with _server(token_interval_s=0.0, token_lifetime_s=0.2) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            assert (await kis.get("inquire-price", PARAMS)).status == 200
            await asyncio.sleep(0.25)
            assert (await kis.get("inquire-price", PARAMS)).json()["msg_cd"] == "EGW00123"


async def test_revoke_answers_an_integer_code_and_kills_the_token():
    with _server(token_interval_s=0.0) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            old = kis.token
            reply = await kis.post("/oauth2/revokeP", {"appkey": kis.appkey, "appsecret": kis.appsecret, "token": old})
            assert reply.status == 200 and reply.json() == {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}
            assert (await kis.get("inquire-price", PARAMS)).json()["msg_cd"] == "EGW00121"
            await kis.issue()
            assert kis.token != old and (await kis.get("inquire-price", PARAMS)).status == 200


async def test_token_request_errors_use_the_oauth_shape():
    with _server() as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            missing = await kis.post("/oauth2/tokenP", {"grant_type": "client_credentials", "appsecret": "x"})
            assert missing.status == 403 and missing.json()["error_code"] == "EGW00102"
            grant = await kis.post("/oauth2/tokenP", {"grant_type": "password", "appkey": "a", "appsecret": "b"})
            assert grant.status == 403 and set(grant.json()) == {"error_code", "error_description"}


async def test_approval_key_uses_secretkey_and_one_per_second():
    with _server(approval_interval_s=0.3) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            body = {"grant_type": "client_credentials", "appkey": "key-1", "secretkey": "secret-1"}
            first = await kis.post("/oauth2/Approval", body)
            assert first.status == 200
            assert re.fullmatch(r"[0-9a-f-]{36}", first.json()["approval_key"])
            assert (await kis.post("/oauth2/Approval", body)).status == 403
            await asyncio.sleep(0.35)
            assert (await kis.post("/oauth2/Approval", body)).status == 200
            wrong = await kis.post("/oauth2/Approval", {"grant_type": "client_credentials", "appkey": "k",
                                                        "appsecret": "not-the-right-key"})
            assert wrong.status == 403 and wrong.json()["error_code"] == "EGW00104"
