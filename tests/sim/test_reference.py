"""Product info (CTPF1604R), the trading-day calendar (CTCA0903R) and past minute bars (FHKST03010230)."""
from __future__ import annotations

import datetime as dt

import aiohttp

from app.krx import calendar
from app.sim.market import Market
from app.sim.runner import start_sim_thread
from app.sim.universe import isin
from sim_testutil import Kis, sim_config, small_market

M = Market(small_market())


async def test_search_info_resolves_listed_stocks_and_answers_7_otherwise(kis):
    code = M.symbols[0]
    reply = await kis.get("search-info", {"PDNO": code, "PRDT_TYPE_CD": "300"}, tr_id="CTPF1604R")
    body = reply.json()
    assert reply.status == 200 and body["rt_cd"] == "0" and reply.headers["tr_id"] == "CTPF1604R"
    out = body["output"]
    assert (out["shtn_pdno"], out["std_pdno"], out["prdt_abrv_name"], out["prdt_type_cd"]) == (
        code, isin(code), M.names[code], "300")
    for params in ({"PDNO": "999990", "PRDT_TYPE_CD": "300"}, {"PDNO": code, "PRDT_TYPE_CD": "512"}):
        missing = (await kis.get("search-info", params, tr_id="CTPF1604R")).json()
        assert missing["rt_cd"] == "7" and "output" not in missing
    assert (await kis.get("search-info", {"PDNO": code}, tr_id="CTPF1604R")).json()["msg_cd"] == "OPSQ2002"


async def test_chk_holiday_pages_by_month_and_follows_the_krx_calendar(kis):
    first = (await kis.get("chk-holiday", {"BASS_DT": "20261124", "CTX_AREA_NK": "", "CTX_AREA_FK": ""},
                           tr_id="CTCA0903R")).json()
    rows = first["output"]
    assert [r["bass_dt"] for r in rows][0::6] == ["20261124", "20261130"] and len(rows) == 7
    assert first["ctx_area_fk"] == "20261124" and first["ctx_area_nk"] == "20261130"
    nxt = (await kis.get("chk-holiday", {"BASS_DT": "20261124", "CTX_AREA_NK": first["ctx_area_nk"],
                                         "CTX_AREA_FK": ""}, tr_id="CTCA0903R")).json()
    dec = nxt["output"]
    assert dec[0]["bass_dt"] == "20261201" and dec[-1]["bass_dt"] == "20261231"
    for r in rows + dec:
        day = dt.datetime.strptime(r["bass_dt"], "%Y%m%d").date()
        assert r["opnd_yn"] == ("Y" if calendar.is_session(day) else "N"), r
    assert next(r for r in dec if r["bass_dt"] == "20261225")["opnd_yn"] == "N"  # Christmas
    assert next(r for r in dec if r["bass_dt"] == "20261231")["opnd_yn"] == "N"  # KRX closes on 12/31
    assert rows[0]["wday_dvsn_cd"] == "03"  # a Tuesday (01 = Sunday)


def _past(symbol: str, day: str, hour: str, past: str = "Y") -> dict:
    return {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol, "FID_INPUT_HOUR_1": hour,
            "FID_INPUT_DATE_1": day, "FID_PW_DATA_INCU_YN": past, "FID_FAKE_TICK_INCU_YN": ""}


async def test_past_minute_chart_pages_back_across_sessions(kis):
    symbol = M.symbols[1]
    prev, today = M.sessions()[-2], M.today
    rows = (await kis.get("inquire-time-dailychartprice", _past(symbol, today.strftime("%Y%m%d"), "091000"),
                          tr_id="FHKST03010230")).json()["output2"]
    assert len(rows) == 120 and rows[0]["stck_cntg_hour"] == "091000"
    assert [r["stck_bsop_date"] for r in rows].count(today.strftime("%Y%m%d")) == 11  # 09:00..09:10
    truth = M.minute_bars(symbol, prev).to_pylist()[::-1][:109]
    assert [float(r["stck_prpr"]) for r in rows[11:]] == [b["close"] for b in truth]
    assert rows[11]["stck_bsop_date"] == prev.strftime("%Y%m%d") and rows[11]["stck_cntg_hour"] == "153000"
    only_today = (await kis.get("inquire-time-dailychartprice", _past(symbol, today.strftime("%Y%m%d"), "091000", "N"),
                                tr_id="FHKST03010230")).json()["output2"]
    assert len(only_today) == 11
    old = (await kis.get("inquire-time-dailychartprice", _past(symbol, "20250101", "153000"),
                         tr_id="FHKST03010230")).json()["output2"]
    assert old == []  # more than a year back: not kept


async def test_real_only_trs_are_refused_on_the_paper_host():
    with start_sim_thread(sim_config(env="paper", token_interval_s=0.0)) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            reply = await kis.get("inquire-time-dailychartprice", _past(M.symbols[0], "20261120", "153000"),
                                  tr_id="FHKST03010230")
            assert reply.status == 500 and reply.json()["msg_cd"] == "EGW00213"
            ok = await kis.get("search-info", {"PDNO": M.symbols[0], "PRDT_TYPE_CD": "300"}, tr_id="CTPF1604R")
            assert ok.json()["rt_cd"] == "0"
