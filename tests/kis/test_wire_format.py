"""What goes on the wire, checked on a recording server: headers (docs/kis.md §3.1), query
names, OAuth bodies; and what comes back in the documented (not the live) spelling."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings

CHART = {
    "output1": {"stck_prpr": "79600", "itewhol_loan_rmnd_ratem": "0.14"},
    "output2": [
        {"stck_bsop_date": "20240103", "stck_clpr": "79600", "stck_oprc": "78200", "stck_hgpr": "79800",
         "stck_lwpr": "78200", "acml_vol": "17142847", "acml_tr_pbmn": "1356958683044"},
        {},
    ],
    "rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.",
}


async def _serve(seen: list) -> web.AppRunner:
    async def record(request: web.Request) -> web.Response:
        body = await request.json() if request.method == "POST" else None
        seen.append((request.method, request.path, dict(request.headers), dict(request.query), body))
        if request.path == "/oauth2/tokenP":
            return web.json_response({"access_token": "TOKEN-SENTINEL-wire", "token_type": "Bearer",
                                      "expires_in": 86400, "access_token_token_expired": "2099-01-01 00:00:00"})
        if request.path == "/oauth2/Approval":
            return web.json_response({"approval_key": "0" * 36})
        if request.path == "/oauth2/revokeP":
            return web.json_response({"code": 200, "message": "ok"})
        return web.json_response(CHART)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def test_requests_on_the_wire(tmp_path):
    creds = Credentials("APPKEY-SENTINEL-wire", "APPSECRET-SENTINEL-wire")
    seen: list = []

    async def main():
        runner = await _serve(seen)
        port = runner.addresses[0][1]
        settings = KisSettings(base_url=f"http://127.0.0.1:{port}", redis_url="", token_dir=str(tmp_path))
        async with KisClient(settings, creds) as kis:
            page = await kis.daily_chart("5930", "20240101", "20240103", period="W", adjusted=False)
            await kis.approval_key()
            await kis.revoke_token()
        await runner.cleanup()
        return page

    page = asyncio.run(main())
    token, chart, approval, revoke = seen
    assert token[:2] == ("POST", "/oauth2/tokenP")
    assert token[4] == {"grant_type": "client_credentials", "appkey": creds.app_key, "appsecret": creds.app_secret}
    method, path, headers, query, _ = chart
    assert (method, path) == ("GET", "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice")
    sent = {k.lower(): v for k, v in headers.items()}
    assert sent["content-type"] == "application/json; charset=utf-8"
    assert sent["authorization"] == "Bearer TOKEN-SENTINEL-wire"
    assert (sent["appkey"], sent["appsecret"]) == (creds.app_key, creds.app_secret)
    assert (sent["tr_id"], sent["custtype"]) == ("FHKST03010100", "P")
    assert query == {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930", "FID_INPUT_DATE_1": "20240101",
                     "FID_INPUT_DATE_2": "20240103", "FID_PERIOD_DIV_CODE": "W", "FID_ORG_ADJ_PRC": "1"}
    assert approval[4] == {"grant_type": "client_credentials", "appkey": creds.app_key, "secretkey": creds.app_secret}
    assert revoke[4]["token"] == "TOKEN-SENTINEL-wire"
    assert page.bars.num_rows == 1 and page.bars.column("adjusted")[0].as_py() is False  # {} dropped
    assert page.summary["itewhol_loan_rmnd_ratem"] == "0.14"
    assert json.dumps(query).find("SENTINEL") == -1  # secrets only in headers and bodies
