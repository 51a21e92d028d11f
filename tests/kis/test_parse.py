"""KIS JSON → Bars: strings, empty objects, the quirky output1 key, 15:30 stamps, minute values."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from app.contracts import BARS_SCHEMA, KST
from app.errors import DataError
from app.kis import parse


def _day(date: str, close: str, value: str = "1000") -> dict:
    return {"stck_bsop_date": date, "stck_oprc": "100", "stck_hgpr": "120", "stck_lwpr": "90",
            "stck_clpr": close, "acml_vol": "17", "acml_tr_pbmn": value, "flng_cls_code": "00",
            "mod_yn": "N", "revl_issu_reas": ""}


def _minute(hour: str, cum: int, vol: int = 5, date: str = "20240315") -> dict:
    return {"stck_bsop_date": date, "stck_cntg_hour": hour, "stck_prpr": "101", "stck_oprc": "100",
            "stck_hgpr": "102", "stck_lwpr": "99", "cntg_vol": str(vol), "acml_tr_pbmn": str(cum)}


def test_output1_loan_ratio_key_both_spellings():
    documented = parse.chart_summary({"stck_prpr": "1", "itewhol_loan_rmnd_ratem": "0.14"})
    live = parse.chart_summary({"stck_prpr": "1", "itewhol_loan_rmnd_ratem name": "0.15"})
    assert documented["itewhol_loan_rmnd_ratem"] == "0.14"
    assert live["itewhol_loan_rmnd_ratem"] == "0.15"
    assert "itewhol_loan_rmnd_ratem name" not in live
    assert parse.chart_summary(None) == {}


def test_empty_objects_are_dropped():
    payload = {"output2": [_day("20240103", "110"), {}, _day("20240102", "105"), {"stck_bsop_date": ""}]}
    rows = parse.rows_of(payload, "output2")
    assert [r["stck_bsop_date"] for r in rows] == ["20240103", "20240102"]
    assert parse.rows_of({"output2": None}, "output2") == []


def test_date_bars_follow_contract_and_stamp_1530_kst():
    rows = [_day("20240103", "110", "9007199254740993"), _day("20240102", "105")]
    table = parse.date_bars("005930", rows, adjusted=True)
    assert table.schema.equals(BARS_SCHEMA)
    first = table.to_pylist()[0]
    assert first["ts"] == dt.datetime(2024, 1, 3, 15, 30, tzinfo=KST)
    assert first["close"] == 110.0 and first["volume"] == 17
    assert first["value"] == 9007199254740993  # int64 exact, no float round trip
    assert first["adjusted"] is True and first["symbol"] == "005930"
    assert parse.sort_unique(table).column("close").to_pylist() == [105.0, 110.0]


def test_non_numeric_field_is_a_clear_data_error():
    with pytest.raises(DataError, match="stck_clpr='abc'"):
        parse.date_bars("005930", [_day("20240103", "abc")], adjusted=False)


def test_minute_value_is_the_difference_of_cumulative_values():
    # newest first, as KIS sends; 09:00 is the session's first bar
    page2 = parse.minute_rows("000660", [_minute("090100", 250), _minute("090000", 100)])
    page1 = parse.minute_rows("000660", [_minute("090300", 700), _minute("090200", 400), _minute("090100", 250)])
    table = parse.minute_bars([page1, page2])
    assert table.schema.equals(BARS_SCHEMA)
    assert [t.strftime("%H%M") for t in table.column("ts").to_pylist()] == ["0900", "0901", "0902", "0903"]
    assert table.column("value").to_pylist() == [100, 150, 150, 300]  # duplicate 09:01 kept once
    assert table.column("ts")[0].as_py() == dt.datetime(2024, 3, 15, 9, 0, tzinfo=KST)


def test_minute_value_restarts_each_session():
    rows = [_minute("090000", 70, date="20240318"), _minute("153000", 900, date="20240315"),
            _minute("152000", 800, date="20240315")]
    table = parse.minute_bars([parse.minute_rows("000660", rows)])
    assert table.column("value").to_pylist() == [800, 100, 70]


def test_empty_minute_pages_give_an_empty_bars_table():
    assert parse.minute_bars([]).schema.equals(BARS_SCHEMA)


def test_quote_fields_are_typed():
    q = parse.quote("005930", {"stck_prpr": "71800", "prdy_vrss": "-300", "prdy_ctrt": "-0.42",
                               "acml_vol": "3456789", "acml_tr_pbmn": "247712345600"})
    assert (q.price, q.change, q.change_rate, q.volume, q.value) == (71800.0, -300.0, -0.42, 3456789, 247712345600)
    assert q.raw["stck_prpr"] == "71800"
    with pytest.raises(DataError):
        parse.quote("005930", {"stck_prpr": "n/a"})


def test_timestamps_are_kst_typed():
    table = parse.date_bars("005930", [_day("19880510", "1")], adjusted=False)  # Korea had DST in 1988
    assert table.schema.field("ts").type == pa.timestamp("s", tz="Asia/Seoul")
    assert table.column("ts")[0].as_py().hour == 15
