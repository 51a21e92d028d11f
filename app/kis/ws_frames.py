"""KIS websocket frames → acks, pings and typed ticks/books. I/O-free: the client feeds text in.

What the server sends (docs/websocket.md):

- JSON control messages: subscription acks (``OPSP0000`` with the AES key and iv of that
  subscription), refusals (``rt_cd`` not "0"), and ``PINGPONG``, which the client echoes;
- data frames ``<enc>|<tr_id>|<count>|<payload>``: ``count`` records of that TR's fields joined
  by ``^`` one after the other; ``enc`` "1" means the payload is base64 AES-256-CBC ciphertext.

Records are split by the count, not by the documented field count: KIS has added fields to
frames before, so a record with more fields than documented is read by its known fields and the
extra ones are counted (and logged once per tr_id by the client).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field

import pyarrow as pa
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.contracts import KST, TICKS_SCHEMA
from app.errors import DataError

TRADE_TR = "H0STCNT0"
BOOK_TR = "H0STASP0"

#: H0STCNT0 record layout (46 fields).
TRADE_FIELDS = (
    "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN", "PRDY_VRSS", "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC", "STCK_OPRC", "STCK_HGPR", "STCK_LWPR", "ASKP1", "BIDP1", "CNTG_VOL", "ACML_VOL",
    "ACML_TR_PBMN", "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU", "NTBY_CNTG_CSNU", "CTTR", "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE", "PRDY_VOL_VRSS_ACML_VOL_RATE", "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN", "OPRC_VRSS_PRPR", "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN", "HGPR_VRSS_PRPR",
    "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN", "LWPR_VRSS_PRPR", "BSOP_DATE", "NEW_MKOP_CLS_CODE", "TRHT_YN",
    "ASKP_RSQN1", "BIDP_RSQN1", "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE", "HOUR_CLS_CODE", "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
)
#: H0STASP0 record layout (59 fields): a 10-level order book.
BOOK_FIELDS = (
    ("MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE")
    + tuple(f"ASKP{i}" for i in range(1, 11)) + tuple(f"BIDP{i}" for i in range(1, 11))
    + tuple(f"ASKP_RSQN{i}" for i in range(1, 11)) + tuple(f"BIDP_RSQN{i}" for i in range(1, 11))
    + ("TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "OVTM_TOTAL_ASKP_RSQN", "OVTM_TOTAL_BIDP_RSQN", "ANTC_CNPR",
       "ANTC_CNQN", "ANTC_VOL", "ANTC_CNTG_VRSS", "ANTC_CNTG_VRSS_SIGN", "ANTC_CNTG_PRDY_CTRT", "ACML_VOL",
       "TOTAL_ASKP_RSQN_ICDC", "TOTAL_BIDP_RSQN_ICDC", "OVTM_TOTAL_ASKP_ICDC", "OVTM_TOTAL_BIDP_ICDC",
       "STCK_DEAL_CLS_CODE")
)
KNOWN_FIELDS = {TRADE_TR: TRADE_FIELDS, BOOK_TR: BOOK_FIELDS}
_T = {name: k for k, name in enumerate(TRADE_FIELDS)}


@dataclass(frozen=True)
class Ack:
    """A control answer to (un)subscribe, or a refusal; ``key``/``iv`` decrypt its data frames."""

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str
    encrypted: bool = False
    key: str = field(default="", repr=False)
    iv: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"


@dataclass(frozen=True)
class Ping:
    """A PINGPONG message; the client answers by sending ``text`` back unchanged."""

    text: str


@dataclass(frozen=True)
class Records:
    """The records of one data frame, each cut to the documented fields of its tr_id."""

    tr_id: str
    rows: list[list[str]]
    extra_fields: int = 0  # fields per record beyond the documented ones


@dataclass(frozen=True)
class Tick:
    """One trade (H0STCNT0 record) as typed values."""

    symbol: str
    ts: dt.datetime  # exchange time, KST
    price: float
    quantity: int
    cum_volume: int
    cum_value: int
    bid: float
    ask: float
    session: str  # NEW_MKOP_CLS_CODE: first character 1 pre-open, 2 regular, 3 after close, 4 off-hours


@dataclass(frozen=True)
class Book:
    """One 10-level order book (H0STASP0 record)."""

    symbol: str
    time: str  # HHMMSS exchange time (the record has no date)
    asks: tuple[float, ...]
    bids: tuple[float, ...]
    ask_qty: tuple[int, ...]
    bid_qty: tuple[int, ...]
    total_ask_qty: int
    total_bid_qty: int
    cum_volume: int


def parse_control(text: str) -> Ack | Ping:
    """A JSON control message: a PINGPONG or an ack/refusal."""
    try:
        msg = json.loads(text)
        header = msg["header"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"unreadable websocket control message {text[:80]!r}", "report the message") from None
    if header.get("tr_id") == "PINGPONG":
        return Ping(text)
    body = msg.get("body") or {}
    out = body.get("output") or {}
    return Ack(str(header.get("tr_id", "")), str(header.get("tr_key", "")), str(body.get("rt_cd", "")),
               str(body.get("msg_cd", "")), str(body.get("msg1", "")).strip(),
               str(header.get("encrypt", "N")).upper() == "Y", str(out.get("key", "")), str(out.get("iv", "")))


def decrypt(payload: str, key: str, iv: str) -> str:
    """AES-256-CBC, PKCS#7 padding, base64 text; key and iv are the ack's ASCII strings."""
    try:
        raw = base64.b64decode(payload, validate=True)
        dec = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = dec.update(raw) + dec.finalize()
        unpad = padding.PKCS7(128).unpadder()
        return (unpad.update(padded) + unpad.finalize()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise DataError("an encrypted websocket frame did not decrypt with its subscription's key",
                        "re-subscribe to get a fresh key and iv") from None


def split_records(tr_id: str, count: int, payload: str, known: int | None = None) -> Records:
    """``count`` records out of ``payload``, split by the count; extra trailing fields are dropped."""
    values = payload.split("^")
    known = known or len(KNOWN_FIELDS.get(tr_id, ())) or None
    if count < 1 or len(values) % count:
        raise DataError(f"{tr_id} frame has {len(values)} fields for {count} records", "report the frame")
    per = len(values) // count
    if known is not None and per < known:
        raise DataError(f"{tr_id} records have {per} fields, fewer than the documented {known}",
                        "report the frame; KIS may have changed the layout")
    keep = known or per
    rows = [values[i * per: i * per + keep] for i in range(count)]
    return Records(tr_id, rows, per - keep)


def split_frame(text: str) -> tuple[bool, str, int, str]:
    """``(encrypted, tr_id, count, payload)``; only the first three ``|`` separate."""
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("0", "1") or not parts[2].isdigit():
        raise DataError(f"unreadable websocket data frame {text[:60]!r}", "report the frame")
    return parts[0] == "1", parts[1], int(parts[2]), parts[3]


def _num(row: list[str], name: str, conv=float):
    text = row[_T[name]]
    try:
        return conv(text) if text else conv(0)
    except ValueError:
        raise DataError(f"H0STCNT0 field {name}={text!r} is not a number", "report the frame") from None


def tick(row: list[str], today: dt.date | None = None) -> Tick:
    """A typed trade; the date is the record's BSOP_DATE (``today`` if it is blank)."""
    day = row[_T["BSOP_DATE"]]
    hms = row[_T["STCK_CNTG_HOUR"]].zfill(6)
    try:  # int slices: strptime costs more than the rest of the record
        date = dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])) if day else (today or dt.datetime.now(KST).date())
        stamp = dt.datetime(date.year, date.month, date.day, int(hms[:2]), int(hms[2:4]), int(hms[4:6]), tzinfo=KST)
    except ValueError:
        raise DataError(f"H0STCNT0 time {day!r} {hms!r} is not a date and time", "report the frame") from None
    return Tick(row[0], stamp, _num(row, "STCK_PRPR"),
                _num(row, "CNTG_VOL", int), _num(row, "ACML_VOL", int), _num(row, "ACML_TR_PBMN", int),
                _num(row, "BIDP1"), _num(row, "ASKP1"), row[_T["NEW_MKOP_CLS_CODE"]])


def book(row: list[str]) -> Book:
    """A typed 10-level book."""
    try:
        f = [float(x or 0) for x in row[3:23]]
        q = [int(x or 0) for x in row[23:45]]
        cum = int(row[BOOK_FIELDS.index("ACML_VOL")] or 0)
    except ValueError:
        raise DataError("H0STASP0 record has a non-numeric price or quantity", "report the frame") from None
    return Book(row[0], row[1], tuple(f[:10]), tuple(f[10:]), tuple(q[:10]), tuple(q[10:20]), q[20], q[21], cum)


def ticks_table(ticks: list[Tick]) -> pa.Table:
    """Ticks as an Arrow table of the ticks contract (app/contracts.py)."""
    cols = {name: [getattr(t, name) for t in ticks] for name in TICKS_SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=TICKS_SCHEMA)
