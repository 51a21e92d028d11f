"""The KIS-compatible HTTP server: OAuth, quotations, limits, faults, master files, /sim/ extras.

Order of checks for a quotation request, like a gateway in front of a service: app key and
secret, Bearer token (EGW00121/EGW00123), per-key sliding-window limit (EGW00201), injected
fault, then tr_id (OPSQ0002) and query validation (OPSQ2001/OPSQ2002) by the endpoint.
"""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from app.sim import master
from app.sim.auth import MESSAGES, AuthError
from app.sim.config import SimConfig, validate
from app.sim.faults import HTML_ERROR
from app.sim.market import Market
from app.sim.quotations import ParamError, business_error
from app.sim.state import STATE, SimState
from app.sim.ws import websocket

JSON = "application/json"
#: TRs the paper host does not serve.
REAL_ONLY = frozenset({"FHKST03010230", "CTCA0903R"})




def _json_response(body: bytes, status: int = 200, tr_id: str | None = None, st: SimState | None = None) -> web.Response:
    headers = {}
    if tr_id is not None and st is not None:
        headers = {"tr_id": tr_id, "tr_cont": "D", "gt_uid": st.gt_uid()}
    return web.Response(body=body, status=status, headers=headers, content_type=JSON, charset="utf-8")


def _gateway_error(code: str, st: SimState, tr_id: str | None) -> web.Response:
    return _json_response(business_error(code, MESSAGES[code]), 500, tr_id or "", st)


def _plain_json(obj: dict, status: int = 200) -> web.Response:
    """OAuth answers: plain JSON (not the rt_cd envelope), UTF-8 text like the live server."""
    return web.Response(text=json.dumps(obj, ensure_ascii=False), status=status, content_type=JSON, charset="utf-8")


def _oauth_error(code: str, status: int = 403) -> web.Response:
    return _plain_json({"error_code": code, "error_description": MESSAGES.get(code, code)}, status)


async def _body(request: web.Request) -> dict:
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


async def token(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.stats.requests += 1
    body = await _body(request)
    if body.get("grant_type") != "client_credentials":
        return _oauth_error("EGW00205")
    try:
        tok, new = st.auth.issue(body.get("appkey") or "", body.get("appsecret") or "")
    except AuthError as e:
        return _oauth_error(e.code)
    st.stats.token_issuances += int(new)
    remaining = max(0, int(tok.expires - st.auth.clock()))
    out = {"access_token": tok.value, "access_token_token_expired": st.auth.expiry_text(tok),
           "token_type": "Bearer", "expires_in": remaining}
    return _plain_json(out)


async def revoke(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.stats.requests += 1
    body = await _body(request)
    try:
        st.auth.revoke(body.get("appkey") or "", body.get("appsecret") or "", body.get("token") or "")
    except AuthError as e:
        return _oauth_error(e.code)
    return _plain_json({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})


async def approval(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.stats.requests += 1
    body = await _body(request)
    try:
        key = st.auth.approval(body.get("appkey") or "", body.get("secretkey") or "")
    except AuthError as e:
        return _oauth_error(e.code)
    return _plain_json({"approval_key": key})


def _gate(st: SimState, request: web.Request) -> web.Response | None:
    """The gateway's refusals: credentials, token, then the per-key window."""
    h = request.headers
    app_key = h.get("appkey")
    try:
        st.auth.check_keys(app_key, h.get("appsecret"))
        st.auth.authorise(h.get("authorization"), app_key)
    except AuthError as e:
        return _gateway_error(e.code, st, h.get("tr_id"))
    if h.get("custtype", "P") not in ("P", "B"):
        return _gateway_error("EGW00208", st, h.get("tr_id"))
    if not st.window.admit(app_key):
        return _gateway_error("EGW00201", st, h.get("tr_id"))
    return None


async def _fault(st: SimState, request: web.Request) -> tuple[str | None, web.StreamResponse | None]:
    """Draw this request's fault; returns it and, when it replaces the answer, the replacement."""
    if request.query.get("FID_INPUT_ISCD") in st.cfg.faults.fail_symbols:
        st.stats.faults["fail_symbols"] += 1
        return "fail_symbols", web.Response(body=HTML_ERROR[503], status=503, content_type="text/html")
    kind = st.faults.draw()
    if kind is None:
        return None, None
    st.stats.faults[kind] += 1
    if kind == "drop":
        request.transport.close()
        return kind, web.Response(status=200)  # never reaches the client
    if kind == "spurious_rate_limit":
        st.stats.spurious_rate_limited += 1
        return kind, _gateway_error("EGW00201", st, request.headers.get("tr_id"))
    if kind == "server_error_html":
        status = st.faults.html_status()
        return kind, web.Response(body=HTML_ERROR[status], status=status, content_type="text/html")
    if kind == "slow":
        await asyncio.sleep(st.cfg.faults.slow_seconds)
    return kind, None


def quotation_handler(tr_id: str, handle):
    async def handler(request: web.Request) -> web.StreamResponse:
        st = request.app[STATE]
        st.stats.requests += 1
        refused = _gate(st, request)
        if refused is not None:
            return refused
        fault, replaced = await _fault(st, request)
        if replaced is not None:
            return replaced
        sent_tr = request.headers.get("tr_id")
        if sent_tr != tr_id:
            return _json_response(business_error("OPSQ0002", "없는 서비스 코드 입니다"), 200, sent_tr or "", st)
        if tr_id in REAL_ONLY and st.cfg.env == "paper":
            return _json_response(business_error("EGW00213", "모의투자 tr이 아닙니다"), 500, tr_id, st)
        try:
            body = handle({k.upper(): v for k, v in request.query.items()})
        except ParamError as e:
            return _json_response(business_error(e.code, e.message), 200, tr_id, st)
        if fault == "malformed_json":
            body = body[: max(1, len(body) // 2)]
        return _json_response(body, 200, tr_id, st)

    return handler


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats.as_dict())


async def reset_stats(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.stats.__init__()
    st.window.reset()
    return web.json_response({"ok": True})


async def drop_websockets(request: web.Request) -> web.Response:
    """Fault switch: cut every open websocket connection now, without a close frame."""
    st = request.app[STATE]
    sessions = list(st.ws_sessions)
    for session in sessions:
        session.drop()
    return web.json_response({"dropped": len(sessions)})


async def _close_websockets(app: web.Application) -> None:
    """On shutdown, close open websockets (otherwise the server waits for their clients)."""
    for session in list(app[STATE].ws_sessions):
        await session.ws.close(code=1001, message=b"server shutdown")


def master_handler(market_name: str):
    async def handler(request: web.Request) -> web.Response:
        data = master.master_zip(request.app[STATE].market, market_name)
        return web.Response(body=data, content_type="application/zip")

    return handler


def create_app(cfg: SimConfig, market: Market | None = None) -> web.Application:
    validate(cfg)
    st = SimState(cfg, market)
    app = web.Application()
    app[STATE] = st
    app.router.add_post("/oauth2/tokenP", token)
    app.router.add_post("/oauth2/revokeP", revoke)
    app.router.add_post("/oauth2/Approval", approval)
    for path, (tr_id, handle) in st.quotations.routes.items():
        app.router.add_get(path, quotation_handler(tr_id, handle))
    for name in ("kospi", "kosdaq"):
        app.router.add_get(f"/common/master/{name}_code.mst.zip", master_handler(name))
    for path in ("/tryitout", "/tryitout/{tr_id}", "/"):
        app.router.add_get(path, websocket)
    app.router.add_get("/sim/stats", stats)
    app.router.add_post("/sim/reset-stats", reset_stats)
    app.router.add_post("/sim/ws/drop", drop_websockets)
    app.on_shutdown.append(_close_websockets)
    return app

