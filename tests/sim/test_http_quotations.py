"""The quotation endpoints over HTTP: envelopes, headers, paging inputs, and error shapes (docs/kis.md §3-§5)."""
from __future__ import annotations

import datetime as dt
import json

import aiohttp
import numpy as np
import pytest

from app.sim.config import FaultConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread
from sim_testutil import Kis, chart_params, minute_params, sim_config, small_market

OK = ("0", "MCA00000", "정상처리 되었습니다.")


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(small_market())  # the same config as the module's server: the same market


def _all_strings(obj) -> bool:
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _all_strings(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_all_strings(v) for v in obj)
    return isinstance(obj, str)


def _ok(reply, tr_id: str) -> dict:
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.headers["tr_id"] == tr_id and reply.headers["tr_cont"] == "D" and len(reply.headers["gt_uid"]) == 32
    body = reply.json()
    assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == OK
    assert _all_strings(body)
    return body


async def test_inquire_price_envelope(kis, market):
    s = market.symbols[0]
    body = _ok(await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s}), "FHKST01010100")
    out = body["output"]
    last = market.daily_bars(s, adjusted=False).to_pylist()[-1]
    assert out["stck_prpr"] == f"{last['close']:.0f}" and out["stck_shrn_iscd"] == s
    assert int(out["stck_mxpr"]) - int(out["stck_sdpr"]) == int(out["rstc_wdth_prc"])
    assert "apprch_rate" not in out and "new_hgpr_lwpr_cls_code" not in out  # the live server omits them
    assert int(out["stck_lwpr"]) <= int(out["stck_prpr"]) <= int(out["stck_hgpr"])


async def test_lower_case_query_names_are_accepted(kis, market):
    s = market.symbols[1]
    upper = await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s})
    lower = await kis.get("inquire-price", {"fid_cond_mrkt_div_code": "J", "fid_input_iscd": s})
    assert _ok(lower, "FHKST01010100")["output"] == upper.json()["output"]


async def test_daily_chart_returns_the_latest_100_rows_in_range_newest_first(kis, market):
    s = market.symbols[2]
    body = _ok(await kis.get("inquire-daily-itemchartprice", chart_params(s, "20240101", "20261010")),
               "FHKST03010100")
    rows = body["output2"]
    dates = [r["stck_bsop_date"] for r in rows]
    assert len(rows) == 100 and dates == sorted(dates, reverse=True)
    expected = market.daily_bars(s, end=dt.date(2026, 10, 10))
    assert dates[0] == expected["ts"][-1].as_py().strftime("%Y%m%d")
    assert rows[0]["stck_clpr"] == f"{expected['close'][-1].as_py():.0f}"
    assert "itewhol_loan_rmnd_ratem name" in body["output1"] and body["output1"]["hts_kor_isnm"] == market.names[s]
    assert set(rows[0]) == {"stck_bsop_date", "stck_clpr", "stck_oprc", "stck_hgpr", "stck_lwpr", "acml_vol",
                            "acml_tr_pbmn", "flng_cls_code", "prtt_rate", "mod_yn", "prdy_vrss_sign", "prdy_vrss",
                            "revl_issu_reas"}


async def test_paging_back_by_date_collects_the_whole_range_once(kis, market):
    s = market.symbols[3]
    start, end = "20250102", "20261120"
    got, d2 = [], end
    while True:
        rows = (await kis.get("inquire-daily-itemchartprice", chart_params(s, start, d2))).json()["output2"]
        got += rows
        if len(rows) < 100:
            break
        oldest = dt.datetime.strptime(rows[-1]["stck_bsop_date"], "%Y%m%d").date()
        d2 = (oldest - dt.timedelta(days=1)).strftime("%Y%m%d")
    ref = market.daily_bars(s, dt.date(2025, 1, 2), dt.date(2026, 11, 20))
    assert [r["stck_bsop_date"] for r in reversed(got)] == [t.strftime("%Y%m%d") for t in ref["ts"].to_pylist()]
    assert [float(r["stck_clpr"]) for r in reversed(got)] == ref["close"].to_pylist()


@pytest.mark.parametrize("period", ["W", "M", "Y"])
async def test_period_bars_are_served_for_w_m_y(kis, market, period):
    s = market.symbols[0]
    rows = _ok(await kis.get("inquire-daily-itemchartprice", chart_params(s, "20240101", "20261120", period)),
               "FHKST03010100")["output2"]
    ref = market.daily_bars(s, period=period)
    assert len(rows) == min(100, ref.num_rows)
    assert rows[0]["stck_bsop_date"] == "20261120" and rows[0]["stck_clpr"] == f"{ref['close'][-1].as_py():.0f}"


async def test_adjusted_and_raw_charts_around_a_split():
    cfg = sim_config(market=small_market(n_symbols=10, split_fraction=0.2))
    m = Market(cfg.market)
    i, t = np.argwhere(m.hist.split > 1)[0]
    s, ratio, day = m.symbols[i], m.hist.split[i, t], m.sessions()[t]
    d2 = (day + dt.timedelta(days=10)).strftime("%Y%m%d")
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            adj = (await kis.get("inquire-daily-itemchartprice", chart_params(s, "20240101", d2, adj="0"))).json()["output2"]
            raw = (await kis.get("inquire-daily-itemchartprice", chart_params(s, "20240101", d2, adj="1"))).json()["output2"]
    by_day = {r["stck_bsop_date"]: r for r in raw}
    split_row = by_day[day.strftime("%Y%m%d")]
    assert split_row["flng_cls_code"] == "01" and float(split_row["prtt_rate"]) == ratio
    before = [r for r in adj if r["stck_bsop_date"] < day.strftime("%Y%m%d")][:3]
    for a in before:
        r = by_day[a["stck_bsop_date"]]
        assert int(a["stck_clpr"]) == round(int(r["stck_clpr"]) / ratio) and a["prtt_rate"] == "0.00"
        assert int(a["acml_vol"]) == int(r["acml_vol"]) * ratio
    after = [r for r in adj if r["stck_bsop_date"] >= day.strftime("%Y%m%d")]
    assert all(r["stck_clpr"] == by_day[r["stck_bsop_date"]]["stck_clpr"] for r in after)


async def test_minute_chart_gives_30_rows_at_or_before_the_hour(kis, market):
    s = market.symbols[4]
    body = _ok(await kis.get("inquire-time-itemchartprice", minute_params(s, "113000")), "FHKST03010200")
    rows = body["output2"]
    hours = [r["stck_cntg_hour"] for r in rows]
    assert len(rows) == 30 and hours[0] == "113000" and hours[-1] == "110100"
    assert {r["stck_bsop_date"] for r in rows} == {"20261120"}
    mb = market.minute_bars(s).to_pylist()
    by_label = {b["ts"].strftime("%H%M%S"): b for b in mb}
    assert rows[0]["stck_prpr"] == f"{by_label['113000']['close']:.0f}"
    cum = np.cumsum([b["value"] for b in mb])
    k = [b["ts"].strftime("%H%M%S") for b in mb].index("113000")
    assert rows[0]["acml_tr_pbmn"] == str(cum[k])


async def test_minute_paging_covers_the_session_down_to_0900(kis, market):
    s = market.symbols[5]
    hour, got = "153000", []
    while True:
        rows = (await kis.get("inquire-time-itemchartprice", minute_params(s, hour))).json()["output2"]
        got += rows
        last = rows[-1]["stck_cntg_hour"]
        if len(rows) < 30 or last <= "090000":
            break
        t = dt.datetime.strptime(last, "%H%M%S") - dt.timedelta(minutes=1)
        hour = t.strftime("%H%M%S")
    labels = [r["stck_cntg_hour"] for r in reversed(got)]
    assert labels == [b["ts"].strftime("%H%M%S") for b in market.minute_bars(s).to_pylist()]
    assert sum(int(r["cntg_vol"]) for r in got) == int(market.daily_bars(s)["volume"][-1].as_py())


async def test_minute_chart_future_hour_returns_bars_up_to_now():
    cfg = sim_config(market=small_market(now="100000"))
    s = Market(cfg.market).symbols[0]
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            rows = (await kis.get("inquire-time-itemchartprice", minute_params(s, "113000"))).json()["output2"]
            early = (await kis.get("inquire-time-itemchartprice", minute_params(s, "090500"))).json()["output2"]
    assert rows[0]["stck_cntg_hour"] == "100000" and len(rows) == 30
    assert [r["stck_cntg_hour"] for r in early] == ["090500", "090400", "090300", "090200", "090100", "090000"]


async def test_daily_price_has_30_rows_in_an_output_array(kis, market):
    s = market.symbols[6]
    body = _ok(await kis.get("inquire-daily-price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s,
                                                     "FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "1"}),
               "FHKST01010400")
    rows = body["output"]
    assert isinstance(rows, list) and len(rows) == 30
    ref = market.daily_bars(s).to_pylist()[-30:][::-1]
    assert [r["stck_clpr"] for r in rows] == [f"{b['close']:.0f}" for b in ref]
    assert rows[0]["acml_prtt_rate"] == "1.00" and "prdy_ctrt" in rows[0]


async def test_unknown_stock_code_answers_zeros(kis):
    price = _ok(await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "000001"}),
                "FHKST01010100")
    assert price["output"]["stck_prpr"] == "0"
    chart = _ok(await kis.get("inquire-daily-itemchartprice", chart_params("000001", "20240101", "20261120")),
                "FHKST03010100")
    assert chart["output1"]["stck_prpr"] == "0" and chart["output2"] == []


def _business(reply, code: str, status: int = 200) -> str:
    assert reply.status == status, reply.text
    body = reply.json()
    assert body["rt_cd"] == "1" and body["msg_cd"] == code and set(body) == {"rt_cd", "msg_cd", "msg1"}
    return body["msg1"]


async def test_parameter_errors(kis, market):
    s = market.symbols[0]
    msg = _business(await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J"}), "OPSQ2002")
    assert "INPUT FIELD NOT FOUND" in msg
    _business(await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "X", "FID_INPUT_ISCD": s}), "OPSQ2001")
    _business(await kis.get("inquire-daily-itemchartprice", chart_params(s, "2024-01-01", "20261120")), "OPSQ2002")
    _business(await kis.get("inquire-time-itemchartprice", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s}),
              "OPSQ2002")
    _business(await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s},
                            tr_id="FHKST99999999"), "OPSQ0002")


async def test_gateway_errors_are_http_500_envelopes(kis, market):
    p = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": market.symbols[0]}
    _business(await kis.get("inquire-price", p, authorization=None), "EGW00205", 500)
    _business(await kis.get("inquire-price", p, authorization="Token abc"), "EGW00205", 500)
    assert "유효하지 않은 token" in _business(await kis.get("inquire-price", p, authorization="Bearer nope"),
                                           "EGW00121", 500)
    _business(await kis.get("inquire-price", p, appkey=None), "EGW00102", 500)
    _business(await kis.get("inquire-price", p, appsecret=None), "EGW00104", 500)
    _business(await kis.get("inquire-price", p, custtype="X"), "EGW00208", 500)


async def test_registered_app_keys_are_checked():
    cfg = sim_config(app_keys={"good-key": "good-secret"})
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            bad = Kis(session, sim.base_url, "other-key", "good-secret")
            reply = await bad.issue()
            assert reply.status == 403 and reply.json()["error_code"] == "EGW00103"
            reply = await Kis(session, sim.base_url, "good-key", "wrong").issue()
            assert reply.status == 403 and reply.json()["error_code"] == "EGW00105"
            good = Kis(session, sim.base_url, "good-key", "good-secret")
            assert (await good.issue()).status == 200
            s = Market(cfg.market).symbols[0]
            p = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": s}
            _business(await good.get("inquire-price", p, appsecret="wrong"), "EGW00105", 500)
            assert (await good.get("inquire-price", p)).status == 200


async def test_malformed_json_fault_gives_a_truncated_200_body():
    cfg = sim_config(faults=FaultConfig(seed=3, malformed_json=1.0))
    with start_sim_thread(cfg) as sim:
        async with aiohttp.ClientSession() as session:
            kis = Kis(session, sim.base_url)
            await kis.issue()
            reply = await kis.get("inquire-price", {"FID_COND_MRKT_DIV_CODE": "J",
                                                    "FID_INPUT_ISCD": Market(cfg.market).symbols[0]})
        assert reply.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(reply.text)
        assert sim.stats()["faults"] == {"malformed_json": 1}
