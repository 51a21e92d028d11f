"""Websocket frames → acks, pings, ticks and books (no network)."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.contracts import KST, TICKS_SCHEMA
from app.errors import DataError
from app.kis import ws_frames as fr

KEY, IV = "abcdefghijklmnopqrstuvwxyz012345", "0123456789abcdef"


def trade(symbol: str = "005930", hms: str = "093015", price: int = 71800, qty: int = 120, cum: int = 3456789,
          extra: int = 0) -> list[str]:
    f = {name: "0" for name in fr.TRADE_FIELDS}
    f.update(MKSC_SHRN_ISCD=symbol, STCK_CNTG_HOUR=hms, STCK_PRPR=str(price), ASKP1=str(price + 100),
             BIDP1=str(price), CNTG_VOL=str(qty), ACML_VOL=str(cum), ACML_TR_PBMN=str(cum * price),
             BSOP_DATE="20240315", NEW_MKOP_CLS_CODE="20", TRHT_YN="N")
    return [f[name] for name in fr.TRADE_FIELDS] + [f"x{i}" for i in range(extra)]


def frame(tr_id: str, records: list[list[str]], enc: str = "0") -> str:
    return f"{enc}|{tr_id}|{len(records):03d}|" + "^".join(v for r in records for v in r)


def encrypt(text: str) -> str:
    pad = padding.PKCS7(128).padder()
    data = pad.update(text.encode()) + pad.finalize()
    enc = Cipher(algorithms.AES(KEY.encode()), modes.CBC(IV.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def test_multi_record_trade_frame_is_split_by_its_count():
    text = frame("H0STCNT0", [trade(hms="093015", qty=120, cum=1000), trade(hms="093016", price=71900, qty=35,
                                                                           cum=1035)])
    encrypted, tr_id, count, payload = fr.split_frame(text)
    rec = fr.split_records(tr_id, count, payload)
    assert (encrypted, tr_id, count, len(rec.rows), rec.extra_fields) == (False, "H0STCNT0", 2, 2, 0)
    ticks = [fr.tick(r) for r in rec.rows]
    assert ticks[1] == fr.Tick("005930", dt.datetime(2024, 3, 15, 9, 30, 16, tzinfo=KST), 71900.0, 35, 1035,
                               1035 * 71900, 71900.0, 72000.0, "20")
    table = fr.ticks_table(ticks)
    assert table.schema.equals(TICKS_SCHEMA) and table.column("quantity").to_pylist() == [120, 35]


def test_order_book_frame():
    asks = [72000 + 100 * i for i in range(10)]
    bids = [71900 - 100 * i for i in range(10)]
    row = (["005930", "093015", "0"] + [str(p) for p in asks + bids] + [str(10 + i) for i in range(20)]
           + ["145", "245", "0", "0", "0", "0", "0", "0", "3", "0.00", "3456789", "0", "0", "0", "0", "0"])
    assert len(row) == len(fr.BOOK_FIELDS) == 59
    rec = fr.split_records(*fr.split_frame(frame("H0STASP0", [row]))[1:])
    book = fr.book(rec.rows[0])
    assert book.asks[0] == 72000 and book.bids[-1] == 71000 and book.ask_qty[0] == 10 and book.bid_qty[-1] == 29
    assert (book.total_ask_qty, book.total_bid_qty, book.cum_volume, book.time) == (145, 245, 3456789, "093015")


def test_encrypted_frame_decrypts_with_the_acks_key_and_iv():
    ack = fr.parse_control(json.dumps({
        "header": {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "Y"},
        "body": {"rt_cd": "0", "msg_cd": "OPSP0000", "msg1": "SUBSCRIBE SUCCESS", "output": {"iv": IV, "key": KEY}}}))
    assert ack.ok and ack.encrypted and (ack.key, ack.iv) == (KEY, IV)
    plain = "^".join(trade() + trade(hms="093020"))
    encrypted, tr_id, count, payload = fr.split_frame(f"1|H0STCNT0|002|{encrypt(plain)}")
    assert encrypted and fr.decrypt(payload, ack.key, ack.iv) == plain
    rows = fr.split_records(tr_id, count, fr.decrypt(payload, ack.key, ack.iv)).rows
    assert [fr.tick(r).ts.second for r in rows] == [15, 20]
    with pytest.raises(DataError, match="did not decrypt"):
        fr.decrypt(payload, "z" * 32, IV)


def test_more_fields_than_documented_are_counted_and_dropped():
    text = frame("H0STCNT0", [trade(extra=3), trade(hms="093016", extra=3)])
    rec = fr.split_records(*fr.split_frame(text)[1:])
    assert rec.extra_fields == 3 and all(len(r) == 46 for r in rec.rows)
    assert fr.tick(rec.rows[1]).ts.second == 16  # the known fields are read where they belong


def test_frames_that_do_not_fit_their_count_or_layout_are_refused():
    with pytest.raises(DataError, match="93 fields for 2 records"):
        fr.split_records("H0STCNT0", 2, "^".join(trade() + trade() + ["x"]))
    with pytest.raises(DataError, match="fewer than the documented 46"):
        fr.split_records("H0STCNT0", 1, "^".join(trade()[:40]))
    with pytest.raises(DataError, match="unreadable websocket data frame"):
        fr.split_frame("0|H0STCNT0|abc")


def test_pingpong_and_refusals_are_control_messages():
    text = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": "20240102093000"}})
    assert fr.parse_control(text) == fr.Ping(text)
    refused = fr.parse_control(json.dumps({"header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
                                           "body": {"rt_cd": "9", "msg_cd": "OPSP8996",
                                                    "msg1": "ALREADY IN USE appkey"}}))
    assert not refused.ok and refused.msg_cd == "OPSP8996"
